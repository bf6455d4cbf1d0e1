//! A health report of one mailbox, for `airlock doctor`.

use std::path::PathBuf;
use std::time::Duration;

use airlock_core::Timestamp;

use super::HostMailbox;
use crate::error::{Error, Result};
use crate::sqlite_util::{DbHeader, FileState, check_regular_or_absent, read_header};
use crate::sqlite_util::{OpenMode, open_file};

/// What `doctor` shows about one session's mailbox files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxReport {
    /// Header of `inbound.db` (journal kind, change counter); `None` if absent or empty.
    pub inbound_header: Option<DbHeader>,
    /// Header of `outbound.db`.
    pub outbound_header: Option<DbHeader>,
    /// `PRAGMA quick_check` of `inbound.db` (`"ok"` when healthy).
    pub inbound_check: String,
    /// `PRAGMA quick_check` of `outbound.db`, or why it could not run.
    pub outbound_check: String,
    /// Whether `outbound.db-journal` exists (hot if the guest is stopped).
    pub outbound_journal_present: bool,
    /// Files moved into quarantine so far.
    pub quarantined: Vec<PathBuf>,
    /// Tamper events not yet acknowledged.
    pub unacknowledged_tamper_events: usize,
    /// Age of `.heartbeat`.
    pub heartbeat_age: Option<Duration>,
}

impl HostMailbox {
    /// Checks both files without changing the guest's (the published
    /// `inbound.db` is verified and repaired as by any host operation, and
    /// read only through the host's own link).
    pub fn inspect(&self, now: Timestamp) -> Result<MailboxReport> {
        self.verify()?;
        let link = self.state.published_db();
        let inbound_check = open_file(&link, OpenMode::ReadOnly, Duration::from_secs(2))
            .and_then(|c| c.query_row("PRAGMA quick_check", [], |r| r.get::<_, String>(0)))
            .map_err(|e| Error::sqlite(&link, "checking inbound.db", e))?;
        let outbound_check = match self.read_outbound("checking outbound.db", |conn| {
            conn.query_row("PRAGMA quick_check", [], |r| r.get::<_, String>(0))
        }) {
            Ok(Some(text)) => text,
            Ok(None) => "absent".to_owned(),
            Err(e) => e.to_string(),
        };
        let header = |path: PathBuf| read_header(&path).map_err(|e| Error::io(&path, e));
        Ok(MailboxReport {
            inbound_header: header(self.paths.inbound_db())?,
            outbound_header: header(self.paths.outbound_db()).unwrap_or(None),
            inbound_check,
            outbound_check,
            outbound_journal_present: !matches!(
                check_regular_or_absent(&self.paths.outbound_journal()),
                Ok(FileState::Absent)
            ),
            quarantined: self.quarantined_journals()?,
            unacknowledged_tamper_events: self
                .tamper_events()?
                .iter()
                .filter(|e| !e.acknowledged)
                .count(),
            heartbeat_age: self.heartbeat_age(now)?,
        })
    }
}
