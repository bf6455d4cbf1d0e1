//! The on-disk schemas of `inbound.db` and `outbound.db`, and their lazy migrations.
//!
//! The DDL is SPEC.md's text, byte for byte, so that `sqlite_master` shows
//! exactly the contract. Each file is stamped with `PRAGMA user_version` once
//! it is up to date, so the common open costs one pragma read; older folders
//! (version 0, columns missing) are brought up to date by the file's owner.

mod migrate;
pub(crate) mod rows;

use airlock_core::Seq;
use rusqlite::Connection;

#[cfg(feature = "host")]
pub(crate) use migrate::migrate_inbound;
pub use migrate::{InboundColumns, inbound_columns, migrate_outbound};

/// The largest seq in `messages_in` (`None` on an empty table).
pub(crate) fn max_inbound_seq(conn: &Connection) -> rusqlite::Result<Option<Seq>> {
    max_seq(conn, "SELECT MAX(seq) FROM messages_in")
}

/// The largest seq in `messages_out` (`None` on an empty table).
pub(crate) fn max_outbound_seq(conn: &Connection) -> rusqlite::Result<Option<Seq>> {
    max_seq(conn, "SELECT MAX(seq) FROM messages_out")
}

fn max_seq(conn: &Connection, sql: &str) -> rusqlite::Result<Option<Seq>> {
    let max: Option<i64> = conn.prepare_cached(sql)?.query_row([], |r| r.get(0))?;
    Ok(max.map(Seq::new))
}

/// `user_version` of an up-to-date `inbound.db`: 1 has every column of
/// SPEC's schema, 2 also [`INBOUND_INDEXES`].
pub const INBOUND_VERSION: i64 = 2;
/// The first `inbound.db` version with every column (rows compare as is).
pub const INBOUND_COLUMNS_VERSION: i64 = 1;

/// Indexes airlock adds to SPEC's `inbound.db` schema, so the guest's
/// pending poll and the host's `count_due` read only pending rows, in seq
/// order, however long the history. Additive: a reader that does not know
/// them (the reference's guest) is unaffected; both queries name
/// `status = 'pending'`, which lets SQLite use the partial index.
pub const INBOUND_INDEXES: &str = "\
CREATE INDEX IF NOT EXISTS idx_messages_in_pending ON messages_in(seq) WHERE status = 'pending';
";

/// `user_version` of an up-to-date `outbound.db`.
pub const OUTBOUND_VERSION: i64 = 1;

/// The `inbound.db` schema (host-owned).
pub const INBOUND_SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS messages_in (
  id TEXT PRIMARY KEY, seq INTEGER UNIQUE, kind TEXT NOT NULL, timestamp TEXT NOT NULL,
  status TEXT DEFAULT 'pending',            -- pending|completed|failed|paused
  process_after TEXT, recurrence TEXT, series_id TEXT, tries INTEGER DEFAULT 0,
  trigger INTEGER NOT NULL DEFAULT 1,       -- 1 wakes the agent, 0 is context only
  platform_id TEXT, channel_type TEXT, thread_id TEXT,
  content TEXT NOT NULL,                    -- JSON
  source_session_id TEXT,                   -- agent-to-agent return path
  on_wake INTEGER NOT NULL DEFAULT 0);      -- 1: only for a fresh guest's first poll
CREATE INDEX IF NOT EXISTS idx_messages_in_series ON messages_in(series_id);
CREATE TABLE IF NOT EXISTS delivered (
  message_out_id TEXT PRIMARY KEY, platform_message_id TEXT,
  status TEXT NOT NULL DEFAULT 'delivered', delivered_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS destinations (
  name TEXT PRIMARY KEY, display_name TEXT, type TEXT NOT NULL,  -- channel|agent
  channel_type TEXT, platform_id TEXT, agent_group_id TEXT);
CREATE TABLE IF NOT EXISTS session_routing (
  id INTEGER PRIMARY KEY CHECK (id = 1), channel_type TEXT, platform_id TEXT, thread_id TEXT);
";

/// The `outbound.db` schema (guest-owned).
pub const OUTBOUND_SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS messages_out (
  id TEXT PRIMARY KEY, seq INTEGER UNIQUE, in_reply_to TEXT, timestamp TEXT NOT NULL,
  deliver_after TEXT, recurrence TEXT, kind TEXT NOT NULL,
  platform_id TEXT, channel_type TEXT, thread_id TEXT, content TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS processing_ack (
  message_id TEXT PRIMARY KEY, status TEXT NOT NULL,   -- processing|completed|failed
  status_changed TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS session_state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS container_state (
  id INTEGER PRIMARY KEY CHECK (id = 1), current_tool TEXT,
  tool_declared_timeout_ms INTEGER, tool_started_at TEXT, updated_at TEXT NOT NULL);
";

#[cfg(all(test, feature = "host"))]
mod plan_tests;
