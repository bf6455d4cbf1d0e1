//! Negative controls: raw SQLite access patterns that break an invariant on purpose.
//!
//! Each must be caught by the harness; none of them is how airlock works.
use std::collections::BTreeMap;
use std::path::Path;

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
        let insert = || {
            // The one writer of this file: nothing moves the max between the two statements.
            let seq = Seq::next_host(max_seq(conn, "SELECT MAX(seq) FROM messages_in")?);
            conn.execute(
                "INSERT INTO messages_in (id, seq, kind, timestamp, series_id, content)
                 VALUES (?1, ?2, 'chat', ?3, ?1, ?4)",
                params![id, seq.get(), sql::now_text(), body],
            )
        };
        insert().map(|_| ()).map_err(|e| sql::describe(&path, &e))
    }

    fn replies(&mut self, dir: &Path) -> SideResult<Vec<String>> {
        let path = dir.join("outbound.db");
        if self.outbound.is_none() {
            if !path.exists() {
                return Ok(Vec::new());
            }
            self.outbound = Some(sql::open(&path, sql::READ_ONLY)?);
        }
        let conn = self.outbound.as_ref().ok_or("no outbound connection")?;
        conn.prepare_cached("SELECT id FROM messages_out ORDER BY seq")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(|e| sql::describe(&path, &e))
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

/// NC3 guest: opens `inbound.db` read-write for every poll (and may "roll back" the host's journal).
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
