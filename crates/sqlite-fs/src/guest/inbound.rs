//! Guest reads of `inbound.db`: read-only, one connection per poll, retried
//! through the transient errors of lock-less mounts, coping with old shapes.

use std::sync::atomic::Ordering;
use std::time::Duration;

use airlock_core::mailbox::{InboundMessage, Origin, SeqTarget};
use airlock_core::{Parity, Seq, Timestamp};
use rusqlite::{Connection, OptionalExtension};

use super::GuestMailbox;
use super::idle::Stamps;
use crate::error::{Error, Result};
use crate::schema::rows::inbound_row;
use crate::schema::{self, InboundColumns, inbound_columns};
use crate::sqlite_util::{
    FileState, JournalKind, OpenMode, RetryPolicy, check_regular_or_absent, open_file, read_header,
    retry,
};

/// Default number of messages one poll returns.
pub const DEFAULT_POLL_LIMIT: usize = 10;

fn select_list(cols: InboundColumns) -> String {
    let pick = |present: bool, name: &str, default: &str| {
        if present {
            name.to_owned()
        } else {
            format!("{default} AS {name}")
        }
    };
    format!(
        "id, seq, kind, timestamp, status, process_after, recurrence, {}, tries, {}, platform_id,
         channel_type, thread_id, content, {}, {}",
        pick(cols.series_id, "series_id", "id"),
        pick(cols.trigger, "trigger", "1"),
        pick(cols.source_session_id, "source_session_id", "NULL"),
        pick(cols.on_wake, "on_wake", "0"),
    )
}

