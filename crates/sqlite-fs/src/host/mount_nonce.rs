//! Host side of the mount self-test: fresh nonces in the session folder for every guest start.
//!
//! Over VirtioFS-like mounts a guest can be stuck on a stale view (page
//! cache kept across opens, `cache=always`; a cached file size, the FUSE
//! writeback cache) and would then see no message ever. The host rewrites
//! the nonce whenever it prepares the session for a guest and passes the
//! values to it ([`MOUNT_NONCE_ENV`]); the guest checks it sees them
//! ([`crate::guest::check_mount`]) and reports a stale mount instead of
//! waiting forever.
//!
//! The nonce goes into two files, rewritten in place (same inode): one of
//! fixed length (stale pages hide a same-size rewrite; a size change alone
//! makes Linux FUSE drop cached pages), and one padded to a new length every
//! time with the padding first (a stale cached size then cuts the nonce).
//!
//! One value is not enough: on real virtio-fs a read that fetched pages
//! marks the inode's atime stale, so the next `stat` refreshes the
//! attributes once and every new guest sees the fresh nonce once, then
//! nothing more, even on `cache=always`. So a guest start has
//! [`MOUNT_CHECK_ROUNDS`] nonces, and the host rewrites the files with the
//! next one only after the guest said (in [`ACK_FILE`]) that it saw the
//! current one and kept reading it: see [`crate::host::mount_rounds`] for
//! the protocol and its bound.
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{Error, Result};
use crate::host::HostMailbox;

pub use crate::mount::{
    ACK_FILE, MOUNT_CHECK_ROUNDS, MOUNT_NONCE_ENV, NONCE_FILE, SIZED_NONCE_FILE,
};

/// Rewrites `path` in place; the guest controls the folder, so no symlink
/// is followed, a FIFO cannot block, and only a regular file is truncated.
fn rewrite_in_place(path: &Path, content: &[u8]) -> Result<()> {
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let io = |e| Error::io(path, e);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(flags.bits() as i32)
        .open(path)
        .map_err(io)?;
    if !file.metadata().map_err(io)?.is_file() {
        return Err(Error::UnsafeFile {
            path: path.to_path_buf(),
            what: "the mount nonce is not a regular file".into(),
        });
    }
    file.set_len(0).map_err(io)?;
    file.write_all(content).map_err(io)?;
    file.sync_all().map_err(io)
}

/// A fresh random nonce (32 hex digits) and a padding seed.
fn fresh_nonce(dir: &Path) -> Result<(String, u8)> {
    let mut raw = [0u8; 17];
    getrandom::fill(&mut raw)
        .map_err(|e| Error::io(dir, std::io::Error::other(format!("random nonce: {e}"))))?;
    Ok((
        raw[..16].iter().map(|b| format!("{b:02x}")).collect(),
        raw[16],
    ))
}

/// Writes `nonce` into both nonce files of `dir`; the sized one gets a new length.
pub(super) fn write_nonce_files(dir: &Path, nonce: &str, seed: u8) -> Result<()> {
    let sized = dir.join(SIZED_NONCE_FILE);
    let old_len = std::fs::symlink_metadata(&sized)
        .map(|m| m.len())
        .unwrap_or(0);
    let mut pad = usize::from(seed % 32) + 1;
    if (nonce.len() + pad) as u64 == old_len {
        pad = if pad < 32 { pad + 1 } else { 1 };
    }
    rewrite_in_place(&dir.join(NONCE_FILE), nonce.as_bytes())?;
    rewrite_in_place(&sized, format!("{}{nonce}", ".".repeat(pad)).as_bytes())
}

/// Starts the mount self-test for the next guest of the session folder
/// `dir`: writes the first of `rounds` fresh nonces, leaves a background
/// thread to write the next ones as the guest acknowledges each (see
/// [`crate::host::mount_rounds`]), and returns the value for
/// [`MOUNT_NONCE_ENV`]. `rounds` below 2 gives the old one-shot test, which
/// a one-time refresh can fool; it exists to show that.
pub fn start_mount_check(dir: &Path, rounds: usize) -> Result<String> {
    let mut nonces = Vec::new();
    let mut seeds = Vec::new();
    for _ in 0..rounds.max(1) {
        let (nonce, seed) = fresh_nonce(dir)?;
        nonces.push(nonce);
        seeds.push(seed);
    }
    write_nonce_files(dir, &nonces[0], seeds[0])?;
    let value = nonces.join(",");
    super::mount_rounds::spawn(dir.to_path_buf(), nonces, seeds);
    Ok(value)
}

/// [`start_mount_check`] with [`MOUNT_CHECK_ROUNDS`]: what a host calls before every guest start.
pub fn write_mount_nonce(dir: &Path) -> Result<String> {
    start_mount_check(dir, MOUNT_CHECK_ROUNDS)
}

impl HostMailbox {
    /// Starts the mount self-test for the next guest of this session
    /// ([`write_mount_nonce`]) and returns the nonces; pass them to the guest
    /// in [`MOUNT_NONCE_ENV`].
    pub fn write_mount_nonce(&self) -> Result<String> {
        write_mount_nonce(self.paths.dir())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_changes_value_and_sized_length() {
        let dir = tempfile::tempdir().unwrap();
        let a = start_mount_check(dir.path(), 1).unwrap();
        let len_a = std::fs::metadata(dir.path().join(SIZED_NONCE_FILE))
            .unwrap()
            .len();
        let b = start_mount_check(dir.path(), 1).unwrap();
        let len_b = std::fs::metadata(dir.path().join(SIZED_NONCE_FILE))
            .unwrap()
            .len();
        assert_eq!((a.len(), b.len()), (32, 32));
        assert_ne!(a, b);
        assert_ne!(len_a, len_b);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(NONCE_FILE)).unwrap(),
            b
        );
        let sized = std::fs::read_to_string(dir.path().join(SIZED_NONCE_FILE)).unwrap();
        assert!(
            sized.ends_with(&b) && sized.trim_start_matches('.') == b,
            "{sized}"
        );
    }

    #[test]
    fn symlinked_nonce_is_refused_and_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, b"precious").unwrap();
        let session = dir.path().join("session");
        std::fs::create_dir(&session).unwrap();
        std::os::unix::fs::symlink(&outside, session.join(NONCE_FILE)).unwrap();
        assert!(write_mount_nonce(&session).is_err());
        assert_eq!(std::fs::read(&outside).unwrap(), b"precious");
    }

    #[test]
    fn fifo_nonce_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.path().join(NONCE_FILE),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        assert!(write_mount_nonce(dir.path()).is_err());
    }
}
