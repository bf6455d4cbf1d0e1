//! Message ids as platforms send them: the conformance checks
//! ([`checks`]) and the property they share, which backends also run
//! under proptest with sequences of their own.

mod checks;

use std::collections::BTreeMap;

use crate::mailbox::WriteOutcome;
use crate::time::Timestamp;

use super::{MailboxUnderTest, inbound};

pub use checks::*;

/// The platform ids [`platform_id_sequence_is_stored_once`] draws from:
/// ids that collide with derived ids (`#N`, nested, zero-padded).
pub const PLATFORM_IDS: [&str; 8] = ["x", "x#2", "x#3", "x#2#2", "x#02", "x#10", "y", "y#2"];

/// The contents [`platform_id_sequence_is_stored_once`] draws from.
pub const PLATFORM_TEXTS: [&str; 3] = ["a", "b", "c"];

/// The property: writing `pairs` (indexes into [`PLATFORM_IDS`] and
/// [`PLATFORM_TEXTS`]) in order, every distinct (id, content) pair is
/// stored exactly once under an id of its own, and every repeat is a no-op
/// returning the first write's id and seq. Panics on the first breach.
pub async fn platform_id_sequence_is_stored_once(t: &MailboxUnderTest, pairs: &[(usize, usize)]) {
    const IDS: [&str; 8] = PLATFORM_IDS;
    const TEXTS: [&str; 3] = PLATFORM_TEXTS;
    let mut stored: BTreeMap<(usize, usize), (String, i64)> = BTreeMap::new();
    for (step, &pair) in pairs.iter().enumerate() {
        let (id, text) = (IDS[pair.0], TEXTS[pair.1]);
        let written = t.host.write_message(inbound(id, text)).await.unwrap();
        let got = (written.id.to_string(), written.seq);
        match stored.get(&pair) {
            Some(first) => {
                assert_eq!(
                    written.outcome,
                    WriteOutcome::Duplicate,
                    "step {step}: {id} {text}"
                );
                assert_eq!(&got, first, "step {step}: {id} {text}");
            }
            None => {
                assert_ne!(
                    written.outcome,
                    WriteOutcome::Duplicate,
                    "step {step}: {id} {text}"
                );
                assert!(
                    stored.values().all(|(other, _)| *other != got.0),
                    "step {step}: {id} {text} stored under {}, already used",
                    got.0
                );
                stored.insert(pair, got);
            }
        }
    }
    let pending = t.guest().pending(1000, Timestamp::now()).await.unwrap();
    assert_eq!(pending.len(), stored.len());
    for ((id, text), (stored_id, _)) in &stored {
        let row = pending.iter().find(|m| m.id == *stored_id).unwrap();
        assert!(
            row.content.contains(&format!(r#""{}""#, TEXTS[*text])),
            "{} stored as {stored_id}: {}",
            IDS[*id],
            row.content
        );
    }
}
