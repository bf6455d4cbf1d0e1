//! The host's truth about each session, out of the guest's reach.
//!
//! Per session, `host-state/sessions/<group>/<session>/` holds `host.db`
//! (WAL, `synchronous=FULL`, host-only): every accepted inbound message,
//! every delivery record, host-originated messages, routing, destinations,
//! the publishing generation and the tamper events. The session folder's
//! `inbound.db` is a published copy of it, reached by SQLite only through the
//! hard link `published/inbound.db`; see [`crate::docs`] for the design.

mod adopt;
pub(crate) mod audit;
pub(crate) mod batch;
mod folder;
mod instance;
mod pool;
mod publish;
mod record;
mod tamper;
mod verify;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::error::{Error, Result};
use crate::layout::HostSessionState;
use crate::schema::{INBOUND_INDEXES, INBOUND_SCHEMA};
use crate::sqlite_util::OpenMode;
use crate::sqlite_util::template::{Template, write_new};

pub use tamper::TamperEvent;

/// Tables of `host.db` beyond the `inbound.db` schema it shares.
const HOST_SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS host_meta (
  id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL,
  adopted_from TEXT, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tamper_events (
  id INTEGER PRIMARY KEY, at TEXT NOT NULL, file TEXT NOT NULL, reason TEXT NOT NULL,
  moved_to TEXT, repair TEXT NOT NULL, acknowledged INTEGER NOT NULL DEFAULT 0);
";

/// `user_version` of an up-to-date `host.db`: 1 has [`INBOUND_INDEXES`].
const HOST_DB_VERSION: i64 = 1;

/// Brings an existing `host.db` up to date (under the session's file lock).
pub(crate) fn upgrade_host_db(conn: &Connection, path: &Path) -> Result<()> {
    let upgrade = || -> rusqlite::Result<()> {
        let version: i64 = conn
            .prepare_cached("PRAGMA user_version")?
            .query_row([], |r| r.get(0))?;
        if version < HOST_DB_VERSION {
            conn.execute_batch(INBOUND_INDEXES)?;
            conn.pragma_update(None, "user_version", HOST_DB_VERSION)?;
        }
        Ok(())
    };
    upgrade().map_err(|e| Error::sqlite(path, "adding host.db's indexes", e))
}

/// Host writers wait this long for another host process's `host.db` write.
const BUSY: Duration = Duration::from_secs(10);

/// Creates `host.db`'s tables (those of `inbound.db` and [`HOST_SCHEMA`])
/// and marks them current; the caller holds the transaction.
pub(crate) fn create_host_tables(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(INBOUND_SCHEMA)?;
    conn.execute_batch(INBOUND_INDEXES)?;
    conn.execute_batch(HOST_SCHEMA)?;
    conn.pragma_update(None, "user_version", HOST_DB_VERSION)
}

/// A new `host.db`: WAL mode, every table, no rows (no `host_meta`: the
/// first group commit sets up the session in it).
static HOST_DB_TEMPLATE: Template = Template::new("host-db", |path| {
    let conn = crate::sqlite_util::open_file(path, OpenMode::Create, Duration::from_secs(1))?;
    // A scratch file: nothing to sync. Closing it checkpoints the WAL into it.
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.execute_batch("BEGIN IMMEDIATE")?;
    create_host_tables(&conn)?;
    conn.execute_batch("COMMIT")?;
    conn.close().map_err(|(_, e)| e)
});

/// Makes a missing `host.db` from the template (synced: the WAL's commits
/// build on it), so SQLite neither switches it to WAL nor runs its schema.
/// Without a template SQLite makes the file as it opens it.
fn create_host_db(state: &HostSessionState, path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        _ => return Ok(()),
    }
    if let Some(bytes) = HOST_DB_TEMPLATE.bytes(state.dir()) {
        write_new(path, bytes, true)?;
    }
    Ok(())
}

