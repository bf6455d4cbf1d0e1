//! The host's side of a session mailbox: keeps its truth in `host.db`,
//! publishes `inbound.db`, reads `outbound.db`.
//!
//! [`HostMailbox`] is a cheap value (two paths); it holds no connection.
//! Every operation opens its files, does its work and closes them before
//! returning, so a long-lived host connection to `inbound.db` cannot be
//! made through it. The API is synchronous; async hosts call it from
//! `spawn_blocking`.

mod content;
mod create;
mod idle_memo;
mod inspect;
pub(crate) mod lock;
mod mount_nonce;
pub mod mount_rounds;
mod outbound;
mod outbound_page;
pub(crate) mod read;
mod requeue;
mod write;

use std::path::PathBuf;

pub use airlock_core::SeriesNext;
pub use content::{InboundContent, PlainContent};
pub use inspect::MailboxReport;
pub use mount_nonce::{
    ACK_FILE, MOUNT_CHECK_ROUNDS, MOUNT_NONCE_ENV, NONCE_FILE, SIZED_NONCE_FILE, start_mount_check,
    write_mount_nonce,
};
pub use outbound_page::{FileStamp, HostPage, PageLimits, file_stamp};
pub use write::DeliveredMark;

use crate::layout::{HostSessionState, SessionPaths};

/// The host's handle on one session's mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostMailbox {
    paths: SessionPaths,
    state: HostSessionState,
}

impl HostMailbox {
    /// A handle on the session folder `paths` with host-only state `state` (no I/O).
    ///
    /// Crate-private: outside callers go through [`MailboxRoots::host`](crate::MailboxRoots::host),
    /// so `state` is always the session's own (its lock and journal vetting).
    pub(crate) fn new(paths: SessionPaths, state: HostSessionState) -> Self {
        Self { paths, state }
    }

    /// The session folder's paths.
    pub fn paths(&self) -> &SessionPaths {
        &self.paths
    }

    /// The session's host-only state.
    pub fn host_state(&self) -> &HostSessionState {
        &self.state
    }

    /// Checks the session folder against host state and repairs it (O(1)
    /// unless something was changed); returns the tamper events found now.
    pub fn verify(&self) -> crate::error::Result<Vec<crate::host_state::TamperEvent>> {
        crate::host_state::batch::commit(&self.paths, &self.state, |tx| Ok(tx.tamper.to_vec()))
    }

    /// [`verify`](Self::verify) plus a row-by-row comparison of the published
    /// `inbound.db` with `host.db` (for `doctor`); returns the events found now.
    pub fn audit(&self) -> crate::error::Result<Vec<crate::host_state::TamperEvent>> {
        crate::host_state::audit::audit(&self.paths, &self.state)
    }

    /// Every tamper event recorded for this session, oldest first.
    pub fn tamper_events(&self) -> crate::error::Result<Vec<crate::host_state::TamperEvent>> {
        crate::host_state::tamper_events(&self.paths, &self.state)
    }

    /// Acknowledges every tamper event; returns how many were unacknowledged.
    pub fn acknowledge_tamper_events(&self) -> crate::error::Result<usize> {
        crate::host_state::acknowledge_tamper(&self.paths, &self.state)
    }

    /// Files moved into this session's quarantine folder, oldest first.
    pub fn quarantined_journals(&self) -> crate::error::Result<Vec<PathBuf>> {
        let dir = self.state.quarantine();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(crate::error::Error::io(&dir, e)),
        };
        let mut out: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        out.sort();
        Ok(out)
    }
}
