//! Conformance checks of message ids as platforms send them: ids that end
//! in `#N` like derived ids, and reused ids, mixed in any order.

use crate::mailbox::WriteOutcome;

use super::super::{MailboxUnderTest, inbound};
use super::{PLATFORM_IDS, PLATFORM_TEXTS, platform_id_sequence_is_stored_once};

/// `x`, then the platform's own `x#2`, then `x` with `x#2`'s content: three
/// messages, three rows (the third is no retry of `x#2`, which was never
/// requested as `x`). Also the other way round, a platform `x#2` after a
/// derived `x#2`.
pub async fn platform_ids_that_look_derived_are_not_retries(t: &MailboxUnderTest) {
    let first = t.host.write_message(inbound("x", "a")).await.unwrap();
    let second = t.host.write_message(inbound("x#2", "b")).await.unwrap();
    let third = t.host.write_message(inbound("x", "b")).await.unwrap();
    assert_eq!(first.outcome, WriteOutcome::Inserted);
    assert_eq!(second.outcome, WriteOutcome::Inserted);
    assert_ne!(third.outcome, WriteOutcome::Duplicate, "{third:?}");
    assert_ne!(third.seq, second.seq);
    assert_eq!(third.id.as_str(), "x#3");

    let y = t.host.write_message(inbound("y", "a")).await.unwrap();
    let derived = t.host.write_message(inbound("y", "b")).await.unwrap();
    assert_eq!(derived.id.as_str(), "y#2");
    let platform = t.host.write_message(inbound("y#2", "b")).await.unwrap();
    assert_ne!(platform.outcome, WriteOutcome::Duplicate, "{platform:?}");
    assert_ne!(platform.seq, derived.seq);
    assert_ne!(platform.id, y.id);
    assert_eq!(t.host.counts().await.unwrap().inbound, 6);

    // Exact retries of each stay no-ops.
    for (id, text, stored) in [
        ("x", "b", &third),
        ("x#2", "b", &second),
        ("y#2", "b", &platform),
    ] {
        let retry = t.host.write_message(inbound(id, text)).await.unwrap();
        assert_eq!(retry.outcome, WriteOutcome::Duplicate, "{id} {text}");
        assert_eq!((&retry.id, retry.seq), (&stored.id, stored.seq));
    }
    assert_eq!(t.host.counts().await.unwrap().inbound, 6);
}

/// [`platform_id_sequence_is_stored_once`] over one fixed pseudo-random
/// sequence of 80 pairs (backends also run it under proptest).
pub async fn every_distinct_platform_message_is_stored_once(t: &MailboxUnderTest) {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let pairs: Vec<(usize, usize)> = (0..80)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (
                (state % PLATFORM_IDS.len() as u64) as usize,
                ((state >> 8) % PLATFORM_TEXTS.len() as u64) as usize,
            )
        })
        .collect();
    platform_id_sequence_is_stored_once(t, &pairs).await;
}
