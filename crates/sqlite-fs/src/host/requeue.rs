//! The host's writes for the lifecycle sweep: a message a stopped guest had
//! claimed goes back to pending later, or is failed for good. Both touch
//! only `host.db` (then publish `inbound.db`), never `outbound.db`: the
//! dead guest's `processing` row stays there until the next guest clears
//! its leftovers at start-up.

use airlock_core::Timestamp;
use airlock_core::mailbox::{HOST_OUTBOUND_KIND, InboundMessage};
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
