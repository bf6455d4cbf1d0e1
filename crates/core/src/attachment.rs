//! The attachment store trait: files that travel beside mailbox messages.
//!
//! Inbound files are decoded from a message's JSON into
//! `inbox/<message_id>/`; outbound files are read from `outbox/<message_id>/`,
//! a folder the untrusted guest controls. Implementations confine every file
//! operation to those folders by construction (directory handles, no symlink
//! resolution), not by checking strings.

use std::fmt::Debug;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::ids::{AgentGroupId, MessageId, SessionId};
use crate::session::Session;

/// Names one session's folder: `<agent_group>/<session>` under the sessions root.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionRef {
    /// The owning agent group (parent folder).
    pub agent_group: AgentGroupId,
    /// The session (folder).
    pub session: SessionId,
}

impl SessionRef {
    /// A reference to the folder of `session` in `agent_group`.
    pub fn new(agent_group: AgentGroupId, session: SessionId) -> Self {
        Self {
            agent_group,
            session,
        }
    }
}

impl From<&Session> for SessionRef {
    fn from(session: &Session) -> Self {
        Self::new(session.agent_group_id.clone(), session.id.clone())
    }
}

/// What happened to one entry of a message's `attachments` array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentOutcome {
    /// Position of the entry in the `attachments` array.
    pub index: usize,
    /// The final file name, when a file was written (or reused on retry).
    pub name: Option<String>,
    /// `inbox/<message_id>/<name>`, relative to the session folder.
    #[serde(rename = "localPath")]
    pub local_path: Option<String>,
    /// Why nothing was written for this entry.
    pub error: Option<String>,
}

/// Message content after its inline attachments were written to files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractedContent {
    /// The content to store: entries rewritten, everything else unchanged.
    pub content: String,
    /// One outcome per entry that carried `data`, in array order.
    pub attachments: Vec<AttachmentOutcome>,
}

/// One file read from a message's outbox.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboxFile {
    /// The declared (validated) name.
    pub name: String,
    /// The file's bytes.
    pub data: Vec<u8>,
}

impl Debug for OutboxFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxFile")
            .field("name", &self.name)
            .field("len", &self.data.len())
            .finish()
    }
}

/// Inbound and outbound attachment files of sessions.
#[async_trait]
pub trait AttachmentStore: Debug + Send + Sync + 'static {
    /// Decodes every `attachments[].data` entry of `content` into
    /// `inbox/<message_id>/<name>` and returns the rewritten content.
    ///
    /// Content that is not a JSON object, or has no such entries, comes back
    /// byte for byte. A bad entry (invalid base64, over the size limit) is
    /// kept with an `error` field and reported; it never fails the message.
    async fn extract_inbound(
        &self,
        session: &SessionRef,
        message_id: &MessageId,
        content: &str,
    ) -> Result<ExtractedContent>;

    /// Reads the declared files of `outbox/<message_id>/`.
    ///
    /// Unsafe or missing names and non-regular files are skipped with a
    /// warning; no readable file means an empty list, not an error.
    async fn read_outbox_files(
        &self,
        session: &SessionRef,
        message_id: &MessageId,
        names: &[String],
    ) -> Result<Vec<OutboxFile>>;

    /// Removes `outbox/<message_id>/`, best effort: failures are logged and
    /// never returned, because reporting them would redeliver the message.
    async fn clear_outbox(&self, session: &SessionRef, message_id: &MessageId);
}
