//! Group commit: host writes to one session that arrive while a commit is
//! in flight go into the next `host.db` transaction together.
//!
//! A caller that finds no batch in progress becomes the leader: it takes
//! the session's file lock, verifies the folder, opens one `host.db`
//! transaction and takes every queued job (bounded). Each job runs on its
//! own caller's thread, in queue order, inside its own savepoint (so one
//! job's error undoes only that job); the leader then commits once (the
//! durability point), publishes the changed rows once, and wakes every
//! caller. Nobody returns before the transaction holding its job is durable.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};

use rusqlite::Connection;

use super::folder::Folder;
use super::tamper::{self, TamperEvent};
use super::{
    Changes, adopt, generation, give_back, publish, record, take_host_db, upgrade_host_db, verify,
};
use crate::error::{Error, Result};
use crate::host::lock::FileLock;
use crate::layout::{HostSessionState, SessionPaths};

/// At most this many jobs go into one transaction.
const MAX_BATCH: usize = 256;

/// What a job sees: `host.db` inside the batch's transaction.
pub(crate) struct Tx<'a> {
    /// `host.db`, inside this job's savepoint.
    pub(crate) conn: &'a Connection,
    /// Rows this job changed (copied into `inbound.db` after the commit).
    pub(crate) changes: Changes,
    /// Tamper events the batch's check found before any job ran.
    pub(crate) tamper: &'a [TamperEvent],
    /// `host.db`, for error context.
    pub(crate) path: PathBuf,
}

struct Open {
    conn: Connection,
    changes: Changes,
    tamper: Vec<TamperEvent>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    queue: VecDeque<u64>,
    leading: bool,
    leader: Option<u64>,
    turn: Option<u64>,
    open: Option<Open>,
    executed: HashSet<u64>,
    finished: HashMap<u64, Outcome>,
    /// Each waiting caller's own condition variable: a change wakes only
    /// the caller it concerns (waking all sixteen writers of a busy session
    /// on every turn cost more CPU than their jobs).
    waiting: HashMap<u64, Arc<Condvar>>,
}

impl Inner {
    fn wake(&self, job: u64) {
        if let Some(cv) = self.waiting.get(&job) {
            cv.notify_one();
        }
    }
}

/// How a group commit ended for its jobs: the leader's error and its
/// storage fault, if it failed.
type Outcome = std::result::Result<(), (String, Option<airlock_core::StorageFault>)>;

#[derive(Default)]
struct Shared {
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn wait<'a>(cv: &Condvar, g: MutexGuard<'a, Inner>) -> MutexGuard<'a, Inner> {
    cv.wait(g).unwrap_or_else(|p| p.into_inner())
}

/// A caller's place among the waiters, given up however it returns.
struct Waiting<'a> {
    shared: &'a Shared,
    me: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.shared.lock().waiting.remove(&self.me);
    }
}

type Sessions = Mutex<HashMap<PathBuf, Weak<Shared>>>;

fn shared_for(key: PathBuf) -> Arc<Shared> {
    static SESSIONS: OnceLock<Sessions> = OnceLock::new();
    let mut map = SESSIONS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(s) = map.get(&key).and_then(Weak::upgrade) {
        return s;
    }
    if map.len() > 1024 {
        map.retain(|_, s| s.strong_count() > 0);
    }
    let s = Arc::new(Shared::default());
    map.insert(key, Arc::downgrade(&s));
    s
}

