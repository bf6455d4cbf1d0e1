//! Before each host operation: the session folder's `inbound.db` is checked
//! against the host's record in O(1) (one open by handle, `fstat`, the
//! header, three `fstatat`s); any difference is a tamper event, and the
//! published file is repaired from host state. Nothing found in the folder
//! is ever opened by SQLite.

use super::folder::{Entry, FileId, Folder, INBOUND, JOURNAL, SIDE_FILES};
use super::instance;
use super::publish::{is_placeholder, publish_empty, rebuild};
use super::record::{self, Record, counter_of};
use super::tamper::TamperEvent;
use crate::error::Result;
use crate::layout::HostSessionState;

/// What the folder's `inbound.db` is, compared with the record.
enum Found {
    /// Exactly what the host left.
    Intact,
    /// Nothing there.
    Missing,
    /// Another file or not a regular file: replaced.
    Replaced(String),
    /// The host's inode, changed since the host left it.
    Edited(String),
}

fn compare(folder: &Folder, rec: &Record) -> Result<Found> {
    Ok(match folder.open_entry(INBOUND)? {
        Entry::Absent => Found::Missing,
        Entry::Other(what) => Found::Replaced(format!("inbound.db is {what}")),
        Entry::File(file, st) => {
            let id = FileId::of(&st);
            if (id.dev, id.ino) != (rec.id.dev, rec.id.ino) {
                Found::Replaced("inbound.db was replaced by another file".into())
            } else if id != rec.id || counter_of(&file) != Some(rec.counter) {
                Found::Edited(format!(
                    "inbound.db was changed in place (size {} → {}, change counter {} → {:?})",
                    rec.id.size,
                    id.size,
                    rec.counter,
                    counter_of(&file)
                ))
            } else {
                Found::Intact
            }
        }
    })
}

/// Checks the folder; quarantines what the host did not write and repairs
/// `inbound.db`. `generation` is `host.db`'s; `empty` says it was just set
/// up with no rows (a new session), so a rebuild is the empty template.
/// Returns the tamper events.
pub(crate) fn verify_and_repair(
    folder: &Folder,
    state: &HostSessionState,
    generation: i64,
    empty: bool,
) -> Result<Vec<TamperEvent>> {
    let mut events = Vec::new();
    // A crash between the host.db commit and the record leaves the
    // generations apart, and a record of another boot or mount may describe
    // writes that never reached the disk: either way the published file is
    // rebuilt, and a leftover placeholder of that write is not evidence of
    // anything.
    let now = instance::of(state.dir());
    let stored = record::load(state).filter(|r| r.generation == generation && r.instance == now);
    let interrupted = stored.is_none();
    for side in SIDE_FILES {
        let entry = folder.open_entry(side)?;
        let what = match &entry {
            Entry::Absent => continue,
            Entry::File(file, st) => {
                if interrupted && side == JOURNAL && is_placeholder(file, st.st_size.max(0) as u64)
                {
                    folder.remove(side)?;
                    continue;
                }
                "a file"
            }
            Entry::Other(what) => what,
        };
        drop(entry);
        let moved = folder.quarantine(side, &state.quarantine())?;
        events.push(TamperEvent::new(
            side,
            format!("{side} ({what}) beside inbound.db: the host never writes one there"),
            moved,
            "moved aside, never opened",
        ));
    }
    let Some(rec) = stored else {
        record::clear(state);
        tracing::info!(folder = %folder.path().display(), "the last publish of inbound.db did not finish or may not be on disk (a restart of the machine or a remount since); rebuilding it from host.db");
        if empty {
            publish_empty(folder, state)?;
        } else {
            rebuild(folder, state)?;
        }
        record::save(state, generation)?;
        return Ok(events);
    };
    let found = compare(folder, &rec)?;
    let (reason, quarantine, edited) = match found {
        Found::Intact => return Ok(events),
        Found::Missing => ("inbound.db is missing".to_owned(), false, false),
        Found::Replaced(why) => (why, true, false),
        Found::Edited(why) => (why, true, true),
    };
    let moved = if quarantine {
        folder.quarantine(INBOUND, &state.quarantine())?
    } else {
        None
    };
    // The host's own link still holds the published inode; if that inode
    // is untouched, linking it back is enough.
    let link_intact = !edited && record::current(state, generation)?.is_some_and(|now| now == rec);
    // A crash while repairing must not look like tampering next time.
    record::clear(state);
    let repair = if link_intact {
        folder.link_inbound(&state.published_db())?;
        "relinked the host's copy"
    } else {
        rebuild(folder, state)?;
        "rebuilt from host.db"
    };
    record::save(state, generation)?;
    events.push(TamperEvent::new(INBOUND, reason, moved, repair));
    Ok(events)
}
