//! Reads a delivery engine needs whose cost does not grow with a session's
//! history: a mailbox file's header stamp (change counter and size, without
//! SQLite), and pages of outbound rows after a seq cursor, bounded by row
//! count and bytes, read through the `seq` index.

use std::collections::HashSet;

use airlock_core::mailbox::{HOST_OUTBOUND_KIND, Origin, OutboundMessage};
pub use airlock_core::{HostPage, PageLimits};
use rusqlite::params;

use super::HostMailbox;
use super::outbound::guest_row;
use crate::error::Result;
use crate::host_state;
pub use crate::sqlite_util::{FileStamp, file_stamp};

/// The SQL limit for `max_rows` (never 0: an empty page must mean "nothing after").
fn row_limit(limits: PageLimits) -> i64 {
    i64::try_from(limits.max_rows.max(1)).unwrap_or(i64::MAX)
}

impl HostMailbox {
    /// Both stamps as core's opaque text (`change counter:size:inode`, the
    /// form delivery cursors store).
    pub fn change_stamps(&self) -> Result<airlock_core::ChangeStamps> {
        let text = |s: FileStamp| format!("{}:{}:{}", s.change_counter, s.size, s.inode);
        Ok(airlock_core::ChangeStamps {
            guest: self.outbound_stamp()?.map(text),
            host: self.inbound_stamp()?.map(text),
        })
    }

    /// Stamp of `outbound.db` (`None` before the guest's first write).
    pub fn outbound_stamp(&self) -> Result<Option<FileStamp>> {
        file_stamp(&self.paths.outbound_db())
    }

    /// Stamp of `inbound.db`, where host-originated outbound messages live.
    ///
    /// A delivery pass stamps every session, even one it then finds idle,
    /// so this is where a placeholder journal left by a host killed
    /// mid-publish is cleared for sessions nothing else touches.
    pub fn inbound_stamp(&self) -> Result<Option<FileStamp>> {
        crate::host_state::heal_interrupted_publish(&self.paths, &self.state);
        file_stamp(&self.paths.inbound_db())
    }

    /// Guest rows with an integer seq above `after_seq`, in seq order, one
    /// bounded page; an empty page means nothing is after the cursor.
    pub fn outbound_page(
        &self,
        after_seq: i64,
        limits: PageLimits,
    ) -> Result<Vec<OutboundMessage>> {
        // The upper bound keeps the scan inside the integer part of the
        // index (text and blob seqs sort after every number).
        let rows = self.read_outbound("reading a page of messages_out", |conn| {
            let mut stmt = conn.prepare(
                "SELECT id, seq, in_reply_to, timestamp, deliver_after, recurrence, kind,
                        platform_id, channel_type, thread_id, content
                 FROM messages_out
                 WHERE seq > ?1 AND seq <= 9223372036854775807 AND typeof(seq) = 'integer'
                 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after_seq, row_limit(limits)], guest_row)?;
            limits.fill(rows)
        })?;
        Ok(rows.unwrap_or_default())
    }

    /// Host-originated outbound rows (in `inbound.db`) above `after_seq`, one
    /// bounded page, with the highest `messages_in` seq at the time of the
    /// read: when the page is not full, nothing up to that seq is left.
    pub fn host_outbound_page(&self, after_seq: i64, limits: PageLimits) -> Result<HostPage> {
        // The host's truth (host.db), never the folder's copy.
        host_state::read(&self.paths, &self.state, "reading host messages", |conn| {
            let mut stmt = conn.prepare(
                "SELECT id, seq, timestamp, process_after, platform_id, channel_type, thread_id, content
                 FROM messages_in WHERE seq > ?1 AND kind = ?2 ORDER BY seq LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                params![after_seq, HOST_OUTBOUND_KIND, row_limit(limits)],
                |r| {
                    Ok(Some(OutboundMessage {
                        origin: Origin::Host,
                        id: r.get(0)?,
                        seq: r.get(1)?,
                        in_reply_to: None,
                        timestamp: r.get(2)?,
                        deliver_after: r.get(3)?,
                        recurrence: None,
                        kind: "chat".into(),
                        platform_id: r.get(4)?,
                        channel_type: r.get(5)?,
                        thread_id: r.get(6)?,
                        content: r.get(7)?,
                    }))
                },
            )?;
            let messages = limits.fill(rows)?;
            let max_seq =
                conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM messages_in", [], |r| {
                    r.get(0)
                })?;
            Ok(HostPage { messages, max_seq })
        })
    }

    /// Which of `ids` already have a `delivered` row (delivered or failed).
    pub fn delivered_among(&self, ids: &[&str]) -> Result<HashSet<String>> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        host_state::read(&self.paths, &self.state, "reading deliveries", |conn| {
            let mut stmt = conn.prepare("SELECT 1 FROM delivered WHERE message_out_id = ?1")?;
            let mut found = HashSet::new();
            for id in ids {
                if stmt.exists([id])? {
                    found.insert((*id).to_owned());
                }
            }
            Ok(found)
        })
    }
}
