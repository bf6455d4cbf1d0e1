//! Where session folders and host-only state live on disk.
//!
//! Paths are built only from validated ids ([`SessionRef`], [`MessageId`]),
//! so no path here can leave its root.

use std::path::{Path, PathBuf};

use airlock_core::{MessageId, SessionRef};

use crate::error::{Error, Result};

/// Folder name of the sessions root under the data dir (the reference's name).
pub const SESSIONS_DIR: &str = "v2-sessions";
/// Folder name of the host-only state under the data dir.
pub const HOST_STATE_DIR: &str = "host-state";

/// The root holding `<agent_group>/<session>/` folders (mounted into guests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionsRoot(PathBuf);

impl SessionsRoot {
    /// A sessions root at an explicit path.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self(path.into())
    }

    /// The default root, `<data_dir>/v2-sessions`.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self(data_dir.join(SESSIONS_DIR))
    }

    /// The root folder.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The paths of one session's folder.
    pub fn session(&self, session: &SessionRef) -> SessionPaths {
        SessionPaths {
            dir: self
                .0
                .join(session.agent_group.as_str())
                .join(session.session.as_str()),
        }
    }
}

/// The files of one session folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPaths {
    dir: PathBuf,
}

impl SessionPaths {
    /// Paths of a session folder given directly (the guest knows only its own folder).
    pub fn from_dir(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The session folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `inbound.db` (host writes, guest reads).
    pub fn inbound_db(&self) -> PathBuf {
        self.dir.join("inbound.db")
    }

    /// `inbound.db-journal`, SQLite's rollback journal of `inbound.db`.
    pub fn inbound_journal(&self) -> PathBuf {
        self.dir.join("inbound.db-journal")
    }

    /// `outbound.db` (guest writes, host reads).
    pub fn outbound_db(&self) -> PathBuf {
        self.dir.join("outbound.db")
    }

    /// `outbound.db-journal`.
    pub fn outbound_journal(&self) -> PathBuf {
        self.dir.join("outbound.db-journal")
    }

    /// `.heartbeat`, whose mtime is the guest's liveness signal.
    pub fn heartbeat(&self) -> PathBuf {
        self.dir.join(".heartbeat")
    }

    /// `inbox/`.
    pub fn inbox(&self) -> PathBuf {
        self.dir.join("inbox")
    }

    /// `outbox/`.
    pub fn outbox(&self) -> PathBuf {
        self.dir.join("outbox")
    }

    /// `inbox/<message_id>/`.
    pub fn inbox_message(&self, id: &MessageId) -> PathBuf {
        self.inbox().join(id.as_str())
    }

    /// `outbox/<message_id>/`.
    pub fn outbox_message(&self, id: &MessageId) -> PathBuf {
        self.outbox().join(id.as_str())
    }
}

/// Host-only state (locks, `host.db`, the published file's own name and
/// record, quarantined files): `<data_dir>/host-state`, outside the sessions root, never
/// mounted into a guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostStateRoot(PathBuf);

impl HostStateRoot {
    /// A host state root at an explicit path; keep it outside every mounted folder.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self(path.into())
    }

    /// The default, `<data_dir>/host-state`.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self(data_dir.join(HOST_STATE_DIR))
    }

    /// The root folder.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The host-only state of one session.
    pub fn session(&self, session: &SessionRef) -> HostSessionState {
        HostSessionState {
            dir: self
                .0
                .join("sessions")
                .join(session.agent_group.as_str())
                .join(session.session.as_str()),
        }
    }
}

/// Host-only files of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSessionState {
    dir: PathBuf,
}

impl HostSessionState {
    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The advisory lock file serialising host writers across processes.
    pub fn lock_file(&self) -> PathBuf {
        self.dir.join("inbound.lock")
    }

    /// `host.db`: the host's truth about this session (WAL, host-only).
    pub fn host_db(&self) -> PathBuf {
        self.dir.join("host.db")
    }

    /// The folder holding the host's own name of the published `inbound.db`.
    pub fn published_dir(&self) -> PathBuf {
        self.dir.join("published")
    }

    /// A hard link to the session folder's `inbound.db`: the only name by
    /// which SQLite reaches the published file, so the guest cannot swap
    /// what SQLite opens (or plant the journal SQLite looks for).
    pub fn published_db(&self) -> PathBuf {
        self.published_dir().join("inbound.db")
    }

    /// The identity of the published file after the host's last commit.
    pub fn published_record(&self) -> PathBuf {
        self.dir.join("published.record")
    }

    /// Where files the host did not write are moved (tamper events).
    pub fn quarantine(&self) -> PathBuf {
        self.dir.join("quarantine")
    }

    /// The host's placeholder journal between two writes (see
    /// `host_state::publish`): moved into the folder and back, not made anew.
    pub fn placeholder_journal(&self) -> PathBuf {
        self.dir.join("placeholder.journal")
    }

