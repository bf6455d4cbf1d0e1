//! Backend-neutral message types of a session mailbox (`inbound.db` + `outbound.db`).
//!
//! Rows read back from a mailbox keep their stored text (timestamps, JSON
//! content, statuses) as `String`: `outbound.db` is written by the untrusted
//! guest and older folders hold values the current code would not write, so a
//! read never fails on a value it merely does not understand.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::MessageId;
pub use crate::inbound_status::InboundStatus;
use crate::time::Timestamp;

/// Kind of the `messages_in` rows that carry host-originated outbound messages.
pub const HOST_OUTBOUND_KIND: &str = "host_outbound";

/// A message the host writes into `messages_in` (host → guest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewInboundMessage {
    /// The message id (usually the platform's); derived ids are made on reuse.
    pub id: MessageId,
    /// What the message is, e.g. `chat`, `task`, `system`.
    pub kind: String,
    /// The content, usually JSON.
    pub content: String,
    /// When it was sent.
    pub timestamp: Timestamp,
    /// The platform chat id.
    pub platform_id: Option<String>,
    /// The platform, e.g. `slack`.
    pub channel_type: Option<String>,
    /// The thread inside the chat.
    pub thread_id: Option<String>,
    /// Do not hand the message to the agent before this time.
    pub process_after: Option<Timestamp>,
    /// Recurrence rule of a scheduled message, as the scheduler writes it.
    pub recurrence: Option<String>,
    /// `true` wakes the agent; `false` is context only.
    pub trigger: bool,
    /// The session that sent it (agent-to-agent return path).
    pub source_session_id: Option<String>,
    /// Only for a fresh guest's first poll.
    pub on_wake: bool,
}

impl NewInboundMessage {
    /// A message with the given id, kind and content, sent now, waking the agent.
    pub fn new(id: MessageId, kind: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            id,
            kind: kind.into(),
            content: content.into(),
            timestamp: Timestamp::now(),
            platform_id: None,
            channel_type: None,
            thread_id: None,
            process_after: None,
            recurrence: None,
            trigger: true,
            source_session_id: None,
            on_wake: false,
        }
    }
}

/// A message the guest writes into `messages_out` (guest → host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOutboundMessage {
    /// The message id (names its `outbox/` folder).
    pub id: MessageId,
    /// What the message is, e.g. `chat`.
    pub kind: String,
    /// The content, usually JSON.
    pub content: String,
    /// When it was written.
    pub timestamp: Timestamp,
    /// The inbound message it answers.
    pub in_reply_to: Option<String>,
    /// Do not deliver before this time.
    pub deliver_after: Option<Timestamp>,
    /// Recurrence rule, as the agent wrote it.
    pub recurrence: Option<String>,
    /// The platform chat id to deliver to.
    pub platform_id: Option<String>,
    /// The platform to deliver to.
    pub channel_type: Option<String>,
    /// The thread to deliver to.
    pub thread_id: Option<String>,
}

impl NewOutboundMessage {
    /// A message with the given id, kind and content, written now.
    pub fn new(id: MessageId, kind: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            id,
            kind: kind.into(),
            content: content.into(),
            timestamp: Timestamp::now(),
            in_reply_to: None,
            deliver_after: None,
            recurrence: None,
            platform_id: None,
            channel_type: None,
            thread_id: None,
        }
    }
}

/// A message the host sends itself (e.g. a denial) without waking the guest.
///
/// It is stored in `inbound.db` (which the host owns) as a `messages_in` row
/// of kind [`HOST_OUTBOUND_KIND`], never in the guest's `outbound.db`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewHostMessage {
    /// The message id.
    pub id: MessageId,
    /// The content to deliver, usually JSON.
    pub content: String,
    /// When it was written.
    pub timestamp: Timestamp,
    /// Do not deliver before this time.
    pub deliver_after: Option<Timestamp>,
    /// The platform chat id to deliver to.
    pub platform_id: Option<String>,
    /// The platform to deliver to.
    pub channel_type: Option<String>,
    /// The thread to deliver to.
    pub thread_id: Option<String>,
}

impl NewHostMessage {
    /// A host message with the given id and content, written now.
    pub fn new(id: MessageId, content: impl Into<String>) -> Self {
        Self {
            id,
            content: content.into(),
            timestamp: Timestamp::now(),
            deliver_after: None,
            platform_id: None,
            channel_type: None,
            thread_id: None,
        }
    }
}

/// One stored `messages_in` row, as read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// Stored id.
    pub id: String,
    /// Even sequence number.
    pub seq: i64,
    /// Kind.
    pub kind: String,
    /// Stored timestamp text.
    pub timestamp: String,
    /// `pending`, `completed`, `failed` or `paused`, parsed once on read.
    pub status: InboundStatus,
    /// Stored `process_after` text.
    pub process_after: Option<String>,
    /// Recurrence rule.
    pub recurrence: Option<String>,
    /// Series id (`id` for one-off messages).
    pub series_id: Option<String>,
    /// Delivery attempts.
    pub tries: i64,
    /// Whether it wakes the agent.
    pub trigger: bool,
    /// Platform chat id.
    pub platform_id: Option<String>,
    /// Platform.
    pub channel_type: Option<String>,
    /// Thread.
    pub thread_id: Option<String>,
    /// Content (JSON).
    pub content: String,
    /// Sending session (agent-to-agent).
    pub source_session_id: Option<String>,
    /// Only for a fresh guest's first poll.
    pub on_wake: bool,
}

/// Who wrote an outbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The guest, in `outbound.db` (odd seq).
    Guest,
    /// The host itself, in `inbound.db` (even seq, kind [`HOST_OUTBOUND_KIND`]).
    Host,
}

