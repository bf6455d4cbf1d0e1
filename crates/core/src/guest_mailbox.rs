//! The guest half of the mailbox seam: what the code inside a sandbox does
//! with its session's mailbox.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use crate::attachment::OutboxFile;
use crate::error::Result;
use crate::ids::MessageId;
use crate::mailbox::{AckStatus, InboundMessage, NewOutboundMessage, SeqTarget};
use crate::seq::Seq;
use crate::time::Timestamp;

/// A guest-side mailbox usable as `dyn`.
pub type DynGuestMailbox = dyn GuestMailboxStore;

/// A message the guest sends, with the files that travel beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The message; its content must be a JSON object when `files` is not empty.
    pub message: NewOutboundMessage,
    /// Files stored under `outbox/<message id>/` and declared in the content.
    pub files: Vec<OutboxFile>,
}

impl Reply {
    /// A reply without files.
    pub fn new(message: NewOutboundMessage) -> Self {
        Self {
            message,
            files: Vec::new(),
        }
    }
}

/// How a reply was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenReply {
    /// The reply's id.
    pub id: MessageId,
    /// Its guest (odd) seq.
    pub seq: Seq,
    /// The names declared in its content, in the order given.
    pub files: Vec<String>,
}

/// The tool the agent is running right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolInFlight {
    /// The tool's name.
    pub tool: String,
    /// The timeout it declared, in milliseconds.
    pub declared_timeout_ms: Option<i64>,
}

/// One session's mailbox, guest side.
///
/// # Contract
///
/// Checked, with the host side, by `airlock_core::testing`'s mailbox suite.
///
/// - `pending` returns the newest `limit` pending messages that are due at
///   `now` and not acked, oldest first; `on_wake` messages only on this
///   guest's first poll; host-originated messages never.
/// - `ack` records a status per inbound id; a later status replaces an
///   earlier one. A guest that starts forgets the `processing` claims of a
///   guest before it (that guest crashed).
/// - `write_reply` stores the files first and the row after, so the host
///   never sees a message whose files are missing; the reply gets the next
///   guest (odd) seq above every seq of both halves. A reply under an id
///   already stored writes nothing and returns the stored seq. If the reply
///   cannot be stored, none of its files are left behind. File names must be
///   safe single components ([`Error::InvalidInput`](crate::Error) or
///   [`Error::InvalidId`](crate::Error) otherwise) and distinct.
/// - `lookup_seq`: an even seq names an inbound message (its id is the
///   platform's id), an odd one a reply (with the platform id the host
///   recorded on delivery); an unknown seq is `None`.
/// - `state` returns what `set_state` stored last for the key.
#[async_trait]
pub trait GuestMailboxStore: Debug + Send + Sync + 'static {
    /// Pending, due, unacked inbound messages, oldest first.
    async fn pending(&self, limit: usize, now: Timestamp) -> Result<Vec<InboundMessage>>;

    /// Records `status` for each inbound id.
    async fn ack(&self, ids: &[String], status: AckStatus) -> Result<()>;

    /// Stores a reply and its files; returns its seq.
    async fn write_reply(&self, reply: Reply) -> Result<WrittenReply>;

    /// What `seq` refers to, for edits and reactions.
    async fn lookup_seq(&self, seq: Seq) -> Result<Option<SeqTarget>>;

    /// A `session_state` value.
    async fn state(&self, key: &str) -> Result<Option<String>>;

    /// Sets a `session_state` value.
    async fn set_state(&self, key: &str, value: &str) -> Result<()>;

    /// Records the tool in flight, or clears it with `None`.
    async fn set_tool_in_flight(&self, tool: Option<ToolInFlight>) -> Result<()>;

    /// Tells the host the guest is alive.
    async fn touch_heartbeat(&self) -> Result<()>;
}

macro_rules! forward_guest_mailbox {
    ($wrapper:ty) => {
        #[async_trait]
        impl<T: GuestMailboxStore + ?Sized> GuestMailboxStore for $wrapper {
            async fn pending(&self, limit: usize, now: Timestamp) -> Result<Vec<InboundMessage>> {
                (**self).pending(limit, now).await
            }
            async fn ack(&self, ids: &[String], status: AckStatus) -> Result<()> {
                (**self).ack(ids, status).await
            }
            async fn write_reply(&self, reply: Reply) -> Result<WrittenReply> {
                (**self).write_reply(reply).await
            }
            async fn lookup_seq(&self, seq: Seq) -> Result<Option<SeqTarget>> {
                (**self).lookup_seq(seq).await
            }
            async fn state(&self, key: &str) -> Result<Option<String>> {
                (**self).state(key).await
            }
            async fn set_state(&self, key: &str, value: &str) -> Result<()> {
                (**self).set_state(key, value).await
            }
            async fn set_tool_in_flight(&self, tool: Option<ToolInFlight>) -> Result<()> {
                (**self).set_tool_in_flight(tool).await
            }
            async fn touch_heartbeat(&self) -> Result<()> {
                (**self).touch_heartbeat().await
            }
        }
    };
}

forward_guest_mailbox!(Arc<T>);
forward_guest_mailbox!(Box<T>);

impl Reply {
    /// The names of the reply's files, each a safe single component and all
    /// distinct, in the order given.
    pub fn checked_names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = Vec::with_capacity(self.files.len());
        for file in &self.files {
            let name = crate::attachment_name::AttachmentName::new(file.name.clone())
                .map_err(|e| crate::Error::InvalidInput(e.to_string()))?;
            if names.iter().any(|n| n == name.as_str()) {
                return Err(crate::Error::InvalidInput(format!(
                    "two reply files are named {}",
                    crate::escape_for_log(name.as_str())
                )));
            }
            names.push(name.as_str().to_owned());
        }
        Ok(names)
    }
}
