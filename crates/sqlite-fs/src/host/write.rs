//! Host writes (into `host.db`, then published to `inbound.db`): messages,
//! routing, destinations, deliveries, acks.

use airlock_core::mailbox::{
    Destination, HOST_OUTBOUND_KIND, InboundStatus, NewHostMessage, NewInboundMessage, Routing,
    WriteOutcome, WrittenMessage,
};
use airlock_core::{MessageId, Seq, Timestamp};
use rusqlite::{OptionalExtension, params};

use super::HostMailbox;
use super::content::InboundContent;
use super::idle_memo;
use crate::error::{Error, Result};
use crate::host_state::{self, batch, batch::Tx};
use crate::layout::HostSessionState;
use crate::schema::max_inbound_seq;

/// The seq of the next `messages_in` row: the next even one above the table's largest.
pub(super) fn next_inbound_seq(tx: &rusqlite::Connection) -> rusqlite::Result<i64> {
    Ok(Seq::next_host(max_inbound_seq(tx)?).get())
}

/// Where `host.db` keeps the requested id of each message stored under a
/// derived id. Created on first use, so that `host.db` files made before it
/// existed need no migration: their rows count as requested under their own
/// ids (a retry of a message renamed before then is stored again, never dropped).
const REQUESTED_IDS_SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS requested_ids (id TEXT PRIMARY KEY, requested TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS idx_requested_ids ON requested_ids(requested)",
];

/// Stored rows requested under `id`, oldest first: the row stored under `id`
/// itself unless it was requested under another id, and every row derived
/// from `id`. A row whose id merely looks derived (a platform's own `x#2`)
/// is not among `x`'s.
fn rows_requested_as(
    conn: &rusqlite::Connection,
    id: &str,
) -> rusqlite::Result<Vec<(String, i64, String)>> {
    for sql in REQUESTED_IDS_SCHEMA {
        conn.prepare_cached(sql)?.execute([])?;
    }
    let mut stmt = conn.prepare_cached(
        "SELECT m.id, m.seq, m.content FROM messages_in m
           WHERE m.id = ?1 AND NOT EXISTS (SELECT 1 FROM requested_ids r WHERE r.id = m.id)
         UNION ALL
         SELECT m.id, m.seq, m.content FROM requested_ids r JOIN messages_in m ON m.id = r.id
           WHERE r.requested = ?1
         ORDER BY 2",
    )?;
    let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

/// The id a new message requested as `id` is stored under (see
/// [`airlock_core::free_message_id`]), recorded when it differs.
fn place_message(tx: &Tx<'_>, id: &MessageId) -> Result<MessageId> {
    let sqlite = |e| Error::sqlite(&tx.path, "choosing a message id", e);
    let mut taken = tx
        .conn
        .prepare_cached("SELECT 1 FROM messages_in WHERE id = ?1")
        .map_err(sqlite)?;
    let stored = airlock_core::free_message_id::<Error>(id, |candidate| {
        taken.exists([candidate.as_str()]).map_err(sqlite)
    })?;
    if stored != *id {
        tx.conn
            .execute(
                "INSERT INTO requested_ids (id, requested) VALUES (?1, ?2)",
                params![stored.as_str(), id.as_str()],
            )
            .map_err(sqlite)?;
    }
    Ok(stored)
}

fn opt_ts(t: &Option<Timestamp>) -> Option<String> {
    t.as_ref().map(Timestamp::to_iso)
}

/// The file a batch's check moved aside as a planted journal, if any.
fn quarantined_journal(tx: &Tx<'_>) -> Option<std::path::PathBuf> {
    tx.tamper
        .iter()
        .find(|e| e.file.ends_with("-journal"))
        .map(|e| e.moved_to.clone().unwrap_or_else(|| e.file.clone().into()))
}

/// The host-state file naming the message whose files are being staged
/// (empty or absent: none is): a writer killed while staging leaves the
/// name, and the session's next write removes what that staging left in
/// the folder. Emptied, not removed, after each staging: creating a file
/// again right after removing it makes ext4 search for a free inode, which
/// cost a fifth of the CPU of many sessions written at once. Not synced:
/// after a kill the page cache keeps it; after a power loss `doctor` still
/// reports leftovers.
fn staging_marker(state: &HostSessionState) -> std::path::PathBuf {
    state.dir().join("staging")
}

/// Cleans up after a writer killed while staging files, if one was.
fn clean_killed_staging(state: &HostSessionState, content: &dyn InboundContent) -> Result<()> {
    let marker = staging_marker(state);
    let stale = match std::fs::read_to_string(&marker) {
        Ok(stale) if stale.is_empty() => return Ok(()),
        Ok(stale) => stale,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(&marker, e)),
    };
    if let Ok(id) = MessageId::new(stale.trim_end()) {
        content.clean_after_kill(&id)?;
    }
    empty_marker(&marker).map_err(|e| Error::io(&marker, e))
}

