//! The guest's side of a session mailbox: reads `inbound.db` read-only per
//! poll, owns and writes `outbound.db`. Synchronous (guests may not run tokio).
//!
//! No function here can open `inbound.db` read-write: across a lock-less
//! mount such an open "rolls back" the host's committed transactions.

mod idle;
pub(crate) mod inbound;
mod mount_check;
pub use inbound::DEFAULT_POLL_LIMIT;
pub use mount_check::{
    DEFAULT_MOUNT_CHECK_TIMEOUT, MountCheckError, StaleMount, check_mount, check_mount_from_env,
};
mod outbound;
mod reply;
mod routing;
pub use routing::AGENT_CHANNEL;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::error::Result;
use crate::layout::SessionPaths;
use crate::sqlite_util::{RetryStats, RetryStatsSnapshot};

/// The guest's handle on its session folder.
#[derive(Debug)]
pub struct GuestMailbox {
    paths: SessionPaths,
    first_poll: AtomicBool,
    stats: RetryStats,
    idle: idle::IdleMemo,
}

impl GuestMailbox {
    /// Opens the session folder: creates or migrates `outbound.db` (the
    /// guest owns it) and deletes `processing` acks a crashed predecessor left.
    pub fn open(session_dir: impl AsRef<Path>) -> Result<GuestMailbox> {
        let mailbox = GuestMailbox {
            paths: SessionPaths::from_dir(session_dir.as_ref()),
            first_poll: AtomicBool::new(true),
            stats: RetryStats::default(),
            idle: idle::IdleMemo::default(),
        };
        mailbox.prepare_outbound()?;
        mailbox.clear_stale_processing()?;
        Ok(mailbox)
    }

    /// The session folder's paths.
    pub fn paths(&self) -> &SessionPaths {
        &self.paths
    }

    /// The session folder.
    pub fn dir(&self) -> PathBuf {
        self.paths.dir().to_path_buf()
    }

    /// How often transient errors were retried, by kind (for the cross-mount harness).
    pub fn retry_stats(&self) -> RetryStatsSnapshot {
        self.stats.snapshot()
    }

    /// Touches `.heartbeat` (creates it, then sets its mtime to now).
    pub fn touch_heartbeat(&self) -> Result<()> {
        let path = self.paths.heartbeat();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| crate::error::Error::io(&path, e))?;
        file.set_modified(std::time::SystemTime::now())
            .map_err(|e| crate::error::Error::io(&path, e))
    }
}
