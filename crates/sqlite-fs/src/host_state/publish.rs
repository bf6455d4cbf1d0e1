//! Writing the published `inbound.db` from `host.db`: the rows a batch
//! changed (one transaction), or a whole fresh file (rebuild).
//!
//! SQLite reaches the file only as `host-state/…/published/inbound.db`, a
//! hard link the guest cannot swap, with `journal_mode=MEMORY`: no journal
//! is ever written where the guest could see or replace it. While the host
//! writes, a placeholder journal in the session folder makes guest readers
//! that start meanwhile see a hot journal and retry (as with a real one).

use std::time::Duration;

use rusqlite::Connection;
use rustix::fs::{CWD, Mode, OFlags};

use super::folder::{Folder, JOURNAL};
use super::tamper::TamperEvent;
use super::{Changes, Role};
use crate::error::{Error, Result};
use crate::host::read::INBOUND_COLUMNS;
use crate::layout::HostSessionState;
use crate::schema::{INBOUND_INDEXES, INBOUND_SCHEMA, INBOUND_VERSION};
use crate::sqlite_util::template::Template;
use crate::sqlite_util::{JournalKind, OpenMode, open_file, read_header};

const DELIVERED_COLUMNS: &str = "message_out_id, platform_message_id, status, delivered_at";
const DESTINATION_COLUMNS: &str =
    "name, display_name, type, channel_type, platform_id, agent_group_id";
const ROUTING_COLUMNS: &str = "id, channel_type, platform_id, thread_id";

/// SQLite's journal magic, then zeros: a journal header with no records.
fn placeholder_bytes() -> [u8; 512] {
    let mut b = [0u8; 512];
    b[..8].copy_from_slice(&[0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7]);
    b
}

/// Whether the open file is the host's placeholder, or the start of one
/// (a host killed while writing it).
pub(crate) fn is_placeholder(file: &std::fs::File, size: u64) -> bool {
    use std::os::unix::fs::FileExt;
    let Ok(len) = usize::try_from(size) else {
        return false;
    };
    let expected = placeholder_bytes();
    let mut buf = [0u8; 512];
    len <= buf.len()
        && file.read_exact_at(&mut buf[..len], 0).is_ok()
        && buf[..len] == expected[..len]
}

/// What the copy covers.
pub(crate) enum Scope<'a> {
    /// The rows of one batch.
    Changed(&'a Changes),
    /// Everything (a fresh file).
    All,
}

/// Copies rows from schema `from` (`host.db`) into schema `to` (an `inbound.db`).
fn copy_rows(conn: &Connection, scope: Scope<'_>, to: &str, from: &str) -> rusqlite::Result<()> {
    let replace_all = |table: &str, cols: &str| {
        conn.execute_batch(&format!(
            "DELETE FROM {to}.{table}; INSERT INTO {to}.{table} ({cols}) SELECT {cols} FROM {from}.{table};"
        ))
    };
    match scope {
        Scope::All => {
            replace_all("messages_in", INBOUND_COLUMNS)?;
            replace_all("delivered", DELIVERED_COLUMNS)?;
            replace_all("destinations", DESTINATION_COLUMNS)?;
            replace_all("session_routing", ROUTING_COLUMNS)?;
        }
        Scope::Changed(changes) => {
            let mut msg = conn.prepare_cached(&format!(
                "INSERT OR REPLACE INTO {to}.messages_in ({INBOUND_COLUMNS})
                 SELECT {INBOUND_COLUMNS} FROM {from}.messages_in WHERE id = ?1"
            ))?;
            for id in &changes.messages {
                msg.execute([id])?;
            }
            let mut del = conn.prepare_cached(&format!(
                "INSERT OR REPLACE INTO {to}.delivered ({DELIVERED_COLUMNS})
                 SELECT {DELIVERED_COLUMNS} FROM {from}.delivered WHERE message_out_id = ?1"
            ))?;
            for id in &changes.delivered {
                del.execute([id])?;
            }
            if changes.destinations {
                replace_all("destinations", DESTINATION_COLUMNS)?;
            }
            if changes.routing {
                replace_all("session_routing", ROUTING_COLUMNS)?;
            }
        }
    }
    Ok(())
}

