//! Guest side of the mount self-test: at start-up, see every nonce the host writes, or say the mount is stale.
//!
//! See [`crate::host::write_mount_nonce`] for the two files and why, and
//! [`crate::host::mount_rounds`] for the rounds and their bound.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::mount::{ACK_FILE, MOUNT_NONCE_ENV, NONCE_FILE, SIZED_NONCE_FILE};

/// Default wait for each round's nonce: VirtioFS's default 1 s attribute timeout, twice, plus slack.
pub const DEFAULT_MOUNT_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Pause between two reads of the nonce files.
const READ_EVERY: Duration = Duration::from_millis(50);

/// Reads of a round's nonce after it showed and before the ack: a mount that
/// refreshes once after a page fetch (real virtio-fs, `cache=always`) has
/// used that refresh up by then, so the next round sees what polls would.
const SETTLE_READS: usize = 3;

/// The mount does not show what the host wrote.
#[derive(Debug, thiserror::Error)]
#[error(
    "stale mount: after {:.1} s {} {seen}, expected the host's nonce {expected:?} (round {round} \
     of {rounds}); this mount does not show host writes (page cache or file size kept across \
     opens, like VirtioFS cache=always or a writeback cache), so new messages would never be seen",
    waited.as_secs_f64(),
    path.display()
)]
pub struct StaleMount {
    /// The nonce file that showed the wrong content.
    pub path: PathBuf,
    /// What the guest read (or why it could not).
    pub seen: String,
    /// What the host wrote.
    pub expected: String,
    /// How long the guest waited.
    pub waited: Duration,
    /// The round that failed, from 1.
    pub round: usize,
    /// Rounds the host asked for.
    pub rounds: usize,
}

/// One nonce file, read through a handle kept open for the whole check.
struct NonceFile {
    path: PathBuf,
    sized: bool,
    handle: Option<File>,
}

impl NonceFile {
    fn new(dir: &Path, name: &str, sized: bool) -> Self {
        NonceFile {
            path: dir.join(name),
            sized,
            handle: None,
        }
    }

    /// `fstat` then `pread` at offset 0 on the kept handle, as SQLite reads a
    /// database it holds open: no fresh `stat` or open to refresh the cache.
    fn read_nonce(&mut self) -> Result<String, String> {
        let file = match &mut self.handle {
            Some(file) => file,
            slot @ None => {
                let opened = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
                    .open(&self.path);
                slot.insert(opened.map_err(|e| format!("cannot be read ({e})"))?)
            }
        };
        let mut buf = [0u8; 256];
        let n = file
            .metadata()
            .and_then(|_| file.read_at(&mut buf, 0))
            .map_err(|e| format!("cannot be read ({e})"))?;
        let text = String::from_utf8_lossy(&buf[..n]);
        let text = if self.sized {
            text.trim_start_matches('.')
        } else {
            &text
        };
        Ok(text.to_owned())
    }
}

/// Which of `nonces` both files show, or the first file that shows none.
fn shown(files: &mut [NonceFile; 2], nonces: &[&str]) -> Result<usize, (PathBuf, String)> {
    let mut index = None;
    for file in files.iter_mut() {
        let seen = file.read_nonce().map_err(|why| (file.path.clone(), why))?;
        match nonces.iter().position(|n| *n == seen) {
            Some(i) if index.is_none_or(|j| j == i) => index = Some(i),
            _ => return Err((file.path.clone(), format!("reads {seen:?}"))),
        }
    }
    index.ok_or_else(|| (files[0].path.clone(), "shows no nonce".to_owned()))
}

/// Tells the host that round `round` (from 1) showed `nonce`.
fn acknowledge(dir: &Path, round: usize, nonce: &str) -> std::io::Result<()> {
    let mut ack = std::fs::File::create(dir.join(ACK_FILE))?;
    ack.write_all(format!("{round} {nonce}").as_bytes())?;
    ack.sync_all()
}

/// Runs the mount self-test in the session folder `dir`: `expected` is the
/// host's comma-separated nonces ([`MOUNT_NONCE_ENV`]). Each must show in
/// both files within `timeout`; after each but the last the guest writes its
/// ack and the host rewrites the files with the next one. A single nonce is
/// the one-shot test of older hosts.
pub fn check_mount(dir: &Path, expected: &str, timeout: Duration) -> Result<(), StaleMount> {
    let nonces: Vec<&str> = expected.split(',').collect();
    let mut files = [
        NonceFile::new(dir, NONCE_FILE, false),
        NonceFile::new(dir, SIZED_NONCE_FILE, true),
    ];
    let mut round = 0;
    loop {
        let start = Instant::now();
        // A later round may already show: another guest process of this
        // start (`airlock guest poll` runs once per poll) drove it there.
        let ahead = loop {
            match shown(&mut files, &nonces[round..]) {
                Ok(i) => break i,
                Err((path, seen)) => {
                    let waited = start.elapsed();
                    if waited >= timeout {
                        return Err(StaleMount {
                            path,
                            seen,
                            expected: nonces[round].to_owned(),
                            waited,
                            round: round + 1,
                            rounds: nonces.len(),
                        });
                    }
                }
            }
            std::thread::sleep(READ_EVERY);
        };
        round += ahead;
        if round + 1 == nonces.len() {
            return Ok(());
        }
        for _ in 0..SETTLE_READS {
            std::thread::sleep(READ_EVERY);
            let _ = shown(&mut files, &nonces[round..]);
        }
        acknowledge(dir, round + 1, nonces[round]).map_err(|e| StaleMount {
            path: dir.join(ACK_FILE),
            seen: format!("cannot be written ({e})"),
            expected: nonces[round + 1].to_owned(),
            waited: start.elapsed(),
            round: round + 2,
            rounds: nonces.len(),
        })?;
        round += 1;
    }
}

