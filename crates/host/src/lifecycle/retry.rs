//! What happens to a claim a guest left when it stopped: the message goes
//! back to `pending` later (exponential backoff, `tries + 1`) or, after the
//! last try, is marked failed and the agent is told in a `system` note.
//!
//! Delivery retries (`crate::delivery::RetryPolicy`) are bounded by a time
//! window and jittered; these are bounded by a count and exact, because the
//! count is what the agent is told and what the user configures.

use std::time::Duration;

use airlock_core::Timestamp;

/// Backoff and the try limit of claims a dead guest left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimRetry {
    /// Delay before the second try.
    pub first_delay: Duration,
    /// Longest delay between two tries.
    pub max_delay: Duration,
    /// Tries in all, the first included; the last failure marks the message failed.
    pub max_tries: u32,
}

impl Default for ClaimRetry {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(10 * 60),
            max_tries: 5,
        }
    }
}

/// What to do with one leftover claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Back to `pending` with `tries`, not due before `process_after`.
    Retry {
        /// The new `tries`.
        tries: i64,
        /// When it may be processed again.
        process_after: Timestamp,
    },
    /// Mark it failed with `tries` and write a `system` note.
    Fail {
        /// The new `tries` (the limit).
        tries: i64,
    },
}

/// The decision for a message whose guest stopped while it was claimed,
/// `tries` times before (the stored `messages_in.tries`).
pub fn decide_retry(policy: &ClaimRetry, tries: i64, now: Timestamp) -> RetryDecision {
    let tries = tries.max(0).saturating_add(1);
    if tries >= i64::from(policy.max_tries.max(1)) {
        return RetryDecision::Fail { tries };
    }
    let doublings = u32::try_from(tries - 1).unwrap_or(u32::MAX).min(40);
    let delay = policy
        .first_delay
        .saturating_mul(1u32 << doublings.min(31))
        .min(policy.max_delay);
    let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
    RetryDecision::Retry {
        tries,
        process_after: now.plus_millis(delay_ms),
    }
}

/// The JSON content of the `system` note that tells the agent a message
/// failed for good (kind `system`, written to inbound, not triggering).
pub fn failure_note(message_id: &str, tries: i64) -> String {
    serde_json::json!({
        "type": "message_failed",
        "messageId": message_id,
        "tries": tries,
        "reason": "the guest stopped while processing it, on every try",
    })
    .to_string()
}
