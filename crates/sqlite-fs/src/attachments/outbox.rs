//! The outbox: reading the files a guest attached to an outbound message and
//! removing `outbox/<message_id>/` after delivery.
//!
//! The guest controls the message id, the declared names and everything in
//! the folder. The id is validated ([`MessageId`]); each name must pass
//! [`check_name`]; every open goes through a [`ConfinedDir`], so symlinks are
//! refused at every level, and files are opened `O_NONBLOCK` and checked with
//! `fstat`, so a FIFO, socket or device is refused without blocking.
//!
//! Caps (per [`AttachmentLimits`]): a file over `max_file_bytes` is skipped
//! with a warning, judged by `fstat` before any byte is read (a sparse 10 GiB
//! file costs nothing). A file that would take the message's total over
//! `max_message_bytes` is skipped with a warning too; later, smaller files
//! are still read. Skips never fail the call: the message is delivered with
//! the files that were fine.

use std::collections::HashSet;
use std::path::Path;

use airlock_core::{Error, MessageId, OutboxFile, Result, check_name, escape_for_log};

use super::confined::{AccessError, ConfinedDir, RegularFile, RemoveReport};
use super::limits::AttachmentLimits;

/// Reads the declared files of `<session_dir>/outbox/<message_id>/`.
///
/// Errors only when `message_id` is not a safe id ([`Error::InvalidId`]) or
/// the session folder itself cannot be opened; everything the guest controls
/// (missing folder or file, unsafe name, symlink, FIFO, over a cap) is
/// skipped with a warning, and no readable file gives an empty list.
pub fn read_outbox_files(
    session_dir: &Path,
    message_id: &str,
    names: &[String],
    limits: &AttachmentLimits,
) -> Result<Vec<OutboxFile>> {
    let message_id = MessageId::new(message_id)?;
    let session = ConfinedDir::open_trusted(session_dir).map_err(|e| Error::io(session_dir, e))?;
    Ok(read_outbox_files_in(&session, &message_id, names, limits))
}

/// [`read_outbox_files`] on an opened session folder and a validated id.
pub fn read_outbox_files_in(
    session: &ConfinedDir,
    message_id: &MessageId,
    names: &[String],
    limits: &AttachmentLimits,
) -> Vec<OutboxFile> {
    if names.is_empty() {
        return Vec::new();
    }
    let dir = match session.open_dir(&["outbox", message_id.as_str()]) {
        Ok(dir) => dir,
        Err(e) => {
            tracing::warn!(
                message_id = %message_id,
                folder = %session.label_of("outbox").join(message_id.as_str()).display(),
                error = %e,
                "outbox folder unusable; message delivered without files"
            );
            return Vec::new();
        }
    };
    let mut files = Vec::new();
    let mut seen = HashSet::new();
    let mut total: u64 = 0;
    for name in names {
        if let Err(problem) = check_name(name) {
            tracing::warn!(
                message_id = %message_id,
                name = %escape_for_log(name),
                %problem,
                "unsafe outbox file name skipped"
            );
            continue;
        }
        if !seen.insert(name.as_str()) {
            tracing::warn!(message_id = %message_id, name = %name, "outbox file declared twice; sent once");
            continue;
        }
        let remaining = limits.max_message_bytes.saturating_sub(total);
        match read_one(&dir, name, limits.max_file_bytes, remaining) {
            Ok(data) => {
                total += data.len() as u64;
                files.push(OutboxFile {
                    name: name.clone(),
                    data,
                });
            }
            Err(Skip::MessageCap { size }) => tracing::warn!(
                message_id = %message_id,
                name = %name,
                size,
                limit = limits.max_message_bytes,
                "outbox file skipped: the message's files would exceed the per-message limit"
            ),
            Err(Skip::Access(e)) if e.is_not_found() => tracing::warn!(
                message_id = %message_id,
                name = %name,
                "declared outbox file is missing; skipped"
            ),
            Err(Skip::Access(e)) => tracing::warn!(
                message_id = %message_id,
                error = %e,
                "outbox file skipped"
            ),
        }
    }
    files
}

enum Skip {
    Access(AccessError),
    MessageCap { size: u64 },
}

fn read_one(dir: &ConfinedDir, name: &str, file_cap: u64, remaining: u64) -> Result<Vec<u8>, Skip> {
    // A second name means the guest linked a file here rather than writing
    // one: refused like a symlink.
    let file = dir
        .open_regular(name)
        .and_then(RegularFile::single_link)
        .map_err(Skip::Access)?;
    if file.len() <= file_cap && file.len() > remaining {
        return Err(Skip::MessageCap { size: file.len() });
    }
    let data = file.read_capped(file_cap).map_err(Skip::Access)?;
    // The file may have grown between fstat and read.
    if data.len() as u64 > remaining {
        return Err(Skip::MessageCap {
            size: data.len() as u64,
        });
    }
    Ok(data)
}

/// Removes `<session_dir>/outbox/<message_id>/`, best effort: an unsafe id,
/// a missing or symlinked folder and every removal failure are logged and
/// reported, never returned as an error (that would redeliver the message).
/// Only entries reached through handles below `outbox/` are ever unlinked;
/// a symlink is removed itself, never followed.
pub fn clear_outbox(session_dir: &Path, message_id: &str) -> RemoveReport {
    let message_id = match MessageId::new(message_id) {
        Ok(id) => id,
        Err(e) => {
            tracing::warn!(error = %e, "outbox not cleared: unsafe message id");
            return RemoveReport {
                removed: 0,
                failures: vec![e.to_string()],
            };
        }
    };
    match ConfinedDir::open_trusted(session_dir) {
        Ok(session) => clear_outbox_in(&session, &message_id),
        Err(e) => {
            let failure = format!("{}: {e}", session_dir.display());
            tracing::warn!(message_id = %message_id, error = %failure, "outbox not cleared");
            RemoveReport {
                removed: 0,
                failures: vec![failure],
            }
        }
    }
}

/// [`clear_outbox`] on an opened session folder and a validated id.
pub fn clear_outbox_in(session: &ConfinedDir, message_id: &MessageId) -> RemoveReport {
    let report = match session.open_dir(&["outbox"]) {
        Ok(outbox) => outbox.remove_tree(message_id.as_str()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => RemoveReport::default(),
        Err(e) => RemoveReport {
            removed: 0,
            failures: vec![format!("{}: {e}", session.label_of("outbox").display())],
        },
    };
    for failure in &report.failures {
        tracing::warn!(message_id = %message_id, %failure, "outbox clean-up incomplete");
    }
    report
}
