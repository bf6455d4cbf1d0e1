//! Setting up `host.db` for a session: empty for a new one, or imported
//! once from an existing folder's `inbound.db` (made by an earlier airlock
//! version or by the reference host). That import is the only time the
//! folder's content is trusted; it is logged.

use std::io::Write;

use rusqlite::Connection;

use super::folder::{Entry, Folder, INBOUND};
use super::{HOST_DB_VERSION, create_host_tables, record};
use crate::error::{Error, Result};
use crate::host::read::INBOUND_COLUMNS;
use crate::layout::HostSessionState;
use crate::schema::migrate_inbound;
use crate::sqlite_util::template::remove_db_files;
use crate::sqlite_util::{OpenMode, open_file};

/// Files of the intent-marker design that `host.db` replaces.
const RETIRED: [&str; 2] = ["inbound.intent", "inbound.counter"];

/// Creates `host.db`'s tables and its generation 0, importing the folder's
/// `inbound.db` if there is one, and links that file as the published copy.
/// Returns whether there was one (`false`: `host.db` holds no rows yet).
pub(crate) fn adopt(conn: &Connection, folder: &Folder, state: &HostSessionState) -> Result<bool> {
    let host_path = state.host_db();
    let source = match folder.open_entry(INBOUND)? {
        Entry::Absent => None,
        Entry::File(file, st) => Some((file, st)),
        Entry::Other(what) => {
            return Err(Error::UnsafeFile {
                path: folder.join(INBOUND),
                what: format!("it is {what}"),
            });
        }
    };
    let copy = state.dir().join("adopt.db");
    remove_db_files(&copy);
    if let Some((file, _)) = &source {
        copy_file(file, &copy)?;
        let mut old = open_file(
            &copy,
            OpenMode::ReadWrite,
            std::time::Duration::from_secs(1),
        )
        .and_then(|c| c.pragma_update(None, "trusted_schema", "OFF").map(|()| c))
        .map_err(|e| Error::sqlite(folder.join(INBOUND), "reading inbound.db to adopt it", e))?;
        migrate_inbound(&mut old).map_err(|e| {
            Error::sqlite(folder.join(INBOUND), "reading inbound.db to adopt it", e)
        })?;
        drop(old);
    }
    let import = || -> rusqlite::Result<()> {
        if source.is_some() {
            conn.execute("ATTACH DATABASE ?1 AS a", [copy.display().to_string()])?;
        }
        conn.execute_batch("BEGIN IMMEDIATE")?;
        // A `host.db` made from the template has every table already.
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version != HOST_DB_VERSION || source.is_some() {
            create_host_tables(conn)?;
        }
        if source.is_some() {
            for (table, cols) in [
                ("messages_in", INBOUND_COLUMNS),
                (
                    "delivered",
                    "message_out_id, platform_message_id, status, delivered_at",
                ),
                (
                    "destinations",
                    "name, display_name, type, channel_type, platform_id, agent_group_id",
                ),
                (
                    "session_routing",
                    "id, channel_type, platform_id, thread_id",
                ),
            ] {
                conn.execute_batch(&format!(
                    "INSERT OR IGNORE INTO main.{table} ({cols}) SELECT {cols} FROM a.{table}"
                ))?;
            }
        }
        let from = source
            .as_ref()
            .map(|_| folder.join(INBOUND).display().to_string());
        conn.execute(
            "INSERT INTO host_meta (id, generation, adopted_from, created_at) VALUES (1, 0, ?1, ?2)",
            rusqlite::params![from, airlock_core::Timestamp::now().to_iso()],
        )?;
        conn.execute_batch("COMMIT")?;
        if source.is_some() {
            conn.execute_batch("DETACH DATABASE a")?;
        }
        Ok(())
    };
    let imported = import();
    if imported.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    remove_db_files(&copy);
    imported.map_err(|e| Error::sqlite(&host_path, "setting up host.db", e))?;
    for name in RETIRED {
        let _ = std::fs::remove_file(state.dir().join(name));
    }
    record::clear(state);
    let adopted = source.is_some();
    if let Some((_, st)) = source {
        tracing::info!(folder = %folder.path().display(), "adopted an existing inbound.db into host state (its rows are trusted this once)");
        let link = state.published_db();
        let _ = std::fs::remove_file(&link);
        folder.link_out(INBOUND, &link)?;
        // Linked what was copied: publish that. Anything else (a swap in
        // between) is rebuilt from host.db by the next check.
        let linked = std::fs::metadata(&link).map_err(|e| Error::io(&link, e))?;
        if std::os::unix::fs::MetadataExt::ino(&linked) == st.st_ino {
            record::save(state, 0)?;
        }
    }
    Ok(adopted)
}

fn copy_file(file: &std::fs::File, to: &std::path::Path) -> Result<()> {
    let mut out = std::fs::File::create(to).map_err(|e| Error::io(to, e))?;
    std::io::copy(&mut &*file, &mut out)
        .and_then(|_| out.flush())
        .map_err(|e| Error::io(to, e))
}
