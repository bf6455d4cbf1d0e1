//! Guest writes to its own `outbound.db`: replies with odd seqs, acks,
//! session state and the tool-in-flight row.

use std::time::Duration;

use airlock_core::mailbox::{AckStatus, NewOutboundMessage};
use airlock_core::{Seq, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use super::GuestMailbox;
use crate::error::{Error, Result};
use crate::schema::{max_outbound_seq, migrate_outbound};
use crate::sqlite_util::{
    FileState, JournalKind, OpenMode, RetryPolicy, check_regular_or_absent, open_file, read_header,
    retry,
};

const GUEST_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl GuestMailbox {
    /// Creates `outbound.db` if missing, converts a WAL file (the guest owns
    /// it) and migrates an older shape.
    pub(super) fn prepare_outbound(&self) -> Result<()> {
        let path = self.paths.outbound_db();
        let mode = match check_regular_or_absent(&path)? {
            FileState::Absent => OpenMode::Create,
            FileState::Regular(_) => OpenMode::ReadWrite,
        };
        let wal = matches!(read_header(&path), Ok(Some(h)) if h.journal == JournalKind::Wal);
        let mut conn = open_file(&path, mode, GUEST_BUSY_TIMEOUT)
            .map_err(|e| Error::sqlite(&path, "opening outbound.db", e))?;
        let ctx = |e| Error::sqlite(&path, "preparing outbound.db", e);
        if wal || mode == OpenMode::Create {
            let now: String = conn
                .pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get(0))
                .map_err(ctx)?;
            if wal {
                tracing::warn!(path = %path.display(), now = %now, "outbound.db was in WAL mode; converted to DELETE");
            }
        }
        migrate_outbound(&mut conn).map_err(ctx)?;
        conn.close().map_err(|(_, e)| ctx(e))
    }

    /// Runs `f` on a fresh read-write connection to `outbound.db`.
    pub(super) fn with_outbound<T>(
        &self,
        context: &str,
        f: impl Fn(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let path = self.paths.outbound_db();
        retry(RetryPolicy::GUEST_WRITE, &self.stats, || {
            if check_regular_or_absent(&path)? == FileState::Absent {
                return Err(Error::Missing { path: path.clone() });
            }
            let conn = open_file(&path, OpenMode::ReadWrite, GUEST_BUSY_TIMEOUT)
                .map_err(|e| Error::sqlite(&path, context, e))?;
            // EXTRA: in DELETE mode a commit ends with the journal's unlink,
            // which FULL does not sync; a power cut before the directory
            // reaches the disk brings the journal back and rolls the
            // committed reply back. EXTRA syncs the directory after it.
            conn.pragma_update(None, "synchronous", "EXTRA")
                .map_err(|e| Error::sqlite(&path, context, e))?;
            let value = f(&conn).map_err(|e| Error::sqlite(&path, context, e))?;
            conn.close()
                .map_err(|(_, e)| Error::sqlite(&path, context, e))?;
            Ok(value)
        })
    }

    /// Like [`with_outbound`](Self::with_outbound), inside one `BEGIN IMMEDIATE` transaction.
    fn write_outbound<T>(
        &self,
        context: &str,
        f: impl Fn(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        self.with_outbound(context, |conn| {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            match f(conn) {
                Ok(value) => {
                    conn.execute_batch("COMMIT")?;
                    Ok(value)
                }
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    Err(e)
                }
            }
        })
    }

    pub(super) fn clear_stale_processing(&self) -> Result<()> {
        let removed = self.write_outbound("clearing stale processing acks", |tx| {
            tx.execute("DELETE FROM processing_ack WHERE status = 'processing'", [])
        })?;
        if removed > 0 {
            tracing::info!(removed, "cleared processing acks left by a previous guest");
        }
        Ok(())
    }

    /// Writes a message with the next odd seq (above the largest seq of both
    /// tables) and returns the seq; a retry with the same id returns the stored seq.
    ///
    /// A message that names no routing (no channel type, platform id or
    /// thread) gets the session's `session_routing`; to send to a named
    /// destination, set its [`destination_routing`](Self::destination_routing).
    pub fn write_message_out(&self, msg: &NewOutboundMessage) -> Result<i64> {
        let msg = &self.with_default_routing(msg)?;
        let max_in = self.max_inbound_seq()?;
        self.write_outbound("writing messages_out", |tx| {
            if let Some(seq) = tx
                .query_row("SELECT seq FROM messages_out WHERE id = ?1", [msg.id.as_str()], |r| r.get(0))
                .optional()?
            {
                return Ok(seq);
            }
            let seq = Seq::next_guest(max_in.max(max_outbound_seq(tx)?)).get();
            tx.execute(
                "INSERT INTO messages_out (id, seq, in_reply_to, timestamp, deliver_after, recurrence, kind,
                   platform_id, channel_type, thread_id, content)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    msg.id.as_str(),
                    seq,
                    msg.in_reply_to,
                    msg.timestamp.to_iso(),
                    msg.deliver_after.as_ref().map(Timestamp::to_iso),
                    msg.recurrence,
                    msg.kind,
                    msg.platform_id,
                    msg.channel_type,
                    msg.thread_id,
                    msg.content,
                ],
            )?;
            Ok(seq)
        })
    }

    fn ack(&self, ids: &[&str], status: AckStatus) -> Result<()> {
        let now = Timestamp::now().to_iso();
        self.write_outbound("writing processing_ack", |tx| {
            let mut stmt = tx.prepare(
                "INSERT INTO processing_ack (message_id, status, status_changed) VALUES (?1, ?2, ?3)
                 ON CONFLICT(message_id) DO UPDATE SET status = excluded.status,
                   status_changed = excluded.status_changed",
            )?;
            for id in ids {
                stmt.execute(params![id, status.as_str(), now])?;
            }
            Ok(())
        })
    }

    /// Claims inbound messages (`processing`).
    pub fn mark_processing(&self, ids: &[&str]) -> Result<()> {
        self.ack(ids, AckStatus::Processing)
    }

    /// Marks inbound messages done.
    pub fn mark_completed(&self, ids: &[&str]) -> Result<()> {
        self.ack(ids, AckStatus::Completed)
    }

    /// Marks inbound messages failed.
    pub fn mark_failed(&self, ids: &[&str]) -> Result<()> {
        self.ack(ids, AckStatus::Failed)
    }

    /// A `session_state` value.
    pub fn state_get(&self, key: &str) -> Result<Option<String>> {
        self.with_outbound("reading session_state", |conn| {
            conn.query_row(
                "SELECT value FROM session_state WHERE key = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// Sets a `session_state` value.
    pub fn state_set(&self, key: &str, value: &str) -> Result<()> {
        let now = Timestamp::now().to_iso();
        self.write_outbound("writing session_state", |tx| {
            tx.execute(
                "INSERT INTO session_state (key, value, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                params![key, value, now],
            )
            .map(drop)
        })
    }

    /// Records the tool in flight (`container_state`).
    pub fn set_tool_in_flight(&self, tool: &str, declared_timeout_ms: Option<i64>) -> Result<()> {
        let now = Timestamp::now().to_iso();
        self.write_outbound("writing container_state", |tx| {
            tx.execute(
                "INSERT INTO container_state (id, current_tool, tool_declared_timeout_ms, tool_started_at, updated_at)
                 VALUES (1, ?1, ?2, ?3, ?3)
                 ON CONFLICT(id) DO UPDATE SET current_tool = excluded.current_tool,
                   tool_declared_timeout_ms = excluded.tool_declared_timeout_ms,
                   tool_started_at = excluded.tool_started_at, updated_at = excluded.updated_at",
                params![tool, declared_timeout_ms, now],
            )
            .map(drop)
        })
    }

    /// Clears the tool in flight.
    pub fn clear_tool_in_flight(&self) -> Result<()> {
        let now = Timestamp::now().to_iso();
        self.write_outbound("clearing container_state", |tx| {
            tx.execute(
                "INSERT INTO container_state (id, current_tool, tool_declared_timeout_ms, tool_started_at, updated_at)
                 VALUES (1, NULL, NULL, NULL, ?1)
                 ON CONFLICT(id) DO UPDATE SET current_tool = NULL, tool_declared_timeout_ms = NULL,
                   tool_started_at = NULL, updated_at = excluded.updated_at",
                params![now],
            )
            .map(drop)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::GuestMailbox;

    #[test]
    fn power_loss_guest_commits_sync_the_journal_unlink() {
        let dir = tempfile::tempdir().unwrap();
        let guest = GuestMailbox::open(dir.path()).unwrap();
        let level = guest
            .with_outbound("reading synchronous", |c| {
                c.pragma_query_value(None, "synchronous", |r| r.get::<_, i64>(0))
            })
            .unwrap();
        assert_eq!(
            level, 3,
            "EXTRA: the directory is synced after the journal goes"
        );
    }
}