    /// Creates the folder (and `published/`) if needed; `quarantine/` is
    /// made by the first quarantine.
    pub fn ensure(&self) -> Result<()> {
        let dir = self.published_dir();
        // A look first: `mkdir` of an existing folder locks its parent,
        // and this runs before every write.
        if !dir.is_dir() {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        Ok(())
    }
}

/// Both roots, as derived from one data dir.
#[derive(Debug, Clone, PartialEq, Eq)]
///
/// The fields are private so that every value went through [`MailboxRoots::new`]'s
/// check (or is derived from one data dir), and a session's host state is
/// always the one its lock and journal vetting use.
///
/// ```compile_fail
/// use airlock_sqlite_fs::{HostStateRoot, MailboxRoots, SessionsRoot};
/// // Host state inside the mounted folder, past `new`'s check: refused by the compiler.
/// let roots = MailboxRoots {
///     sessions: SessionsRoot::new("/data/v2-sessions"),
///     host_state: HostStateRoot::new("/data/v2-sessions/x"),
/// };
/// ```
///
/// ```compile_fail
/// use airlock_sqlite_fs::{HostMailbox, HostSessionState, SessionPaths};
/// // Another session's host state for this folder: `HostMailbox::new` is crate-private.
/// fn forge(paths: SessionPaths, state: HostSessionState) -> HostMailbox {
///     HostMailbox::new(paths, state)
/// }
/// ```
pub struct MailboxRoots {
    sessions: SessionsRoot,
    host_state: HostStateRoot,
}

impl MailboxRoots {
    /// Session folders (mounted into guests).
    pub fn sessions(&self) -> &SessionsRoot {
        &self.sessions
    }

    /// Host-only state.
    pub fn host_state(&self) -> &HostStateRoot {
        &self.host_state
    }

    /// Explicit roots; refuses a host state root inside the sessions root
    /// (that folder is mounted into guests, and host-only state must not be).
    pub fn new(sessions: SessionsRoot, host_state: HostStateRoot) -> Result<Self> {
        if host_state.path().starts_with(sessions.path()) {
            return Err(Error::InvalidInput(format!(
                "host state root {} is inside the sessions root {}, which guests can reach",
                host_state.path().display(),
                sessions.path().display()
            )));
        }
        Ok(Self {
            sessions,
            host_state,
        })
    }

    /// `<data_dir>/v2-sessions` and `<data_dir>/host-state`.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self {
            sessions: SessionsRoot::in_data_dir(data_dir),
            host_state: HostStateRoot::in_data_dir(data_dir),
        }
    }

    /// The host's handle on one session's mailbox (no I/O).
    #[cfg(feature = "host")]
    pub fn host(&self, session: &SessionRef) -> crate::host::HostMailbox {
        crate::host::HostMailbox::new(
            self.sessions.session(session),
            self.host_state.session(session),
        )
    }

    /// Creates the session's folder and both databases if needed (idempotent)
    /// and returns the host's handle on it.
    #[cfg(feature = "host")]
    pub fn create_session(&self, session: &SessionRef) -> Result<crate::host::HostMailbox> {
        let mailbox = self.host(session);
        mailbox.create()?;
        Ok(mailbox)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_state_inside_the_sessions_root_is_refused() {
        let sessions = SessionsRoot::new("/data/v2-sessions");
        let err = MailboxRoots::new(sessions.clone(), HostStateRoot::new("/data/v2-sessions/x"))
            .unwrap_err();
        assert!(err.to_string().contains("guests can reach"), "{err}");
        MailboxRoots::new(sessions, HostStateRoot::new("/data/host-state")).unwrap();
    }

    #[test]
    fn paths_follow_the_reference_layout() {
        let roots = MailboxRoots::in_data_dir(Path::new("/d"));
        let session = SessionRef::new("ag".parse().unwrap(), "s1".parse().unwrap());
        let paths = roots.sessions.session(&session);
        assert_eq!(
            paths.inbound_db(),
            Path::new("/d/v2-sessions/ag/s1/inbound.db")
        );
        assert_eq!(
            paths.outbound_db(),
            Path::new("/d/v2-sessions/ag/s1/outbound.db")
        );
        assert_eq!(
            paths.heartbeat(),
            Path::new("/d/v2-sessions/ag/s1/.heartbeat")
        );
        let id: MessageId = "m1".parse().unwrap();
        assert_eq!(
            paths.inbox_message(&id),
            Path::new("/d/v2-sessions/ag/s1/inbox/m1")
        );
        assert_eq!(
            paths.outbox_message(&id),
            Path::new("/d/v2-sessions/ag/s1/outbox/m1")
        );
        let state = roots.host_state.session(&session);
        assert_eq!(
            state.lock_file(),
            Path::new("/d/host-state/sessions/ag/s1/inbound.lock")
        );
    }
}
