//! `airlock guest …`: the guest side for shell-script agents in a sandbox.

use std::path::{Path, PathBuf};

use airlock_core::mailbox::{InboundMessage, NewOutboundMessage};
use airlock_core::{Error, MessageId, OutboxFile, Reply, Result};
use airlock_sqlite_fs::GuestMailbox;
use airlock_sqlite_fs::guest::{
    DEFAULT_MOUNT_CHECK_TIMEOUT, MountCheckError, check_mount_from_env,
};
use serde::Serialize;
use serde_json::json;

use crate::cli::output::{clean, clip, emit};
use crate::cli::settings::Settings;

/// Opens the guest's mailbox, after the mount self-test when the host passed
/// a nonce (`AIRLOCK_MOUNT_NONCE`): a mount that hides host writes fails
/// here, naming it, instead of polling an empty inbox forever.
pub(crate) fn open(session_dir: &Path) -> Result<GuestMailbox> {
    if !session_dir.join("inbound.db").is_file() {
        return Err(Error::not_found("session folder", session_dir.display()));
    }
    check_mount_from_env(session_dir, DEFAULT_MOUNT_CHECK_TIMEOUT).map_err(|e| match e {
        MountCheckError::Stale(stale) => Error::from(airlock_sqlite_fs::Error::from(stale)),
        other => Error::invariant(Some(other.path().to_path_buf()), other.to_string()),
    })?;
    Ok(GuestMailbox::open(session_dir)?)
}

/// Pending messages, claimed as `processing` (one poll of a guest).
pub fn poll_once(session_dir: &Path) -> Result<Vec<InboundMessage>> {
    let mailbox = open(session_dir)?;
    poll_with(&mailbox)
}

/// One poll on an open mailbox: take pending messages and claim them.
pub fn poll_with(mailbox: &GuestMailbox) -> Result<Vec<InboundMessage>> {
    let pending = mailbox.pending(airlock_sqlite_fs::guest::DEFAULT_POLL_LIMIT)?;
    let ids: Vec<&str> = pending.iter().map(|m| m.id.as_str()).collect();
    if !ids.is_empty() {
        mailbox.mark_processing(&ids)?;
    }
    Ok(pending)
}