/// Runs `f` in the session's next group commit and returns once that
/// commit is durable in `host.db` (and published, best effort).
pub(crate) fn commit<T>(
    paths: &SessionPaths,
    state: &HostSessionState,
    f: impl FnOnce(&mut Tx<'_>) -> Result<T>,
) -> Result<T> {
    let shared = shared_for(state.dir().to_path_buf());
    let mut f = Some(f);
    let mut mine: Option<Result<T>> = None;
    let cv = Arc::new(Condvar::new());
    let mut g = shared.lock();
    let me = g.next;
    g.next += 1;
    g.queue.push_back(me);
    g.waiting.insert(me, cv.clone());
    let _waiting = Waiting {
        shared: &shared,
        me,
    };
    loop {
        if let Some(end) = g.finished.remove(&me) {
            // Before `_waiting` takes the lock to leave.
            drop(g);
            let result = mine.unwrap_or_else(|| Err(lost(state)));
            return match (end, result) {
                (Ok(()), r) | (Err(_), r @ Err(_)) => r,
                (Err((reason, fault)), Ok(_)) => Err(Error::CommitFailed {
                    path: state.host_db(),
                    reason,
                    fault,
                }),
            };
        }
        if g.turn == Some(me) {
            let open = g.open.take();
            drop(g);
            let mut turn = Turn {
                shared: &shared,
                me,
                open,
            };
            if let (Some(open), Some(f)) = (turn.open.as_mut(), f.take()) {
                mine = Some(run_job(open, state, f));
            }
            drop(turn);
            g = shared.lock();
            continue;
        }
        if !g.leading {
            g.leading = true;
            g.leader = Some(me);
            drop(g);
            let f = f.take().ok_or_else(|| lost(state))?;
            return lead(&shared, me, &cv, paths, state, f);
        }
        g = wait(&cv, g);
    }
}

fn lost(state: &HostSessionState) -> Error {
    Error::CommitFailed {
        path: state.host_db(),
        reason: "the job was lost (a panic in another writer)".into(),
        fault: None,
    }
}

/// Hands the batch back to the leader when a follower's turn ends, even by panic.
struct Turn<'a> {
    shared: &'a Shared,
    me: u64,
    open: Option<Open>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut g = self.shared.lock();
        g.open = self.open.take();
        g.turn = None;
        g.executed.insert(self.me);
        if let Some(leader) = g.leader {
            g.wake(leader);
        }
    }
}

/// One job in its own savepoint; its changes count only if it succeeds.
fn run_job<T>(
    open: &mut Open,
    state: &HostSessionState,
    f: impl FnOnce(&mut Tx<'_>) -> Result<T>,
) -> Result<T> {
    let path = state.host_db();
    open.conn
        .prepare_cached("SAVEPOINT job")
        .and_then(|mut s| s.execute([]))
        .map_err(|e| Error::sqlite(&path, "starting a write", e))?;
    struct Undo<'c>(&'c Connection, bool);
    impl Drop for Undo<'_> {
        fn drop(&mut self) {
            if self.1 {
                let _ = self.0.execute_batch("ROLLBACK TO job; RELEASE job");
            }
        }
    }
    let mut undo = Undo(&open.conn, true);
    let mut tx = Tx {
        conn: &open.conn,
        changes: Changes::default(),
        tamper: &open.tamper,
        path: path.clone(),
    };
    let result = f(&mut tx);
    let changes = tx.changes;
    if result.is_ok() {
        open.conn
            .prepare_cached("RELEASE job")
            .and_then(|mut s| s.execute([]))
            .map_err(|e| Error::sqlite(&path, "finishing a write", e))?;
        undo.1 = false;
        drop(undo);
        open.changes.merge(changes);
    }
    result
}

/// Clears `leading` and settles every job the leader took, even by panic.
struct Leading<'a> {
    shared: &'a Shared,
    taken: Vec<u64>,
    outcome: Outcome,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        let mut g = self.shared.lock();
        let outcome = if std::thread::panicking() {
            Err(("the leading writer panicked".to_owned(), None))
        } else {
            self.outcome.clone()
        };
        for j in self.taken.drain(..) {
            g.executed.remove(&j);
            g.finished.insert(j, outcome.clone());
            g.wake(j);
        }
        g.leading = false;
        g.leader = None;
        g.turn = None;
        // The next caller in line leads the next batch.
        if let Some(&next) = g.queue.front() {
            g.wake(next);
        }
    }
}

