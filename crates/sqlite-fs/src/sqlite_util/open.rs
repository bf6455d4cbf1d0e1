//! Opening mailbox files: never following symlinks, never memory-mapping,
//! and with hard bounds when the file comes from the untrusted guest.

use std::path::Path;
use std::time::Duration;
#[cfg(feature = "host")]
use std::time::Instant;

#[cfg(feature = "host")]
use rusqlite::limits::Limit;
use rusqlite::{Connection, OpenFlags};

/// How a mailbox file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// `SQLITE_OPEN_READ_ONLY`: cannot write, cannot roll back a journal.
    ReadOnly,
    /// Read-write on an existing file.
    ReadWrite,
    /// Read-write, creating the file if absent.
    Create,
}

/// Opens an existing host-only WAL database (the registry, a session's
/// `host.db`) for reading, never writing to its folder. With no `-wal` (closed
/// cleanly) it is opened `immutable=1`: nothing to lock, and the main file
/// holds every commit. With a `-wal` a writer may be live (a read-only bind
/// mount of a running host's data dir), so it is opened `mode=ro`, which
/// reads the WAL through the existing `-shm` and sees every commit.
#[cfg(feature = "host")]
pub fn open_read_only_wal(path: &Path, busy: Duration) -> rusqlite::Result<Connection> {
    let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
    let live = std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0);
    let uri = format!(
        "file:{}?mode=ro{}",
        super::uri_path(path),
        if live { "" } else { "&immutable=1" }
    );
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let conn = Connection::open_with_flags(uri, flags)?;
    conn.busy_timeout(busy)?;
    Ok(conn)
}

/// Opens `path` with `mode`: no symlink following, no mmap, a busy timeout.
pub fn open_file(path: &Path, mode: OpenMode, busy: Duration) -> rusqlite::Result<Connection> {
    let base = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let flags = match mode {
        OpenMode::ReadOnly => base | OpenFlags::SQLITE_OPEN_READ_ONLY,
        OpenMode::ReadWrite => base | OpenFlags::SQLITE_OPEN_READ_WRITE,
        OpenMode::Create => {
            base | OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
        }
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(busy)?;
    // A memory map is not refreshed across VirtioFS-like mounts.
    conn.pragma_update(None, "mmap_size", 0)?;
    Ok(conn)
}

#[cfg(feature = "host")]
/// Time budget of one host read of a guest-written file.
pub const UNTRUSTED_TIME_BUDGET: Duration = Duration::from_millis(1500);

#[cfg(feature = "host")]
/// Applies SQLite's advice for files from an untrusted party: no trusted
/// schema, cell size checks, small limits, a bounded page cache and a
/// progress handler that interrupts after `budget`.
///
/// `hard_heap_limit` is process-wide in SQLite, so it is left to the
/// embedding host; the per-connection limits here bound what one row or
/// statement can allocate.
pub fn apply_untrusted_limits(conn: &Connection, budget: Duration) -> rusqlite::Result<()> {
    conn.pragma_update(None, "trusted_schema", "OFF")?;
    conn.pragma_update(None, "cell_size_check", "ON")?;
    conn.pragma_update(None, "cache_size", -4096)?;
    conn.pragma_update(None, "query_only", "ON")?;
    let limits = [
        (Limit::SQLITE_LIMIT_LENGTH, 16 * 1024 * 1024),
        (Limit::SQLITE_LIMIT_SQL_LENGTH, 100_000),
        (Limit::SQLITE_LIMIT_COLUMN, 100),
        (Limit::SQLITE_LIMIT_EXPR_DEPTH, 100),
        (Limit::SQLITE_LIMIT_COMPOUND_SELECT, 8),
        (Limit::SQLITE_LIMIT_VDBE_OP, 100_000),
        (Limit::SQLITE_LIMIT_FUNCTION_ARG, 8),
        (Limit::SQLITE_LIMIT_ATTACHED, 0),
        (Limit::SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 100),
        (Limit::SQLITE_LIMIT_VARIABLE_NUMBER, 100),
        (Limit::SQLITE_LIMIT_TRIGGER_DEPTH, 4),
    ];
    for (limit, value) in limits {
        conn.set_limit(limit, value)?;
    }
    let deadline = Instant::now() + budget;
    conn.progress_handler(1000, Some(move || Instant::now() > deadline))?;
    Ok(())
}
