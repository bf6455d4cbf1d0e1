//! Tamper events: files in the session folder the host did not write, and
//! what the host did about them. Kept in `host.db`, shown by `doctor`/`show`.

use std::path::PathBuf;

use rusqlite::{Connection, params};
use serde::Serialize;

/// One difference between the session folder and the host's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TamperEvent {
    /// Its row id in `host.db` (0 before it is stored).
    pub id: i64,
    /// When it was found (UTC, ISO-8601).
    pub at: String,
    /// The folder entry concerned, e.g. `inbound.db-journal`.
    pub file: String,
    /// What was wrong.
    pub reason: String,
    /// Where the entry was moved (`None`: nothing to move, e.g. a missing file).
    pub moved_to: Option<PathBuf>,
    /// How it was repaired, e.g. `relinked`, `rebuilt from host.db`, `removed`.
    pub repair: String,
    /// Whether an operator acknowledged it (`airlock doctor --ack`).
    pub acknowledged: bool,
}

impl TamperEvent {
    /// A new, unstored event found now.
    pub(crate) fn new(file: &str, reason: String, moved_to: Option<PathBuf>, repair: &str) -> Self {
        let event = TamperEvent {
            id: 0,
            at: airlock_core::Timestamp::now().to_iso(),
            file: file.to_owned(),
            reason,
            moved_to,
            repair: repair.to_owned(),
            acknowledged: false,
        };
        tracing::warn!(
            file = %event.file,
            reason = %airlock_core::escape_for_log(&event.reason),
            moved_to = ?event.moved_to,
            repair = %event.repair,
            "tamper event: the session folder differs from the host's record"
        );
        event
    }
}

/// Stores `events` (one transaction) and sets their ids.
pub(crate) fn store(conn: &Connection, events: &mut [TamperEvent]) -> rusqlite::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let tx = conn.unchecked_transaction()?;
    {
        let mut stmt = tx.prepare(
            "INSERT INTO tamper_events (at, file, reason, moved_to, repair) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for e in events.iter_mut() {
            let moved = e.moved_to.as_ref().map(|p| p.display().to_string());
            stmt.execute(params![e.at, e.file, e.reason, moved, e.repair])?;
            e.id = tx.last_insert_rowid();
        }
    }
    tx.commit()
}

/// Every stored event, oldest first.
pub(crate) fn list(conn: &Connection) -> rusqlite::Result<Vec<TamperEvent>> {
    let mut stmt = conn.prepare(
        "SELECT id, at, file, reason, moved_to, repair, acknowledged FROM tamper_events ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(TamperEvent {
            id: r.get(0)?,
            at: r.get(1)?,
            file: r.get(2)?,
            reason: r.get(3)?,
            moved_to: r.get::<_, Option<String>>(4)?.map(PathBuf::from),
            repair: r.get(5)?,
            acknowledged: r.get::<_, i64>(6)? != 0,
        })
    })?;
    rows.collect()
}

/// Marks every event acknowledged; returns how many were not yet.
pub(crate) fn acknowledge(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE tamper_events SET acknowledged = 1 WHERE acknowledged = 0",
        [],
    )
}
