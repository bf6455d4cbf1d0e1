//! Host reads of its own state (listings, counts, due work) and the heartbeat.

use std::time::{Duration, SystemTime};

use airlock_core::Timestamp;
use airlock_core::mailbox::{InboundMessage, MailboxCounts};

use super::HostMailbox;
use super::idle_memo::NothingDue;
use crate::error::{Error, Result};
use crate::host_state;
pub(crate) use crate::schema::rows::{INBOUND_COLUMNS, inbound_row};

impl HostMailbox {
    /// The newest `limit` inbound rows, oldest first (from host state; the
    /// session folder is not touched).
    pub fn list_inbound(&self, limit: usize) -> Result<Vec<InboundMessage>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = host_state::read(&self.paths, &self.state, "listing messages_in", |conn| {
            let mut s = conn.prepare(&format!(
                "SELECT {INBOUND_COLUMNS} FROM messages_in ORDER BY seq DESC LIMIT ?1"
            ))?;
            s.query_map([limit], inbound_row)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })?;
        rows.reverse();
        Ok(rows)
    }

    /// Pending, `trigger=1`, due messages: whether to wake a guest.
    pub fn count_due(&self, now: Timestamp) -> Result<u64> {
        // Read before the rows: a commit meanwhile makes the next call read.
        let generation = host_state::published_generation(&self.state);
        let memo = &super::idle_memo::DUE;
        if generation.is_some_and(|g| memo.holds(&self.state, |m| m.holds_at(g, now))) {
            return Ok(0);
        }
        let (due, until) =
            host_state::read(&self.paths, &self.state, "counting due messages", |conn| {
                let mut stmt = conn.prepare_cached(count_due_sql())?;
                let mut rows = stmt.query([])?;
                let (mut due, mut until) = (0_u64, None::<Timestamp>);
                while let Some(r) = rows.next()? {
                    let stored = super::outbound::text(r, 0)?;
                    match stored.as_deref().map(Timestamp::parse) {
                        Some(Ok(at)) if at > now => {
                            until = Some(until.map_or(at, |u| u.min(at)));
                        }
                        // No time, a passed one, or one nobody can read (due:
                        // `airlock_core::is_due`).
                        _ => due += 1,
                    }
                }
                Ok((due, until))
            })?;
        if due == 0 {
            let seen = generation.map(|generation| NothingDue { generation, until });
            memo.record_idle(&self.state, seen);
        } else {
            memo.forget(&self.state);
        }
        Ok(due)
    }

    /// Whether a lifecycle sweep at `now` is known to find nothing here
    /// (`MailboxFactory::quiet_for_sweep`): no file is opened with SQLite.
    pub fn quiet_for_sweep(&self, now: Timestamp) -> bool {
        super::idle_memo::sweep_is_quiet(&self.paths, &self.state, now)
    }

    /// Row counts: inbound and deliveries from host state, outbound from `outbound.db`.
    pub fn counts(&self) -> Result<MailboxCounts> {
        let (inbound, inbound_pending, delivered) =
            host_state::read(&self.paths, &self.state, "counting rows", |conn| {
                conn.query_row(
                    "SELECT (SELECT count(*) FROM messages_in),
                        (SELECT count(*) FROM messages_in WHERE status = 'pending'),
                        (SELECT count(*) FROM delivered)",
                    [],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    },
                )
            })?;
        Ok(MailboxCounts {
            inbound: inbound.max(0) as u64,
            inbound_pending: inbound_pending.max(0) as u64,
            outbound: self.outbound_count()?,
            delivered: delivered.max(0) as u64,
        })
    }

    /// Time since the guest last touched `.heartbeat`; `None` when it never did.
    /// A heartbeat in the future counts as zero.
    pub fn heartbeat_age(&self, now: Timestamp) -> Result<Option<Duration>> {
        let path = self.paths.heartbeat();
        let Some(mtime) = heartbeat_mtime(&path)? else {
            return Ok(None);
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(now.as_millis().max(0) as u64);
        Ok(Some(now.duration_since(mtime).unwrap_or(Duration::ZERO)))
    }

    /// When the guest last touched `.heartbeat` (its mtime, not followed,
    /// not opened: a guest's symlink or FIFO costs nothing); `None` when it
    /// never did or the time cannot be read as a timestamp.
    pub fn last_heartbeat(&self) -> Result<Option<Timestamp>> {
        let Some(mtime) = heartbeat_mtime(&self.paths.heartbeat())? else {
            return Ok(None);
        };
        let millis = mtime
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()
            .and_then(|d| i64::try_from(d.as_millis()).ok());
        Ok(millis.and_then(Timestamp::from_millis))
    }

    /// Removes the `.heartbeat` a previous guest left (unlink does not
    /// follow a final symlink, and the folder is the host's); returns
    /// whether there was one.
    pub fn clear_heartbeat(&self) -> Result<bool> {
        let path = self.paths.heartbeat();
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(&path, e)),
        }
    }
}

/// The times of pending, waking rows (the caller counts the due ones with
/// `airlock_core::is_due`), read through `idx_messages_in_pending` (see
/// [`crate::schema::INBOUND_INDEXES`]).
pub(crate) fn count_due_sql() -> &'static str {
    "SELECT process_after FROM messages_in WHERE status = 'pending' AND trigger = 1"
}

/// The mtime of the heartbeat file at `path`; `None` when absent.
fn heartbeat_mtime(path: &std::path::Path) -> Result<Option<SystemTime>> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => meta.modified().map(Some).map_err(|e| Error::io(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}
