//! Serialises host access to one session's `inbound.db`: an in-process
//! mutex per session (so tasks queue without blocking in the kernel) plus
//! an advisory `flock` on a lock file in host-only state (so several host
//! processes on one machine queue too).

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};

use rustix::fs::{FlockOperation, flock};

use crate::error::{Error, Result};
use crate::layout::HostSessionState;

#[derive(Default)]
struct Gate {
    held: Mutex<bool>,
    freed: Condvar,
}

type Gates = Mutex<HashMap<PathBuf, Weak<Gate>>>;

fn gates() -> &'static Gates {
    static GATES: OnceLock<Gates> = OnceLock::new();
    GATES.get_or_init(Default::default)
}

fn gate_for(key: PathBuf) -> Arc<Gate> {
    let mut map = gates().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(gate) = map.get(&key).and_then(Weak::upgrade) {
        return gate;
    }
    if map.len() > 1024 {
        map.retain(|_, g| g.strong_count() > 0);
    }
    let gate = Arc::new(Gate::default());
    map.insert(key, Arc::downgrade(&gate));
    gate
}

/// Held while the host reads or writes one session's `inbound.db`.
pub(crate) struct SessionLock {
    gate: Arc<Gate>,
    // Closing the file releases the flock; declared after `gate` is irrelevant
    // because Drop releases the gate explicitly after the file closes.
    file: Option<File>,
}

impl SessionLock {
    /// Waits for the session's in-process gate, then its cross-process flock.
    pub(crate) fn acquire(state: &HostSessionState) -> Result<SessionLock> {
        state.ensure()?;
        let path = state.lock_file();
        let gate = gate_for(path.clone());
        {
            let mut held = gate.held.lock().unwrap_or_else(|p| p.into_inner());
            while *held {
                held = gate.freed.wait(held).unwrap_or_else(|p| p.into_inner());
            }
            *held = true;
        }
        let mut lock = SessionLock { gate, file: None };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        flock(&file, FlockOperation::LockExclusive).map_err(|e| Error::io(&path, e.into()))?;
        lock.file = Some(file);
        Ok(lock)
    }
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        drop(self.file.take());
        let mut held = self.gate.held.lock().unwrap_or_else(|p| p.into_inner());
        *held = false;
        self.gate.freed.notify_one();
    }
}
