//! Negative controls: raw SQLite access patterns that break an invariant on purpose.
//!
//! Each must be caught by the harness; none of them is how airlock works.
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use airlock_core::Seq;
use rusqlite::{Connection, params};

use crate::pattern::{GuestSide, HostSide, Seen, SideResult, reply_id};
use crate::sql;

fn read_after(conn: &Connection, after: i64) -> rusqlite::Result<Vec<Seen>> {
    let mut stmt =
        conn.prepare_cached("SELECT id, seq FROM messages_in WHERE seq > ?1 ORDER BY seq")?;
    stmt.query_map([after], |r| {
        Ok(Seen {
            id: r.get(0)?,
            seq: r.get(1)?,
        })
    })?
    .collect()
}

fn max_seq(conn: &Connection, sql: &str) -> rusqlite::Result<Option<Seq>> {
    let max: Option<i64> = conn.query_row(sql, [], |r| r.get(0))?;
    Ok(max.map(Seq::new))
}

/// Inserts message `id` with the next host seq. The one writer of the file:
/// nothing moves the max between the two statements.
fn insert_message(conn: &Connection, id: &str, body: &str) -> rusqlite::Result<()> {
    let seq = Seq::next_host(max_seq(conn, "SELECT MAX(seq) FROM messages_in")?);
    conn.execute(
        "INSERT INTO messages_in (id, seq, kind, timestamp, series_id, content)
         VALUES (?1, ?2, 'chat', ?3, ?1, ?4)",
        params![id, seq.get(), sql::now_text(), body],
    )
    .map(drop)
}

fn insert_reply(conn: &Connection, to: &Seen) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    let max_out = max_seq(&tx, "SELECT MAX(seq) FROM messages_out")?;
    tx.execute(
        "INSERT INTO messages_out (id, seq, in_reply_to, timestamp, kind, content)
         VALUES (?1, ?2, ?3, ?4, 'chat', '{}')",
        params![
            reply_id(&to.id),
            Seq::next_guest(max_out.max(Some(Seq::new(to.seq)))).get(),
            to.id,
            sql::now_text()
        ],
    )?;
    tx.commit()
}

fn open_outbound(dir: &Path, journal: &str, synchronous: &str) -> SideResult<Connection> {
    let path = dir.join("outbound.db");
    let conn = sql::open(&path, sql::CREATE)?;
    conn.pragma_update(None, "journal_mode", journal)
        .and_then(|_| conn.pragma_update(None, "synchronous", synchronous))
        .and_then(|_| conn.execute_batch(sql::OUTBOUND_SCHEMA))
        .map_err(|e| sql::describe(&path, &e))?;
    Ok(conn)
}

fn advance(after: &mut i64, rows: Vec<Seen>) -> Vec<Seen> {
    if let Some(last) = rows.last() {
        *after = last.seq;
    }
    rows
}

/// NC1 host: WAL mode, one connection kept for the whole run.
#[derive(Debug, Default)]
pub struct WalHost {
    inbound: Option<Connection>,
    outbound: Option<Connection>,
}

impl HostSide for WalHost {
    fn init(&mut self, dir: &Path) -> SideResult<()> {
        let path = dir.join("inbound.db");
        let conn = sql::open(&path, sql::CREATE)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .and_then(|_| conn.execute_batch(sql::INBOUND_SCHEMA))
            .map_err(|e| sql::describe(&path, &e))?;
        self.inbound = Some(conn);
        Ok(())
    }

    fn write(&mut self, dir: &Path, id: &str, body: &str) -> SideResult<()> {
        let path = dir.join("inbound.db");
        let conn = self.inbound.as_ref().ok_or("WAL host not initialised")?;
        insert_message(conn, id, body).map_err(|e| sql::describe(&path, &e))
    }

    fn replies(&mut self, dir: &Path) -> SideResult<Vec<String>> {
        replies_of(&mut self.outbound, dir)
    }

    fn close(&mut self) {
        self.inbound = None;
        self.outbound = None;
    }
}

/// NC1 guest: long-lived read-only connection to `inbound.db`, long-lived WAL writer of `outbound.db`.
#[derive(Debug, Default)]
pub struct WalGuest {
    inbound: Option<Connection>,
    outbound: Option<Connection>,
    after: i64,
}