/// How a published file's commits sync: not at all where its record names
/// the boot and mount it was written in (a record of another one is never
/// trusted: the file is rebuilt), fully elsewhere.
fn synchronous(state: &HostSessionState) -> &'static str {
    if super::instance::of(state.dir()).is_some() {
        "OFF"
    } else {
        "FULL"
    }
}

/// Opens a published file for writing: no journal on disk, one fsync per commit.
fn open_published(
    path: &std::path::Path,
    mode: OpenMode,
    journal: &str,
) -> rusqlite::Result<Connection> {
    let conn = open_file(path, mode, Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", journal)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

fn attach_host(conn: &Connection, state: &HostSessionState) -> rusqlite::Result<()> {
    super::keep_wal_on_close(conn)?;
    conn.execute(
        "ATTACH DATABASE ?1 AS h",
        [state.host_db().display().to_string()],
    )
    .map(drop)
}

/// Where this process builds a fresh published file, with what earlier
/// rebuilds left removed first.
fn rebuild_file(state: &HostSessionState) -> std::path::PathBuf {
    remove_stale_rebuilds(state);
    state
        .published_dir()
        .join(format!(".rebuild-{}.db", std::process::id()))
}

/// Removes what earlier rebuilds left (`.rebuild-<pid>.db` of any process:
/// a rebuild whose clean-up failed, or a killed one). The caller holds the
/// session's write lock, so none of them is in use.
fn remove_stale_rebuilds(state: &HostSessionState) {
    let Ok(entries) = std::fs::read_dir(state.published_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".rebuild-") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Builds a fresh `inbound.db` from `host.db` in host state, makes it the
/// host's link, and links it into the folder (temporary name, rename).
pub(crate) fn rebuild(folder: &Folder, state: &HostSessionState) -> Result<()> {
    let tmp = rebuild_file(state);
    let template = PUBLISHED_TEMPLATE.bytes(state.dir());
    if let Some(bytes) = template {
        // Synced once, whole, after the rows are in (where it syncs at all).
        write_scratch(&tmp, bytes, false)?;
    }
    let build = || -> rusqlite::Result<()> {
        let conn = if template.is_some() {
            let conn = open_published(&tmp, OpenMode::ReadWrite, "OFF")?;
            conn.pragma_update(None, "synchronous", "OFF")?;
            conn
        } else {
            let conn = open_published(&tmp, OpenMode::Create, "OFF")?;
            conn.pragma_update(None, "synchronous", synchronous(state))?;
            conn
        };
        attach_host(&conn, state)?;
        // Schema (without a template) and rows in one transaction: one
        // commit (each statement on its own would commit separately).
        conn.execute_batch("BEGIN IMMEDIATE")?;
        if template.is_none() {
            create_published_tables(&conn)?;
        }
        copy_rows(&conn, Scope::All, "main", "h")?;
        conn.execute_batch("COMMIT")?;
        conn.close().map_err(|(_, e)| e)
    };
    if let Err(e) = build() {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::sqlite(&tmp, "rebuilding inbound.db from host.db", e));
    }
    if template.is_some() && synchronous(state) == "FULL" {
        sync_scratch(&tmp)?;
    }
    install(folder, state, &tmp)
}

/// Publishes the empty template for a `host.db` that holds no rows (a new
/// session): what [`rebuild`] would build, without opening SQLite.
pub(crate) fn publish_empty(folder: &Folder, state: &HostSessionState) -> Result<()> {
    let Some(bytes) = PUBLISHED_TEMPLATE.bytes(state.dir()) else {
        return rebuild(folder, state);
    };
    let tmp = rebuild_file(state);
    write_scratch(&tmp, bytes, synchronous(state) == "FULL")?;
    install(folder, state, &tmp)
}

/// Writes a fresh published file's first bytes (removed again on failure).
fn write_scratch(tmp: &std::path::Path, bytes: &[u8], sync: bool) -> Result<()> {
    std::fs::write(tmp, bytes).map_err(|e| {
        let _ = std::fs::remove_file(tmp);
        Error::io(tmp, e)
    })?;
    if sync { sync_scratch(tmp) } else { Ok(()) }
}

/// Syncs a fresh published file whole (removed again on failure).
fn sync_scratch(tmp: &std::path::Path) -> Result<()> {
    std::fs::File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| {
            let _ = std::fs::remove_file(tmp);
            Error::io(tmp, e)
        })
}

/// Makes the fresh file `tmp` the host's link and links it into the folder.
fn install(folder: &Folder, state: &HostSessionState, tmp: &std::path::Path) -> Result<()> {
    let link = state.published_db();
    std::fs::rename(tmp, &link).map_err(|e| Error::io(&link, e))?;
    folder.link_inbound(&link)
}

/// The published file's tables, marked current; the caller holds the transaction.
fn create_published_tables(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(INBOUND_SCHEMA)?;
    conn.execute_batch(INBOUND_INDEXES)?;
    conn.pragma_update(None, "user_version", INBOUND_VERSION)
}

/// An empty published `inbound.db`: every table, no rows, a rollback-journal header.
static PUBLISHED_TEMPLATE: Template = Template::new("inbound-db", |path| {
    let conn = open_published(path, OpenMode::Create, "OFF")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.execute_batch("BEGIN IMMEDIATE")?;
    create_published_tables(&conn)?;
    conn.execute_batch("COMMIT")?;
    conn.close().map_err(|(_, e)| e)
});

/// Copies `changes` into the published file; returns tamper events seen
/// meanwhile (a journal planted where the placeholder goes).
///
/// A file of an older shape or in WAL mode (adopted from an earlier
/// version) is rebuilt whole instead, so the published file always has the
/// current schema and a rollback-journal header.
pub(crate) fn publish(
    folder: &Folder,
    state: &HostSessionState,
    changes: &Changes,
) -> Result<Vec<TamperEvent>> {
    let mut events = Vec::new();
    let placeholder = place_placeholder(folder, state)?;
    let link = state.published_db();
    let written = super::take(state, Role::Publish).and_then(|host_db| {
        let written = write_changes(&host_db, state, changes);
        super::give_back_as(state, Role::Publish, host_db);
        written
    });
    let rebuilt = match written {
        Ok(true) => Ok(()),
        Ok(false) => rebuild(folder, state),
        Err(e) => Err(e),
    };
    // After the write (never before: the planting loop must not stall it).
    match (placeholder, folder.stat(JOURNAL)?) {
        (Some(ours), Some(now)) if (ours.st_dev, ours.st_ino) == (now.st_dev, now.st_ino) => {
            if folder
                .move_out(JOURNAL, &state.placeholder_journal())
                .is_err()
            {
                folder.remove(JOURNAL)?;
            }
        }
        (_, None) => {}
        (ours, Some(_)) => {
            let moved = folder.quarantine(JOURNAL, &state.quarantine())?;
            let when = if ours.is_some() {
                "replaced the host's placeholder"
            } else {
                "was planted"
            };
            events.push(TamperEvent::new(
                JOURNAL,
                format!("a journal {when} during a host write; never opened"),
                moved,
                "moved aside",
            ));
        }
    }
    rebuilt.map_err(|e| {
        tracing::warn!(path = %link.display(), error = %e, "publishing inbound.db failed; it is rebuilt by the next operation");
        e
    })?;
    Ok(events)
}

/// Puts the host's placeholder journal into the folder (never over a file
/// there: `Ok(None)`); returns its identity.
///
/// The same file goes in and out on every write, kept in host state in
/// between: creating a file right after removing one makes ext4 search for
/// a free inode (a fifth of the CPU when many sessions are written at once).
/// The guest may have written to it while it was in the folder, so its
/// bytes are checked before each use and a changed file is replaced.
fn place_placeholder(
    folder: &Folder,
    state: &HostSessionState,
) -> Result<Option<rustix::fs::Stat>> {
    let template = state.placeholder_journal();
    let valid = |file: &std::fs::File| -> Option<rustix::fs::Stat> {
        let st = rustix::fs::fstat(file).ok()?;
        let size = u64::try_from(st.st_size).ok()?;
        (size == 512
            && rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile
            && is_placeholder(file, size))
        .then_some(st)
    };
    // No symlink followed: the guest could have swapped one in just before
    // the last write moved the file back.
    let open = |path: &std::path::Path, flags: OFlags| {
        rustix::fs::openat(
            CWD,
            path,
            flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map(std::fs::File::from)
    };
    let kept = open(&template, OFlags::RDONLY | OFlags::NONBLOCK).ok();
    let st = match kept.as_ref().and_then(valid) {
        Some(st) => st,
        None => {
            let fresh = state.dir().join("placeholder.journal.new");
            let _ = std::fs::remove_file(&fresh);
            let file = open(&fresh, OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL)
                .map_err(|e| Error::io(&fresh, e.into()))?;
            std::io::Write::write_all(&mut &file, &placeholder_bytes())
                .map_err(|e| Error::io(&fresh, e))?;
            std::fs::rename(&fresh, &template).map_err(|e| Error::io(&template, e))?;
            rustix::fs::fstat(&file).map_err(|e| Error::io(&template, e.into()))?
        }
    };
    Ok(folder.move_in(&template, JOURNAL)?.then_some(st))
}

/// Name of the published file while it is attached to `host.db`'s connection.
const ATTACHED: &str = "published";

/// The published file attached to a `host.db` connection for one write;
/// detached (so closed, invariant 2) when dropped.
struct Attached<'c>(&'c Connection);

impl<'c> Attached<'c> {
    fn new(conn: &'c Connection, path: &std::path::Path) -> rusqlite::Result<Self> {
        conn.execute(
            &format!("ATTACH DATABASE ?1 AS {ATTACHED}"),
            [path.display().to_string()],
        )?;
        Ok(Self(conn))
    }
}

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        if !self.0.is_autocommit() {
            let _ = self.0.execute_batch("ROLLBACK");
        }
        // A connection that still holds the file is never pooled (`give_back_as`).
        let _ = self.0.execute_batch(&format!("DETACH DATABASE {ATTACHED}"));
    }
}

