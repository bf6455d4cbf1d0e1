//! Whether a running guest is stuck, as a pure function of what the host
//! observed, every time on the host's own clock.
//!
//! The reference lost work three ways here, and each rule below answers one:
//! - a fresh guest was killed for the stale `.heartbeat` its predecessor
//!   left: a heartbeat older than this guest's start does not count, and a
//!   missing heartbeat means "silent since the start", not "infinitely stale";
//! - a guest that claimed a message and was slow to start was killed again
//!   and again: a claim is only held against the guest once it is older than
//!   its tolerance *and* no heartbeat came after it, and a claim the host saw
//!   before this guest started is counted from the start;
//! - a tool with a long declared timeout (a build, a crawl) was killed
//!   mid-run: while one is in flight both limits stretch to its timeout plus
//!   a grace.
//!
//! Guest timestamps (`tool_started_at`, `status_changed`) are never compared
//! with host time: a VM's clock drifts. Only the tool's declared *duration*
//! is taken from the guest; the times come from [`super::Observed`].

use std::time::Duration;

use airlock_core::Timestamp;

/// The limits of the stuck decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StuckConfig {
    /// Longest silence (no heartbeat) before a guest is killed.
    pub ceiling: Duration,
    /// How long a claim may go without a heartbeat after it.
    pub claim_tolerance: Duration,
    /// Added to a tool's declared timeout when it stretches the limits.
    pub tool_grace: Duration,
    /// The most a declared timeout may stretch the limits: the guest is
    /// untrusted, and a declared century must not make it unkillable.
    pub max_tool_timeout: Duration,
}

impl Default for StuckConfig {
    fn default() -> Self {
        Self {
            ceiling: Duration::from_secs(30 * 60),
            claim_tolerance: Duration::from_secs(60),
            tool_grace: Duration::from_secs(60),
            max_tool_timeout: Duration::from_secs(24 * 3600),
        }
    }
}

/// A message the guest marked `processing`, with the time the host first saw the claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The inbound message id.
    pub message_id: String,
    /// When the host first saw it claimed (host clock).
    pub seen: Timestamp,
}

/// What the stuck decision looks at, all on the host's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StuckInput<'a> {
    /// Now.
    pub now: Timestamp,
    /// When this guest was woken, or first seen running after a host restart.
    pub started: Timestamp,
    /// The last sign of life: when the host saw the `.heartbeat` change
    /// (`None`: never beat).
    pub heartbeat: Option<Timestamp>,
    /// The timeout the tool in flight declared, if one is in flight.
    pub tool_timeout: Option<Duration>,
    /// The guest's open claims.
    pub claims: &'a [Claim],
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stuck {
    /// Leave the guest running.
    Ok,
    /// Silent for longer than the ceiling: kill it.
    KillCeiling {
        /// How long it has been silent.
        silent_for: Duration,
        /// The ceiling in force (stretched by a tool, if one runs).
        ceiling: Duration,
    },
    /// A claim went unanswered past its tolerance: kill it.
    KillClaim {
        /// The oldest such claim.
        message_id: String,
        /// How long it has been claimed (counted from the guest's start at the earliest).
        claimed_for: Duration,
        /// The tolerance in force.
        tolerance: Duration,
    },
}

fn since(now: Timestamp, then: Timestamp) -> Duration {
    Duration::from_millis(now.as_millis().saturating_sub(then.as_millis()).max(0) as u64)
}

/// Decides whether the guest described by `input` is stuck.
///
/// Limits are strict: a guest silent for exactly the ceiling is left alone.
pub fn decide_stuck(config: &StuckConfig, input: &StuckInput<'_>) -> Stuck {
    let stretch = |limit: Duration| match input.tool_timeout {
        Some(t) => limit.max(t.min(config.max_tool_timeout) + config.tool_grace),
        None => limit,
    };
    // A beat from before this guest started was its predecessor's.
    let beat = input.heartbeat.filter(|b| *b >= input.started);
    let last_sign = beat.unwrap_or(input.started);
    let ceiling = stretch(config.ceiling);
    let silent_for = since(input.now, last_sign);
    if silent_for > ceiling {
        return Stuck::KillCeiling {
            silent_for,
            ceiling,
        };
    }
    let tolerance = stretch(config.claim_tolerance);
    let overdue = input
        .claims
        .iter()
        .map(|c| (c, c.seen.max(input.started)))
        .filter(|(_, seen)| beat.is_none_or(|b| b <= *seen))
        .map(|(c, seen)| (c, since(input.now, seen)))
        .filter(|(_, age)| *age > tolerance)
        .max_by_key(|(c, age)| (*age, std::cmp::Reverse(c.message_id.clone())));
    match overdue {
        Some((claim, claimed_for)) => Stuck::KillClaim {
            message_id: claim.message_id.clone(),
            claimed_for,
            tolerance,
        },
        None => Stuck::Ok,
    }
}