impl GuestSide for WalGuest {
    fn poll(&mut self, dir: &Path) -> SideResult<Vec<Seen>> {
        let path = dir.join("inbound.db");
        if self.inbound.is_none() {
            self.inbound = Some(sql::open(&path, sql::READ_ONLY)?);
        }
        let conn = self.inbound.as_ref().ok_or("no inbound connection")?;
        let rows = read_after(conn, self.after).map_err(|e| sql::describe(&path, &e))?;
        Ok(advance(&mut self.after, rows))
    }

    fn reply(&mut self, dir: &Path, to: &Seen) -> SideResult<()> {
        if self.outbound.is_none() {
            self.outbound = Some(open_outbound(dir, "WAL", "NORMAL")?);
        }
        let conn = self.outbound.as_ref().ok_or("no outbound connection")?;
        insert_reply(conn, to).map_err(|e| sql::describe(&dir.join("outbound.db"), &e))
    }

    fn retries(&self) -> BTreeMap<String, u64> {
        BTreeMap::new()
    }

    fn close(&mut self) {
        self.inbound = None;
        self.outbound = None;
    }
}

/// How long an NC3 host write keeps its transaction open for the guest to
/// roll it back: well past any accepted mount's attribute timeout (1 s, the
/// longest a guest may take to see the journal appear), with room for a poll
/// of a guest under software emulation.
pub const NC3_HOLD_LIMIT: Duration = Duration::from_secs(10);

/// Transactions an NC3 write begins at most: one is begun again when the
/// guest rolled its journal back before the transaction's pages reached the
/// file (nothing was lost yet, so that was no collision).
const NC3_ATTEMPTS: usize = 5;

/// How one held NC3 write ended.
enum Window {
    /// The guest rolled the host's journal back while the host's pages were
    /// in the file; the host then committed.
    RolledBack,
    /// No guest touched the journal within [`NC3_HOLD_LIMIT`]; committed as usual.
    Expired,
    /// The journal went before the host's pages reached the file; rolled back, to begin again.
    Early,
}

/// NC3 host: plain SQLite that keeps its rollback journal in the session
/// folder (`journal_mode=TRUNCATE`, one connection per write).
///
/// Every write is a handshake through the folder instead of a race: the host
/// inserts the row, flushes the transaction's pages into `inbound.db`
/// (`sqlite3_db_cacheflush`, what SQLite does itself when a transaction
/// outgrows its cache), so the journal beside it is hot, and keeps the
/// transaction open until that journal is gone, which only a guest's
/// rollback does, before it commits. A read-write guest that opens the file
/// meanwhile sees no lock (locks do not cross the mount), takes the journal
/// for a crashed writer's and restores the old pages; the host's commit then
/// succeeds and the committed row is not in the file. (A `DELETE`-mode host
/// fails that commit with an I/O error instead, since its journal is gone.)
/// airlock's own host journals nothing in the folder (`airlock_sqlite_fs::docs`).
#[derive(Debug, Default)]
pub struct JournalHost {
    outbound: Option<Connection>,
    rolled_back: usize,
    expired: usize,
    early: usize,
}

impl JournalHost {
    fn open(path: &Path, flags: rusqlite::OpenFlags) -> SideResult<Connection> {
        let conn = sql::open(path, flags)?;
        conn.pragma_update(None, "journal_mode", "TRUNCATE")
            .and_then(|_| conn.pragma_update(None, "synchronous", "FULL"))
            .map_err(|e| sql::describe(path, &e))?;
        Ok(conn)
    }

