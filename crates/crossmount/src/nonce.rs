//! The mount self-test as the harness drives it: airlock's own host and guest functions.
//!
//! The host writes with [`airlock_sqlite_fs::host::write_mount_nonce`], the guest
//! checks with [`airlock_sqlite_fs::guest::check_mount`]; see there for the design.
use std::path::Path;
use std::time::Duration;

pub use airlock_sqlite_fs::host::{NONCE_FILE, SIZED_NONCE_FILE};

/// Host side: starts the multi-round self-test in the session folder `dir` and returns the nonces.
pub fn host_write(dir: &Path) -> Result<String, String> {
    airlock_sqlite_fs::host::write_mount_nonce(dir).map_err(|e| e.to_string())
}

/// Guest side: runs the rounds of `expected` (comma-separated nonces), each within `timeout`.
pub fn guest_check(dir: &Path, expected: &str, timeout: Duration) -> Result<(), String> {
    airlock_sqlite_fs::guest::check_mount(dir, expected, timeout).map_err(|e| e.to_string())
}