/// One outbound message to deliver, from the guest or from the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// Who wrote it.
    pub origin: Origin,
    /// Stored id (untrusted text when the guest wrote it).
    pub id: String,
    /// Sequence number: odd from the guest, even from the host.
    pub seq: i64,
    /// The inbound message it answers.
    pub in_reply_to: Option<String>,
    /// Stored timestamp text.
    pub timestamp: String,
    /// Stored `deliver_after` text.
    pub deliver_after: Option<String>,
    /// Recurrence rule.
    pub recurrence: Option<String>,
    /// Kind (`chat` for host messages).
    pub kind: String,
    /// Platform chat id.
    pub platform_id: Option<String>,
    /// Platform.
    pub channel_type: Option<String>,
    /// Thread.
    pub thread_id: Option<String>,
    /// Content (JSON).
    pub content: String,
}

/// How `write_message` stored a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum WriteOutcome {
    /// A new row under the requested id.
    Inserted,
    /// The same message was already stored: nothing was written.
    Duplicate,
    /// The id was taken by a different message; stored under a derived id.
    Renamed {
        /// The id the caller asked for.
        original: MessageId,
    },
    /// The session belongs to another host: the message was durably queued
    /// for that host, which stores it (and assigns its seq) when it drains
    /// its queue. `seq` is 0 and `attachments` empty in this case.
    Routed {
        /// The host that owns the session.
        owner: String,
    },
}

/// The result of `write_message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenMessage {
    /// The id the row has (differs from the request when renamed).
    pub id: MessageId,
    /// The row's even seq.
    pub seq: i64,
    /// What happened.
    pub outcome: WriteOutcome,
    /// What happened to each inline attachment (empty for duplicates).
    pub attachments: Vec<crate::attachment::AttachmentOutcome>,
    /// A journal the host did not write, found beside the mailbox and moved
    /// to this path (unreplayed) before the write. `None` normally.
    pub quarantined_journal: Option<std::path::PathBuf>,
}

/// Status the guest records for an inbound message in `processing_ack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckStatus {
    /// The agent is working on it.
    Processing,
    /// Done.
    Completed,
    /// Gave up.
    Failed,
}

impl AckStatus {
    /// The stored spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            AckStatus::Processing => "processing",
            AckStatus::Completed => "completed",
            AckStatus::Failed => "failed",
        }
    }
}

/// A `processing_ack.status` text that is none of the three.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an ack status: {input:?} (expected processing, completed or failed)")]
pub struct AckStatusParseError {
    /// The text that was stored.
    pub input: String,
}

impl std::str::FromStr for AckStatus {
    type Err = AckStatusParseError;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        [
            AckStatus::Processing,
            AckStatus::Completed,
            AckStatus::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
        .ok_or_else(|| AckStatusParseError {
            input: s.to_owned(),
        })
    }
}

impl AckStatus {
    /// Whether the guest is done with the message (`completed` or `failed`).
    pub fn is_finished(self) -> bool {
        matches!(self, AckStatus::Completed | AckStatus::Failed)
    }
}

impl fmt::Display for AckStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `destinations` row: where the agent may send messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    /// The name the agent uses.
    pub name: String,
    /// Shown to people.
    pub display_name: Option<String>,
    /// `channel` or `agent` (the `type` column; `kind` is accepted on input).
    #[serde(rename = "type", alias = "kind")]
    pub kind: String,
    /// Platform of a channel destination.
    pub channel_type: Option<String>,
    /// Chat id of a channel destination.
    pub platform_id: Option<String>,
    /// Agent group of an agent destination.
    pub agent_group_id: Option<String>,
}

/// The single `session_routing` row: the session's default reply target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routing {
    /// Platform.
    pub channel_type: Option<String>,
    /// Chat id.
    pub platform_id: Option<String>,
    /// Thread.
    pub thread_id: Option<String>,
}

/// One `processing_ack` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessingAck {
    /// The inbound message id.
    pub message_id: String,
    /// The status, parsed once where the row is read.
    pub status: AckStatus,
    /// When the status changed (stored text).
    pub status_changed: String,
}

/// The `container_state` row: which tool the guest runs right now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerState {
    /// The tool in flight, if any.
    pub current_tool: Option<String>,
    /// The timeout the tool declared, in milliseconds.
    pub tool_declared_timeout_ms: Option<i64>,
    /// When the tool started (stored text).
    pub tool_started_at: Option<String>,
    /// When the row changed (stored text).
    pub updated_at: String,
}

/// Row counts of one mailbox, for listings and `doctor`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxCounts {
    /// `messages_in` rows.
    pub inbound: u64,
    /// `messages_in` rows still `pending`.
    pub inbound_pending: u64,
    /// `messages_out` rows.
    pub outbound: u64,
    /// `delivered` rows.
    pub delivered: u64,
}

/// What an even or odd seq refers to (guest look-ups for edits and reactions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqTarget {
    /// The message id in its table.
    pub message_id: String,
    /// The platform's id of the message, if known (the id itself for inbound).
    pub platform_message_id: Option<String>,
    /// Where the message came from: `Host` = inbound (even), `Guest` = outbound (odd).
    pub origin: Origin,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_statuses_parse_from_their_stored_spelling_only() {
        for status in [
            AckStatus::Processing,
            AckStatus::Completed,
            AckStatus::Failed,
        ] {
            assert_eq!(status.as_str().parse::<AckStatus>(), Ok(status));
        }
        let err = "COMPLETED".parse::<AckStatus>().unwrap_err();
        assert_eq!(err.input, "COMPLETED");
        assert!(err.to_string().contains("COMPLETED"), "{err}");
        assert!("".parse::<AckStatus>().is_err());
        assert!(AckStatus::Completed.is_finished() && AckStatus::Failed.is_finished());
        assert!(!AckStatus::Processing.is_finished());
    }
}
