//! Durable delivery state in host-only `host-state/delivery.db`: per-session
//! cursors and file stamps, the queue of messages waiting past their cursor
//! (scheduled for later, or backing off after a transient failure), and dead
//! letters. Host-only, so WAL and one long-lived connection are fine here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use airlock_core::mailbox::Origin;
use airlock_core::{Error, Result};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cursors (
  session_id TEXT PRIMARY KEY,
  agent_group_id TEXT NOT NULL,
  guest_seq INTEGER NOT NULL DEFAULT 0,
  host_seq INTEGER NOT NULL DEFAULT 0,
  guest_stamp TEXT,
  host_stamp TEXT,
  hold_until INTEGER);
CREATE TABLE IF NOT EXISTS queue (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  session_id TEXT NOT NULL,
  agent_group_id TEXT NOT NULL,
  origin TEXT NOT NULL,
  seq INTEGER NOT NULL,
  message_id TEXT NOT NULL,
  state TEXT NOT NULL,
  due_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  first_failed_at INTEGER,
  last_error TEXT,
  reason TEXT,
  updated_at INTEGER NOT NULL,
  UNIQUE (session_id, origin, seq));
CREATE INDEX IF NOT EXISTS queue_waiting ON queue (session_id, state, seq);
CREATE TABLE IF NOT EXISTS unsettled (
  session_id TEXT NOT NULL,
  origin TEXT NOT NULL,
  seq INTEGER NOT NULL,
  message_id TEXT NOT NULL,
  platform_message_id TEXT,
  PRIMARY KEY (session_id, origin, seq));
";

/// Where a session's delivery stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// Highest guest seq handled (delivered, queued or skipped).
    pub guest_seq: i64,
    /// Highest `messages_in` seq scanned for host-originated messages.
    pub host_seq: i64,
    /// `outbound.db` stamp when everything up to `guest_seq` was handled.
    pub guest_stamp: Option<String>,
    /// `inbound.db` stamp when everything up to `host_seq` was handled.
    pub host_stamp: Option<String>,
    /// No delivery for this session before this time (millis): a message is backing off.
    pub hold_until: Option<i64>,
}

/// A queued message: waiting (scheduled or backing off) or dead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueuedMessage {
    /// The dead-letter id `airlock failures retry/purge` take.
    pub id: i64,
    /// The session.
    pub session_id: String,
    /// Its agent group.
    pub agent_group_id: String,
    /// Who wrote the message.
    pub origin: Origin,
    /// The message's seq.
    pub seq: i64,
    /// The message's id (guest-written text).
    pub message_id: String,
    /// `waiting` or `dead`.
    pub state: String,
    /// When it is due (millis).
    pub due_at: i64,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When it first failed (millis).
    pub first_failed_at: Option<i64>,
    /// The adapter's last error.
    pub last_error: Option<String>,
    /// Why it was dead-lettered.
    pub reason: Option<String>,
}

pub(super) fn origin_text(origin: Origin) -> &'static str {
    match origin {
        Origin::Guest => "guest",
        Origin::Host => "host",
    }
}

fn queued_row(r: &Row<'_>) -> rusqlite::Result<QueuedMessage> {
    let origin: String = r.get(3)?;
    Ok(QueuedMessage {
        id: r.get(0)?,
        session_id: r.get(1)?,
        agent_group_id: r.get(2)?,
        origin: if origin == "host" {
            Origin::Host
        } else {
            Origin::Guest
        },
        seq: r.get(4)?,
        message_id: r.get(5)?,
        state: r.get(6)?,
        due_at: r.get(7)?,
        attempts: r.get::<_, i64>(8)?.clamp(0, i64::from(u32::MAX)) as u32,
        first_failed_at: r.get(9)?,
        last_error: r.get(10)?,
        reason: r.get(11)?,
    })
}

const QUEUED: &str =
    "SELECT id, session_id, agent_group_id, origin, seq, message_id, state, due_at,
    attempts, first_failed_at, last_error, reason FROM queue";

/// A message's identity inside its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    pub session: String,
    pub agent_group: String,
    pub origin: Origin,
    pub seq: i64,
    pub message_id: String,
}

