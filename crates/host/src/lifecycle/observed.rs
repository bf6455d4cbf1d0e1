//! The guest's signs of life as the host saw them, on the host's clock.
//!
//! The guest's own timestamps may come from a drifting VM clock, and even
//! the `.heartbeat` mtime may be set by the guest's clock on some mounts.
//! So the host notes *when it saw* each change: a heartbeat counts from the
//! moment its mtime changed between two sweeps, a claim from the sweep
//! that first found it. The error is at most one sweep interval, in the
//! guest's favour.

use std::collections::BTreeMap;
use std::time::Duration;

use airlock_core::Timestamp;
use airlock_core::mailbox::ContainerState;

use super::stuck::{Claim, Stuck, StuckConfig, StuckInput, decide_stuck};

/// What the host has seen of one running guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    started: Timestamp,
    /// The last mtime read and when the host first read that value.
    beat: Option<(Timestamp, Timestamp)>,
    claims: BTreeMap<String, Timestamp>,
}

impl Observed {
    /// A guest woken (or, after a host restart, first found running) at `now`.
    pub fn started_at(now: Timestamp) -> Self {
        Self {
            started: now,
            beat: None,
            claims: BTreeMap::new(),
        }
    }

    /// When the guest started, as far as the host knows.
    pub fn started(&self) -> Timestamp {
        self.started
    }

    /// Records one sweep's reading: the `.heartbeat` mtime (`None`: no file)
    /// and the ids the guest holds `processing`.
    pub fn observe(&mut self, now: Timestamp, heartbeat: Option<Timestamp>, processing: &[String]) {
        if let Some(mtime) = heartbeat {
            self.beat = match self.beat {
                Some((old, seen)) if old == mtime => Some((old, seen)),
                // A change between two readings: it happened since the last sweep.
                Some(_) => Some((mtime, now)),
                // The first reading can only be dated by the file itself.
                None => Some((mtime, mtime.min(now))),
            };
        }
        self.claims.retain(|id, _| processing.contains(id));
        for id in processing {
            self.claims.entry(id.clone()).or_insert(now);
        }
    }

    /// When the host last saw the heartbeat change (`None`: never).
    pub fn heartbeat(&self) -> Option<Timestamp> {
        self.beat.map(|(_, seen)| seen)
    }

    /// The open claims with the time the host first saw each.
    pub fn claims(&self) -> Vec<Claim> {
        self.claims
            .iter()
            .map(|(id, seen)| Claim {
                message_id: id.clone(),
                seen: *seen,
            })
            .collect()
    }

    /// The stuck decision over what was observed, at `now`.
    pub fn decide(
        &self,
        config: &StuckConfig,
        now: Timestamp,
        tool_timeout: Option<Duration>,
    ) -> Stuck {
        let claims = self.claims();
        decide_stuck(
            config,
            &StuckInput {
                now,
                started: self.started,
                heartbeat: self.heartbeat(),
                tool_timeout,
                claims: &claims,
            },
        )
    }
}

/// The timeout the tool in flight declared, from the guest's
/// `container_state`; its timestamps are ignored (guest clock).
pub fn tool_timeout(state: Option<&ContainerState>) -> Option<Duration> {
    let state = state?;
    state.current_tool.as_deref().filter(|t| !t.is_empty())?;
    let ms = state.tool_declared_timeout_ms.filter(|ms| *ms > 0)?;
    Some(Duration::from_millis(ms as u64))
}
