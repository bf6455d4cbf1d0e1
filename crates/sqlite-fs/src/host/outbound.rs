//! Host reads of the guest-written `outbound.db`, opened as an untrusted
//! file, and the one read-write open allowed: recovering a dead guest's
//! hot journal.

use std::collections::HashSet;
use std::sync::OnceLock;

use airlock_core::mailbox::{
    AckStatus, ContainerState, HOST_OUTBOUND_KIND, Origin, OutboundMessage, ProcessingAck,
};
use airlock_core::{GuestStopped, Seq, Timestamp};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, Row};

use super::HostMailbox;
use crate::error::{Error, Result};
use crate::sqlite_util::{GuestDb, RetryPolicy, RetryStats, RetryStatsSnapshot, retry};

/// The guest's file in the session folder.
const OUTBOUND_DB: &str = "outbound.db";

const SQLITE_NOMEM: i32 = 7;
const SQLITE_INTERRUPT: i32 = 9;
const SQLITE_CORRUPT: i32 = 11;
const SQLITE_TOOBIG: i32 = 18;
const SQLITE_NOTADB: i32 = 26;
const SQLITE_READONLY_ROLLBACK: i32 = 776;

fn host_stats() -> &'static RetryStats {
    static STATS: OnceLock<RetryStats> = OnceLock::new();
    STATS.get_or_init(RetryStats::default)
}