/// What a failed attempt leaves behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Try again at `due_at`; the session holds until then.
    Retry {
        attempts: u32,
        first_failed_at: i64,
        due_at: i64,
        error: String,
    },
    /// Dead-lettered.
    Dead {
        attempts: u32,
        first_failed_at: i64,
        error: String,
        reason: String,
    },
}

/// The delivery store; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct DeliveryState {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl DeliveryState {
    /// Opens (creating) `path` in WAL mode.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let ctx = |e| Error::backend("sqlite", format!("opening {}", path.display()), e);
        let conn = Connection::open(path).map_err(ctx)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(ctx)?;
        // Several deliverer processes may open a new file at the same instant.
        let mut tries = 0;
        loop {
            let set = conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
                .and_then(|_| conn.pragma_update(None, "synchronous", "NORMAL"))
                .and_then(|()| conn.execute_batch(SCHEMA));
            match set {
                Ok(()) => break,
                Err(e)
                    if tries < 50
                        && e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) =>
                {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(ctx(e)),
            }
        }
        Ok(Self {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    pub(super) fn with<T>(
        &self,
        context: &str,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn).map_err(|e| {
            Error::backend("sqlite", format!("{context} in {}", self.path.display()), e)
        })
    }

    /// Every session's cursor, in one read (an idle pass needs no more).
    pub(crate) fn cursors(&self, only: Option<&str>) -> Result<HashMap<String, Cursor>> {
        self.with("reading cursors", |c| {
            const COLUMNS: &str =
                "SELECT session_id, guest_seq, host_seq, guest_stamp, host_stamp, hold_until FROM cursors";
            let row = |r: &rusqlite::Row<'_>| Ok((r.get::<_, String>(0)?, cursor_row(r, 1)?));
            match only {
                None => c.prepare_cached(COLUMNS)?.query_map([], row)?.collect(),
                Some(id) => c
                    .prepare_cached(&format!("{COLUMNS} WHERE session_id = ?1"))?
                    .query_map([id], row)?
                    .collect(),
            }
        })
    }

    /// The earliest due time of each session's waiting messages (now, for
    /// a session with unsettled deliveries); of `only` when given.
    pub(crate) fn wake_times(&self, only: Option<&str>) -> Result<HashMap<String, i64>> {
        self.with("reading due times", |c| {
            let (waiting, unsettled) = match only {
                None => (
                    "SELECT session_id, MIN(due_at) FROM queue WHERE state = 'waiting' GROUP BY session_id",
                    "SELECT DISTINCT session_id FROM unsettled",
                ),
                Some(_) => (
                    "SELECT session_id, MIN(due_at) FROM queue WHERE state = 'waiting' AND session_id = ?1 GROUP BY session_id",
                    "SELECT DISTINCT session_id FROM unsettled WHERE session_id = ?1",
                ),
            };
            let args: &[&dyn rusqlite::ToSql] = match &only {
                None => &[],
                Some(id) => &[id],
            };
            let mut due: HashMap<String, i64> = c
                .prepare_cached(waiting)?
                .query_map(args, |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            // A delivery left unsettled by a crash makes its session due now.
            let mut stmt = c.prepare_cached(unsettled)?;
            for session in stmt.query_map(args, |r| r.get::<_, String>(0))? {
                due.insert(session?, 0);
            }
            Ok(due)
        })
    }

    /// One session's cursor, read fresh (under its lease).
    pub(crate) fn cursor(&self, session: &str) -> Result<Cursor> {
        self.with("reading a cursor", |c| {
            c.query_row(
                "SELECT guest_seq, host_seq, guest_stamp, host_stamp, hold_until FROM cursors WHERE session_id = ?1",
                [session],
                |r| cursor_row(r, 0),
            )
            .optional()
            .map(Option::unwrap_or_default)
        })
    }

    /// Waiting messages of `session` due at `now` (all of them when
    /// `ignore_backoff`), in seq order.
    pub(crate) fn due_queue(
        &self,
        session: &str,
        now: i64,
        ignore_backoff: bool,
    ) -> Result<Vec<QueuedMessage>> {
        self.with("reading the queue", |c| {
            let mut stmt = c.prepare(&format!(
                "{QUEUED} WHERE session_id = ?1 AND state = 'waiting' AND (due_at <= ?2 OR (?3 AND attempts > 0))
                 ORDER BY seq"
            ))?;
            let rows = stmt.query_map(params![session, now, ignore_backoff], queued_row)?;
            rows.collect()
        })
    }

    /// Moves the cursor of `key.origin` to `key.seq` (never back).
    pub(crate) fn advance(&self, key: &Key) -> Result<()> {
        self.with("advancing a cursor", |c| advance(c, key))
    }

    /// Moves the host cursor to `seq` without a message (rows there are not host messages).
    pub(crate) fn advance_host_to(&self, session: &str, agent_group: &str, seq: i64) -> Result<()> {
        let key = Key {
            session: session.to_owned(),
            agent_group: agent_group.to_owned(),
            origin: Origin::Host,
            seq,
            message_id: String::new(),
        };
        self.advance(&key)
    }

    /// Records the stamps under which everything up to the cursors was handled.
    pub(crate) fn set_stamps(
        &self,
        session: &str,
        agent_group: &str,
        guest: &str,
        host: &str,
    ) -> Result<()> {
        self.with("storing stamps", |c| {
            c.execute(
                "INSERT INTO cursors (session_id, agent_group_id, guest_stamp, host_stamp) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(session_id) DO UPDATE SET guest_stamp = ?3, host_stamp = ?4",
                params![session, agent_group, guest, host],
            )
            .map(drop)
        })
    }

    /// Queues a message that is due later and moves the cursor past it.
    pub(crate) fn defer(&self, key: &Key, due_at: i64, now: i64) -> Result<()> {
        self.with("scheduling a message", |c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO queue (session_id, agent_group_id, origin, seq, message_id, state, due_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'waiting', ?6, ?7)
                 ON CONFLICT(session_id, origin, seq) DO NOTHING",
                params![key.session, key.agent_group, origin_text(key.origin), key.seq, key.message_id, due_at, now],
            )?;
            advance(&tx, key)?;
            tx.commit()
        })
    }

    /// Records a delivered message: its queue row goes, the cursor passes it,
    /// the session's hold ends, and it waits in `unsettled` until
    /// `inbound.db` records it and its outbox is cleared (see `settle`).
    pub(crate) fn delivered(&self, key: &Key, platform_message_id: Option<&str>) -> Result<()> {
        self.with("recording a delivery", |c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT OR REPLACE INTO unsettled (session_id, origin, seq, message_id, platform_message_id)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![key.session, origin_text(key.origin), key.seq, key.message_id, platform_message_id],
            )?;
            tx.execute(
                "DELETE FROM queue WHERE session_id = ?1 AND origin = ?2 AND seq = ?3",
                params![key.session, origin_text(key.origin), key.seq],
            )?;
            advance(&tx, key)?;
            tx.execute(
                "UPDATE cursors SET hold_until = NULL WHERE session_id = ?1",
                [&key.session],
            )?;
            tx.commit()
        })
    }

    /// Records a failed attempt (see [`Failure`]) and moves the cursor past it.
    pub(crate) fn failed(&self, key: &Key, failure: &Failure, now: i64) -> Result<()> {
        let (state, attempts, first, due, error, reason, hold) = match failure {
            Failure::Retry {
                attempts,
                first_failed_at,
                due_at,
                error,
            } => (
                "waiting",
                *attempts,
                *first_failed_at,
                *due_at,
                error,
                None,
                Some(*due_at),
            ),
            Failure::Dead {
                attempts,
                first_failed_at,
                error,
                reason,
            } => (
                "dead",
                *attempts,
                *first_failed_at,
                now,
                error,
                Some(reason),
                None,
            ),
        };
        self.with("recording a failed delivery", |c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO queue (session_id, agent_group_id, origin, seq, message_id, state, due_at,
                   attempts, first_failed_at, last_error, reason, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT(session_id, origin, seq) DO UPDATE SET state = ?6, due_at = ?7, attempts = ?8,
                   first_failed_at = ?9, last_error = ?10, reason = ?11, updated_at = ?12",
                params![
                    key.session, key.agent_group, origin_text(key.origin), key.seq, key.message_id,
                    state, due, attempts, first, error, reason, now
                ],
            )?;
            advance(&tx, key)?;
            tx.execute(
                "UPDATE cursors SET hold_until = ?2 WHERE session_id = ?1",
                params![key.session, hold],
            )?;
            tx.commit()
        })
    }

    /// Forgets a queued message whose row is gone from the mailbox.
    pub(crate) fn drop_queued(&self, id: i64) -> Result<()> {
        self.with("dropping a queued message", |c| {
            c.execute("DELETE FROM queue WHERE id = ?1", [id]).map(drop)
        })
    }

    /// Dead letters, oldest first, of one session or all.
    pub fn dead_letters(&self, session: Option<&str>) -> Result<Vec<QueuedMessage>> {
        self.with("listing dead letters", |c| {
            let mut stmt = c.prepare(&format!(
                "{QUEUED} WHERE state = 'dead' AND (?1 IS NULL OR session_id = ?1) ORDER BY id"
            ))?;
            let rows = stmt.query_map([session], queued_row)?;
            rows.collect()
        })
    }

    /// Re-queues dead letter `id` as due now with a fresh attempt count.
    pub fn requeue(&self, id: i64, now: i64) -> Result<QueuedMessage> {
        let row = self.dead_letter(id)?;
        self.with("re-queueing a dead letter", |c| {
            c.execute(
                "UPDATE queue SET state = 'waiting', due_at = ?2, attempts = 0, first_failed_at = NULL,
                   reason = NULL, updated_at = ?2 WHERE id = ?1",
                params![id, now],
            )
            .map(drop)
        })?;
        Ok(row)
    }

    /// Drops dead letter `id`; returns what it was.
    pub fn purge(&self, id: i64) -> Result<QueuedMessage> {
        let row = self.dead_letter(id)?;
        self.drop_queued(id)?;
        Ok(row)
    }

    fn dead_letter(&self, id: i64) -> Result<QueuedMessage> {
        self.with("reading a dead letter", |c| {
            c.query_row(
                &format!("{QUEUED} WHERE id = ?1 AND state = 'dead'"),
                [id],
                queued_row,
            )
            .optional()
        })?
        .ok_or_else(|| Error::not_found("dead letter", id))
    }
}

