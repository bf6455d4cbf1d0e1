//! Conformance checks of the host half: host messages, due times, outcomes,
//! counts, routing, and the factory.

use crate::error::Error;
use crate::guest_mailbox::Reply;
use crate::host_mailbox::{DeliveryOutcome, HostMailboxStoreExt};
use crate::mailbox::{Destination, NewHostMessage, Origin, Routing};
use crate::seq::Seq;
use crate::time::Timestamp;

use super::{HOUR, MailboxUnderTest, due_ids, fresh_session, inbound, mid, outbound};

/// Host-originated messages never wake or reach the guest and are delivered
/// beside the guest's; a retry returns the stored seq.
pub async fn host_messages_are_delivered_not_processed(t: &MailboxUnderTest) {
    let now = Timestamp::now();
    let mut msg = NewHostMessage::new(mid("deny-1"), r#"{"text":"not allowed"}"#);
    msg.channel_type = Some("slack".into());
    msg.platform_id = Some("C1".into());
    let seq = t.host.write_host_message(msg.clone()).await.unwrap();
    assert!(seq.is_host());
    assert_eq!(t.host.write_host_message(msg).await.unwrap(), seq);
    assert_eq!(t.host.count_due(now).await.unwrap(), 0);
    assert!(t.guest().pending(10, now).await.unwrap().is_empty());
    let due = t.host.due_outbound(Timestamp::now()).await.unwrap();
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(due[0].origin, Origin::Host);
    assert_eq!((due[0].id.as_str(), due[0].seq), ("deny-1", seq.get()));
    assert_eq!(due[0].channel_type.as_deref(), Some("slack"));
    assert_eq!(due[0].platform_id.as_deref(), Some("C1"));
    assert_eq!(due[0].content, r#"{"text":"not allowed"}"#);
    t.host.mark_delivered("deny-1", None).await.unwrap();
    assert!(due_ids(t, Timestamp::now()).await.is_empty());
}

/// `deliver_after` in the future holds a message back until that time.
pub async fn deliver_after_holds_messages_back(t: &MailboxUnderTest) {
    let now = Timestamp::now();
    let later = now.plus_millis(HOUR);
    let mut reply = outbound("r-later", "later");
    reply.deliver_after = Some(later);
    t.guest().write_reply(Reply::new(reply)).await.unwrap();
    let mut host = NewHostMessage::new(mid("h-later"), "{}");
    host.deliver_after = Some(later);
    t.host.write_host_message(host).await.unwrap();
    let mut past = outbound("r-past", "now");
    past.deliver_after = Some(now.plus_millis(-HOUR));
    t.guest().write_reply(Reply::new(past)).await.unwrap();

    assert_eq!(due_ids(t, now).await, ["r-past"]);
    assert_eq!(
        due_ids(t, later.plus_millis(1)).await,
        ["r-later", "h-later", "r-past"],
        "in seq order"
    );
}

/// A message settled once is never due again; the first outcome stands.
pub async fn a_settled_message_is_never_due_again(t: &MailboxUnderTest) {
    let guest = t.guest();
    let sent = guest
        .write_reply(Reply::new(outbound("r1", "a")))
        .await
        .unwrap();
    guest
        .write_reply(Reply::new(outbound("r2", "b")))
        .await
        .unwrap();
    t.host
        .mark_delivered("r1", Some("P-1".into()))
        .await
        .unwrap();
    t.host
        .record_outcome(
            "r1",
            DeliveryOutcome::Delivered {
                platform_message_id: Some("P-2".into()),
            },
        )
        .await
        .unwrap();
    t.host.mark_delivery_failed("r1").await.unwrap();
    t.host.mark_delivery_failed("r2").await.unwrap();
    assert!(due_ids(t, Timestamp::now()).await.is_empty());
    assert_eq!(t.host.counts().await.unwrap().delivered, 2);
    let target = guest.lookup_seq(sent.seq).await.unwrap().unwrap();
    assert_eq!(
        target.platform_message_id.as_deref(),
        Some("P-1"),
        "the first outcome stands"
    );
}

/// Only pending, triggering messages due at `now` count.
pub async fn count_due_counts_pending_triggering_due(t: &MailboxUnderTest) {
    let now = Timestamp::now();
    let mut scheduled = inbound("scheduled", "s");
    scheduled.process_after = Some(now.plus_millis(HOUR));
    t.host.write_message(scheduled).await.unwrap();
    // A count that found nothing due must not hide a write after it.
    assert_eq!(t.host.count_due(now).await.unwrap(), 0, "due in an hour");
    t.host.write_message(inbound("wake", "w")).await.unwrap();
    let mut context = inbound("context", "c");
    context.trigger = false;
    t.host.write_message(context).await.unwrap();

    assert_eq!(t.host.count_due(now).await.unwrap(), 1);
    assert_eq!(
        t.host.count_due(now.plus_millis(2 * HOUR)).await.unwrap(),
        2
    );
    let counts = t.host.counts().await.unwrap();
    assert_eq!((counts.inbound, counts.inbound_pending), (3, 3));
    // The guest sees the context message too, but not the scheduled one yet.
    let pending = t.guest().pending(10, now).await.unwrap();
    let ids: Vec<&str> = pending.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["wake", "context"]);
    assert!(!pending[1].trigger);
}

/// Question responses are `system` messages of the agreed shape.
pub async fn system_responses_are_system_messages(t: &MailboxUnderTest) {
    let written = t
        .host
        .write_system_response(
            mid("resp-1"),
            "q-7",
            "approved",
            serde_json::json!({"ok": true}),
        )
        .await
        .unwrap();
    assert!(Seq::new(written.seq).is_host());
    let pending = t.guest().pending(10, Timestamp::now()).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].kind, "system");
    let content: serde_json::Value = serde_json::from_str(&pending[0].content).unwrap();
    assert_eq!(
        content,
        serde_json::json!({"type":"question_response","questionId":"q-7","status":"approved","result":{"ok":true}})
    );
}