    /// One transaction held open until a guest rolls it back or the limit passes.
    fn held_write(dir: &Path, id: &str, body: &str) -> SideResult<Window> {
        let path = dir.join("inbound.db");
        let conn = Self::open(&path, sql::READ_WRITE)?;
        let fail = |e: rusqlite::Error| sql::describe(&path, &e);
        conn.execute_batch("BEGIN IMMEDIATE").map_err(fail)?;
        insert_message(&conn, id, body).map_err(fail)?;
        conn.cache_flush().map_err(fail)?;
        let journal = dir.join("inbound.db-journal");
        let identity = |m: &std::fs::Metadata| (m.dev(), m.ino());
        let ours = match std::fs::symlink_metadata(&journal) {
            Ok(m) if m.len() > 0 => identity(&m),
            _ => {
                conn.execute_batch("ROLLBACK").map_err(fail)?;
                return Ok(Window::Early);
            }
        };
        let until = Instant::now() + NC3_HOLD_LIMIT;
        let window = loop {
            match std::fs::symlink_metadata(&journal) {
                Ok(m) if identity(&m) == ours && m.len() > 0 => {}
                _ => break Window::RolledBack,
            }
            if Instant::now() >= until {
                break Window::Expired;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        conn.execute_batch("COMMIT").map_err(fail)?;
        Ok(window)
    }
}

impl HostSide for JournalHost {
    fn init(&mut self, dir: &Path) -> SideResult<()> {
        let path = dir.join("inbound.db");
        let conn = Self::open(&path, sql::CREATE)?;
        conn.execute_batch(sql::INBOUND_SCHEMA)
            .map_err(|e| sql::describe(&path, &e))
    }

    fn write(&mut self, dir: &Path, id: &str, body: &str) -> SideResult<()> {
        for _ in 0..NC3_ATTEMPTS {
            match Self::held_write(dir, id, body)? {
                Window::RolledBack => self.rolled_back += 1,
                Window::Expired => self.expired += 1,
                Window::Early => {
                    self.early += 1;
                    continue;
                }
            }
            return Ok(());
        }
        Err(format!(
            "{id}: the guest rolled back {NC3_ATTEMPTS} transactions before their pages were written"
        ))
    }

    fn replies(&mut self, dir: &Path) -> SideResult<Vec<String>> {
        replies_of(&mut self.outbound, dir)
    }

    fn note(&self) -> Option<String> {
        Some(format!(
            "held writes: {} rolled back by the guest, {} untouched in {} s, {} begun again",
            self.rolled_back,
            self.expired,
            NC3_HOLD_LIMIT.as_secs(),
            self.early
        ))
    }

    fn close(&mut self) {
        self.outbound = None;
    }
}

/// Reply ids in `outbound.db` through a connection kept in `slot` (none while the file is absent).
fn replies_of(slot: &mut Option<Connection>, dir: &Path) -> SideResult<Vec<String>> {
    let path = dir.join("outbound.db");
    if slot.is_none() {
        if !path.exists() {
            return Ok(Vec::new());
        }
        *slot = Some(sql::open(&path, sql::READ_ONLY)?);
    }
    let conn = slot.as_ref().ok_or("no outbound connection")?;
    conn.prepare_cached("SELECT id FROM messages_out ORDER BY seq")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| sql::describe(&path, &e))
}

/// NC3 guest: opens `inbound.db` read-write for every poll (and "rolls back" a journal it finds hot).
#[derive(Debug, Default)]
pub struct ReadWriteGuest {
    after: i64,
}

impl GuestSide for ReadWriteGuest {
    fn poll(&mut self, dir: &Path) -> SideResult<Vec<Seen>> {
        let path = dir.join("inbound.db");
        let conn = sql::open(&path, sql::READ_WRITE)?;
        let rows = read_after(&conn, self.after).map_err(|e| sql::describe(&path, &e))?;
        Ok(advance(&mut self.after, rows))
    }

    fn reply(&mut self, dir: &Path, to: &Seen) -> SideResult<()> {
        let conn = open_outbound(dir, "DELETE", "FULL")?;
        insert_reply(&conn, to).map_err(|e| sql::describe(&dir.join("outbound.db"), &e))
    }

    fn retries(&self) -> BTreeMap<String, u64> {
        BTreeMap::new()
    }
}

/// NC4 guest: reads like airlock, but writes replies through one long-lived
/// connection with `synchronous=OFF`, so nothing forces its pages out of a
/// writeback cache.
#[derive(Debug, Default)]
pub struct LongLivedWriterGuest {
    reader: crate::airlock::AirlockGuest,
    outbound: Option<Connection>,
    after: i64,
}

impl GuestSide for LongLivedWriterGuest {
    fn poll(&mut self, dir: &Path) -> SideResult<Vec<Seen>> {
        let rows = self.reader.poll(dir)?;
        let rows: Vec<Seen> = rows.into_iter().filter(|s| s.seq > self.after).collect();
        Ok(advance(&mut self.after, rows))
    }

    fn reply(&mut self, dir: &Path, to: &Seen) -> SideResult<()> {
        if self.outbound.is_none() {
            self.outbound = Some(open_outbound(dir, "DELETE", "OFF")?);
        }
        let conn = self.outbound.as_ref().ok_or("no outbound connection")?;
        insert_reply(conn, to).map_err(|e| sql::describe(&dir.join("outbound.db"), &e))
    }

    fn retries(&self) -> BTreeMap<String, u64> {
        self.reader.retries()
    }

    fn close(&mut self) {
        self.outbound = None;
    }
}
