//! Plugs attachment extraction into `HostMailbox::write_message`: the
//! mailbox's [`InboundContent`] hook implemented by [`SessionExtractor`].

use airlock_core::{ExtractedContent, MessageId};

use crate::attachments::SessionExtractor;
use crate::error::{Error, Result};
use crate::host::InboundContent;

fn content_error(message_id: &MessageId, source: airlock_core::Error) -> Error {
    Error::Content {
        message_id: message_id.to_string(),
        source,
    }
}

impl InboundContent for SessionExtractor {
    fn prepare(&self, message_id: &MessageId, raw: &str) -> Result<ExtractedContent> {
        SessionExtractor::prepare(self, message_id, raw).map_err(|e| content_error(message_id, e))
    }

    fn same_message(&self, message_id: &MessageId, raw: &str, stored: &str) -> Result<bool> {
        SessionExtractor::same_message(self, message_id, raw, stored)
            .map_err(|e| content_error(message_id, e))
    }

    fn stages_files(&self) -> bool {
        true
    }

    fn clean_after_kill(&self, message_id: &MessageId) -> Result<()> {
        SessionExtractor::clean_temps(self, message_id).map_err(|e| content_error(message_id, e))
    }
}