fn empty_marker(marker: &std::path::Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(marker)
        .map(drop)
}

/// Runs `content.prepare` for `id` inside the staging marker.
fn prepare_marked(
    state: &HostSessionState,
    content: &dyn InboundContent,
    id: &MessageId,
    raw: &str,
) -> Result<airlock_core::ExtractedContent> {
    if !content.stages_files(raw) {
        return content.prepare(id, raw);
    }
    clean_killed_staging(state, content)?;
    let marker = staging_marker(state);
    // Best effort: without the marker only this clean-up is lost, not the write.
    if let Err(e) = std::fs::write(&marker, id.as_str()) {
        tracing::debug!(marker = %marker.display(), error = %e, "could not write the staging marker");
    }
    let prepared = content.prepare(id, raw);
    if empty_marker(&marker).is_err() {
        let _ = std::fs::remove_file(&marker);
    }
    prepared
}

/// One inbound message inside a group commit: retry, rename or insert.
fn insert_message(
    tx: &mut Tx<'_>,
    state: &HostSessionState,
    msg: &NewInboundMessage,
    content: &dyn InboundContent,
) -> Result<WrittenMessage> {
    let path = tx.path.clone();
    let existing = rows_requested_as(tx.conn, msg.id.as_str())
        .map_err(|e| Error::sqlite(&path, "looking up the message id", e))?;
    for (stored_id, seq, stored) in &existing {
        let stored_id = MessageId::new(stored_id.clone())?;
        if content.same_message(&stored_id, &msg.content, stored)? {
            return Ok(WrittenMessage {
                id: stored_id,
                seq: *seq,
                outcome: WriteOutcome::Duplicate,
                attachments: Vec::new(),
                quarantined_journal: quarantined_journal(tx),
            });
        }
    }
    let id = place_message(tx, &msg.id)?;
    let outcome = if id == msg.id {
        WriteOutcome::Inserted
    } else {
        tracing::warn!(requested = %msg.id, stored_as = %id, "message id reused by a different message; stored under a derived id");
        WriteOutcome::Renamed {
            original: msg.id.clone(),
        }
    };
    // Files first (staged and synced by the hook), the row after.
    let prepared = prepare_marked(state, content, &id, &msg.content)?;
    let seq = (|| {
        let seq = next_inbound_seq(tx.conn)?;
        tx.conn.prepare_cached(
            "INSERT INTO messages_in (id, seq, kind, timestamp, status, process_after, recurrence,
               series_id, tries, trigger, platform_id, channel_type, thread_id, content,
               source_session_id, on_wake)
             VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?1, 0, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?.execute(params![
                id.as_str(),
                seq,
                msg.kind,
                msg.timestamp.to_iso(),
                opt_ts(&msg.process_after),
                msg.recurrence,
                msg.trigger as i64,
                msg.platform_id,
                msg.channel_type,
                msg.thread_id,
                prepared.content,
                msg.source_session_id,
                msg.on_wake as i64,
            ])?;
        Ok(seq)
    })()
    .map_err(|e| Error::sqlite(&path, "inserting an inbound message", e))?;
    tx.changes.messages.insert(id.as_str().to_owned());
    Ok(WrittenMessage {
        id,
        seq,
        outcome,
        attachments: prepared.attachments,
        quarantined_journal: quarantined_journal(tx),
    })
}

