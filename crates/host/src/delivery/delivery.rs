//! [`Delivery`]: one outbound message on its way out, with its files and
//! resolved routing. Completing it ([`Delivery::delivered`] or
//! [`Delivery::failed`]) records the outcome in host state first, then in
//! the mailbox, and only then touches the outbox: the order is in the code
//! once, so no caller re-composes it.

use std::sync::Arc;

use airlock_core::mailbox::{NewInboundMessage, OutboundMessage, Routing};
use airlock_core::{HostMailboxStoreExt, MessageId, OutboxFile, Result, Session, Timestamp};
use serde_json::{Value, json};

use super::adapter::DeliveryError;
use super::engine::Engine;
use super::metrics;
use super::policy::Retry;
use super::settle::{Unsettled, settle};
use super::state::{Failure, Key, QueuedMessage};
use crate::SessionHandle;

/// How a completed delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The platform has it.
    Delivered,
    /// A transient failure; the next attempt is due then.
    Retrying {
        /// When the next attempt is due.
        at: Timestamp,
    },
    /// Recorded as failed, the agent told, the outbox kept.
    DeadLettered,
}

/// One outbound message handed to a [`super::ChannelAdapter`].
#[derive(Debug)]
pub struct Delivery {
    pub(crate) engine: Arc<Engine>,
    pub(crate) handle: SessionHandle,
    pub(crate) message: OutboundMessage,
    pub(crate) content: Value,
    pub(crate) routing: Routing,
    pub(crate) files: Vec<OutboxFile>,
    pub(crate) files_error: Option<String>,
    /// The queue row when this is a retry or a scheduled message.
    pub(crate) queued: Option<QueuedMessage>,
}

