//! The memo of an ack sync that found nothing to copy: until the guest's
//! `outbound.db` or the host's publishing generation changes, the next sync
//! cannot find anything either, so it skips opening `outbound.db` (a host's
//! sweep calls `sync_acks` for every session on every tick, and that open
//! was most of an idle sweep).
//!
//! Sound because a sync's answer depends only on the acks in `outbound.db`
//! and the statuses in `host.db`: every guest commit bumps the file's
//! change counter (rollback-journal mode; a swapped file has another inode,
//! the same stamps the delivery engine relies on), every `host.db` commit
//! that changes rows bumps the generation the publish record carries (and a
//! failed publish clears the record, which is never memoised), and the
//! stamps are read before the sync, so a commit that lands during it makes
//! the next one read again. The generation is the record's, written after
//! the publish: a sync in the milliseconds between a commit and its record
//! may still answer from the memo; the next one after the record sees it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use crate::host_state;
use crate::layout::{HostSessionState, SessionPaths};
use crate::sqlite_util::{FileStamp, file_stamp};

/// At most this many sessions are remembered; beyond it the memo starts over.
const MAX_SESSIONS: usize = 65_536;

/// What a sync saw before it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Seen {
    outbound: Option<FileStamp>,
    generation: i64,
}

impl Seen {
    /// Reads the guest file's stamp and the publish record's generation;
    /// `None` when either is unknown (nothing is memoised then).
    pub(super) fn read(paths: &SessionPaths, state: &HostSessionState) -> Option<Seen> {
        let outbound = file_stamp(&paths.outbound_db()).ok()?;
        let generation = host_state::published_generation(state)?;
        Some(Seen {
            outbound,
            generation,
        })
    }
}

fn memo() -> std::sync::MutexGuard<'static, HashMap<PathBuf, Seen>> {
    static MEMO: OnceLock<Mutex<HashMap<PathBuf, Seen>>> = OnceLock::new();
    MEMO.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Whether the last sync of this session found nothing over the same files.
pub(super) fn still_idle(state: &HostSessionState, seen: &Seen) -> bool {
    memo().get(state.dir()).is_some_and(|m| m == seen)
}

/// Records a sync that found nothing, with what it saw before reading.
pub(super) fn record_idle(state: &HostSessionState, seen: Option<Seen>) {
    let mut memo = memo();
    match seen {
        Some(seen) => {
            if memo.len() >= MAX_SESSIONS {
                memo.clear();
            }
            memo.insert(state.dir().to_path_buf(), seen);
        }
        None => {
            memo.remove(state.dir());
        }
    }
}

/// Forgets the session (a sync that copied acks).
pub(super) fn forget(state: &HostSessionState) {
    memo().remove(state.dir());
}
