//! Creating a session folder: `host.db`, the published `inbound.db`,
//! `outbound.db`, `inbox/`, `outbox/` (idempotent).

use std::time::Duration;

use rustix::fs::{CWD, RenameFlags, renameat_with};

use super::HostMailbox;
use crate::error::{Error, Result};
use crate::schema::migrate_outbound;
use crate::sqlite_util::{FileState, OpenMode, check_regular_or_absent, open_file};

impl HostMailbox {
    /// Creates the folder, `host.db` and the published `inbound.db` (built
    /// in host state, linked into the folder), `outbound.db` (exact schema,
    /// `DELETE` mode), `inbox/` and `outbox/` where missing. A folder with an
    /// `inbound.db` but no host state is adopted once (its rows imported).
    /// An existing `outbound.db` is left alone (the guest owns it).
    pub fn create(&self) -> Result<()> {
        let dir = self.paths.dir();
        for d in [dir.to_path_buf(), self.paths.inbox(), self.paths.outbox()] {
            std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
        }
        // The first group commit sets up host state (adopting the folder)
        // and checks the published file.
        self.verify()?;
        self.create_outbound()
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
            // No journal: nobody sees the file before the rename and a
            // failed build is removed, so the schema costs one fsync, not
            // four. The mode is not stored in the file: the guest's
            // connections use DELETE.
            conn.pragma_update(None, "journal_mode", "OFF")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
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
