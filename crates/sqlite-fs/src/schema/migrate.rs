//! Lazy migrations of older mailbox files, and column discovery for read-only readers.

use rusqlite::{Connection, TransactionBehavior};

#[cfg(feature = "host")]
use super::{INBOUND_INDEXES, INBOUND_SCHEMA, INBOUND_VERSION};
use super::{OUTBOUND_SCHEMA, OUTBOUND_VERSION};

#[cfg(feature = "host")]
/// Columns of `messages_in` / `delivered` that older `inbound.db` files lack.
const INBOUND_ADDED: &[(&str, &str, &str)] = &[
    ("messages_in", "series_id", "TEXT"),
    ("messages_in", "trigger", "INTEGER NOT NULL DEFAULT 1"),
    ("messages_in", "source_session_id", "TEXT"),
    ("messages_in", "on_wake", "INTEGER NOT NULL DEFAULT 0"),
    ("delivered", "platform_message_id", "TEXT"),
    ("delivered", "status", "TEXT NOT NULL DEFAULT 'delivered'"),
];

/// Columns that older `outbound.db` files lack (`container_state` is created whole).
const OUTBOUND_ADDED: &[(&str, &str, &str)] = &[(
    "session_state",
    "updated_at",
    // ADD COLUMN NOT NULL needs a constant default; old rows get the epoch.
    "TEXT NOT NULL DEFAULT '1970-01-01 00:00:00.000'",
)];

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let names = stmt.query_map([], |r| r.get::<_, String>(1))?;
    names.collect()
}

fn add_missing(conn: &Connection, added: &[(&str, &str, &str)]) -> rusqlite::Result<()> {
    for (table, column, decl) in added {
        let existing = columns(conn, table)?;
        // An absent table is created whole by the schema batch afterwards.
        if !existing.is_empty() && !existing.iter().any(|c| c == column) {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))?;
        }
    }
    Ok(())
}

#[cfg(feature = "host")]
/// Brings `inbound.db` up to date; returns whether anything was changed.
///
/// It writes, so the file must be one no guest can reach: crate-private, and
/// called only on adoption's copy in host state (`host_state/adopt.rs`).
pub(crate) fn migrate_inbound(conn: &mut Connection) -> rusqlite::Result<bool> {
    if user_version(conn)? >= INBOUND_VERSION {
        return Ok(false);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if user_version(&tx)? >= INBOUND_VERSION {
        return Ok(false);
    }
    add_missing(&tx, INBOUND_ADDED)?;
    tx.execute_batch(INBOUND_SCHEMA)?;
    tx.execute_batch(INBOUND_INDEXES)?;
    tx.execute(
        "UPDATE messages_in SET series_id = id WHERE series_id IS NULL",
        [],
    )?;
    tx.pragma_update(None, "user_version", INBOUND_VERSION)?;
    tx.commit()?;
    Ok(true)
}

/// Brings `outbound.db` up to date; returns whether anything was changed.
///
/// The caller must be the file's owner (the guest).
pub fn migrate_outbound(conn: &mut Connection) -> rusqlite::Result<bool> {
    if user_version(conn)? >= OUTBOUND_VERSION {
        return Ok(false);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if user_version(&tx)? >= OUTBOUND_VERSION {
        return Ok(false);
    }
    add_missing(&tx, OUTBOUND_ADDED)?;
    tx.execute_batch(OUTBOUND_SCHEMA)?;
    tx.pragma_update(None, "user_version", OUTBOUND_VERSION)?;
    tx.commit()?;
    Ok(true)
}

/// Which later-added columns a (possibly un-migrated) `inbound.db` has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboundColumns {
    /// `messages_in.series_id`.
    pub series_id: bool,
    /// `messages_in.trigger`.
    pub trigger: bool,
    /// `messages_in.source_session_id`.
    pub source_session_id: bool,
    /// `messages_in.on_wake`.
    pub on_wake: bool,
    /// `delivered` exists at all.
    pub delivered: bool,
    /// `delivered.platform_message_id`.
    pub delivered_platform_message_id: bool,
}

impl InboundColumns {
    /// Every column present (an up-to-date file).
    pub const ALL: InboundColumns = InboundColumns {
        series_id: true,
        trigger: true,
        source_session_id: true,
        on_wake: true,
        delivered: true,
        delivered_platform_message_id: true,
    };
}

/// Discovers the columns of `inbound.db`; one pragma read when it is up to date.
pub fn inbound_columns(conn: &Connection) -> rusqlite::Result<InboundColumns> {
    if user_version(conn)? >= super::INBOUND_COLUMNS_VERSION {
        return Ok(InboundColumns::ALL);
    }
    let m = columns(conn, "messages_in")?;
    let d = columns(conn, "delivered")?;
    let has = |cols: &[String], name: &str| cols.iter().any(|c| c == name);
    Ok(InboundColumns {
        series_id: has(&m, "series_id"),
        trigger: has(&m, "trigger"),
        source_session_id: has(&m, "source_session_id"),
        on_wake: has(&m, "on_wake"),
        delivered: !d.is_empty(),
        delivered_platform_message_id: has(&d, "platform_message_id"),
    })
}
