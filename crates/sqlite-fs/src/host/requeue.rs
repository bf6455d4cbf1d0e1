//! The host's writes for the lifecycle sweep: a message a stopped guest had
//! claimed goes back to pending later, or is failed for good. Both touch
//! only `host.db` (then publish `inbound.db`), never `outbound.db`: the
//! dead guest's `processing` row stays there until the next guest clears
//! its leftovers at start-up.

use airlock_core::mailbox::{HOST_OUTBOUND_KIND, InboundMessage};
use airlock_core::{SeriesNext, Timestamp};
use rusqlite::{OptionalExtension, params};

use super::HostMailbox;
use super::read::{INBOUND_COLUMNS, inbound_row};
use crate::error::{Error, Result};
use crate::host_state::{self, batch};

impl HostMailbox {
    /// The inbound message `id` as host state holds it.
    pub fn inbound_message(&self, id: &str) -> Result<Option<InboundMessage>> {
        host_state::read(&self.paths, &self.state, "reading a message", |conn| {
            conn.query_row(
                &format!("SELECT {INBOUND_COLUMNS} FROM messages_in WHERE id = ?1"),
                [id],
                inbound_row,
            )
            .optional()
        })
    }

    /// Sets a still-pending message's `tries` and `process_after` (a retry
    /// after its guest stopped); returns whether it was pending.
    pub fn requeue(&self, id: &str, tries: i64, process_after: Timestamp) -> Result<bool> {
        self.update_pending(
            id,
            "UPDATE messages_in SET tries = ?2, process_after = ?3
             WHERE id = ?1 AND status = 'pending' AND kind != ?4",
            params![id, tries, process_after.to_iso(), HOST_OUTBOUND_KIND],
        )
    }

    /// Marks a still-pending message failed with `tries` (its last try
    /// died with its guest); returns whether it was pending.
    pub fn fail_pending(&self, id: &str, tries: i64) -> Result<bool> {
        self.update_pending(
            id,
            "UPDATE messages_in SET tries = ?2, status = 'failed'
             WHERE id = ?1 AND status = 'pending' AND kind != ?3",
            params![id, tries, HOST_OUTBOUND_KIND],
        )
    }

    fn update_pending(&self, id: &str, sql: &str, args: impl rusqlite::Params) -> Result<bool> {
        batch::commit(&self.paths, &self.state, |tx| {
            let n = tx
                .conn
                .execute(sql, args)
                .map_err(|e| Error::sqlite(&tx.path, "requeueing a claimed message", e))?;
            if n > 0 {
                tx.changes.messages.insert(id.to_owned());
            }
            Ok(n > 0)
        })
    }
}

impl HostMailbox {
    /// Completed messages that still carry a recurrence: series whose next
    /// occurrence is not inserted yet.
    pub fn completed_recurring(&self) -> Result<Vec<InboundMessage>> {
        // Read before the rows: a commit meanwhile makes the next call read.
        let seen = host_state::published_generation(&self.state);
        let memo = &super::idle_memo::RECURRING;
        if seen.is_some_and(|g| memo.still_idle(&self.state, &g)) {
            return Ok(Vec::new());
        }
        let rows: Vec<InboundMessage> = host_state::read(
            &self.paths,
            &self.state,
            "reading recurring messages",
            |conn| {
                let mut s = conn.prepare(&format!(
                    "SELECT {INBOUND_COLUMNS} FROM messages_in
                 WHERE status = 'completed' AND recurrence IS NOT NULL ORDER BY seq"
                ))?;
                s.query_map([], inbound_row)?.collect()
            },
        )?;
        if rows.is_empty() {
            memo.record_idle(&self.state, seen);
        } else {
            memo.forget(&self.state);
        }
        Ok(rows)
    }

    /// Inserts `next` (kind, content and routing of `done`, its series, the
    /// next even seq, pending, no tries) and clears `done`'s recurrence, in
    /// one `host.db` transaction: a sweep killed at any point leaves both
    /// or neither, so a series never forks. Returns whether it inserted.
    pub fn continue_series(&self, done: &str, next: &SeriesNext) -> Result<bool> {
        batch::commit(&self.paths, &self.state, |tx| {
            let err = |e| Error::sqlite(&tx.path, "continuing a recurring series", e);
            let seq = super::write::next_inbound_seq(tx.conn).map_err(err)?;
            let inserted = tx
                .conn
                .execute(
                    "INSERT OR IGNORE INTO messages_in (id, seq, kind, timestamp, status,
                       process_after, recurrence, series_id, tries, trigger, platform_id,
                       channel_type, thread_id, content, source_session_id, on_wake)
                     SELECT ?2, ?3, kind, ?4, 'pending', ?5, ?6, COALESCE(series_id, id), 0,
                       trigger, platform_id, channel_type, thread_id, content,
                       source_session_id, on_wake
                     FROM messages_in WHERE id = ?1 AND recurrence IS NOT NULL",
                    params![
                        done,
                        next.id.as_str(),
                        seq,
                        Timestamp::now().to_iso(),
                        next.process_after.to_iso(),
                        next.recurrence,
                    ],
                )
                .map_err(err)?;
            let cleared = self.clear_recurrence_in(tx.conn, done).map_err(err)?;
            if inserted > 0 {
                tx.changes.messages.insert(next.id.to_string());
            }
            if cleared {
                tx.changes.messages.insert(done.to_owned());
            }
            Ok(inserted > 0)
        })
    }

    /// Clears `id`'s recurrence without a next occurrence: the series stops
    /// (its expression could not be read). Returns whether it had one.
    pub fn end_series(&self, id: &str) -> Result<bool> {
        batch::commit(&self.paths, &self.state, |tx| {
            let cleared = self
                .clear_recurrence_in(tx.conn, id)
                .map_err(|e| Error::sqlite(&tx.path, "ending a recurring series", e))?;
            if cleared {
                tx.changes.messages.insert(id.to_owned());
            }
            Ok(cleared)
        })
    }

    fn clear_recurrence_in(&self, conn: &rusqlite::Connection, id: &str) -> rusqlite::Result<bool> {
        conn.execute(
            "UPDATE messages_in SET recurrence = NULL WHERE id = ?1 AND recurrence IS NOT NULL",
            [id],
        )
        .map(|n| n > 0)
    }
}