impl GuestMailbox {
    /// Runs `f` on a fresh read-only connection to `inbound.db`, retrying
    /// busy, hot-journal (776) and "malformed" reads with backoff.
    pub(super) fn read_inbound<T>(
        &self,
        context: &str,
        f: impl Fn(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let path = self.paths.inbound_db();
        retry(RetryPolicy::GUEST_READ, &self.stats, || {
            if check_regular_or_absent(&path)? == FileState::Absent {
                return Err(Error::Missing { path: path.clone() });
            }
            if let Ok(Some(h)) = read_header(&path)
                && h.journal == JournalKind::Wal
            {
                return Err(Error::WrongJournalMode {
                    path: path.clone(),
                    mode: "wal".into(),
                    why: "the guest refuses to read it: WAL's shared memory is not refreshed across the mount, \
                          so the guest would read a stale snapshot forever; the host must convert it to DELETE",
                });
            }
            let conn = open_file(&path, OpenMode::ReadOnly, Duration::from_millis(100))
                .map_err(|e| Error::sqlite(&path, context, e))?;
            f(&conn).map_err(|e| Error::sqlite(&path, context, e))
        })
    }

    /// The newest `limit` pending, due messages not yet acked, oldest first.
    ///
    /// `on_wake` rows are returned only by this guest's first successful poll.
    pub fn pending(&self, limit: usize) -> Result<Vec<InboundMessage>> {
        self.pending_at(limit, Timestamp::now())
    }

    /// [`pending`](Self::pending) with an explicit clock.
    ///
    /// A poll that finds nothing is remembered: until either file changes
    /// or a pending row it saw comes due, the next polls read only the two
    /// files' headers (see `guest/idle.rs`).
    pub fn pending_at(&self, limit: usize, now: Timestamp) -> Result<Vec<InboundMessage>> {
        let stamps = match Stamps::read(&self.paths) {
            Ok(stamps) => Some(stamps),
            Err(e) => {
                // The full poll says what is wrong with the file.
                tracing::debug!(error = %e, "no file stamps; polling the databases");
                None
            }
        };
        if let Some(stamps) = &stamps
            && !self.first_poll.load(Ordering::SeqCst)
            && self.idle.still_idle(stamps, now)
        {
            return Ok(Vec::new());
        }
        let polled = self.poll_databases(limit, now);
        match (&polled, stamps) {
            (Ok((rows, next_due)), Some(stamps)) if rows.is_empty() && limit > 0 => {
                self.idle.record(stamps, Some(*next_due));
            }
            _ => self.idle.forget(),
        }
        polled.map(|(rows, _)| rows)
    }

    /// The poll itself: the pending, due, unacked rows (oldest first), and
    /// the earliest later due time among the pending rows passed over.
    fn poll_databases(
        &self,
        limit: usize,
        now: Timestamp,
    ) -> Result<(Vec<InboundMessage>, Option<Timestamp>)> {
        // The guest's own file: one connection per poll, looked up per row,
        // so a long history of acks costs nothing.
        let outbound = self.paths.outbound_db();
        let acks = open_file(&outbound, OpenMode::ReadOnly, Duration::from_secs(5))
            .map_err(|e| Error::sqlite(&outbound, "opening outbound.db", e))?;
        let first = self.first_poll.load(Ordering::SeqCst);
        let (mut rows, next_due) = self.read_inbound("polling messages_in", |conn| {
            let mut acked =
                acks.prepare_cached("SELECT 1 FROM processing_ack WHERE message_id = ?1")?;
            let cols = inbound_columns(conn)?;
            let mut stmt = conn.prepare(&pending_sql(cols, first))?;
            let mut iter = stmt.query_map([], inbound_row)?;
            let (mut out, mut next_due) = (Vec::new(), None::<Timestamp>);
            while out.len() < limit {
                let Some(row) = iter.next() else { break };
                let row = row?;
                if !airlock_core::is_due(row.process_after.as_deref(), now) {
                    // Not due means readable and later than now.
                    if let Some(at) = row
                        .process_after
                        .as_deref()
                        .and_then(|t| Timestamp::parse(t).ok())
                    {
                        next_due = Some(next_due.map_or(at, |d| d.min(at)));
                    }
                } else if !acked.exists([&row.id])? {
                    out.push(row);
                }
            }
            Ok((out, next_due))
        })?;
        self.first_poll.store(false, Ordering::SeqCst);
        rows.reverse();
        Ok((rows, next_due))
    }

    /// The largest seq in `messages_in` (`None` when empty).
    pub(super) fn max_inbound_seq(&self) -> Result<Option<Seq>> {
        self.read_inbound("reading the largest inbound seq", schema::max_inbound_seq)
    }

    /// Whether `messages_in` holds a message with this id (a reply must answer one).
    pub fn has_inbound(&self, id: &str) -> Result<bool> {
        self.read_inbound("looking up an inbound id", |conn| {
            conn.prepare_cached("SELECT 1 FROM messages_in WHERE id = ?1")?
                .exists([id])
        })
    }

    /// What `seq` refers to: even → `messages_in` (its id is the platform
    /// message id), odd → `messages_out` plus `delivered.platform_message_id`.
    pub fn lookup_seq(&self, seq: Seq) -> Result<Option<SeqTarget>> {
        let parity = seq.parity();
        let seq = seq.get();
        if parity == Parity::Host {
            let id: Option<String> = self.read_inbound("looking up an inbound seq", |conn| {
                conn.query_row("SELECT id FROM messages_in WHERE seq = ?1", [seq], |r| {
                    r.get(0)
                })
                .optional()
            })?;
            return Ok(id.map(|id| SeqTarget {
                platform_message_id: Some(id.clone()),
                message_id: id,
                origin: Origin::Host,
            }));
        }
        let id: Option<String> = self.with_outbound("looking up an outbound seq", |conn| {
            conn.query_row("SELECT id FROM messages_out WHERE seq = ?1", [seq], |r| {
                r.get(0)
            })
            .optional()
        })?;
        let Some(id) = id else { return Ok(None) };
        let platform_message_id: Option<String> =
            self.read_inbound("looking up a delivery", |conn| {
                let cols = inbound_columns(conn)?;
                if !cols.delivered || !cols.delivered_platform_message_id {
                    return Ok(None);
                }
                conn.query_row(
                    "SELECT platform_message_id FROM delivered WHERE message_out_id = ?1",
                    [&id],
                    |r| r.get::<_, Option<String>>(0),
                )
                .optional()
                .map(Option::flatten)
            })?;
        Ok(Some(SeqTarget {
            message_id: id,
            platform_message_id,
            origin: Origin::Guest,
        }))
    }
}

/// The guest's poll: pending rows, newest first (`on_wake` rows only on a
/// first poll), which the caller filters by `airlock_core::is_due` (due is
/// defined once, in Rust, for every mailbox). Reads only pending rows through
/// `idx_messages_in_pending` (see [`crate::schema::INBOUND_INDEXES`]).
pub(crate) fn pending_sql(cols: InboundColumns, first: bool) -> String {
    let wake = if first || !cols.on_wake {
        ""
    } else {
        " AND on_wake = 0"
    };
    format!(
        "SELECT {} FROM messages_in WHERE status = 'pending'{wake} ORDER BY seq DESC",
        select_list(cols),
    )
}