/// Runs `guest poll`.
pub fn poll(settings: &Settings, session_dir: &Path) -> Result<()> {
    let pending = poll_once(session_dir)?;
    emit(settings.output, &pending, |pending| {
        if pending.is_empty() {
            return "no pending messages".to_owned();
        }
        pending
            .iter()
            .map(|m| {
                format!(
                    "{:>5}  {:<24} {:<8} {}",
                    m.seq,
                    clean(&m.id),
                    clean(&m.kind),
                    clip(&m.content, 80)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

#[derive(Serialize)]
struct Replied {
    id: String,
    seq: i64,
    files: Vec<String>,
}

/// Reads every `--file` (never blocking on a FIFO) before anything is
/// written, so a bad one leaves nothing behind.
fn read_files(files: &[PathBuf]) -> Result<Vec<OutboxFile>> {
    files
        .iter()
        .map(|file| {
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| {
                    Error::InvalidInput(format!("--file {} has no file name", file.display()))
                })?;
            let data = crate::cli::context::read_input(file, "--file")?;
            Ok(OutboxFile { name, data })
        })
        .collect()
}

/// Writes a reply to the session's default routing; see [`reply_to`].
pub fn reply_with(
    mailbox: &GuestMailbox,
    in_reply_to: &MessageId,
    text: &str,
    files: &[PathBuf],
) -> Result<(MessageId, i64, Vec<String>)> {
    reply_to(mailbox, in_reply_to, text, files, None)
}

/// Writes a reply with [`GuestMailbox::write_reply`] (files into
/// `outbox/<id>/` first, then the row), then the ack. `to` names a destination; without it the reply gets the session's
/// `session_routing`.
pub fn reply_to(
    mailbox: &GuestMailbox,
    in_reply_to: &MessageId,
    text: &str,
    files: &[PathBuf],
    to: Option<&str>,
) -> Result<(MessageId, i64, Vec<String>)> {
    // Resolved before any file is copied: an unknown name leaves nothing behind.
    let routing = to
        .map(|name| mailbox.destination_routing(name))
        .transpose()?;
    let files = read_files(files)?;
    let id = MessageId::generate("out")?;
    let content = json!({ "text": text }).to_string();
    let mut message = NewOutboundMessage::new(id.clone(), "chat", content);
    message.in_reply_to = Some(in_reply_to.to_string());
    if let Some(routing) = routing {
        message.channel_type = routing.channel_type;
        message.platform_id = routing.platform_id;
        message.thread_id = routing.thread_id;
    }
    // The library's protocol: files first, then the row; no files left behind.
    let written = mailbox.write_reply(&Reply { message, files })?;
    mailbox.mark_completed(&[in_reply_to.as_str()])?;
    Ok((id, written.seq.get(), written.files))
}

/// Runs `guest reply`.
pub fn reply(
    settings: &Settings,
    session_dir: &Path,
    in_reply_to: &MessageId,
    text: &str,
    files: &[PathBuf],
    to: Option<&str>,
) -> Result<()> {
    let mailbox = open(session_dir)?;
    // An ack for a message that does not exist would be recorded silently.
    if !mailbox.has_inbound(in_reply_to.as_str())? {
        return Err(Error::InvalidInput(format!(
            "--in-reply-to: no inbound message {in_reply_to} in {} (`airlock guest poll` lists them)",
            mailbox.paths().inbound_db().display()
        )));
    }
    let (id, seq, files) = reply_to(&mailbox, in_reply_to, text, files, to)?;
    let replied = Replied {
        id: id.to_string(),
        seq,
        files,
    };
    emit(settings.output, &replied, |r| {
        format!("reply {} seq {} ({} file(s))", r.id, r.seq, r.files.len())
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_core::{AgentGroupId, SessionId, SessionRef};
    use airlock_sqlite_fs::MailboxRoots;

    #[test]
    fn two_files_of_one_name_are_refused_before_anything_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let session = SessionRef::new(
            AgentGroupId::new("ag").unwrap(),
            SessionId::new("sess").unwrap(),
        );
        let host = MailboxRoots::in_data_dir(tmp.path())
            .create_session(&session)
            .unwrap();
        let dir = host.paths().dir().to_path_buf();
        let mailbox = GuestMailbox::open(&dir).unwrap();
        let files: Vec<PathBuf> = ["a", "b"]
            .iter()
            .map(|sub| {
                let file = tmp.path().join(sub).join("report.txt");
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(&file, sub.as_bytes()).unwrap();
                file
            })
            .collect();
        let to = MessageId::new("in-1").unwrap();
        let err = reply_with(&mailbox, &to, "ok", &files).unwrap_err();
        assert!(err.to_string().contains("report.txt"), "{err}");
        assert!(host.list_outbound(10).unwrap().is_empty(), "no reply row");
        let left = std::fs::read_dir(dir.join("outbox"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(left, 0, "no outbox folder for the refused reply");
    }

    #[test]
    fn a_reply_that_cannot_be_stored_leaves_no_files_in_the_outbox() {
        let tmp = tempfile::tempdir().unwrap();
        let session = SessionRef::new(
            AgentGroupId::new("ag").unwrap(),
            SessionId::new("sess").unwrap(),
        );
        let host = MailboxRoots::in_data_dir(tmp.path())
            .create_session(&session)
            .unwrap();
        let dir = host.paths().dir().to_path_buf();
        let mailbox = GuestMailbox::open(&dir).unwrap();
        let file = tmp.path().join("report.txt");
        std::fs::write(&file, b"report").unwrap();
        let to = MessageId::new("in-1").unwrap();
        reply_with(&mailbox, &to, "ok", std::slice::from_ref(&file)).unwrap();
        let outbox_entries = || std::fs::read_dir(dir.join("outbox")).unwrap().count();
        assert_eq!(outbox_entries(), 1);

        std::fs::write(
            dir.join("outbound.db"),
            b"not a database, so the row write fails",
        )
        .unwrap();
        reply_with(&mailbox, &to, "ok", &[file]).unwrap_err();
        assert_eq!(
            outbox_entries(),
            1,
            "the failed reply's files were left behind"
        );
    }
}