impl HostMailbox {
    /// Runs `f` in the session's next group commit; see [`crate::docs`].
    fn commit<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        batch::commit(&self.paths, &self.state, f)
    }

    /// Stores an inbound message with the next even seq, `status='pending'`
    /// and `series_id = id`; returns once it is durable in host state.
    ///
    /// A retry (same id, same content per `content.same_message`) is a no-op
    /// returning the stored row; a different message under a used id is
    /// stored under `<id>#2`, `<id>#3`, … and reported as
    /// [`WriteOutcome::Renamed`]. `content.prepare` runs with the final id
    /// before the row is inserted (files first, row after). Concurrent
    /// writes to one session share one commit (group commit).
    pub fn write_message(
        &self,
        msg: &NewInboundMessage,
        content: &dyn InboundContent,
    ) -> Result<WrittenMessage> {
        self.commit(|tx| insert_message(tx, &self.state, msg, content))
    }

    /// Stores several inbound messages in one commit, in order (retries and
    /// renames decided as if written one after another). All or nothing:
    /// an error stores none of them.
    pub fn write_messages(
        &self,
        msgs: &[NewInboundMessage],
        content: &dyn InboundContent,
    ) -> Result<Vec<WrittenMessage>> {
        self.commit(|tx| {
            msgs.iter()
                .map(|m| insert_message(tx, &self.state, m, content))
                .collect()
        })
    }

    /// Stores a host-originated outbound message (e.g. a denial) in host
    /// state and publishes it in `inbound.db`: kind `host_outbound`, status
    /// `completed`, trigger 0, so the guest never processes it, and delivery
    /// picks it up (from `host.db` only) beside the guest's messages. A
    /// retry with the same id is a no-op. Returns the seq.
    pub fn write_host_message(&self, msg: &NewHostMessage) -> Result<i64> {
        self.commit(|tx| {
            let path = tx.path.clone();
            let existing: Option<i64> = tx
                .conn
                .query_row("SELECT seq FROM messages_in WHERE id = ?1", [msg.id.as_str()], |r| r.get(0))
                .optional()
                .map_err(|e| Error::sqlite(&path, "looking up a host message", e))?;
            if let Some(seq) = existing {
                return Ok(seq);
            }
            let seq = (|| {
                let seq = next_inbound_seq(tx.conn)?;
                tx.conn.execute(
                    "INSERT INTO messages_in (id, seq, kind, timestamp, status, process_after, series_id,
                       tries, trigger, platform_id, channel_type, thread_id, content, on_wake)
                     VALUES (?1, ?2, ?3, ?4, 'completed', ?5, ?1, 0, 0, ?6, ?7, ?8, ?9, 0)",
                    params![
                        msg.id.as_str(),
                        seq,
                        HOST_OUTBOUND_KIND,
                        msg.timestamp.to_iso(),
                        opt_ts(&msg.deliver_after),
                        msg.platform_id,
                        msg.channel_type,
                        msg.thread_id,
                        msg.content,
                    ],
                )?;
                Ok(seq)
            })()
            .map_err(|e| Error::sqlite(&path, "inserting a host message", e))?;
            tx.changes.messages.insert(msg.id.as_str().to_owned());
            Ok(seq)
        })
    }

    /// Upserts the single `session_routing` row (NULLs for a session without a chat).
    pub fn write_routing(&self, routing: &Routing) -> Result<()> {
        self.commit(|tx| {
            tx.conn
                .execute(
                    "INSERT INTO session_routing (id, channel_type, platform_id, thread_id) VALUES (1, ?1, ?2, ?3)
                     ON CONFLICT(id) DO UPDATE SET channel_type = excluded.channel_type,
                       platform_id = excluded.platform_id, thread_id = excluded.thread_id",
                    params![routing.channel_type, routing.platform_id, routing.thread_id],
                )
                .map_err(|e| Error::sqlite(&tx.path, "writing session_routing", e))?;
            tx.changes.routing = true;
            Ok(())
        })
    }

    /// Replaces the whole `destinations` table in one transaction.
    pub fn replace_destinations(&self, rows: &[Destination]) -> Result<()> {
        self.commit(|tx| {
            let replace = || -> rusqlite::Result<()> {
                tx.conn.execute("DELETE FROM destinations", [])?;
                let mut stmt = tx.conn.prepare(
                    "INSERT INTO destinations (name, display_name, type, channel_type, platform_id, agent_group_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for d in rows {
                    stmt.execute(params![
                        d.name,
                        d.display_name,
                        d.kind,
                        d.channel_type,
                        d.platform_id,
                        d.agent_group_id
                    ])?;
                }
                Ok(())
            };
            replace().map_err(|e| Error::sqlite(&tx.path, "replacing destinations", e))?;
            tx.changes.destinations = true;
            Ok(())
        })
    }

    /// Writes a `system` message answering a question:
    /// `{"type":"question_response","questionId":…,"status":…,"result":{…}}`.
    pub fn write_system_response(
        &self,
        id: MessageId,
        request_id: &str,
        status: &str,
        result: serde_json::Value,
    ) -> Result<WrittenMessage> {
        let content = serde_json::json!({
            "type": "question_response",
            "questionId": request_id,
            "status": status,
            "result": result,
        });
        let msg = NewInboundMessage::new(id, "system", content.to_string());
        self.write_message(&msg, &super::PlainContent)
    }

    /// Records a delivery in `delivered`, in host state (a delivery after a
    /// recorded failure, as when a dead letter is retried, replaces it).
    pub fn mark_delivered(
        &self,
        message_out_id: &str,
        platform_message_id: Option<&str>,
    ) -> Result<()> {
        self.mark_delivered_many(&[DeliveredMark::delivered(
            message_out_id,
            platform_message_id,
        )])
    }

    /// Records a delivery that failed for good (insert-or-ignore into `delivered`).
    pub fn mark_delivery_failed(&self, message_out_id: &str) -> Result<()> {
        self.mark_delivered_many(&[DeliveredMark::failed(message_out_id)])
    }

    /// Records several outcomes in one commit, as [`Self::mark_delivered`]
    /// and [`Self::mark_delivery_failed`] do one at a time: a delivery
    /// backlog costs one host-state commit per batch instead of per message.
    pub fn mark_delivered_many(&self, marks: &[DeliveredMark]) -> Result<()> {
        if marks.is_empty() {
            return Ok(());
        }
        let now = Timestamp::now().to_iso();
        self.commit(|tx| {
            let mut stmt = tx
                .conn
                .prepare_cached(
                    "INSERT INTO delivered (message_out_id, platform_message_id, status, delivered_at)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (message_out_id) DO UPDATE SET
                       platform_message_id = excluded.platform_message_id,
                       status = excluded.status,
                       delivered_at = excluded.delivered_at
                     WHERE delivered.status = 'failed' AND excluded.status = 'delivered'",
                )
                .map_err(|e| Error::sqlite(&tx.path, "recording a delivery", e))?;
            for mark in marks {
                let status = if mark.failed { "failed" } else { "delivered" };
                let n = stmt
                    .execute(params![
                        mark.message_out_id,
                        mark.platform_message_id,
                        status,
                        now
                    ])
                    .map_err(|e| Error::sqlite(&tx.path, "recording a delivery", e))?;
                if n > 0 {
                    tx.changes.delivered.insert(mark.message_out_id.clone());
                }
            }
            Ok(())
        })
    }

    /// Copies the guest's `completed`/`failed` acks into `messages_in.status`
    /// in host state (the guest is the authority on its own processing), then
    /// publishes them; never writes `outbound.db`. Returns how many rows changed.
    pub fn sync_acks(&self) -> Result<usize> {
        // Read before the sync: a commit during it makes the next one read.
        let seen = idle_memo::Seen::read(&self.paths, &self.state);
        if seen.is_some_and(|s| idle_memo::ACKS.still_idle(&self.state, &s)) {
            return Ok(0);
        }
        let acks = self.processing_acks()?;
        let done: Vec<Settled> = acks
            .into_iter()
            .filter_map(|a| InboundStatus::settled_by(a.status).map(|s| (a.message_id, s)))
            .collect();
        if done.is_empty() {
            idle_memo::ACKS.record_idle(&self.state, seen);
            return Ok(0);
        }
        // A host loop calls this for every session on every turn, and the
        // acks of a session's whole history stay in processing_ack: read
        // host.db first, and only commit when a status really changes.
        let stale = host_state::read(
            &self.paths,
            &self.state,
            "reading message statuses",
            |conn| acks_not_yet_synced(conn, &done).map(|v| v.len()),
        )?;
        if stale == 0 {
            idle_memo::ACKS.record_idle(&self.state, seen);
            return Ok(0);
        }
        idle_memo::ACKS.forget(&self.state);
        self.commit(|tx| {
            let stale = acks_not_yet_synced(tx.conn, &done)
                .map_err(|e| Error::sqlite(&tx.path, "reading message statuses", e))?;
            let mut stmt = tx
                .conn
                .prepare("UPDATE messages_in SET status = ?2 WHERE id = ?1 AND status != ?2 AND kind != ?3")
                .map_err(|e| Error::sqlite(&tx.path, "syncing acks", e))?;
            let mut changed = 0;
            for (id, settled) in stale {
                let n = stmt
                    .execute(params![id, settled.as_str(), HOST_OUTBOUND_KIND])
                    .map_err(|e| Error::sqlite(&tx.path, "syncing acks", e))?;
                if n > 0 {
                    tx.changes.messages.insert(id.clone());
                }
                changed += n;
            }
            Ok(changed)
        })
    }
}

