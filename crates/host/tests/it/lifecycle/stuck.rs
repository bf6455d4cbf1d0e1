//! Every branch of the stuck decision, one row each.

use std::time::Duration;

use airlock_host::lifecycle::{Claim, Stuck, StuckConfig, StuckInput, decide_stuck};

use crate::lifecycle::support::{MIN, t};

#[derive(Debug, PartialEq)]
enum Verdict {
    Ok,
    Ceiling,
    Claim(&'static str),
}

struct Row {
    name: &'static str,
    now: i64,
    started: i64,
    heartbeat: Option<i64>,
    tool_secs: Option<u64>,
    claims: &'static [(&'static str, i64)],
    want: Verdict,
}

const ROWS: &[Row] = &[
    Row {
        name: "fresh guest, no heartbeat yet",
        now: 5 * MIN,
        started: 0,
        heartbeat: None,
        tool_secs: None,
        claims: &[],
        want: Verdict::Ok,
    },
    Row {
        name: "no heartbeat is silence since the start, not infinite staleness",
        now: 29 * MIN,
        started: 0,
        heartbeat: None,
        tool_secs: None,
        claims: &[],
        want: Verdict::Ok,
    },
    Row {
        name: "no heartbeat past the ceiling",
        now: 31 * MIN,
        started: 0,
        heartbeat: None,
        tool_secs: None,
        claims: &[],
        want: Verdict::Ceiling,
    },
    Row {
        name: "silent exactly the ceiling is left alone",
        now: 40 * MIN,
        started: 0,
        heartbeat: Some(10 * MIN),
        tool_secs: None,
        claims: &[],
        want: Verdict::Ok,
    },
    Row {
        name: "silent one second past the ceiling",
        now: 40 * MIN + 1,
        started: 0,
        heartbeat: Some(10 * MIN),
        tool_secs: None,
        claims: &[],
        want: Verdict::Ceiling,
    },
    Row {
        name: "stale heartbeat of the previous guest does not count against a fresh one",
        now: 60,
        started: 0,
        heartbeat: Some(-120 * MIN),
        tool_secs: None,
        claims: &[],
        want: Verdict::Ok,
    },
    Row {
        name: "stale heartbeat, fresh guest silent past the ceiling",
        now: 31 * MIN,
        started: 0,
        heartbeat: Some(-120 * MIN),
        tool_secs: None,
        claims: &[],
        want: Verdict::Ceiling,
    },
    Row {
        name: "heartbeat 10 min in the future (skewed clock) is a sign of life now",
        now: 60 * MIN,
        started: 0,
        heartbeat: Some(70 * MIN),
        tool_secs: None,
        claims: &[],
        want: Verdict::Ok,
    },
    Row {
        name: "2-hour tool: 90 min of silence is fine",
        now: 90 * MIN,
        started: 0,
        heartbeat: Some(0),
        tool_secs: Some(7200),
        claims: &[],
        want: Verdict::Ok,
    },
    Row {
        name: "2-hour tool: silence up to timeout plus grace is fine",
        now: 121 * MIN,
        started: 0,
        heartbeat: Some(0),
        tool_secs: Some(7200),
        claims: &[],
        want: Verdict::Ok,
    },
    Row {
        name: "2-hour tool: past timeout plus grace",
        now: 121 * MIN + 1,
        started: 0,
        heartbeat: Some(0),
        tool_secs: Some(7200),
        claims: &[],
        want: Verdict::Ceiling,
    },
    Row {
        name: "a short tool never shortens the ceiling",
        now: 20 * MIN,
        started: 0,
        heartbeat: Some(0),
        tool_secs: Some(5),
        claims: &[],
        want: Verdict::Ok,
    },
    Row {
        name: "a declared century is capped at 24 h",
        now: 24 * 60 * MIN + 2 * MIN,
        started: 0,
        heartbeat: Some(0),
        tool_secs: Some(100 * 365 * 86400),
        claims: &[],
        want: Verdict::Ceiling,
    },
    Row {
        name: "claim within its tolerance",
        now: 10 * MIN + 59,
        started: 0,
        heartbeat: Some(9 * MIN),
        tool_secs: None,
        claims: &[("m1", 10 * MIN)],
        want: Verdict::Ok,
    },
    Row {
        name: "claim at exactly its tolerance",
        now: 10 * MIN + 60,
        started: 0,
        heartbeat: Some(9 * MIN),
        tool_secs: None,
        claims: &[("m1", 10 * MIN)],
        want: Verdict::Ok,
    },
    Row {
        name: "claim past its tolerance with no heartbeat after it",
        now: 10 * MIN + 61,
        started: 0,
        heartbeat: Some(9 * MIN),
        tool_secs: None,
        claims: &[("m1", 10 * MIN)],
        want: Verdict::Claim("m1"),
    },
    Row {
        name: "claim past its tolerance, never any heartbeat",
        now: 10 * MIN + 61,
        started: 0,
        heartbeat: None,
        tool_secs: None,
        claims: &[("m1", 10 * MIN)],
        want: Verdict::Claim("m1"),
    },
    Row {
        name: "claim old but a heartbeat came after it",
        now: 20 * MIN,
        started: 0,
        heartbeat: Some(10 * MIN + 5),
        tool_secs: None,
        claims: &[("m1", 10 * MIN)],
        want: Verdict::Ok,
    },
    Row {
        name: "orphan claim seen before this guest started counts from the start",
        now: 30,
        started: 0,
        heartbeat: None,
        tool_secs: None,
        claims: &[("old", -20 * MIN)],
        want: Verdict::Ok,
    },
    Row {
        name: "orphan claim still unanswered a minute after the start",
        now: 61,
        started: 0,
        heartbeat: None,
        tool_secs: None,
        claims: &[("old", -20 * MIN)],
        want: Verdict::Claim("old"),
    },
    Row {
        name: "2-hour tool stretches the claim tolerance",
        now: 60 * MIN,
        started: 0,
        heartbeat: Some(1),
        tool_secs: Some(7200),
        claims: &[("m1", 2)],
        want: Verdict::Ok,
    },
    Row {
        name: "2-hour tool: claim past timeout plus grace",
        now: 121 * MIN + 3,
        started: 0,
        heartbeat: Some(1),
        tool_secs: Some(7200),
        claims: &[("m1", 2)],
        want: Verdict::Ceiling,
    },
    Row {
        name: "of two overdue claims the oldest is named",
        now: 10 * MIN,
        started: 0,
        heartbeat: None,
        tool_secs: None,
        claims: &[("new", 5 * MIN), ("oldest", 2 * MIN)],
        want: Verdict::Claim("oldest"),
    },
    Row {
        name: "the ceiling wins over a claim",
        now: 31 * MIN,
        started: 0,
        heartbeat: None,
        tool_secs: None,
        claims: &[("m1", 0)],
        want: Verdict::Ceiling,
    },
    Row {
        name: "a clock that went back (now before the start) is not a silence",
        now: -5 * MIN,
        started: 0,
        heartbeat: None,
        tool_secs: None,
        claims: &[("m1", 0)],
        want: Verdict::Ok,
    },
];

