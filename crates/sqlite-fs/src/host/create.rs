//! Creating a session folder: `host.db`, the published `inbound.db`,
//! `outbound.db`, `inbox/`, `outbox/` (idempotent).

use std::path::Path;
use std::time::Duration;

use airlock_core::mailbox::Routing;

use super::HostMailbox;
use crate::error::{Error, Result};
use crate::schema::migrate_outbound;
use crate::sqlite_util::template::{Template, place_new, unique_name, write_new};
use crate::sqlite_util::{FileState, OpenMode, check_regular_or_absent, open_file};

impl HostMailbox {
    /// Creates the folder, `host.db` and the published `inbound.db` (built
    /// in host state, linked into the folder), `outbound.db` (exact schema,
    /// `DELETE` mode), `inbox/` and `outbox/` where missing. A folder with an
    /// `inbound.db` but no host state is adopted once (its rows imported).
    /// An existing `outbound.db` is left alone (the guest owns it).
    pub fn create(&self) -> Result<()> {
        self.create_folders()?;
        // The first group commit sets up host state (adopting the folder)
        // and checks the published file.
        self.verify()?;
        self.create_outbound()
    }

    /// [`create`](Self::create), writing `routing` in the group commit that
    /// sets up host state (one lock turn, one check of the folder).
    pub fn create_routed(&self, routing: &Routing) -> Result<()> {
        self.create_folders()?;
        self.write_routing(routing)?;
        self.create_outbound()
    }

    fn create_folders(&self) -> Result<()> {
        let dir = self.paths.dir();
        for d in [dir.to_path_buf(), self.paths.inbox(), self.paths.outbox()] {
            std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
        }
        Ok(())
    }

    /// Builds `outbound.db` under a temporary name and renames it into
    /// place only if no file exists, so a running guest's file is never
    /// touched: the template's bytes, or (without one) SQLite's build.
    fn create_outbound(&self) -> Result<()> {
        let path = self.paths.outbound_db();
        if check_regular_or_absent(&path)? != FileState::Absent {
            return Ok(());
        }
        if let Some(bytes) = OUTBOUND_TEMPLATE.bytes(self.state.dir()) {
            return write_new(&path, bytes, true).map(drop);
        }
        let tmp = unique_name(self.paths.dir(), "outbound.db.tmp");
        if let Err(e) = build_outbound(&tmp) {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::sqlite(&tmp, "creating outbound.db", e));
        }
        place_new(&tmp, &path).map(drop)
    }
}

/// An empty `outbound.db` of the current schema.
static OUTBOUND_TEMPLATE: Template = Template::new("outbound-db", build_outbound);

/// Makes an `outbound.db` with the exact schema at `path`.
fn build_outbound(path: &Path) -> rusqlite::Result<()> {
    let mut conn = open_file(path, OpenMode::Create, Duration::from_secs(10))?;
    // No journal: nobody sees the file before the rename and a failed
    // build is removed, so the schema costs one fsync, not four. The mode
    // is not stored in the file: the guest's connections use DELETE.
    conn.pragma_update(None, "journal_mode", "OFF")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    migrate_outbound(&mut conn)?;
    conn.close().map_err(|(_, e)| e)
}