/// Opens `host.db`, creating it (with its tables, from the template) when missing.
pub(crate) fn open_host_db(state: &HostSessionState) -> Result<Connection> {
    let path = state.host_db();
    create_host_db(state, &path)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let conn = Connection::open_with_flags(&path, flags)
        .and_then(|c| {
            c.busy_timeout(BUSY)?;
            // The host's truth: a commit returns only once it is on disk.
            c.pragma_update(None, "journal_mode", "WAL")?;
            c.pragma_update(None, "synchronous", "FULL")?;
            // Never memory-mapped, nor the published files attached to it.
            c.pragma_update(None, "mmap_size", 0)?;
            keep_wal_on_close(&c)?;
            Ok(c)
        })
        .map_err(|e| Error::sqlite(&path, "opening host.db", e))?;
    Ok(conn)
}

/// Idle `host.db` connections, most recently used last. `host.db` is
/// host-only, so a long-lived connection is allowed (invariant 2 is about
/// `inbound.db`); reusing one saves the directory fsync SQLite does on the
/// first WAL sync of every new connection.
type Pool = std::sync::Mutex<pool::IdlePool<Connection>>;

/// At most this many idle `host.db` connections are kept: two (one per
/// [`Role`]) per session a busy host writes to in turn (a smaller pool
/// evicts, round after round, the connection the next write needs), bounded
/// by the process's file limit (a pooled connection holds up to three
/// descriptors: up to 3/8 of the soft limit) and by memory.
fn pool_size() -> usize {
    static SIZE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| {
        let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        usize::try_from(soft / 8)
            .unwrap_or(usize::MAX)
            .clamp(128, 512)
    })
}

fn pool() -> &'static Pool {
    static POOL: std::sync::OnceLock<Pool> = std::sync::OnceLock::new();
    POOL.get_or_init(Default::default)
}

/// What a pooled `host.db` connection is used for. Publishing attaches and
/// detaches the published file, and a detach makes SQLite prepare every
/// statement of its connection again: kept apart, the writes' statements
/// stay prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Role {
    /// Group commits and reads.
    Writes,
    /// Copying committed rows into the published file.
    Publish,
}

/// An idle connection to the session's `host.db` for `role`, or a new one.
pub(crate) fn take(state: &HostSessionState, role: Role) -> Result<Connection> {
    let path = state.host_db();
    let reused = pool()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take(&path, role);
    match reused {
        // A file removed or replaced behind the pool's back is reopened.
        Some(conn) if path.exists() => Ok(conn),
        _ => open_host_db(state),
    }
}

/// An idle connection to the session's `host.db` for writes, or a new one.
pub(crate) fn take_host_db(state: &HostSessionState) -> Result<Connection> {
    take(state, Role::Writes)
}

/// Returns a connection (outside any transaction) to the pool.
pub(crate) fn give_back(state: &HostSessionState, conn: Connection) {
    give_back_as(state, Role::Writes, conn);
}

/// Returns a connection used for `role` to the pool.
pub(crate) fn give_back_as(state: &HostSessionState, role: Role, conn: Connection) {
    // Mid-transaction, or still holding a published file (a failed detach):
    // closed instead.
    if !conn.is_autocommit() || !publish::nothing_attached(&conn) {
        return;
    }
    let path = state.host_db();
    let evicted =
        pool()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(path, role, conn, pool_size());
    drop(evicted);
}

/// Connections to `host.db` open and close per operation; without this
/// every close would checkpoint the WAL (two more fsyncs per write). The
/// WAL is checkpointed by SQLite's automatic checkpoints instead.
pub(crate) fn keep_wal_on_close(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .map(drop)
}