/// Untrusted text: any storage class becomes text, nothing fails the read.
pub(crate) fn text(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<String>> {
    Ok(match row.get_ref(idx)? {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
    })
}

fn int(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<i64>> {
    Ok(match row.get_ref(idx)? {
        ValueRef::Integer(i) => Some(i),
        _ => None,
    })
}

/// [`airlock_core::is_due`], logging an unreadable time (it counts as due).
pub(crate) fn is_due(stored: Option<&str>, now: Timestamp) -> bool {
    airlock_core::due_at(stored, now).unwrap_or_else(|text| {
        tracing::warn!(value = %airlock_core::escape_for_log(text), "unreadable delivery time; treating as due");
        true
    })
}

/// The lowest seq of a guest row that is neither delivered nor scheduled for
/// later, reading ids, seqs and times only; `None` when there is none.
fn first_undelivered_seq(
    conn: &Connection,
    delivered: &HashSet<String>,
    now: Timestamp,
) -> rusqlite::Result<Option<i64>> {
    let mut stmt = conn.prepare("SELECT id, seq, deliver_after FROM messages_out")?;
    let mut rows = stmt.query([])?;
    let mut first: Option<i64> = None;
    while let Some(r) = rows.next()? {
        let (Some(id), Some(seq)) = (text(r, 0)?, int(r, 1)?) else {
            continue;
        };
        if delivered.contains(&id) || !airlock_core::is_due(text(r, 2)?.as_deref(), now) {
            continue;
        }
        first = Some(first.map_or(seq, |f| f.min(seq)));
    }
    Ok(first)
}

impl HostMailbox {
    /// Counts of retried transient errors in this process's host reads of `outbound.db`.
    pub fn retry_stats() -> RetryStatsSnapshot {
        host_stats().snapshot()
    }

    /// `outbound.db` as the guest-written file it is, with host state for its snapshot.
    fn outbound_file(&self) -> GuestDb<'_> {
        GuestDb {
            folder: self.paths.dir(),
            name: OUTBOUND_DB,
            scratch: self.state.dir(),
            single_name: true,
        }
    }

    /// Runs `f` on a fresh read-only, untrusted connection to a snapshot of
    /// `outbound.db` (see [`GuestDb`]: SQLite never opens a name the guest
    /// can reach), retrying while the guest commits; `Ok(None)` when the
    /// file does not exist yet.
    pub(crate) fn read_outbound<T>(
        &self,
        context: &str,
        f: impl Fn(&Connection) -> rusqlite::Result<T>,
    ) -> Result<Option<T>> {
        let file = self.outbound_file();
        retry(RetryPolicy::HOST_READ, host_stats(), || {
            file.read(context, &f)
        })
        .map_err(|e| untrusted_error(e, context))
    }

    /// Due messages not yet in `delivered`, ordered by seq: the guest's
    /// (`outbound.db`, odd seqs) and the host's own (`host.db`, even seqs).
    pub fn due_outbound(&self, now: Timestamp) -> Result<Vec<OutboundMessage>> {
        // Delivery decisions trust host state only, never inbound.db; the
        // check first repairs the published copy if the guest touched it.
        self.verify()?;
        let (delivered, host_ids, mut due) = crate::host_state::read(
            &self.paths,
            &self.state,
            "reading deliveries",
            |conn| {
                let delivered: HashSet<String> = conn
                    .prepare("SELECT message_out_id FROM delivered")
                    .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())?;
                let mut stmt = conn.prepare(
                    "SELECT id, seq, timestamp, process_after, platform_id, channel_type, thread_id, content
                     FROM messages_in WHERE kind = ?1 ORDER BY seq",
                )?;
                let rows = stmt
                    .query_map([HOST_OUTBOUND_KIND], |r| {
                        Ok(OutboundMessage {
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
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let host_ids: HashSet<String> = rows.iter().map(|m| m.id.clone()).collect();
                let due: Vec<OutboundMessage> = rows
                    .into_iter()
                    .filter(|m| {
                        !delivered.contains(&m.id) && is_due(m.deliver_after.as_deref(), now)
                    })
                    .collect();
                Ok((delivered, host_ids, due))
            },
        )?;
        // A session's history grows without end and its contents can be
        // large: find where the undelivered tail starts from the ids alone,
        // then read whole rows only from there (`seq` is indexed).
        let guest = self
            .read_outbound("reading messages_out", |conn| {
                let Some(from) = first_undelivered_seq(conn, &delivered, now)? else {
                    return Ok(Vec::new());
                };
                let mut stmt = conn.prepare(
                    "SELECT id, seq, in_reply_to, timestamp, deliver_after, recurrence, kind,
                            platform_id, channel_type, thread_id, content
                     FROM messages_out WHERE seq >= ?1 ORDER BY seq",
                )?;
                let rows = stmt.query_map([from], guest_row)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })?
            .unwrap_or_default();
        for msg in guest.into_iter().flatten() {
            if delivered.contains(&msg.id) || !is_due(msg.deliver_after.as_deref(), now) {
                continue;
            }
            if host_ids.contains(&msg.id) {
                tracing::warn!(id = %airlock_core::escape_for_log(&msg.id), "guest message reuses a host message id; skipped");
                continue;
            }
            if !Seq::new(msg.seq).is_guest() {
                tracing::warn!(
                    seq = msg.seq,
                    "guest message with an even seq (parity broken by the guest)"
                );
            }
            due.push(msg);
        }
        due.sort_by_key(|m| m.seq);
        Ok(due)
    }

    /// The newest `limit` guest messages, oldest first.
    pub fn list_outbound(&self, limit: usize) -> Result<Vec<OutboundMessage>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .read_outbound("listing messages_out", |conn| {
                let mut stmt = conn.prepare(
                    "SELECT id, seq, in_reply_to, timestamp, deliver_after, recurrence, kind,
                            platform_id, channel_type, thread_id, content
                     FROM messages_out ORDER BY seq DESC LIMIT ?1",
                )?;
                let rows = stmt.query_map([limit], guest_row)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })?
            .unwrap_or_default();
        let mut out: Vec<OutboundMessage> = rows.into_iter().flatten().collect();
        out.reverse();
        Ok(out)
    }

    /// Number of `messages_out` rows (0 when the file does not exist yet).
    pub fn outbound_count(&self) -> Result<u64> {
        Ok(self
            .read_outbound("counting messages_out", |conn| {
                conn.query_row("SELECT count(*) FROM messages_out", [], |r| {
                    r.get::<_, i64>(0)
                })
            })?
            .map_or(0, |n| n.max(0) as u64))
    }

    /// The guest's `processing_ack` rows.
    pub fn processing_acks(&self) -> Result<Vec<ProcessingAck>> {
        let rows = self
            .read_outbound("reading processing_ack", |conn| {
                let mut stmt =
                    conn.prepare("SELECT message_id, status, status_changed FROM processing_ack")?;
                let rows = stmt.query_map([], |r| {
                    Ok((
                        text(r, 0)?.unwrap_or_default(),
                        text(r, 1)?.unwrap_or_default(),
                        text(r, 2)?.unwrap_or_default(),
                    ))
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })?
            .unwrap_or_default();
        // The guest writes this table: a status that is none of the three
        // means nothing to the host, so the row is skipped, once, here.
        Ok(rows
            .into_iter()
            .filter_map(|(message_id, status, status_changed)| match status.parse() {
                Ok(status) => Some(ProcessingAck {
                    message_id,
                    status,
                    status_changed,
                }),
                Err(e) => {
                    tracing::warn!(id = %airlock_core::escape_for_log(&message_id), error = %e, "processing_ack row skipped");
                    None
                }
            })
            .collect())
    }

    /// Ids the guest has claimed (`processing`) and not finished.
    pub fn processing_claims(&self) -> Result<Vec<String>> {
        Ok(self
            .processing_acks()?
            .into_iter()
            .filter(|a| a.status == AckStatus::Processing)
            .map(|a| a.message_id)
            .collect())
    }

    /// The guest's `container_state` row (`None` if absent or an older file without the table).
    pub fn container_state(&self) -> Result<Option<ContainerState>> {
        let state = self.read_outbound("reading container_state", |conn| {
            let exists: i64 = conn.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'container_state'",
                [],
                |r| r.get(0),
            )?;
            if exists == 0 {
                return Ok(None);
            }
            let mut stmt = conn.prepare(
                "SELECT current_tool, tool_declared_timeout_ms, tool_started_at, updated_at
                 FROM container_state WHERE id = 1",
            )?;
            let mut rows = stmt.query([])?;
            match rows.next()? {
                None => Ok(None),
                Some(r) => Ok(Some(ContainerState {
                    current_tool: text(r, 0)?,
                    tool_declared_timeout_ms: int(r, 1)?,
                    tool_started_at: text(r, 2)?,
                    updated_at: text(r, 3)?.unwrap_or_default(),
                })),
            }
        })?;
        Ok(state.flatten())
    }

    /// Rolls back a hot `outbound.db-journal` left by a guest that died
    /// mid-commit: the one time the host opens `outbound.db` read-write,
    /// which `stopped` proves is safe. Returns whether a journal was there.
    pub fn recover_outbound(&self, stopped: GuestStopped) -> Result<bool> {
        let _ = stopped;
        let recovered = self
            .outbound_file()
            .recover()
            .map_err(|e| untrusted_error(e, "recovering outbound.db"))?;
        if recovered {
            tracing::info!(path = %self.paths.outbound_db().display(), "rolled back the hot journal of a stopped guest");
        }
        Ok(recovered)
    }
}

pub(crate) fn guest_row(r: &Row<'_>) -> rusqlite::Result<Option<OutboundMessage>> {
    let (Some(id), Some(seq)) = (text(r, 0)?, int(r, 1)?) else {
        tracing::warn!("skipping a messages_out row without an id or an integer seq");
        return Ok(None);
    };
    Ok(Some(OutboundMessage {
        origin: Origin::Guest,
        id,
        seq,
        in_reply_to: text(r, 2)?,
        timestamp: text(r, 3)?.unwrap_or_default(),
        deliver_after: text(r, 4)?,
        recurrence: text(r, 5)?,
        kind: text(r, 6)?.unwrap_or_default(),
        platform_id: text(r, 7)?,
        channel_type: text(r, 8)?,
        thread_id: text(r, 9)?,
        content: text(r, 10)?.unwrap_or_default(),
    }))
}

/// Maps what a crafted or busy guest file does into the kinds a caller acts on.
fn untrusted_error(err: Error, context: &str) -> Error {
    let Some(code) = err.sqlite_code() else {
        return err;
    };
    let path = match &err {
        Error::Sqlite { path, .. } | Error::Persistent { path, .. } => path.clone(),
        _ => return err,
    };
    if code == SQLITE_READONLY_ROLLBACK && matches!(err, Error::Persistent { .. }) {
        return Error::GuestMayBeRunning { path };
    }
    let why = match code & 0xff {
        SQLITE_INTERRUPT => "reading took longer than the time budget",
        SQLITE_NOMEM | SQLITE_TOOBIG => "reading needed more memory than allowed",
        SQLITE_CORRUPT | SQLITE_NOTADB => "the file is corrupt",
        _ => return err,
    };
    Error::UntrustedFileRejected {
        path,
        context: context.to_owned(),
        why: format!("{why} ({err})"),
    }
}
