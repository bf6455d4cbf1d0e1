//! The per-session delivery lease: an exclusive `flock` on
//! `host-state/sessions/<group>/<session>/delivery.lock`, so two deliverers
//! (in one process or several) never work on one session at once. It is
//! separate from the inbound write lock, which delivery itself takes.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use airlock_core::{Error, Result};
use rustix::fs::{FlockOperation, flock};

/// File name of the lease inside the session's host-state folder.
pub const LEASE_FILE: &str = "delivery.lock";

/// Held while one deliverer works on one session; dropping it releases it.
#[derive(Debug)]
pub struct SessionLease {
    _file: File,
}

impl SessionLease {
    /// Takes the lease in `state_dir` without waiting; `None` when another
    /// deliverer holds it.
    pub fn try_acquire(state_dir: &Path) -> Result<Option<SessionLease>> {
        std::fs::create_dir_all(state_dir).map_err(|e| Error::io(state_dir, e))?;
        let path = state_dir.join(LEASE_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        // flock locks belong to the open file description, so two handles
        // in one process exclude each other just as two processes do.
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(SessionLease { _file: file })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(Error::io(&path, e.into())),
        }
    }

    /// Takes the lease, retrying for up to `wait`; `None` if it stayed busy.
    pub async fn acquire_within(state_dir: &Path, wait: Duration) -> Result<Option<SessionLease>> {
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(5);
        loop {
            if let Some(lease) = Self::try_acquire(state_dir)? {
                return Ok(Some(lease));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lease_is_busy_until_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let first = SessionLease::try_acquire(tmp.path()).unwrap().unwrap();
        assert!(SessionLease::try_acquire(tmp.path()).unwrap().is_none());
        drop(first);
        assert!(SessionLease::try_acquire(tmp.path()).unwrap().is_some());
    }
}