/// The publishing generation, or `None` while `host.db` has not been set up.
pub(crate) fn generation(conn: &Connection, path: &Path) -> Result<Option<i64>> {
    let exists: bool = conn
        .prepare_cached("SELECT count(*) FROM sqlite_master WHERE name = 'host_meta'")
        .and_then(|mut stmt| stmt.query_row([], |r| r.get::<_, i64>(0).map(|n| n > 0)))
        .map_err(|e| Error::sqlite(path, "reading host.db's schema", e))?;
    if !exists {
        return Ok(None);
    }
    conn.prepare_cached("SELECT generation FROM host_meta WHERE id = 1")
        .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)).optional())
        .map_err(|e| Error::sqlite(path, "reading the publishing generation", e))
}

/// The `host.db` generation the last finished publish carried; `None` when
/// there is no record (never published, or the last publish failed).
pub(crate) fn published_generation(state: &HostSessionState) -> Option<i64> {
    record::load(state).map(|r| r.generation)
}

/// Which rows a batch changed, so only those are copied into `inbound.db`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    /// `messages_in` ids inserted or updated.
    pub(crate) messages: BTreeSet<String>,
    /// `delivered` ids inserted.
    pub(crate) delivered: BTreeSet<String>,
    /// `session_routing` was written.
    pub(crate) routing: bool,
    /// `destinations` was replaced.
    pub(crate) destinations: bool,
}

impl Changes {
    /// Whether nothing changed.
    pub(crate) fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.delivered.is_empty() && !self.routing && !self.destinations
    }

    /// Adds `other`'s changes to these.
    pub(crate) fn merge(&mut self, other: Changes) {
        self.messages.extend(other.messages);
        self.delivered.extend(other.delivered);
        self.routing |= other.routing;
        self.destinations |= other.destinations;
    }
}

/// Runs `f` on `host.db` for a read, setting the session up first (once)
/// if it has no `host.db` yet. Never touches the session folder otherwise.
pub(crate) fn read<T>(
    paths: &crate::layout::SessionPaths,
    state: &HostSessionState,
    context: &str,
    f: impl Fn(&Connection) -> rusqlite::Result<T>,
) -> Result<T> {
    let path = state.host_db();
    // A session whose folder is gone has no mailbox to show, whatever
    // host state remembers.
    if !paths.dir().is_dir() {
        return Err(Error::Missing {
            path: paths.inbound_db(),
        });
    }
    if crate::sqlite_util::is_read_only(state.dir()) {
        return read_only(paths, state, context, f);
    }
    heal_interrupted_publish(paths, state);
    let mut conn = None;
    if path.exists() {
        let c = take_host_db(state)?;
        match generation(&c, &path)? {
            Some(g) if record::load(state).is_some_and(|r| r.generation == g) => conn = Some(c),
            Some(_) => {
                // The folder's copy is not the last commit's: a host killed
                // (or a power cut) before its publish finished may have left
                // it torn, and the guest reads it meanwhile.
                give_back(state, c);
                repair_before_read(paths, state);
                conn = Some(take_host_db(state)?);
            }
            None => {}
        }
    }
    let conn = match conn {
        Some(c) => c,
        None => {
            batch::commit(paths, state, |_| Ok(()))?;
            take_host_db(state)?
        }
    };
    let value = f(&conn).map_err(|e| Error::sqlite(&path, context, e))?;
    give_back(state, conn);
    Ok(value)
}

/// Repairs the folder before a read when a journal sits beside its
/// `inbound.db`: a host killed while publishing leaves its placeholder
/// there, and every read-only guest then retries (SQLite sees a hot journal
/// it may not roll back) until the host writes to the session again, which
/// may be never. An empty write turn waits for any write under way (the
/// file lock), then verifies the folder: a leftover placeholder is removed,
/// a planted journal quarantined, a half-written file rebuilt.
pub(crate) fn heal_interrupted_publish(
    paths: &crate::layout::SessionPaths,
    state: &HostSessionState,
) {
    let journal = paths.dir().join(folder::JOURNAL);
    if std::fs::symlink_metadata(&journal).is_err()
        || !state.host_db().exists()
        || crate::sqlite_util::is_read_only(state.dir())
    {
        return;
    }
    repair_before_read(paths, state);
}

