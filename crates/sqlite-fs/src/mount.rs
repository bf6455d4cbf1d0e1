//! The names the host and the guest agree on for the mount self-test (the
//! host writes them, `guest::check_mount` reads them); see
//! `host::write_mount_nonce` for the files and `host::mount_rounds` for the
//! rounds.

/// Fixed-length nonce file in the session folder.
pub const NONCE_FILE: &str = ".airlock-nonce";
/// Nonce file whose length changes on every write (padding of `.` first).
pub const SIZED_NONCE_FILE: &str = ".airlock-nonce-sized";
/// Environment variable that carries the expected nonces (comma-separated, in order) into the guest.
pub const MOUNT_NONCE_ENV: &str = "AIRLOCK_MOUNT_NONCE";
/// File in which the guest acknowledges a round: `<round> <nonce>` (round from 1).
pub const ACK_FILE: &str = ".airlock-nonce-ack";
/// Nonces per guest start: the first, then two rewrites after the guest read the one before.
#[cfg(feature = "host")]
pub const MOUNT_CHECK_ROUNDS: usize = 3;
