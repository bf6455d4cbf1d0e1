//! Keeps SQLite from replaying an `inbound.db-journal` the host did not write.
//!
//! Before each host write transaction an intent marker is written and synced
//! in host-only state; it is removed once the commit has returned and the
//! connection is closed, and the file's change counter (header bytes 24–27)
//! is remembered. A journal found beside `inbound.db` while no marker exists
//! cannot belong to an interrupted host write, so it is moved into the
//! session's quarantine folder before SQLite can see it. With a marker
//! present the journal is the host's own and SQLite rolls it back normally,
//! unless its saved copy of page 1 carries a change counter other than the
//! one the marker recorded when the transaction began (then it is foreign).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::layout::{HostSessionState, SessionPaths};
use crate::sqlite_util::{FileState, check_regular_or_absent, read_header};

/// A foreign journal that was moved aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedJournal {
    /// Where it was found.
    pub found: PathBuf,
    /// Where it is now (`None` if it could only be deleted).
    pub moved_to: Option<PathBuf>,
    /// The database's change counter when it was found.
    pub db_counter: Option<u32>,
    /// The counter the host remembered after its last commit.
    pub remembered_counter: Option<u32>,
}

/// Checks for a journal beside `inbound.db`; quarantines it unless an
/// interrupted host write (intent marker) explains it.
pub(crate) fn vet_inbound_journal(
    paths: &SessionPaths,
    state: &HostSessionState,
) -> Result<Option<QuarantinedJournal>> {
    let journal = paths.inbound_journal();
    let state_of = check_regular_or_absent(&journal);
    match state_of {
        Ok(FileState::Absent) => return Ok(None),
        Ok(FileState::Regular(_)) if intent_pending(state) => {
            let expected = intent_counter(state);
            let found = super::journal_file::page1_counter(&journal);
            match (expected, found) {
                (Some(expected), Some(found)) if expected != found => {
                    tracing::warn!(
                        expected,
                        found,
                        "journal beside inbound.db does not match the host's interrupted write"
                    );
                }
                _ => {
                    tracing::info!(journal = %journal.display(), "rolling back the host's own interrupted write");
                    return Ok(None);
                }
            }
        }
        // A regular file without a marker, or a symlink/FIFO/folder: not ours.
        Ok(FileState::Regular(_)) | Err(Error::UnsafeFile { .. }) => {}
        Err(e) => return Err(e),
    }
    let db_counter = read_header(&paths.inbound_db())
        .ok()
        .flatten()
        .map(|h| h.change_counter);
    let remembered_counter = std::fs::read_to_string(state.change_counter())
        .ok()
        .and_then(|t| t.trim().parse().ok());
    let moved_to = quarantine(&journal, state)?;
    let report = QuarantinedJournal {
        found: journal,
        moved_to,
        db_counter,
        remembered_counter,
    };
    tracing::warn!(
        found = %report.found.display(),
        moved_to = ?report.moved_to,
        db_counter = ?report.db_counter,
        remembered_counter = ?report.remembered_counter,
        "a journal the host did not write was found beside inbound.db; quarantined, not replayed"
    );
    Ok(Some(report))
}

fn quarantine(journal: &Path, state: &HostSessionState) -> Result<Option<PathBuf>> {
    let dir = state.quarantine();
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let millis = airlock_core::Timestamp::now().as_millis();
    for n in 0..1000 {
        let target = dir.join(format!("inbound.db-journal.{millis}.{n}"));
        if std::fs::symlink_metadata(&target).is_ok() {
            continue;
        }
        return match std::fs::rename(journal, &target) {
            Ok(()) => Ok(Some(target)),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::XDEV.raw_os_error()) => {
                // Another file system: the evidence cannot be kept, but it must go.
                remove_entry(journal)?;
                Ok(None)
            }
            Err(e) => Err(Error::io(journal, e)),
        };
    }
    remove_entry(journal)?;
    Ok(None)
}

fn remove_entry(path: &Path) -> Result<()> {
    let res = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    res.map_err(|e| Error::io(path, e))
}

/// Whether the intent marker says a host write may be in flight.
pub(crate) fn intent_pending(state: &HostSessionState) -> bool {
    std::fs::read(state.intent_marker()).is_ok_and(|b| b.starts_with(INTENT_BUSY))
}

const INTENT_BUSY: &[u8] = b"busy";
const INTENT_IDLE: &[u8] = b"idle\n";

/// Marks a write transaction as in flight and syncs the marker (one
/// `fdatasync`; the folder is synced only when the file is first created).
///
/// The marker carries the database's change counter as it is now, before
/// the transaction: page 1 as saved in a genuine journal of this
/// transaction must carry exactly that counter. Call before every write
/// transaction, so the counter is never that of an earlier one.
pub(crate) fn write_intent(paths: &SessionPaths, state: &HostSessionState) -> Result<()> {
    let path = state.intent_marker();
    let counter = read_header(&paths.inbound_db())
        .ok()
        .flatten()
        .map(|h| h.change_counter.to_string())
        .unwrap_or_else(|| "-".into());
    let created = !path.exists();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    let line = format!(
        "busy {} {} {}\n",
        std::process::id(),
        airlock_core::Timestamp::now(),
        counter
    );
    file.set_len(0)
        .and_then(|()| file.write_all(line.as_bytes()))
        .and_then(|()| file.sync_data())
        .map_err(|e| Error::io(&path, e))?;
    if created {
        let dir = std::fs::File::open(state.dir()).map_err(|e| Error::io(state.dir(), e))?;
        dir.sync_all().map_err(|e| Error::io(state.dir(), e))?;
    }
    Ok(())
}

/// The change counter recorded in a `busy` marker.
fn intent_counter(state: &HostSessionState) -> Option<u32> {
    let text = std::fs::read_to_string(state.intent_marker()).ok()?;
    text.strip_prefix("busy")?
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

/// After the connection closed with no journal left: remember the change
/// counter and drop the intent marker.
pub(crate) fn finish_intent(paths: &SessionPaths, state: &HostSessionState) -> Result<()> {
    if matches!(
        check_regular_or_absent(&paths.inbound_journal()),
        Ok(FileState::Regular(_))
    ) {
        // A journal is still there (a failed rollback?): keep the marker so
        // the next open rolls it back instead of quarantining it.
        return Ok(());
    }
    if let Ok(Some(header)) = read_header(&paths.inbound_db()) {
        let counter = state.change_counter();
        std::fs::write(&counter, header.change_counter.to_string())
            .map_err(|e| Error::io(&counter, e))?;
    }
    // Not synced: a lost "idle" only makes the next open trust a journal
    // that SQLite would find not hot anyway, or that really is the host's.
    let marker = state.intent_marker();
    std::fs::write(&marker, INTENT_IDLE).map_err(|e| Error::io(&marker, e))
}
