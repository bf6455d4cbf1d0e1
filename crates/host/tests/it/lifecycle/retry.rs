//! Leftover claims: backoff doubling to its cap, failed at the last try.

use std::time::Duration;

use airlock_host::lifecycle::{ClaimRetry, RetryDecision, decide_retry, failure_note};

use crate::lifecycle::support::t;

#[test]
fn backoff_doubles_and_the_fifth_failure_is_final() {
    let policy = ClaimRetry::default();
    let rows = [
        (
            0,
            RetryDecision::Retry {
                tries: 1,
                process_after: t(10),
            },
        ),
        (
            1,
            RetryDecision::Retry {
                tries: 2,
                process_after: t(20),
            },
        ),
        (
            2,
            RetryDecision::Retry {
                tries: 3,
                process_after: t(40),
            },
        ),
        (
            3,
            RetryDecision::Retry {
                tries: 4,
                process_after: t(80),
            },
        ),
        (4, RetryDecision::Fail { tries: 5 }),
        (9, RetryDecision::Fail { tries: 10 }),
        // A corrupt negative count is treated as none.
        (
            -7,
            RetryDecision::Retry {
                tries: 1,
                process_after: t(10),
            },
        ),
    ];
    for (tries, want) in rows {
        assert_eq!(decide_retry(&policy, tries, t(0)), want, "tries {tries}");
    }
}

#[test]
fn delays_stop_at_the_cap() {
    let policy = ClaimRetry {
        max_tries: 100,
        max_delay: Duration::from_secs(60),
        ..ClaimRetry::default()
    };
    assert_eq!(
        decide_retry(&policy, 50, t(0)),
        RetryDecision::Retry {
            tries: 51,
            process_after: t(60)
        }
    );
    let one = ClaimRetry {
        max_tries: 1,
        ..policy
    };
    assert_eq!(
        decide_retry(&one, 0, t(0)),
        RetryDecision::Fail { tries: 1 }
    );
}

#[test]
fn the_note_names_the_message_and_the_tries() {
    let note: serde_json::Value = serde_json::from_str(&failure_note("m\"1", 5)).unwrap();
    assert_eq!(note["type"], "message_failed");
    assert_eq!(note["messageId"], "m\"1");
    assert_eq!(note["tries"], 5);
}