/// An empty write turn: it verifies and repairs the folder (and waits for a write under way).
fn repair_before_read(paths: &crate::layout::SessionPaths, state: &HostSessionState) {
    if let Err(e) = batch::commit(paths, state, |_| Ok(())) {
        // The read still answers from host.db; the next write repairs the folder.
        tracing::warn!(folder = %paths.dir().display(), error = %e, "could not repair the session folder before a read");
    }
}

/// Reads on a read-only data dir, where nothing can be adopted, repaired or
/// locked: `host.db` as it is, or, for a session whose folder was never
/// adopted into host state, the folder's `inbound.db` through a verified
/// snapshot (then the folder is all there is to show).
fn read_only<T>(
    paths: &crate::layout::SessionPaths,
    state: &HostSessionState,
    context: &str,
    f: impl Fn(&Connection) -> rusqlite::Result<T>,
) -> Result<T> {
    let path = state.host_db();
    if path.is_file() {
        let conn = crate::sqlite_util::open_read_only_wal(&path, BUSY)
            .map_err(|e| Error::sqlite(&path, "opening host.db read-only", e))?;
        return f(&conn).map_err(|e| Error::sqlite(&path, context, e));
    }
    let file = crate::sqlite_util::GuestDb {
        folder: paths.dir(),
        name: "inbound.db",
        scratch: state.dir(),
        single_name: false,
    };
    file.read(context, &f)?.ok_or(Error::Missing {
        path: paths.inbound_db(),
    })
}

/// The session's tamper events, oldest first.
pub(crate) fn tamper_events(
    paths: &crate::layout::SessionPaths,
    state: &HostSessionState,
) -> Result<Vec<TamperEvent>> {
    read(paths, state, "reading tamper events", tamper::list)
}

/// Acknowledges every tamper event of the session; returns how many were new.
pub(crate) fn acknowledge_tamper(
    paths: &crate::layout::SessionPaths,
    state: &HostSessionState,
) -> Result<usize> {
    read(
        paths,
        state,
        "acknowledging tamper events",
        tamper::acknowledge,
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Schema text, `user_version` and header bytes 18–19 (1: rollback
    /// journal, 2: WAL) of the database at `path`.
    pub(crate) fn shape_of(path: &Path) -> (Vec<String>, i64, [u8; 2]) {
        let conn = Connection::open(path).unwrap();
        let mut stmt = conn
            .prepare("SELECT type || ' ' || name || ': ' || coalesce(sql, '') FROM sqlite_master ORDER BY name")
            .unwrap();
        let schema = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let version = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        let header = std::fs::read(path).unwrap();
        (schema, version, [header[18], header[19]])
    }

    #[test]
    fn host_db_from_the_template_is_what_sqlite_makes_and_gets_set_up() {
        let dir = tempfile::tempdir().unwrap();
        let by_sqlite = dir.path().join("by-sqlite.db");
        let conn = Connection::open(&by_sqlite).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch("BEGIN").unwrap();
        create_host_tables(&conn).unwrap();
        conn.execute_batch("COMMIT").unwrap();
        drop(conn);
        let session = airlock_core::SessionRef::new("ag".parse().unwrap(), "s1".parse().unwrap());
        let state = crate::layout::HostStateRoot::new(dir.path().join("state")).session(&session);
        std::fs::create_dir_all(state.dir()).unwrap();
        let conn = open_host_db(&state).unwrap();
        let (schema, version, header) = shape_of(&state.host_db());
        assert_eq!((schema, version), {
            let (s, v, _) = shape_of(&by_sqlite);
            (s, v)
        });
        assert_eq!(header, [2, 2], "in WAL mode before its first commit");
        assert_eq!(generation(&conn, &state.host_db()).unwrap(), None);
        // Nothing but host.db and SQLite's own files is left in host state.
        let mut names: Vec<String> = std::fs::read_dir(state.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["host.db", "host.db-shm", "host.db-wal"]);
    }
}
