//! The names the host and the guest agree on for the mount self-test (the
//! host writes them, `guest::check_mount` reads them); see
//! `host::write_mount_nonce` for the two files and why.

/// Fixed-length nonce file in the session folder.
pub const NONCE_FILE: &str = ".airlock-nonce";
/// Nonce file whose length changes on every write (padding of `.` first).
pub const SIZED_NONCE_FILE: &str = ".airlock-nonce-sized";
/// Environment variable that carries the expected nonce into the guest.
pub const MOUNT_NONCE_ENV: &str = "AIRLOCK_MOUNT_NONCE";
