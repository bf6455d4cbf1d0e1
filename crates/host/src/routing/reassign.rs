//! `reassign`: the operator's explicit move of sessions to the host that
//! runs it, only for sessions whose folder that host can reach.
//!
//! The new owner runs it. Reachable means: in this host's sessions root,
//! the session's folder is a real directory (no symlink on the way from the
//! sessions root) holding `inbound.db` and `outbound.db` as regular SQLite
//! files, as a shared mount or a copy of the old owner's folder gives it.
//! Nothing else is checked here (`airlock doctor` is the full check) and
//! nothing in the folder is touched, so a dry run changes nothing at all.
//! A session whose owner still holds a live lease is refused too (see
//! [`PgRouteQueue::reassign`]). The moved sessions' queued messages wait for
//! this host, whose [`Drainer`](super::pg::Drainer) applies them exactly once
//! (the mailbox recognises a message the old owner already stored).

use std::io::Read;
use std::path::Path;

use airlock_core::{Error, Result, Session, SessionFilter, SessionId};
use airlock_postgres::{Drained, PgRouteQueue};
use serde::Serialize;

use crate::SessionManager;

/// What reassigning one session did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reassignment {
    /// The session.
    pub session: String,
    /// Its owner before (`None`: no owner, or an unknown session).
    pub from: Option<String>,
    /// The outcome.
    #[serde(flatten)]
    pub outcome: ReassignOutcome,
}

/// The outcome of reassigning one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReassignOutcome {
    /// Now owned by this host; `queued` messages now wait for it.
    Moved {
        /// Queued messages moved with it.
        queued: u64,
    },
    /// A dry run: it would be moved with `queued` messages.
    WouldMove {
        /// Queued messages that would move with it.
        queued: u64,
    },
    /// This host owns it already; nothing to do.
    AlreadyOwned,
    /// Not moved, and why.
    Refused {
        /// What stands in the way.
        reason: String,
    },
}

impl Reassignment {
    /// Whether the session was refused.
    pub fn is_refused(&self) -> bool {
        matches!(self.outcome, ReassignOutcome::Refused { .. })
    }
}

/// What [`Reassigner::take_over`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakeOver {
    /// Per session, in the order given.
    pub sessions: Vec<Reassignment>,
    /// The drain that followed (`None`: nothing moved, nothing drained).
    pub drained: Option<Drained>,
}

/// Moves sessions to the host of `manager` (see the module docs).
#[derive(Debug, Clone)]
pub struct Reassigner {
    manager: SessionManager,
    queue: PgRouteQueue,
    me: String,
}

impl Reassigner {
    /// Reassigns to `manager`'s host, which needs a host id.
    pub fn new(manager: SessionManager, queue: PgRouteQueue) -> Result<Self> {
        let me = manager.host_id().map(str::to_owned).ok_or_else(|| {
            Error::InvalidInput(
                "reassigning sessions needs a host id (--host-id): the new owner runs it".into(),
            )
        })?;
        Ok(Self { manager, queue, me })
    }

