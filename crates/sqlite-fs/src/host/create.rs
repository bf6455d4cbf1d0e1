//! Creating a session folder: `inbound.db`, `outbound.db`, `inbox/`, `outbox/` (idempotent).

use std::time::Duration;

use rustix::fs::{CWD, RenameFlags, renameat_with};

use super::HostMailbox;
use super::inbound::with_inbound;
use super::journal::{finish_intent, vet_inbound_journal, write_intent};
use super::lock::SessionLock;
use crate::error::{Error, Result};
use crate::schema::{migrate_inbound, migrate_outbound};
use crate::sqlite_util::{FileState, OpenMode, check_regular_or_absent, open_file};

impl HostMailbox {
    /// Creates the folder, both databases (exact schemas, `DELETE` mode),
    /// `inbox/` and `outbox/` where missing; brings an existing
    /// `inbound.db` up to date. An existing `outbound.db` is left alone (the
    /// guest owns it and migrates it itself).
    pub fn create(&self) -> Result<()> {
        let dir = self.paths.dir();
        for d in [dir.to_path_buf(), self.paths.inbox(), self.paths.outbox()] {
            std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
        }
        self.create_inbound()?;
        // Run the ordinary open once: vets, converts and migrates.
        with_inbound(&self.paths, &self.state, |_| Ok(()))?;
        self.create_outbound()
    }

    fn create_inbound(&self) -> Result<()> {
        let path = self.paths.inbound_db();
        let _lock = SessionLock::acquire(&self.state)?;
        if check_regular_or_absent(&path)? != FileState::Absent {
            return Ok(());
        }
        vet_inbound_journal(&self.paths, &self.state)?;
        write_intent(&self.paths, &self.state)?;
        let mut conn = open_file(&path, OpenMode::Create, Duration::from_secs(10))
            .map_err(|e| Error::sqlite(&path, "creating inbound.db", e))?;
        conn.pragma_update(None, "journal_mode", "DELETE")
            .and_then(|()| migrate_inbound(&mut conn).map(drop))
            .map_err(|e| Error::sqlite(&path, "creating the inbound schema", e))?;
        conn.close()
            .map_err(|(_, e)| Error::sqlite(&path, "closing inbound.db", e))?;
        finish_intent(&self.paths, &self.state)
    }

    /// Builds `outbound.db` under a temporary name and renames it into
    /// place only if no file exists, so a running guest's file is never touched.
    fn create_outbound(&self) -> Result<()> {
        let path = self.paths.outbound_db();
        if check_regular_or_absent(&path)? != FileState::Absent {
            return Ok(());
        }
        let tmp = self.paths.dir().join(format!(
            ".outbound.db.tmp-{}-{}",
            std::process::id(),
            airlock_core::Timestamp::now().as_millis()
        ));
        let build = || -> rusqlite::Result<()> {
            let mut conn = open_file(&tmp, OpenMode::Create, Duration::from_secs(10))?;
            conn.pragma_update(None, "journal_mode", "DELETE")?;
            migrate_outbound(&mut conn)?;
            conn.close().map_err(|(_, e)| e)
        };
        if let Err(e) = build() {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::sqlite(&tmp, "creating outbound.db", e));
        }
        match renameat_with(CWD, &tmp, CWD, &path, RenameFlags::NOREPLACE) {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                if e == rustix::io::Errno::EXIST {
                    Ok(())
                } else {
                    Err(Error::io(&path, e.into()))
                }
            }
        }
    }
}