fn cursor_row(r: &Row<'_>, at: usize) -> rusqlite::Result<Cursor> {
    Ok(Cursor {
        guest_seq: r.get(at)?,
        host_seq: r.get(at + 1)?,
        guest_stamp: r.get(at + 2)?,
        host_stamp: r.get(at + 3)?,
        hold_until: r.get(at + 4)?,
    })
}

fn advance(c: &Connection, key: &Key) -> rusqlite::Result<()> {
    let column = match key.origin {
        Origin::Guest => "guest_seq",
        Origin::Host => "host_seq",
    };
    c.execute(
        &format!(
            "INSERT INTO cursors (session_id, agent_group_id, {column}) VALUES (?1, ?2, ?3)
             ON CONFLICT(session_id) DO UPDATE SET {column} = MAX({column}, ?3)"
        ),
        params![key.session, key.agent_group, key.seq],
    )
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(session: &str, seq: i64) -> Key {
        Key {
            session: session.into(),
            agent_group: "ag".into(),
            origin: Origin::Guest,
            seq,
            message_id: format!("{session}-{seq}"),
        }
    }

    #[test]
    fn hints_of_one_session_are_that_sessions_only() {
        let dir = tempfile::tempdir().unwrap();
        let state = DeliveryState::open(&dir.path().join("delivery.db")).unwrap();
        for (session, due) in [("s1", 10), ("s2", 20)] {
            state.set_stamps(session, "ag", "g", "h").unwrap();
            state.defer(&key(session, 1), due, 0).unwrap();
        }
        state.delivered(&key("s2", 3), None).unwrap();
        let all = (
            state.cursors(None).unwrap(),
            state.wake_times(None).unwrap(),
        );
        assert_eq!(all.0.len(), 2);
        assert_eq!(all.1, HashMap::from([("s1".into(), 10), ("s2".into(), 0)]));
        let one = (
            state.cursors(Some("s1")).unwrap(),
            state.wake_times(Some("s1")).unwrap(),
        );
        assert_eq!(one.0.keys().collect::<Vec<_>>(), ["s1"]);
        assert_eq!(one.0["s1"], all.0["s1"]);
        assert_eq!(one.1, HashMap::from([("s1".into(), 10)]));
        // The unsettled delivery makes s2 due now, read alone too.
        assert_eq!(
            state.wake_times(Some("s2")).unwrap(),
            HashMap::from([("s2".into(), 0)])
        );
        assert!(state.cursors(Some("s3")).unwrap().is_empty());
    }
}
