//! Conformance checks of the whole host ↔ guest exchange.

use crate::guest_mailbox::Reply;
use crate::host_mailbox::HostMailboxStoreExt;
use crate::mailbox::{AckStatus, Origin, WriteOutcome};
use crate::time::Timestamp;

use super::{MailboxUnderTest, due_ids, inbound, outbound};

/// A message goes in, the guest answers it, the host delivers the answer.
pub async fn host_guest_exchange(t: &MailboxUnderTest) {
    let now = Timestamp::now();
    let written = t.host.write_message(inbound("m1", "hello")).await.unwrap();
    assert_eq!(written.outcome, WriteOutcome::Inserted);
    assert_eq!(written.id.as_str(), "m1");
    assert_eq!(t.host.count_due(now).await.unwrap(), 1);

    let guest = t.guest();
    let pending = guest.pending(10, now).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, "m1");
    assert_eq!(pending[0].seq, written.seq);
    assert_eq!(pending[0].status, "pending");
    assert_eq!(pending[0].series_id.as_deref(), Some("m1"));
    assert_eq!(pending[0].content, r#"{"text":"hello"}"#);

    guest
        .ack(&["m1".to_owned()], AckStatus::Processing)
        .await
        .unwrap();
    assert_eq!(t.host.processing_claims().await.unwrap(), ["m1"]);
    assert!(
        guest.pending(10, now).await.unwrap().is_empty(),
        "acked messages are not pending"
    );

    let mut reply = outbound("r1", "hi there");
    reply.in_reply_to = Some("m1".into());
    let replied = guest.write_reply(Reply::new(reply)).await.unwrap();
    assert!(replied.seq.is_guest());
    assert!(replied.seq.get() > written.seq);
    guest
        .ack(&["m1".to_owned()], AckStatus::Completed)
        .await
        .unwrap();
    assert!(t.host.processing_claims().await.unwrap().is_empty());

    let due = t.host.due_outbound(Timestamp::now()).await.unwrap();
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(due[0].origin, Origin::Guest);
    assert_eq!(due[0].id, "r1");
    assert_eq!(due[0].seq, replied.seq.get());
    assert_eq!(due[0].in_reply_to.as_deref(), Some("m1"));
    assert_eq!(due[0].content, r#"{"text":"hi there"}"#);

    t.host
        .mark_delivered("r1", Some("P-1".into()))
        .await
        .unwrap();
    assert!(due_ids(t, Timestamp::now()).await.is_empty());
    let counts = t.host.counts().await.unwrap();
    assert_eq!(
        (counts.inbound, counts.outbound, counts.delivered),
        (1, 1, 1)
    );
    // The handle from the factory sees the same mailbox.
    let again = t.factory.host_mailbox(&t.session);
    assert_eq!(again.counts().await.unwrap(), counts);
}

/// Finished acks reach the inbound status once; `processing` ones do not.
pub async fn acks_reach_the_host_once(t: &MailboxUnderTest) {
    let now = Timestamp::now();
    for id in ["a", "b", "c"] {
        t.host.write_message(inbound(id, id)).await.unwrap();
    }
    let guest = t.guest();
    guest
        .ack(&["a".into()], AckStatus::Completed)
        .await
        .unwrap();
    guest.ack(&["b".into()], AckStatus::Failed).await.unwrap();
    guest
        .ack(&["c".into()], AckStatus::Processing)
        .await
        .unwrap();
    assert_eq!(t.host.sync_acks().await.unwrap(), 2);
    assert_eq!(t.host.sync_acks().await.unwrap(), 0, "nothing new to copy");
    let counts = t.host.counts().await.unwrap();
    assert_eq!(
        counts.inbound_pending, 1,
        "only the claimed message is still pending"
    );
    assert_eq!(t.host.count_due(now).await.unwrap(), 1);
    // A later status replaces an earlier one.
    guest
        .ack(&["c".into()], AckStatus::Completed)
        .await
        .unwrap();
    assert_eq!(t.host.sync_acks().await.unwrap(), 1);
    assert_eq!(t.host.count_due(now).await.unwrap(), 0);
    assert!(t.host.processing_claims().await.unwrap().is_empty());
}
