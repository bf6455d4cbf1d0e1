//! The default wiring: a [`SessionManager`] over SQLite-file mailboxes in a
//! data dir (`v2-sessions/` mounted into guests, `host-state/` for the host
//! alone), and the accessors the CLI and file-level tests use to reach
//! those files. The only place outside the CLI that names `airlock-sqlite-fs`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use airlock_core::{Session, SessionRef, SessionStore};
use airlock_sqlite_fs::attachments::AttachmentLimits;
use airlock_sqlite_fs::mailbox_impl::SqliteMailboxes;
use airlock_sqlite_fs::{HostMailbox, MailboxRoots};

use crate::SessionManager;

/// Where a [`SessionManager`] keeps its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerConfig {
    /// The data dir: `v2-sessions/` (mounted into guests) and `host-state/`
    /// (host only) live here.
    pub data_dir: PathBuf,
    /// Recorded as `owner_host` of sessions this manager creates.
    pub host_id: Option<String>,
    /// Size caps of inbound attachments and outbox files (the default
    /// wiring's mailboxes).
    pub limits: AttachmentLimits,
    /// At most one `last_active` write per session per this interval (the
    /// newest touch is written when it ends; zero writes every touch).
    pub last_active_interval: Duration,
}

impl ManagerConfig {
    /// Files under `data_dir`, no owner host.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            host_id: None,
            limits: AttachmentLimits::default(),
            last_active_interval: Duration::from_secs(1),
        }
    }
}

impl SessionManager {
    /// A manager over `store`, with SQLite-file mailboxes under
    /// `config.data_dir` (resolved once here: symlinks in its own path are
    /// followed, none below it).
    pub fn new(store: Arc<dyn SessionStore>, mut config: ManagerConfig) -> Self {
        config.data_dir = airlock_sqlite_fs::canonical_dir(&config.data_dir);
        let roots = MailboxRoots::in_data_dir(&config.data_dir);
        let state_dir = roots.host_state().path().to_path_buf();
        let mailboxes = Arc::new(SqliteMailboxes::new(roots, config.limits));
        Self::with_state_dir(store, mailboxes, config, state_dir)
    }

    /// The session folder and host-state roots of the default wiring.
    pub fn roots(&self) -> MailboxRoots {
        MailboxRoots::in_data_dir(self.data_dir())
    }

    /// The default wiring's SQLite-file mailbox of `session`, for the CLI
    /// and file-level tests (no I/O).
    pub fn mailbox(&self, session: &Session) -> HostMailbox {
        self.roots().host(&SessionRef::from(session))
    }

    /// The folder of `session` in the default wiring.
    pub fn session_dir(&self, session: &Session) -> PathBuf {
        self.mailbox(session).paths().dir().to_path_buf()
    }
}
