//! The host's half of the multi-round mount self-test: rewrite the nonce each time the guest acknowledges one.
//!
//! # Protocol
//!
//! [`start_mount_check`](crate::host::start_mount_check) draws nonces
//! `n1..nR` ([`MOUNT_CHECK_ROUNDS`](crate::host::MOUNT_CHECK_ROUNDS) by default), writes `n1` into both nonce
//! files and hands `n1,…,nR` to the guest. For each round `k < R`:
//!
//! 1. the guest waits until both files, read through handles it keeps open
//!    (`fstat` + `pread` at offset 0, as SQLite reads), show `nk`;
//! 2. it reads them a few more times (so a one-time attribute refresh is
//!    used up), then writes `k nk` into [`ACK_FILE`] and `fsync`s it;
//! 3. the host (this thread, polling every [`ACK_POLL`]) sees the ack and
//!    rewrites both files with `n(k+1)`: the fixed one at the same size, the
//!    sized one at a new length, in place.
//!
//! The guest passes when it sees `nR`. The bound is per round: the guest's
//! timeout (3 s by default: VirtioFS's 1 s attribute timeout twice, plus
//! slack), plus [`ACK_POLL`] for the host to react. A mount that shows a
//! host write only once, or only on a fresh `stat`, fails round 2.
//!
//! The thread gives up when no ack comes within [`FIRST_ACK_WAIT`] (the
//! guest never started) or [`NEXT_ACK_WAIT`] after a rewrite, and when the
//! folder shows a nonce that is not its own (a later guest start took over).
//! The folder is the guest's: the ack is read without following links, from
//! a regular file only, at most 128 bytes.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::mount_nonce::{ACK_FILE, NONCE_FILE, write_nonce_files};

/// How often the host looks for the guest's ack.
pub const ACK_POLL: Duration = Duration::from_millis(50);
/// How long the host waits for the first ack: the sandbox may take minutes to start.
pub const FIRST_ACK_WAIT: Duration = Duration::from_secs(600);
/// How long the host waits for each later ack.
pub const NEXT_ACK_WAIT: Duration = Duration::from_secs(60);

/// Reads a small file the guest controls: no symlink, no FIFO, no device.
fn read_small(path: &Path) -> Option<String> {
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(128).read_to_string(&mut text).ok()?;
    Some(text)
}

/// Starts the thread that drives rounds 2.. for one guest start (none for one round).
pub(super) fn spawn(dir: PathBuf, nonces: Vec<String>, seeds: Vec<u8>) {
    if nonces.len() < 2 {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("airlock-mount-check".into())
        .spawn(move || drive(&dir, &nonces, &seeds));
    if let Err(e) = spawned {
        // The guest then fails its round 2 and names the stale mount; no message is lost.
        tracing::warn!(error = %e, "could not start the mount self-test thread");
    }
}

/// Rewrites the nonce files round after round as the guest acknowledges them.
fn drive(dir: &Path, nonces: &[String], seeds: &[u8]) {
    let mut deadline = Instant::now() + FIRST_ACK_WAIT;
    for k in 0..nonces.len() - 1 {
        let ack = format!("{} {}", k + 1, nonces[k]);
        loop {
            if Instant::now() >= deadline {
                tracing::debug!(dir = %dir.display(), round = k + 1, "mount self-test: no ack, giving up");
                return;
            }
            if read_small(&dir.join(NONCE_FILE)).as_deref() != Some(nonces[k].as_str()) {
                // Another guest start rewrote the files: its own thread drives them now.
                return;
            }
            if read_small(&dir.join(ACK_FILE)).as_deref() == Some(ack.as_str()) {
                break;
            }
            std::thread::sleep(ACK_POLL);
        }
        if let Err(e) = write_nonce_files(dir, &nonces[k + 1], seeds[k + 1]) {
            tracing::warn!(error = %e, "mount self-test: rewriting the nonce failed");
            return;
        }
        deadline = Instant::now() + NEXT_ACK_WAIT;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{SIZED_NONCE_FILE, start_mount_check};

    /// Waits until both files show `nonce`: the host rewrites the fixed one
    /// first, so the sized one may still hold the last round for a moment.
    fn wait_for(dir: &Path, nonce: &str) -> bool {
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            let sized = read_small(&dir.join(SIZED_NONCE_FILE));
            if read_small(&dir.join(NONCE_FILE)).as_deref() == Some(nonce)
                && sized.is_some_and(|s| s.trim_start_matches('.') == nonce)
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn host_rewrites_after_each_ack_same_size_and_new_length() {
        let dir = tempfile::tempdir().unwrap();
        let value = start_mount_check(dir.path(), 3).unwrap();
        let nonces: Vec<&str> = value.split(',').collect();
        assert_eq!(nonces.len(), 3);
        let sized_len = || {
            std::fs::metadata(dir.path().join(SIZED_NONCE_FILE))
                .unwrap()
                .len()
        };
        let len1 = sized_len();
        // A wrong ack (old round, other nonce) moves nothing.
        std::fs::write(dir.path().join(ACK_FILE), format!("1 {}", nonces[1])).unwrap();
        std::thread::sleep(ACK_POLL * 4);
        assert_eq!(read_small(&dir.path().join(NONCE_FILE)).unwrap(), nonces[0]);
        std::fs::write(dir.path().join(ACK_FILE), format!("1 {}", nonces[0])).unwrap();
        assert!(wait_for(dir.path(), nonces[1]), "round 2 never written");
        assert_ne!(sized_len(), len1);
        std::fs::write(dir.path().join(ACK_FILE), format!("2 {}", nonces[1])).unwrap();
        assert!(wait_for(dir.path(), nonces[2]), "round 3 never written");
    }

    #[test]
    fn a_later_guest_start_takes_over_and_a_symlinked_ack_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let first = start_mount_check(dir.path(), 2).unwrap();
        let second = start_mount_check(dir.path(), 2).unwrap();
        let (a, b): (Vec<&str>, Vec<&str>) =
            (first.split(',').collect(), second.split(',').collect());
        let outside = dir.path().join("outside");
        std::fs::write(&outside, format!("1 {}", b[0])).unwrap();
        std::os::unix::fs::symlink(&outside, dir.path().join(ACK_FILE)).unwrap();
        std::thread::sleep(ACK_POLL * 4);
        assert_eq!(read_small(&dir.path().join(NONCE_FILE)).unwrap(), b[0]);
        std::fs::remove_file(dir.path().join(ACK_FILE)).unwrap();
        // The first start's ack comes too late: its thread saw the takeover and stopped.
        std::fs::write(dir.path().join(ACK_FILE), format!("1 {}", a[0])).unwrap();
        std::thread::sleep(ACK_POLL * 4);
        assert_eq!(read_small(&dir.path().join(NONCE_FILE)).unwrap(), b[0]);
        std::fs::write(dir.path().join(ACK_FILE), format!("1 {}", b[0])).unwrap();
        assert!(wait_for(dir.path(), b[1]));
    }
}
