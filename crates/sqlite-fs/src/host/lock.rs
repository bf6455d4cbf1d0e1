//! Serialises host processes on one session: an advisory `flock` on a lock
//! file in host-only state. (Inside one process, the group commit in
//! [`crate::host_state::batch`] already lets only one leader write at a time.)

use std::fs::File;

use rustix::fs::{FlockOperation, flock};

use crate::error::{Error, Result};
use crate::layout::HostSessionState;

/// Held while one host process writes one session.
pub(crate) struct FileLock {
    // Closing the file releases the flock.
    _file: File,
}

impl FileLock {
    /// Waits for the session's cross-process flock.
    pub(crate) fn acquire(state: &HostSessionState) -> Result<FileLock> {
        state.ensure()?;
        let path = state.lock_file();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        flock(&file, FlockOperation::LockExclusive).map_err(|e| Error::io(&path, e.into()))?;
        Ok(FileLock { _file: file })
    }
}