/// [`check_mount`] with the nonce from [`MOUNT_NONCE_ENV`]; `Ok(false)` when
/// the variable is not set (a host that does not write nonces).
pub fn check_mount_from_env(dir: &Path, timeout: Duration) -> Result<bool, MountCheckError> {
    match std::env::var(MOUNT_NONCE_ENV) {
        Ok(expected) if !expected.is_empty() => check_mount(dir, &expected, timeout)
            .map(|()| true)
            .map_err(MountCheckError::from_stale),
        _ => Ok(false),
    }
}

/// Why [`check_mount_from_env`] failed.
#[derive(Debug, thiserror::Error)]
pub enum MountCheckError {
    /// The mount shows an old or wrong nonce.
    #[error(transparent)]
    Stale(#[from] StaleMount),
    /// No nonce file exists at all: the host did not prepare this folder,
    /// which a stale mount would not explain.
    #[error(
        "no nonce was written: {MOUNT_NONCE_ENV} is set but {} does not exist (waited {:.1} s); \
         the host writes it (SessionManager::prepare_guest) just before starting the sandbox, so \
         either it was not called for this folder or this is not the folder it prepared",
        path.display(),
        waited.as_secs_f64()
    )]
    NoNonce {
        /// The nonce file that does not exist.
        path: PathBuf,
        /// How long the guest waited for it.
        waited: Duration,
    },
}

impl MountCheckError {
    /// Tells a nonce file that is absent (never written) from one that is stale.
    fn from_stale(stale: StaleMount) -> Self {
        match std::fs::symlink_metadata(&stale.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => MountCheckError::NoNonce {
                path: stale.path,
                waited: stale.waited,
            },
            _ => MountCheckError::Stale(stale),
        }
    }

    /// The nonce file concerned.
    pub fn path(&self) -> &Path {
        match self {
            MountCheckError::Stale(stale) => &stale.path,
            MountCheckError::NoNonce { path, .. } => path,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{start_mount_check, write_mount_nonce};

    #[test]
    fn fresh_nonces_pass_all_rounds() {
        let dir = tempfile::tempdir().unwrap();
        let nonces = write_mount_nonce(dir.path()).unwrap();
        assert_eq!(nonces.split(',').count(), crate::host::MOUNT_CHECK_ROUNDS);
        check_mount(dir.path(), &nonces, Duration::from_secs(5)).unwrap();
        let last = nonces.rsplit(',').next().unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(NONCE_FILE)).unwrap(),
            last
        );
        // A second guest process of the same start finds the last round and passes at once.
        check_mount(dir.path(), &nonces, Duration::ZERO).unwrap();
    }

    #[test]
    fn old_nonce_is_reported_as_stale() {
        let dir = tempfile::tempdir().unwrap();
        let old = write_mount_nonce(dir.path()).unwrap();
        let _new = write_mount_nonce(dir.path()).unwrap();
        let err = check_mount(dir.path(), &old, Duration::from_millis(100)).unwrap_err();
        assert!(err.to_string().starts_with("stale mount"), "{err}");
        assert!(err.path.ends_with(NONCE_FILE));
        assert_eq!(
            (err.round, err.rounds),
            (1, crate::host::MOUNT_CHECK_ROUNDS)
        );
    }

    #[test]
    fn a_mount_showing_only_the_first_nonce_fails_round_two() {
        let dir = tempfile::tempdir().unwrap();
        // The files keep n1, as a mount that refreshed once and then froze shows them.
        let first = start_mount_check(dir.path(), 1).unwrap();
        let expected = format!("{first},{}", "0".repeat(32));
        let err = check_mount(dir.path(), &expected, Duration::from_millis(200)).unwrap_err();
        assert_eq!((err.round, err.rounds), (2, 2), "{err}");
        assert!(err.to_string().contains("round 2 of 2"), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(ACK_FILE)).unwrap(),
            format!("1 {first}")
        );
    }

    #[test]
    fn truncated_or_zero_filled_sized_nonce_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let nonce = start_mount_check(dir.path(), 1).unwrap();
        let sized = dir.path().join(SIZED_NONCE_FILE);
        std::fs::write(&sized, format!("...{}", &nonce[..20])).unwrap();
        let err = check_mount(dir.path(), &nonce, Duration::ZERO).unwrap_err();
        assert!(err.path.ends_with(SIZED_NONCE_FILE));
        std::fs::write(&sized, format!("..{nonce}\0\0")).unwrap();
        assert!(check_mount(dir.path(), &nonce, Duration::ZERO).is_err());
    }

    #[test]
    fn a_folder_without_a_nonce_says_none_was_written_not_stale() {
        let dir = tempfile::tempdir().unwrap();
        let stale = check_mount(dir.path(), "x", Duration::ZERO).unwrap_err();
        let err = MountCheckError::from_stale(stale);
        assert!(err.to_string().starts_with("no nonce was written"), "{err}");
        assert!(err.path().ends_with(NONCE_FILE));
        let old = write_mount_nonce(dir.path()).unwrap();
        let _new = write_mount_nonce(dir.path()).unwrap();
        let stale = check_mount(dir.path(), &old, Duration::ZERO).unwrap_err();
        let err = MountCheckError::from_stale(stale);
        assert!(err.to_string().starts_with("stale mount"), "{err}");
    }

    #[test]
    fn missing_nonce_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let err = check_mount(dir.path(), "x", Duration::ZERO).unwrap_err();
        assert!(err.seen.contains("cannot be read"), "{err}");
    }
}
