//! Memos of the sweep's per-session reads that found nothing. An ack sync
//! that found nothing to copy: until the guest's `outbound.db` or the
//! host's publishing generation changes, the next sync cannot find anything
//! either, so it skips opening `outbound.db` (a host's sweep calls
//! `sync_acks` for every session on every tick, and that open was most of
//! an idle sweep). Likewise a read of completed recurring messages that
//! found none, until the generation changes; and a due count that found
//! nothing due, until the generation changes or the earliest waiting row
//! comes due.
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
use std::ffi::OsString;
use std::sync::{Mutex, OnceLock};

use airlock_core::Timestamp;

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
///
/// Keyed by the host state folder's bytes: a sweep looks up every session
/// on every tick, and a `PathBuf` key hashes and compares component by
/// component. The layout builds each session's folder name one way.
pub(super) struct SessionMemo<T: 'static>(OnceLock<Mutex<HashMap<OsString, T>>>);

impl<T: Copy + PartialEq> SessionMemo<T> {
    /// An empty memo (for a `static`).
    pub(super) const fn new() -> Self {
        Self(OnceLock::new())
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<OsString, T>> {
        self.0
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the last read of this session found nothing over `seen`.
    pub(super) fn still_idle(&self, state: &HostSessionState, seen: &T) -> bool {
        self.holds(state, |m| m == seen)
    }

    /// Whether this session's memo satisfies `idle` (false without one).
    pub(super) fn holds(&self, state: &HostSessionState, idle: impl FnOnce(&T) -> bool) -> bool {
        self.map().get(state.dir().as_os_str()).is_some_and(idle)
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
                map.insert(state.dir().as_os_str().to_owned(), seen);
            }
            None => {
                map.remove(state.dir().as_os_str());
            }
        }
    }

    /// Forgets the session (a read that found something).
    pub(super) fn forget(&self, state: &HostSessionState) {
        self.map().remove(state.dir().as_os_str());
    }
}

/// Idle ack syncs.
pub(super) static ACKS: SessionMemo<Seen> = SessionMemo::new();

/// Reads of completed recurring messages that found none, by the publish
/// record's generation (the rows are `host.db`'s only).
pub(super) static RECURRING: SessionMemo<i64> = SessionMemo::new();

/// A due count that found nothing due: at this generation, nothing is due
/// before `until` (`None`: no pending triggering row at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct NothingDue {
    /// The publish record's generation read before the count.
    pub(super) generation: i64,
    /// The earliest `process_after` among the pending triggering rows.
    pub(super) until: Option<Timestamp>,
}

impl NothingDue {
    /// Whether nothing is due at `now` under `generation` either: every row
    /// the count saw waits until `until` or later, whatever `now` it used.
    pub(super) fn holds_at(&self, generation: i64, now: Timestamp) -> bool {
        self.generation == generation && self.until.is_none_or(|until| now < until)
    }
}

/// Whether a sweep of this session at `now` would find nothing: its last
/// ack sync, recurring read and due count were each idle over what the
/// files say now. Anything unreadable counts as not quiet.
pub(super) fn sweep_is_quiet(
    paths: &SessionPaths,
    state: &HostSessionState,
    now: Timestamp,
) -> bool {
    let Some(seen) = Seen::read(paths, state) else {
        return false;
    };
    ACKS.still_idle(state, &seen)
        && RECURRING.still_idle(state, &seen.generation)
        && DUE.holds(state, |m| m.holds_at(seen.generation, now))
}

/// Due counts that found nothing due (a sweep counts every session's due
/// work on every tick, and with more sessions than pooled connections each
/// count opened `host.db`).
pub(super) static DUE: SessionMemo<NothingDue> = SessionMemo::new();
