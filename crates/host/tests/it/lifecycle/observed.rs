//! The host's observations of a guest whose clock is off by ±10 minutes:
//! the decision is the same as for a guest with the host's clock.

use std::time::Duration;

use airlock_core::mailbox::ContainerState;
use airlock_host::lifecycle::{Observed, Stuck, StuckConfig, tool_timeout};

use crate::lifecycle::support::{MIN, t};

const SKEWS: [i64; 3] = [-10 * MIN, 0, 10 * MIN];

/// Sweeps every 10 s from the start to `until`; the guest beats (mtime on
/// its own clock, `skew` off) every 10 s until `beats_until`, and claims
/// `m1` at `claim_at`. Returns the first kill and when it came.
fn run(skew: i64, beats_until: i64, claim_at: i64, until: i64) -> Option<(i64, Stuck)> {
    let config = StuckConfig::default();
    let mut seen = Observed::started_at(t(0));
    let mut mtime = None;
    for now in (0..=until).step_by(10) {
        if now <= beats_until && now > 0 {
            mtime = Some(t(now + skew));
        }
        let claims: Vec<String> = if now >= claim_at {
            vec!["m1".into()]
        } else {
            vec![]
        };
        seen.observe(t(now), mtime, &claims);
        match seen.decide(&config, t(now), None) {
            Stuck::Ok => {}
            kill => return Some((now, kill)),
        }
    }
    None
}

#[test]
fn a_beating_guest_is_never_killed_whatever_its_clock() {
    for skew in SKEWS {
        assert_eq!(run(skew, 3600, 30, 3600), None, "skew {skew}s");
    }
}

#[test]
fn a_guest_that_claims_and_goes_silent_is_killed_after_the_tolerance_whatever_its_clock() {
    for skew in SKEWS {
        let (when, kill) = run(skew, 20, 30, 3600).expect("a kill");
        assert!(
            matches!(&kill, Stuck::KillClaim { message_id, .. } if message_id == "m1"),
            "skew {skew}s: {kill:?}"
        );
        // Claimed at 30 s: overdue after 60 s, seen at the next sweep.
        assert_eq!(when, 100, "skew {skew}s");
    }
}

#[test]
fn a_silent_guest_meets_the_ceiling_whatever_its_clock() {
    for skew in SKEWS {
        let (when, kill) = run(skew, 20, i64::MAX, 3600).expect("a kill");
        assert!(matches!(kill, Stuck::KillCeiling { .. }), "skew {skew}s");
        assert!(
            (30 * MIN..=32 * MIN).contains(&when),
            "skew {skew}s: {when}"
        );
    }
}

#[test]
fn the_tool_timeout_is_read_and_the_guest_times_are_not() {
    let state = |tool: Option<&str>, ms: Option<i64>, started: &str| ContainerState {
        current_tool: tool.map(str::to_owned),
        tool_declared_timeout_ms: ms,
        tool_started_at: Some(started.to_owned()),
        updated_at: started.to_owned(),
    };
    let two_hours = Some(Duration::from_secs(7200));
    for started in ["2026-06-01 11:50:00", "2026-06-01 12:10:00", "garbage"] {
        assert_eq!(
            tool_timeout(Some(&state(Some("bash"), Some(7_200_000), started))),
            two_hours
        );
    }
    assert_eq!(tool_timeout(Some(&state(None, Some(7_200_000), "x"))), None);
    assert_eq!(
        tool_timeout(Some(&state(Some(""), Some(7_200_000), "x"))),
        None
    );
    assert_eq!(
        tool_timeout(Some(&state(Some("bash"), Some(-5), "x"))),
        None
    );
    assert_eq!(tool_timeout(Some(&state(Some("bash"), None, "x"))), None);
    assert_eq!(tool_timeout(None), None);
}

#[test]
fn a_claim_that_ends_is_forgotten_and_a_new_one_dated_when_seen() {
    let mut seen = Observed::started_at(t(0));
    seen.observe(t(10), None, &["a".into()]);
    seen.observe(t(20), None, &["a".into(), "b".into()]);
    seen.observe(t(30), None, &["b".into()]);
    let claims = seen.claims();
    assert_eq!(claims.len(), 1);
    assert_eq!(
        (claims[0].message_id.as_str(), claims[0].seen),
        ("b", t(20))
    );
}
