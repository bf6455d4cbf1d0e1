//! Raw SQLite helpers shared by the adapter and the negative controls.
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// `messages_in` as in the spec (the columns this harness uses are a subset).
pub const INBOUND_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS messages_in (
  id TEXT PRIMARY KEY, seq INTEGER UNIQUE, kind TEXT NOT NULL, timestamp TEXT NOT NULL,
  status TEXT DEFAULT 'pending', process_after TEXT, recurrence TEXT, series_id TEXT,
  tries INTEGER DEFAULT 0, trigger INTEGER NOT NULL DEFAULT 1, platform_id TEXT,
  channel_type TEXT, thread_id TEXT, content TEXT NOT NULL, source_session_id TEXT,
  on_wake INTEGER NOT NULL DEFAULT 0);";

/// `messages_out` and `processing_ack` as in the spec.
pub const OUTBOUND_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS messages_out (
  id TEXT PRIMARY KEY, seq INTEGER UNIQUE, in_reply_to TEXT, timestamp TEXT NOT NULL,
  deliver_after TEXT, recurrence TEXT, kind TEXT NOT NULL, platform_id TEXT,
  channel_type TEXT, thread_id TEXT, content TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS processing_ack (
  message_id TEXT PRIMARY KEY, status TEXT NOT NULL, status_changed TEXT NOT NULL);";

/// Opens `path` with `flags`, a busy timeout and no memory map.
pub fn open(path: &Path, flags: OpenFlags) -> Result<Connection, String> {
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| describe(path, &e))?;
    conn.busy_timeout(Duration::from_millis(200))
        .map_err(|e| describe(path, &e))?;
    conn.pragma_update(None, "mmap_size", 0)
        .map_err(|e| describe(path, &e))?;
    Ok(conn)
}

/// Read-write, creating the file.
pub const CREATE: OpenFlags =
    OpenFlags::SQLITE_OPEN_READ_WRITE.union(OpenFlags::SQLITE_OPEN_CREATE);
/// Read-write on an existing file.
pub const READ_WRITE: OpenFlags = OpenFlags::SQLITE_OPEN_READ_WRITE;
/// Read-only.
pub const READ_ONLY: OpenFlags = OpenFlags::SQLITE_OPEN_READ_ONLY;

/// The extended result code of a SQLite error, if it is one.
pub fn extended_code(e: &rusqlite::Error) -> Option<i32> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.extended_code),
        _ => None,
    }
}

/// `path: error (code N)`.
pub fn describe(path: &Path, e: &rusqlite::Error) -> String {
    match extended_code(e) {
        Some(code) => format!("{}: {e} (code {code})", path.display()),
        None => format!("{}: {e}", path.display()),
    }
}

/// `PRAGMA integrity_check` of `path`, opened read-only: `Ok(())` when it says "ok".
pub fn integrity(path: &Path) -> Result<(), String> {
    let conn = open(path, READ_ONLY)?;
    let rows: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| describe(path, &e))?;
    if rows == ["ok"] {
        Ok(())
    } else {
        Err(format!(
            "{}: integrity_check: {}",
            path.display(),
            rows.join("; ")
        ))
    }
}

/// Ids of all `messages_in` rows of `path`, read on the real file after a run.
pub fn inbound_ids(path: &Path) -> Result<Vec<String>, String> {
    let conn = open(path, READ_ONLY)?;
    conn.prepare("SELECT id FROM messages_in ORDER BY seq")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| describe(path, &e))
}

/// Current time as text (UTC ISO with millis), as the spec stores timestamps.
pub fn now_text() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    format!("@{ms}")
}
