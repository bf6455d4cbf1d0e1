//! Memos of the sweep's per-session reads that found nothing. An ack sync
//! that found nothing to copy: until the guest's `outbound.db` or the
//! host's publishing generation changes, the next sync cannot find anything
//! either, so it skips opening `outbound.db` (a host's sweep calls
//! `sync_acks` for every session on every tick, and that open was most of
//! an idle sweep). Likewise a read of completed recurring messages that
//! found none, until the generation changes.
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

/// Per-session memos of reads that found nothing, in this process.
pub(super) struct SessionMemo<T: 'static>(OnceLock<Mutex<HashMap<PathBuf, T>>>);

impl<T: Copy + PartialEq> SessionMemo<T> {
    /// An empty memo (for a `static`).
    pub(super) const fn new() -> Self {
        Self(OnceLock::new())
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, T>> {
        self.0
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the last read of this session found nothing over `seen`.
    pub(super) fn still_idle(&self, state: &HostSessionState, seen: &T) -> bool {
        self.map().get(state.dir()).is_some_and(|m| m == seen)
    }

    /// Records a read that found nothing, with what it saw before reading
    /// (`None`: unknown, so nothing is remembered).
    pub(super) fn record_idle(&self, state: &HostSessionState, seen: Option<T>) {
        let mut map = self.map();
        match seen {
            Some(seen) => {
                if map.len() >= MAX_SESSIONS {
                    map.clear();
                }
                map.insert(state.dir().to_path_buf(), seen);
            }
            None => {
                map.remove(state.dir());
            }
        }
    }

    /// Forgets the session (a read that found something).
    pub(super) fn forget(&self, state: &HostSessionState) {
        self.map().remove(state.dir());
    }
}

/// Idle ack syncs.
pub(super) static ACKS: SessionMemo<Seen> = SessionMemo::new();

/// Reads of completed recurring messages that found none, by the publish
/// record's generation (the rows are `host.db`'s only).
pub(super) static RECURRING: SessionMemo<i64> = SessionMemo::new();
