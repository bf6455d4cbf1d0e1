//! Conformance checks of seq parity, retries, derived ids and seq look-ups.

use crate::guest_mailbox::Reply;
use crate::host_mailbox::HostMailboxStoreExt;
use crate::mailbox::{NewHostMessage, Origin, WriteOutcome};
use crate::seq::Seq;
use crate::time::Timestamp;

use super::{MailboxUnderTest, inbound, mid, outbound};

/// Host seqs are 2, 4, 6, … across inbound and host-originated messages.
pub async fn host_seqs_are_even_and_grow(t: &MailboxUnderTest) {
    let mut seqs = Vec::new();
    for id in ["a", "b", "c"] {
        seqs.push(t.host.write_message(inbound(id, id)).await.unwrap().seq);
    }
    let host = t
        .host
        .write_host_message(NewHostMessage::new(mid("h"), r#"{"text":"denied"}"#))
        .await
        .unwrap();
    seqs.push(host.get());
    assert_eq!(seqs, [2, 4, 6, 8]);
}

/// Guest seqs are the next odd number above every seq of both halves.
pub async fn guest_seqs_are_odd_above_both_halves(t: &MailboxUnderTest) {
    let guest = t.guest();
    let first = guest
        .write_reply(Reply::new(outbound("r0", "x")))
        .await
        .unwrap();
    assert_eq!(first.seq, Seq::new(1), "an empty mailbox starts at 1");
    t.host.write_message(inbound("a", "a")).await.unwrap();
    t.host.write_message(inbound("b", "b")).await.unwrap();
    let r1 = guest
        .write_reply(Reply::new(outbound("r1", "x")))
        .await
        .unwrap();
    assert_eq!(r1.seq, Seq::new(5));
    let c = t.host.write_message(inbound("c", "c")).await.unwrap();
    assert_eq!(c.seq, 6);
    let r2 = guest
        .write_reply(Reply::new(outbound("r2", "x")))
        .await
        .unwrap();
    assert_eq!(r2.seq, Seq::new(7));
    let h = t
        .host
        .write_host_message(NewHostMessage::new(mid("h"), "{}"))
        .await
        .unwrap();
    assert_eq!(h, Seq::new(8));
    let r3 = guest
        .write_reply(Reply::new(outbound("r3", "x")))
        .await
        .unwrap();
    assert_eq!(r3.seq, Seq::new(9));
    let due = t.host.due_outbound(Timestamp::now()).await.unwrap();
    for m in &due {
        let parity = Seq::new(m.seq).is_guest();
        assert_eq!(parity, m.origin == Origin::Guest, "{m:?}");
    }
}

/// The same message written twice is stored once; the retry gets the stored seq.
pub async fn a_retry_returns_the_stored_seq(t: &MailboxUnderTest) {
    let first = t.host.write_message(inbound("m1", "hi")).await.unwrap();
    let again = t.host.write_message(inbound("m1", "hi")).await.unwrap();
    assert_eq!(again.outcome, WriteOutcome::Duplicate);
    assert_eq!((again.id.clone(), again.seq), (first.id, first.seq));
    assert!(again.attachments.is_empty());
    assert_eq!(t.host.counts().await.unwrap().inbound, 1);
    assert_eq!(
        t.guest().pending(10, Timestamp::now()).await.unwrap().len(),
        1
    );
}

/// A different message under a used id is kept under `<id>#2`, `<id>#3`, …
pub async fn a_reused_id_is_stored_under_a_derived_id(t: &MailboxUnderTest) {
    t.host.write_message(inbound("m1", "first")).await.unwrap();
    let second = t.host.write_message(inbound("m1", "second")).await.unwrap();
    assert_eq!(
        second.outcome,
        WriteOutcome::Renamed {
            original: mid("m1")
        }
    );
    assert_eq!(second.id.as_str(), "m1#2");
    let third = t.host.write_message(inbound("m1", "third")).await.unwrap();
    assert_eq!(third.id.as_str(), "m1#3");
    // A retry of a renamed message finds it under its derived id.
    let retry = t.host.write_message(inbound("m1", "second")).await.unwrap();
    assert_eq!(retry.outcome, WriteOutcome::Duplicate);
    assert_eq!((retry.id.as_str(), retry.seq), ("m1#2", second.seq));
    let pending = t.guest().pending(10, Timestamp::now()).await.unwrap();
    let ids: Vec<&str> = pending.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["m1", "m1#2", "m1#3"]);
    assert_eq!(pending[1].series_id.as_deref(), Some("m1#2"));
    assert!(pending[2].content.contains("third"));
}

/// A reply written again under its id writes nothing and returns the stored seq.
pub async fn reply_retry_returns_the_stored_seq(t: &MailboxUnderTest) {
    let guest = t.guest();
    let first = guest
        .write_reply(Reply::new(outbound("r1", "x")))
        .await
        .unwrap();
    t.host.write_message(inbound("a", "a")).await.unwrap();
    let again = guest
        .write_reply(Reply::new(outbound("r1", "x")))
        .await
        .unwrap();
    assert_eq!(again.seq, first.seq);
    assert_eq!(t.host.counts().await.unwrap().outbound, 1);
}

/// Even seqs name inbound messages, odd ones replies (with the platform id
/// recorded on delivery); unknown seqs are `None`.
pub async fn lookup_seq_follows_parity(t: &MailboxUnderTest) {
    let guest = t.guest();
    let m = t.host.write_message(inbound("m1", "q")).await.unwrap();
    let r = guest
        .write_reply(Reply::new(outbound("r1", "a")))
        .await
        .unwrap();

    let found = guest.lookup_seq(Seq::new(m.seq)).await.unwrap().unwrap();
    assert_eq!(found.origin, Origin::Host);
    assert_eq!(found.message_id, "m1");
    assert_eq!(found.platform_message_id.as_deref(), Some("m1"));

    let found = guest.lookup_seq(r.seq).await.unwrap().unwrap();
    assert_eq!(found.origin, Origin::Guest);
    assert_eq!(found.message_id, "r1");
    assert_eq!(found.platform_message_id, None, "not delivered yet");

    t.host
        .mark_delivered("r1", Some("P-9".into()))
        .await
        .unwrap();
    let found = guest.lookup_seq(r.seq).await.unwrap().unwrap();
    assert_eq!(found.platform_message_id.as_deref(), Some("P-9"));

    assert_eq!(guest.lookup_seq(Seq::new(40)).await.unwrap(), None);
    assert_eq!(guest.lookup_seq(Seq::new(41)).await.unwrap(), None);
}