fn lead<T>(
    shared: &Shared,
    me: u64,
    cv: &Condvar,
    paths: &SessionPaths,
    state: &HostSessionState,
    f: impl FnOnce(&mut Tx<'_>) -> Result<T>,
) -> Result<T> {
    let mut leading = Leading {
        shared,
        taken: Vec::new(),
        outcome: Err((
            "the leading writer failed before committing".to_owned(),
            None,
        )),
    };
    let prepared = prepare(paths, state).and_then(|p| {
        p.conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut s| s.execute([]))
            .map_err(|e| Error::sqlite(state.host_db(), "starting a group commit", e))
            .map(|_| p)
    });
    let Prepared {
        lock,
        folder,
        conn,
        tamper,
        generation: before,
    } = match prepared {
        Ok(p) => p,
        Err(e) => {
            // Only this caller fails; the queued ones lead in turn.
            shared.lock().queue.retain(|j| *j != me);
            return Err(e);
        }
    };
    let jobs = {
        let mut g = shared.lock();
        let n = g.queue.len().min(MAX_BATCH);
        let mut jobs: Vec<u64> = g.queue.drain(..n).collect();
        if !jobs.contains(&me) {
            g.queue.retain(|j| *j != me);
            jobs.push(me);
        }
        g.open = Some(Open {
            conn,
            changes: Changes::default(),
            tamper,
        });
        leading.taken = jobs.clone();
        jobs
    };
    let mut f = Some(f);
    let mut mine = None;
    for job in jobs {
        let mut g = shared.lock();
        if job == me {
            let mut open = g.open.take().ok_or_else(|| lost(state))?;
            drop(g);
            if let Some(f) = f.take() {
                mine = Some(run_job(&mut open, state, f));
            }
            shared.lock().open = Some(open);
            continue;
        }
        g.turn = Some(job);
        g.wake(job);
        while !g.executed.contains(&job) {
            g = wait(cv, g);
        }
    }
    let Open {
        conn,
        changes,
        mut tamper,
    } = shared.lock().open.take().ok_or_else(|| lost(state))?;
    let path = state.host_db();
    let committed = (|| -> rusqlite::Result<i64> {
        if !changes.is_empty() {
            conn.prepare_cached("UPDATE host_meta SET generation = generation + 1")?
                .execute([])?;
        }
        conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(before + i64::from(!changes.is_empty()))
    })();
    let after = match committed {
        Ok(g) => {
            leading.outcome = Ok(());
            g
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            let err = Error::sqlite(&path, "committing host.db", e);
            // Followers keep the cause's kind: a full disk stays "disk full".
            leading.outcome = Err((err.to_string(), err.storage_fault()));
            return match mine {
                Some(Err(own)) => Err(own),
                _ => Err(err),
            };
        }
    };
    if !changes.is_empty() {
        // host.db is the truth and now durable: a failed publish is
        // repaired (rebuilt) by the next operation, never reported as a
        // lost write.
        match publish::publish(&folder, state, &changes) {
            Ok(mut events) => {
                if record::save(state, after).is_err() {
                    record::clear(state);
                }
                tamper.append(&mut events);
            }
            Err(e) => {
                // The record no longer matches host.db: the next operation
                // rebuilds, and nothing memoised on it stays valid.
                record::clear(state);
                tracing::warn!(error = %e, "inbound.db not published");
            }
        }
        let mut late: Vec<TamperEvent> = tamper.iter().filter(|e| e.id == 0).cloned().collect();
        if let Err(e) = tamper::store(&conn, &mut late) {
            tracing::warn!(error = %e, "tamper events not recorded");
        }
    }
    give_back(state, conn);
    drop(lock);
    drop(leading);
    mine.unwrap_or_else(|| Err(lost(state)))
}

struct Prepared {
    lock: FileLock,
    folder: Folder,
    conn: Connection,
    tamper: Vec<TamperEvent>,
    generation: i64,
}

/// Under the file lock: `host.db` set up (adopting the folder once), the
/// folder checked and repaired, the events recorded.
fn prepare(paths: &SessionPaths, state: &HostSessionState) -> Result<Prepared> {
    let lock = FileLock::acquire(state)?;
    let folder = match Folder::open(paths.dir()) {
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Missing {
                path: paths.inbound_db(),
            });
        }
        other => other?,
    };
    let conn = take_host_db(state)?;
    let path = state.host_db();
    let (generation, empty) = match generation(&conn, &path)? {
        Some(g) => {
            upgrade_host_db(&conn, &path)?;
            (g, false)
        }
        None => (0, !adopt::adopt(&conn, &folder, state)?),
    };
    let mut tamper = verify::verify_and_repair(&folder, state, generation, empty)?;
    tamper::store(&conn, &mut tamper)
        .map_err(|e| Error::sqlite(&path, "recording tamper events", e))?;
    Ok(Prepared {
        lock,
        folder,
        conn,
        tamper,
        generation,
    })
}
