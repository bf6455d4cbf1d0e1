//! The seam a host application implements to reach a chat platform: deliver
//! one outbound message, answer with the platform's message id or a failure
//! classified as transient (try again later) or permanent (never retry).

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::delivery::Delivery;

/// Why a delivery did not happen, as the adapter classifies it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Network trouble, a timeout, a rate limit: the engine retries with
    /// backoff (not before `retry_after` when given) until its window ends.
    #[error("transient failure: {reason}")]
    Transient {
        /// What went wrong, for logs and the dead-letter record.
        reason: String,
        /// The platform's own "retry after" hint.
        retry_after: Option<Duration>,
    },
    /// The platform refused the message for good (unknown chat, too large,
    /// forbidden): dead-lettered at once.
    #[error("permanent failure: {reason}")]
    Permanent {
        /// What went wrong.
        reason: String,
    },
}

impl DeliveryError {
    /// A transient failure without a retry-after hint.
    pub fn transient(reason: impl Into<String>) -> Self {
        DeliveryError::Transient {
            reason: reason.into(),
            retry_after: None,
        }
    }

    /// A permanent failure.
    pub fn permanent(reason: impl Into<String>) -> Self {
        DeliveryError::Permanent {
            reason: reason.into(),
        }
    }

    /// The reason text without the classification.
    pub fn reason(&self) -> &str {
        match self {
            DeliveryError::Transient { reason, .. } | DeliveryError::Permanent { reason } => reason,
        }
    }

    /// Whether the engine may try again.
    pub fn is_transient(&self) -> bool {
        matches!(self, DeliveryError::Transient { .. })
    }
}

/// Delivers outbound messages to a chat platform.
///
/// # Contract
/// - `deliver` returns `Ok(platform_message_id)` only once the platform has
///   the message: the engine then records it as delivered and never sends it
///   again. Anything short of that is an `Err`.
/// - It may be called for several sessions at once, never twice at once for
///   the same session, and, per session, in seq order.
/// - It should return in bounded time; the engine cancels a call after its
///   per-call timeout and treats that as a transient failure.
/// - The routing in [`Delivery::routing`] is already resolved (the row's own,
///   else the session's default); the files are read and capped.
#[async_trait]
pub trait ChannelAdapter: Debug + Send + Sync + 'static {
    /// Sends one message; see the trait's contract.
    async fn deliver(&self, delivery: &Delivery) -> Result<String, DeliveryError>;
}

/// The adapter as the engine holds it.
pub type DynChannelAdapter = dyn ChannelAdapter;

#[async_trait]
impl<T: ChannelAdapter + ?Sized> ChannelAdapter for Arc<T> {
    async fn deliver(&self, delivery: &Delivery) -> Result<String, DeliveryError> {
        (**self).deliver(delivery).await
    }
}

#[async_trait]
impl<T: ChannelAdapter + ?Sized> ChannelAdapter for Box<T> {
    async fn deliver(&self, delivery: &Delivery) -> Result<String, DeliveryError> {
        (**self).deliver(delivery).await
    }
}
