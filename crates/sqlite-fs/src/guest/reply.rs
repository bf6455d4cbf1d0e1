//! The guest's reply with files: the library form of the protocol that
//! `airlock guest reply` and [`GuestMailboxStore::write_reply`] both use.
//!
//! [`GuestMailboxStore::write_reply`]: airlock_core::GuestMailboxStore::write_reply

use std::path::Path;

use airlock_core::{MessageId, OutboxFile, Reply, Seq, WrittenReply, with_declared_files};

use super::GuestMailbox;
use crate::error::{Error, Result};

impl GuestMailbox {
    /// Writes a reply and its files: the names are checked (single path
    /// components, no two alike) and declared in the content's `"files"`,
    /// the files reach `outbox/<id>/` whole before the row exists (the host
    /// may read the row at once), and a reply whose row cannot be stored
    /// leaves none of its files behind. A retry with the same id returns the
    /// stored seq and keeps the files already there.
    pub fn write_reply(&self, reply: &Reply) -> Result<WrittenReply> {
        let names = reply.checked_names()?;
        let mut message = reply.message.clone();
        message.content = with_declared_files(&message.content, &names)?;
        let seq = self.write_files_first(&message, &reply.files)?;
        Ok(WrittenReply {
            id: message.id,
            seq,
            files: names,
        })
    }

    /// The files are written into a staging folder that is renamed to
    /// `outbox/<id>` in one step. If that folder already exists, this is a
    /// retry of a reply whose files are there: the staged copy is dropped, and
    /// the existing folder is never removed (it is not this call's).
    fn write_files_first(
        &self,
        message: &airlock_core::mailbox::NewOutboundMessage,
        files: &[OutboxFile],
    ) -> Result<Seq> {
        if files.is_empty() {
            return self.write_message_out(message).map(Seq::new);
        }
        let outbox = self.paths().outbox();
        let target = self.paths().outbox_message(&message.id);
        let staging = outbox.join(format!(".staging-{}", MessageId::generate("reply")?));
        let placed =
            stage_files(&staging, files).and_then(|()| match std::fs::rename(&staging, &target) {
                Ok(()) => Ok(true),
                Err(e) if target.is_dir() => {
                    tracing::debug!(error = %e, "outbox folder already there: a retried reply");
                    Ok(false)
                }
                Err(e) => Err(Error::io(&target, e)),
            });
        let _ = std::fs::remove_dir_all(&staging);
        let ours = placed?;
        self.write_message_out(message)
            .map(Seq::new)
            .inspect_err(|_| {
                if ours {
                    let _ = std::fs::remove_dir_all(&target);
                }
            })
    }
}

fn stage_files(staging: &Path, files: &[OutboxFile]) -> Result<()> {
    std::fs::create_dir_all(staging).map_err(|e| Error::io(staging, e))?;
    for file in files {
        let path = staging.join(&file.name);
        let written = std::fs::File::create_new(&path)
            .and_then(|mut f| {
                std::io::Write::write_all(&mut f, &file.data)?;
                f.sync_all()
            })
            .map_err(|e| Error::io(&path, e));
        written?;
    }
    Ok(())
}