#[test]
fn every_branch_of_the_stuck_decision() {
    let config = StuckConfig::default();
    let mut failures = Vec::new();
    for row in ROWS {
        let claims: Vec<Claim> = row
            .claims
            .iter()
            .map(|(id, seen)| Claim {
                message_id: (*id).to_owned(),
                seen: t(*seen),
            })
            .collect();
        let input = StuckInput {
            now: t(row.now),
            started: t(row.started),
            heartbeat: row.heartbeat.map(t),
            tool_timeout: row.tool_secs.map(Duration::from_secs),
            claims: &claims,
        };
        let got = match decide_stuck(&config, &input) {
            Stuck::Ok => Verdict::Ok,
            Stuck::KillCeiling { .. } => Verdict::Ceiling,
            Stuck::KillClaim { message_id, .. } => Verdict::Claim(
                row.claims
                    .iter()
                    .find(|(id, _)| *id == message_id)
                    .unwrap()
                    .0,
            ),
        };
        if got != row.want {
            failures.push(format!("{}: got {got:?}, want {:?}", row.name, row.want));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn kills_say_how_long_and_which_limit() {
    let config = StuckConfig::default();
    let claims = [Claim {
        message_id: "m1".into(),
        seen: t(0),
    }];
    let input = StuckInput {
        now: t(90),
        started: t(0),
        heartbeat: None,
        tool_timeout: None,
        claims: &claims,
    };
    assert_eq!(
        decide_stuck(&config, &input),
        Stuck::KillClaim {
            message_id: "m1".into(),
            claimed_for: Duration::from_secs(90),
            tolerance: Duration::from_secs(60),
        }
    );
    let input = StuckInput {
        now: t(2 * 3600),
        claims: &[],
        ..input
    };
    assert_eq!(
        decide_stuck(&config, &input),
        Stuck::KillCeiling {
            silent_for: Duration::from_secs(7200),
            ceiling: Duration::from_secs(1800),
        }
    );
}