    /// The sessions `host` owns, by id (what `--from HOST` reassigns).
    pub async fn sessions_of(&self, host: &str) -> Result<Vec<SessionId>> {
        let filter = SessionFilter {
            owner_host: Some(host.to_owned()),
            ..SessionFilter::default()
        };
        let mut ids: Vec<SessionId> = self
            .manager
            .store()
            .list_sessions(filter)
            .await?
            .into_iter()
            .map(|s| s.id)
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The operator's command: reassigns `sessions` (see
    /// [`reassign_all`](Self::reassign_all)), then, unless nothing moved,
    /// applies this host's queue at once ([`Drainer::drain_once`]), the moved
    /// messages included, as this host's running drainer would.
    ///
    /// [`Drainer::drain_once`]: super::pg::Drainer::drain_once
    pub async fn take_over(&self, sessions: &[SessionId], dry_run: bool) -> Result<TakeOver> {
        let sessions = self.reassign_all(sessions, dry_run).await?;
        let moved = sessions
            .iter()
            .any(|r| matches!(r.outcome, ReassignOutcome::Moved { .. }));
        let drained = if moved {
            let drainer = super::pg::Drainer::new(self.manager.clone(), self.queue.clone())?;
            Some(drainer.drain_once().await?)
        } else {
            None
        };
        Ok(TakeOver { sessions, drained })
    }

    /// Reassigns each of `sessions` in turn; one refusal does not stop the
    /// others. Errors only when the registry fails.
    pub async fn reassign_all(
        &self,
        sessions: &[SessionId],
        dry_run: bool,
    ) -> Result<Vec<Reassignment>> {
        let mut done = Vec::with_capacity(sessions.len());
        for id in sessions {
            done.push(self.reassign(id, dry_run).await?);
        }
        Ok(done)
    }

    /// Reassigns `id` to this host unless its folder is out of reach here
    /// or its owner is still live (outcome `Refused`).
    pub async fn reassign(&self, id: &SessionId, dry_run: bool) -> Result<Reassignment> {
        let refused = |from: Option<String>, reason: String| Reassignment {
            session: id.to_string(),
            from,
            outcome: ReassignOutcome::Refused { reason },
        };
        let session = match self.manager.store().session(id).await {
            Ok(session) => session,
            Err(e) if e.is_not_found() => {
                return Ok(refused(None, "no such session in the registry".into()));
            }
            Err(e) => return Err(e),
        };
        let from = session.owner_host.clone();
        if from.as_deref() == Some(self.me.as_str()) {
            return Ok(Reassignment {
                session: id.to_string(),
                from,
                outcome: ReassignOutcome::AlreadyOwned,
            });
        }
        if let Err(reason) = self.reachable(&session).await {
            return Ok(refused(from, reason));
        }
        match self
            .queue
            .reassign(id, from.as_deref(), &self.me, dry_run)
            .await
        {
            Ok(handover) => Ok(Reassignment {
                session: id.to_string(),
                from,
                outcome: if dry_run {
                    ReassignOutcome::WouldMove {
                        queued: handover.queued,
                    }
                } else {
                    ReassignOutcome::Moved {
                        queued: handover.queued,
                    }
                },
            }),
            // A live owner, an owner changed meanwhile, a session removed
            // meanwhile: that session's refusal, not the command's failure.
            Err(e @ (Error::Conflict(_) | Error::NotFound { .. })) => {
                Ok(refused(from, e.to_string()))
            }
            Err(e) => Err(e),
        }
    }

    /// `Err(why)` unless this host's copy of `session`'s folder is usable.
    async fn reachable(&self, session: &Session) -> std::result::Result<(), String> {
        let root = self.manager.roots().sessions().path().to_path_buf();
        let paths = self.manager.mailbox(session).paths().clone();
        let owner = session
            .owner_host
            .as_deref()
            .map_or("no host".into(), |h| format!("host {h}"));
        tokio::task::spawn_blocking(move || check_folder(&root, paths.dir(), &owner))
            .await
            .map_err(|e| format!("checking the folder failed: {e}"))?
    }
}

/// The checks of the module docs, on `dir` below `root`.
fn check_folder(root: &Path, dir: &Path, owner: &str) -> std::result::Result<(), String> {
    let shown = dir.display();
    let below = dir.strip_prefix(root).map_err(|_| {
        format!(
            "its folder {shown} is outside the sessions root {}",
            root.display()
        )
    })?;
    let mut at = root.to_path_buf();
    for part in below.components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_dir() => {}
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(format!(
                    "{} is a symlink; the folder must be in this host's sessions root itself",
                    at.display()
                ));
            }
            Ok(_) => return Err(format!("{} is not a directory", at.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!(
                    "its folder {shown} is not on this host: mount or copy the folder of {owner} \
                     there first"
                ));
            }
            Err(e) => return Err(format!("cannot read {}: {e}", at.display())),
        }
    }
    for name in ["inbound.db", "outbound.db"] {
        let file = dir.join(name);
        is_sqlite_file(&file).map_err(|why| {
            format!("its folder {shown} has no usable {name} ({why}): not a session folder")
        })?;
    }
    Ok(())
}

/// `Err(why)` unless `file` is a regular file (not a symlink) starting with
/// SQLite's header.
fn is_sqlite_file(file: &Path) -> std::result::Result<(), String> {
    use rustix::fs::{Mode, OFlags};
    // NONBLOCK: a FIFO in its place must not hang the command.
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::open(file, flags, Mode::empty()).map_err(|e| match e {
        rustix::io::Errno::NOENT => "missing".to_owned(),
        rustix::io::Errno::LOOP => "a symlink".to_owned(),
        e => format!("cannot be opened: {e}"),
    })?;
    let mut opened = std::fs::File::from(fd);
    let meta = opened
        .metadata()
        .map_err(|e| format!("cannot be read: {e}"))?;
    if !meta.file_type().is_file() {
        return Err("not a regular file".into());
    }
    const HEADER: &[u8; 16] = b"SQLite format 3\0";
    let mut head = [0u8; 16];
    opened
        .read_exact(&mut head)
        .map_err(|_| "too short for a SQLite database".to_owned())?;
    if &head != HEADER {
        return Err("not a SQLite database".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_file(path: &Path) {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch("CREATE TABLE t (x)").unwrap();
    }

    #[test]
    fn a_folder_is_reachable_only_with_both_mailboxes_as_real_sqlite_files() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("g/s1");
        let missing = check_folder(root.path(), &dir, "host a").unwrap_err();
        assert!(missing.contains("is not on this host"), "{missing}");

        std::fs::create_dir_all(&dir).unwrap();
        sqlite_file(&dir.join("inbound.db"));
        let no_outbound = check_folder(root.path(), &dir, "host a").unwrap_err();
        assert!(
            no_outbound.contains("no usable outbound.db (missing)"),
            "{no_outbound}"
        );

        std::fs::write(dir.join("outbound.db"), b"not a database at all").unwrap();
        let garbage = check_folder(root.path(), &dir, "host a").unwrap_err();
        assert!(garbage.contains("(not a SQLite database)"), "{garbage}");

        std::fs::remove_file(dir.join("outbound.db")).unwrap();
        sqlite_file(&dir.join("outbound.db"));
        check_folder(root.path(), &dir, "host a").unwrap();

        // A symlinked folder leads outside this host's sessions root.
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::rename(&dir, elsewhere.path().join("s2")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path().join("s2"), &dir).unwrap();
        let linked = check_folder(root.path(), &dir, "host a").unwrap_err();
        assert!(linked.contains("is a symlink"), "{linked}");
    }
}