/// One outcome for [`HostMailbox::mark_delivered_many`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveredMark {
    /// The outbound message's id.
    pub message_out_id: String,
    /// The platform's id for the delivered message, if it gave one.
    pub platform_message_id: Option<String>,
    /// Failed for good rather than delivered.
    pub failed: bool,
}

impl DeliveredMark {
    /// A successful delivery.
    pub fn delivered(message_out_id: &str, platform_message_id: Option<&str>) -> Self {
        Self {
            message_out_id: message_out_id.to_owned(),
            platform_message_id: platform_message_id.map(str::to_owned),
            failed: false,
        }
    }

    /// A delivery that failed for good.
    pub fn failed(message_out_id: &str) -> Self {
        Self {
            message_out_id: message_out_id.to_owned(),
            platform_message_id: None,
            failed: true,
        }
    }
}

/// A message id and the status its guest's finished ack settles it to.
type Settled = (String, InboundStatus);

/// The settled statuses `messages_in` does not hold yet.
fn acks_not_yet_synced<'a>(
    conn: &rusqlite::Connection,
    acks: &'a [Settled],
) -> rusqlite::Result<Vec<&'a Settled>> {
    let mut stale = Vec::new();
    let mut stmt =
        conn.prepare("SELECT 1 FROM messages_in WHERE id = ?1 AND status != ?2 AND kind != ?3")?;
    for settled in acks {
        let (id, status) = settled;
        if stmt.exists(params![id, status.as_str(), HOST_OUTBOUND_KIND])? {
            stale.push(settled);
        }
    }
    Ok(stale)
}
