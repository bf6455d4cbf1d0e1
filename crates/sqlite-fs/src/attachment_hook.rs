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

    fn stages_files(&self, raw: &str) -> bool {
        may_hold_attachments(raw)
    }

    fn clean_after_kill(&self, message_id: &MessageId) -> Result<()> {
        SessionExtractor::clean_temps(self, message_id).map_err(|e| content_error(message_id, e))
    }
}

/// Whether JSON text `raw` may have an `attachments` key: spelled out, or
/// escaped (a key's letters can be escaped only as `\uXXXX`). Most chat
/// messages have neither, and skip the staging marker's two file writes.
fn may_hold_attachments(raw: &str) -> bool {
    raw.contains("attachments") || raw.contains("\\u")
}

#[cfg(test)]
mod tests {
    use super::may_hold_attachments;

    #[test]
    fn only_content_without_an_attachments_key_skips_the_staging_marker() {
        assert!(!may_hold_attachments(r#"{"text":"hi\nthere"}"#));
        assert!(may_hold_attachments(r#"{"text":"hi","attachments":[]}"#));
        // serde_json reads this key as "attachments".
        assert!(may_hold_attachments(
            r#"{"\u0061ttachments":[{"name":"a"}]}"#
        ));
        let escaped: serde_json::Value = serde_json::from_str(r#"{"\u0061ttachments":1}"#).unwrap();
        assert!(escaped.get("attachments").is_some());
    }
}