/// The names a message declares in its content's `"files"` array.
pub fn declared_files(content: &Value) -> Vec<String> {
    content
        .get("files")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The content as JSON, or as a JSON string when it is not JSON.
pub(crate) fn parse_content(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

impl Delivery {
    /// The session the message belongs to.
    pub fn session(&self) -> &Session {
        self.handle.session()
    }

    /// The stored message (its text fields as the writer stored them).
    pub fn message(&self) -> &OutboundMessage {
        &self.message
    }

    /// The content parsed as JSON (a JSON string when it is not JSON).
    pub fn content(&self) -> &Value {
        &self.content
    }

    /// Where to deliver: the row's routing, else the session's default.
    pub fn routing(&self) -> &Routing {
        &self.routing
    }

    /// The outbox files the message declared and that could be read.
    pub fn files(&self) -> &[OutboxFile] {
        &self.files
    }

    /// Why no file could be read at all (an unsafe message id), if so.
    pub fn files_error(&self) -> Option<&str> {
        self.files_error.as_deref()
    }

    /// This attempt's number (1 for the first).
    pub fn attempt(&self) -> u32 {
        self.queued.as_ref().map_or(0, |q| q.attempts) + 1
    }

    fn key(&self) -> Key {
        Key {
            session: self.handle.session().id.to_string(),
            agent_group: self.handle.session().agent_group_id.to_string(),
            origin: self.message.origin,
            seq: self.message.seq,
            message_id: self.message.id.clone(),
        }
    }

    /// Records the delivery (host state, then `delivered` in `inbound.db`),
    /// then clears the outbox.
    pub async fn delivered(self, platform_message_id: Option<String>) -> Result<Outcome> {
        let (engine, handle) = (self.engine.clone(), self.handle.clone());
        let recorded = self.record_delivered(platform_message_id).await?;
        settle(&engine, &handle, vec![recorded]).await?;
        Ok(Outcome::Delivered)
    }

    /// Records the delivery in host state, where it is never sent again;
    /// what remains is to settle it (`delivered` in `inbound.db`, then the
    /// outbox), which a session's pass does in batches.
    pub(crate) async fn record_delivered(
        self,
        platform_message_id: Option<String>,
    ) -> Result<Unsettled> {
        let engine = self.engine.clone();
        let state = engine.state.clone();
        let key = self.key();
        let pid = platform_message_id.clone();
        engine
            .blocking(move || state.delivered(&key, pid.as_deref()))
            .await?;
        metrics::delivered();
        Ok(Unsettled {
            origin: self.message.origin,
            seq: self.message.seq,
            message_id: self.message.id,
            platform_message_id,
        })
    }

    /// Records a failed attempt: a transient one is retried with backoff
    /// until the retry window ends; a permanent one, or the window's end,
    /// dead-letters the message (recorded as failed, the agent told through
    /// its inbound, the outbox kept for inspection).
    pub async fn failed(self, error: DeliveryError) -> Result<Outcome> {
        let engine = self.engine.clone();
        let now = Timestamp::now();
        let attempts = self.attempt();
        let first = self
            .queued
            .as_ref()
            .and_then(|q| q.first_failed_at)
            .unwrap_or(now.as_millis());
        let first_ts = Timestamp::from_millis(first).unwrap_or(now);
        let text = error.to_string();
        let decision = match &error {
            DeliveryError::Transient { retry_after, .. } => engine.config.retry.next(
                attempts,
                first_ts,
                now,
                *retry_after,
                (
                    self.handle.session().id.as_str(),
                    self.message.seq,
                    attempts,
                ),
            ),
            DeliveryError::Permanent { .. } => Retry::GiveUp,
        };
        let reason = match (&error, decision) {
            (_, Retry::At(at)) => {
                let failure = Failure::Retry {
                    attempts,
                    first_failed_at: first,
                    due_at: at.as_millis(),
                    error: text.clone(),
                };
                self.record(failure, now).await?;
                metrics::retried();
                tracing::info!(attempts, next = %at, error = %text, "delivery failed; will retry");
                return Ok(Outcome::Retrying { at });
            }
            (DeliveryError::Permanent { .. }, _) => "the platform refused it".to_owned(),
            (DeliveryError::Transient { .. }, _) => format!(
                "still failing after {attempts} attempt(s) over {:?}",
                engine.config.retry.window
            ),
        };
        let failure = Failure::Dead {
            attempts,
            first_failed_at: first,
            error: text.clone(),
            reason: reason.clone(),
        };
        self.record(failure, now).await?;
        metrics::dead_lettered();
        tracing::warn!(attempts, error = %text, %reason, "delivery dead-lettered");
        if let Err(e) = self
            .handle
            .mailbox()
            .mark_delivery_failed(&self.message.id)
            .await
        {
            tracing::warn!(error = %e, "dead-lettered, but recording it in inbound.db failed");
        }
        if let Err(e) = self.notify_agent(&reason, &text, attempts).await {
            tracing::warn!(error = %e, "dead-lettered, but telling the agent failed");
        }
        Ok(Outcome::DeadLettered)
    }

    async fn record(&self, failure: Failure, now: Timestamp) -> Result<()> {
        let state = self.engine.state.clone();
        let key = self.key();
        self.engine
            .blocking(move || state.failed(&key, &failure, now.as_millis()))
            .await
    }

    /// A `system` message in the session's inbound, so the agent can tell the user.
    async fn notify_agent(&self, reason: &str, error: &str, attempts: u32) -> Result<()> {
        let content = json!({
            "type": "delivery_failed",
            "messageId": self.message.id,
            "seq": self.message.seq,
            "reason": reason,
            "error": error,
            "attempts": attempts,
        });
        let id = MessageId::generate("delivery-failed")?;
        let mut notice = NewInboundMessage::new(id, "system", content.to_string());
        notice.channel_type = self.routing.channel_type.clone();
        notice.platform_id = self.routing.platform_id.clone();
        notice.thread_id = self.routing.thread_id.clone();
        self.engine
            .manager
            .write_to(&self.handle, notice)
            .await
            .map(drop)
    }
}