/// Whether `conn` has no file attached (only then may it be kept open).
pub(crate) fn nothing_attached(conn: &Connection) -> bool {
    // 0 is main, 1 temp; 2 the first attached database.
    conn.db_name(2).is_err()
}

/// The incremental write, through a pooled `host.db` connection (no open
/// of `host.db`, its schema already parsed; the published file attached
/// for this write only); `Ok(false)` when the file needs a rebuild instead.
fn write_changes(
    host_db: &Connection,
    state: &HostSessionState,
    changes: &Changes,
) -> Result<bool> {
    let link = state.published_db();
    match read_header(&link) {
        Ok(Some(h)) if h.journal == JournalKind::Rollback => {}
        _ => return Ok(false),
    }
    let write = || -> rusqlite::Result<bool> {
        let attached = Attached::new(host_db, &link)?;
        // No journal on disk; no fsync where the record can tell a later
        // boot or mount (see `instance`), one per commit elsewhere.
        host_db.pragma_update(Some(ATTACHED), "journal_mode", "MEMORY")?;
        host_db.pragma_update(Some(ATTACHED), "synchronous", synchronous(state))?;
        let version: i64 =
            host_db.pragma_query_value(Some(ATTACHED), "user_version", |r| r.get(0))?;
        if version < INBOUND_VERSION {
            return Ok(false);
        }
        host_db.execute_batch("BEGIN IMMEDIATE")?;
        copy_rows(host_db, Scope::Changed(changes), ATTACHED, "main")?;
        host_db.execute_batch("COMMIT")?;
        drop(attached);
        Ok(true)
    };
    write().map_err(|e| Error::sqlite(&link, "publishing inbound.db", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_state::tests::shape_of;

    #[test]
    fn the_published_template_is_what_sqlite_makes_with_a_rollback_journal_header() {
        let dir = tempfile::tempdir().unwrap();
        let by_sqlite = dir.path().join("by-sqlite.db");
        let conn = open_published(&by_sqlite, OpenMode::Create, "OFF").unwrap();
        conn.execute_batch("BEGIN").unwrap();
        create_published_tables(&conn).unwrap();
        conn.execute_batch("COMMIT").unwrap();
        drop(conn);
        let copy = dir.path().join("copy.db");
        std::fs::write(&copy, PUBLISHED_TEMPLATE.bytes(dir.path()).unwrap()).unwrap();
        let (schema, version, header) = shape_of(&copy);
        assert_eq!(header, [1, 1]);
        assert_eq!(version, INBOUND_VERSION);
        assert_eq!((schema, version, header), shape_of(&by_sqlite));
    }
}
