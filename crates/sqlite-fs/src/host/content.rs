//! The hook through which inbound content is prepared (attachments decoded)
//! before `write_message` stores it.

use airlock_core::{ExtractedContent, MessageId};

use crate::error::Result;

/// Prepares inbound content for storage and recognises retries.
///
/// `write_message` calls [`same_message`](Self::same_message) against every
/// row already stored under the id (and its derived ids) before anything is
/// written, then [`prepare`](Self::prepare) with the final id; files are
/// written by `prepare`, the row after it.
///
/// Both run while the session's write lock is held: they must not call back
/// into a [`HostMailbox`](crate::HostMailbox) of the same session (it would wait forever).
pub trait InboundContent {
    /// Turns raw content into what is stored (e.g. inline attachments → files).
    fn prepare(&self, message_id: &MessageId, raw: &str) -> Result<ExtractedContent>;

    /// Whether `raw` is the message stored as `stored` under `message_id`.
    fn same_message(&self, message_id: &MessageId, raw: &str, stored: &str) -> Result<bool>;

    /// Whether `prepare` of `raw` may leave files behind when the process
    /// is killed inside it (then the writer keeps a marker to clean them
    /// up). May answer `true` for content that stages nothing, never
    /// `false` for content that does.
    fn stages_files(&self, _raw: &str) -> bool {
        false
    }

    /// Removes what a `prepare` of `message_id` killed midway left behind.
    /// Called with the session's write lock held.
    fn clean_after_kill(&self, _message_id: &MessageId) -> Result<()> {
        Ok(())
    }
}

/// Stores content byte for byte; a retry is byte-equal content.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainContent;

impl InboundContent for PlainContent {
    fn prepare(&self, _message_id: &MessageId, raw: &str) -> Result<ExtractedContent> {
        Ok(ExtractedContent {
            content: raw.to_owned(),
            attachments: Vec::new(),
        })
    }

    fn same_message(&self, _message_id: &MessageId, raw: &str, stored: &str) -> Result<bool> {
        Ok(raw == stored)
    }
}