/// Routing and destinations are accepted and may be replaced.
pub async fn routing_and_destinations_are_stored(t: &MailboxUnderTest) {
    let routing = Routing {
        channel_type: Some("slack".into()),
        platform_id: Some("C1".into()),
        thread_id: None,
    };
    t.host.write_routing(routing.clone()).await.unwrap();
    t.host.write_routing(Routing::default()).await.unwrap();
    let dest = |name: &str| Destination {
        name: name.into(),
        display_name: None,
        kind: "channel".into(),
        channel_type: Some("slack".into()),
        platform_id: Some("C2".into()),
        agent_group_id: None,
    };
    t.host
        .replace_destinations(vec![dest("a"), dest("b")])
        .await
        .unwrap();
    t.host.replace_destinations(vec![dest("a")]).await.unwrap();
    t.host.replace_destinations(Vec::new()).await.unwrap();
    // Neither is a message.
    assert_eq!(t.host.counts().await.unwrap().inbound, 0);
}

/// A mailbox that was never created is not found, and nothing is created by asking.
pub async fn unknown_mailbox_is_not_found(t: &MailboxUnderTest) {
    let missing = t.factory.host_mailbox(&fresh_session());
    let err = missing.write_message(inbound("m1", "x")).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = missing.count_due(Timestamp::now()).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = missing.counts().await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

/// A mailbox created with its routing is usable at once, and creating it
/// again (with other routing) keeps what it holds.
pub async fn create_mailbox_routed_creates_once(t: &MailboxUnderTest) {
    let routing = |platform: &str| Routing {
        channel_type: Some("slack".into()),
        platform_id: Some(platform.into()),
        thread_id: Some("T1".into()),
    };
    let session = fresh_session();
    assert!(!t.factory.mailbox_exists(&session).await.unwrap());
    let created = t
        .factory
        .create_mailbox_routed(&session, routing("C1"))
        .await
        .unwrap();
    assert!(t.factory.mailbox_exists(&session).await.unwrap());
    created.write_message(inbound("m1", "x")).await.unwrap();
    let again = t
        .factory
        .create_mailbox_routed(&session, routing("C2"))
        .await
        .unwrap();
    assert_eq!(again.counts().await.unwrap().inbound, 1);
    // Routing is not a message.
    assert_eq!(created.counts().await.unwrap().inbound, 1);
}

/// Creating a mailbox again keeps what it holds.
pub async fn create_mailbox_is_idempotent(t: &MailboxUnderTest) {
    t.host.write_message(inbound("m1", "x")).await.unwrap();
    let again = t.factory.create_mailbox(&t.session).await.unwrap();
    assert_eq!(again.counts().await.unwrap().inbound, 1);
    let other = t.factory.create_mailbox(&fresh_session()).await.unwrap();
    assert_eq!(
        other.counts().await.unwrap().inbound,
        0,
        "sessions do not share a mailbox"
    );
}
