//! Guest side of the mount self-test: at start-up, see the nonce the host just wrote, or say the mount is stale.
//!
//! See [`crate::host::write_mount_nonce`] for the two files and why.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::host::{MOUNT_NONCE_ENV, NONCE_FILE, SIZED_NONCE_FILE};

/// Default wait for the nonce: VirtioFS's default 1 s attribute timeout, twice, plus slack.
pub const DEFAULT_MOUNT_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// The mount does not show what the host wrote.
#[derive(Debug, thiserror::Error)]
#[error(
    "stale mount: after {:.1} s {} {seen}, expected the host's nonce {expected:?}; this mount does \
     not show host writes (page cache or file size kept across opens, like VirtioFS cache=always \
     or a writeback cache), so new messages would never be seen",
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
}

fn read_nonce(path: &Path, sized: bool) -> Result<String, String> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let text = if sized {
                text.trim_start_matches('.')
            } else {
                &text
            };
            Ok(text.to_owned())
        }
        Err(e) => Err(format!("cannot be read ({e})")),
    }
}

/// Re-reads (fresh opens) the nonce files in the session folder `dir` until
/// both show `expected`, for at most `timeout`.
pub fn check_mount(dir: &Path, expected: &str, timeout: Duration) -> Result<(), StaleMount> {
    let start = Instant::now();
    loop {
        let mut bad = None;
        for (name, sized) in [(NONCE_FILE, false), (SIZED_NONCE_FILE, true)] {
            let path = dir.join(name);
            match read_nonce(&path, sized) {
                Ok(seen) if seen == expected => {}
                Ok(seen) => bad = Some((path, format!("reads {seen:?}"))),
                Err(why) => bad = Some((path, why)),
            }
            if bad.is_some() {
                break;
            }
        }
        let Some((path, seen)) = bad else {
            return Ok(());
        };
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(StaleMount {
                path,
                seen,
                expected: expected.to_owned(),
                waited,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
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
    use crate::host::write_mount_nonce;

    #[test]
    fn fresh_nonce_passes() {
        let dir = tempfile::tempdir().unwrap();
        let nonce = write_mount_nonce(dir.path()).unwrap();
        check_mount(dir.path(), &nonce, Duration::from_secs(1)).unwrap();
    }

    #[test]
    fn old_nonce_is_reported_as_stale() {
        let dir = tempfile::tempdir().unwrap();
        let old = write_mount_nonce(dir.path()).unwrap();
        let _new = write_mount_nonce(dir.path()).unwrap();
        let err = check_mount(dir.path(), &old, Duration::from_millis(100)).unwrap_err();
        assert!(err.to_string().starts_with("stale mount"), "{err}");
        assert!(err.path.ends_with(NONCE_FILE));
    }

    #[test]
    fn truncated_or_zero_filled_sized_nonce_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let nonce = write_mount_nonce(dir.path()).unwrap();
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
