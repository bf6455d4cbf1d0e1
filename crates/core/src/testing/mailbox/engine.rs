//! Conformance checks of what the delivery engine and the lifecycle sweep
//! need beyond single messages: pages past a cursor, change stamps, batched
//! outcomes, requeued and failed claims, recurring series, the heartbeat.

use crate::guest_mailbox::Reply;
use crate::host_mailbox::{DeliveryOutcome, HostMailboxStoreExt, SeriesNext};
use crate::mailbox::{AckStatus, NewHostMessage};
use crate::pages::PageLimits;
use crate::time::Timestamp;

use super::{HOUR, MailboxUnderTest, fresh_session, inbound, mid, outbound};

fn rows(max_rows: usize) -> PageLimits {
    PageLimits {
        max_rows,
        max_bytes: usize::MAX,
    }
}

/// Pages past a cursor come in seq order, bounded by rows and bytes, and
/// hold settled and scheduled messages alike; host and guest pages apart.
pub async fn pages_read_past_a_cursor_in_seq_order(t: &MailboxUnderTest) {
    let guest = t.guest();
    let mut seqs = Vec::new();
    for id in ["r1", "r2", "r3"] {
        let mut reply = outbound(id, id);
        if id == "r2" {
            reply.deliver_after = Some(Timestamp::now().plus_millis(HOUR));
        }
        seqs.push(
            guest
                .write_reply(Reply::new(reply))
                .await
                .unwrap()
                .seq
                .get(),
        );
    }
    t.host.mark_delivered("r1", None).await.unwrap();
    let ids = |page: Vec<crate::mailbox::OutboundMessage>| -> Vec<String> {
        page.into_iter().map(|m| m.id).collect()
    };
    assert_eq!(
        ids(t.host.outbound_page(0, rows(2)).await.unwrap()),
        ["r1", "r2"]
    );
    assert_eq!(
        ids(t.host.outbound_page(seqs[1], rows(2)).await.unwrap()),
        ["r3"]
    );
    assert!(
        t.host
            .outbound_page(seqs[2], rows(2))
            .await
            .unwrap()
            .is_empty()
    );
    let one_byte = PageLimits {
        max_rows: 10,
        max_bytes: 1,
    };
    assert_eq!(
        ids(t.host.outbound_page(0, one_byte).await.unwrap()),
        ["r1"],
        "the row that reaches the byte budget ends the page"
    );

    let h1 = t
        .host
        .write_host_message(NewHostMessage::new(mid("h1"), "{}"))
        .await
        .unwrap();
    t.host.write_message(inbound("m1", "x")).await.unwrap();
    let h2 = t
        .host
        .write_host_message(NewHostMessage::new(mid("h2"), "{}"))
        .await
        .unwrap();
    let page = t.host.host_outbound_page(0, rows(10)).await.unwrap();
    assert_eq!(ids(page.messages), ["h1", "h2"], "host messages only");
    assert_eq!(page.max_seq, h2.get());
    let page = t.host.host_outbound_page(h1.get(), rows(10)).await.unwrap();
    assert_eq!(ids(page.messages), ["h2"]);
    assert!(
        t.host.outbound_page(0, rows(10)).await.unwrap().len() == 3,
        "guest pages hold no host message"
    );
}

/// A write to either half changes that half's stamp.
pub async fn change_stamps_move_with_each_half(t: &MailboxUnderTest) {
    let before = t.host.change_stamps().await.unwrap();
    t.host.write_message(inbound("m1", "x")).await.unwrap();
    let after_host = t.host.change_stamps().await.unwrap();
    assert_ne!(after_host.host, before.host, "a host write");
    let guest = t.guest();
    guest
        .write_reply(Reply::new(outbound("r1", "y")))
        .await
        .unwrap();
    let after_reply = t.host.change_stamps().await.unwrap();
    assert!(after_reply.guest.is_some());
    assert_ne!(after_reply.guest, after_host.guest, "a reply");
    guest
        .ack(&["m1".to_owned()], AckStatus::Completed)
        .await
        .unwrap();
    let after_ack = t.host.change_stamps().await.unwrap();
    assert_ne!(after_ack.guest, after_reply.guest, "an ack");
    t.host.mark_delivered("r1", None).await.unwrap();
    assert_ne!(
        t.host.change_stamps().await.unwrap().host,
        after_ack.host,
        "an outcome"
    );
}

/// Outcomes recorded together are each settled as one at a time would be,
/// and `settled_among` names exactly the settled ids.
pub async fn outcomes_recorded_together_settle_each(t: &MailboxUnderTest) {
    let guest = t.guest();
    for id in ["r1", "r2", "r3"] {
        guest
            .write_reply(Reply::new(outbound(id, id)))
            .await
            .unwrap();
    }
    t.host.mark_delivery_failed("r2").await.unwrap();
    let delivered = |pid: &str| DeliveryOutcome::Delivered {
        platform_message_id: Some(pid.to_owned()),
    };
    t.host
        .record_outcomes(&[
            ("r1".to_owned(), delivered("P-1")),
            ("r2".to_owned(), delivered("P-2")),
            ("r1".to_owned(), delivered("P-9")),
        ])
        .await
        .unwrap();
    t.host.record_outcomes(&[]).await.unwrap();
    let all: Vec<String> = ["r1", "r2", "r3", "nope"].map(String::from).to_vec();
    let settled = t.host.settled_among(&all).await.unwrap();
    let mut settled: Vec<&str> = settled.iter().map(String::as_str).collect();
    settled.sort_unstable();
    assert_eq!(settled, ["r1", "r2"]);
    assert_eq!(super::due_ids(t, Timestamp::now()).await, ["r3"]);
    for (seq_of, pid) in [("r1", "P-1"), ("r2", "P-2")] {
        let page = t.host.outbound_page(0, rows(10)).await.unwrap();
        let seq = page.iter().find(|m| m.id == seq_of).unwrap().seq;
        let target = guest
            .lookup_seq(crate::Seq::new(seq))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            target.platform_message_id.as_deref(),
            Some(pid),
            "{seq_of}: the first delivery stands, and it replaced the failure"
        );
    }
}

/// `requeue` and `fail_pending` change only pending messages the guest may
/// process, and say whether they did.
pub async fn requeue_and_fail_change_only_pending(t: &MailboxUnderTest) {
    let now = Timestamp::now();
    let later = now.plus_millis(HOUR);
    t.host.write_message(inbound("m1", "a")).await.unwrap();
    t.host.write_message(inbound("m2", "b")).await.unwrap();
    t.host
        .write_host_message(NewHostMessage::new(mid("h1"), "{}"))
        .await
        .unwrap();
    assert!(t.host.requeue("m1", 1, later).await.unwrap());
    let m1 = t.host.inbound_message("m1").await.unwrap().unwrap();
    assert_eq!((m1.tries, m1.status.as_str()), (1, "pending"));
    let after = Timestamp::parse(m1.process_after.as_deref().unwrap()).unwrap();
    assert_eq!(after.as_millis() / 1000, later.as_millis() / 1000);
    assert_eq!(t.host.count_due(now).await.unwrap(), 1, "m1 waits");
    assert_eq!(t.host.count_due(later.plus_millis(1)).await.unwrap(), 2);

    assert!(t.host.fail_pending("m2", 3).await.unwrap());
    let m2 = t.host.inbound_message("m2").await.unwrap().unwrap();
    assert_eq!((m2.tries, m2.status.as_str()), (3, "failed"));
    assert!(
        !t.host.fail_pending("m2", 4).await.unwrap(),
        "no longer pending"
    );
    assert!(!t.host.requeue("m2", 4, later).await.unwrap());
    assert!(
        !t.host.requeue("h1", 1, later).await.unwrap(),
        "a host message"
    );
    assert!(!t.host.fail_pending("h1", 1).await.unwrap());
    assert!(!t.host.requeue("unknown", 1, later).await.unwrap());
    assert_eq!(t.host.inbound_message("unknown").await.unwrap(), None);
    assert!(
        t.guest()
            .pending(10, later.plus_millis(1))
            .await
            .unwrap()
            .iter()
            .all(|m| m.id == "m1"),
        "a failed message is not handed to the guest"
    );
}

/// A completed recurring message continues its series once: the next
/// occurrence inherits it and the recurrence moves to it.
pub async fn a_series_continues_once(t: &MailboxUnderTest) {
    let now = Timestamp::now();
    let mut first = inbound("daily", "standup");
    first.recurrence = Some("0 9 * * *".into());
    first.platform_id = Some("C1".into());
    t.host.write_message(first).await.unwrap();
    let mut other = inbound("hourly", "ping");
    other.recurrence = Some("not cron".into());
    t.host.write_message(other).await.unwrap();
    assert!(t.host.completed_recurring().await.unwrap().is_empty());
    let guest = t.guest();
    let ids = ["daily".to_owned(), "hourly".to_owned()];
    guest.ack(&ids, AckStatus::Completed).await.unwrap();
    t.host.sync_acks().await.unwrap();
    let done: Vec<String> = t
        .host
        .completed_recurring()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(done, ids);

    let next = SeriesNext {
        id: mid("daily@1"),
        process_after: now.plus_millis(HOUR),
        recurrence: "0 9 * * *".into(),
    };
    assert!(t.host.continue_series("daily", next.clone()).await.unwrap());
    assert!(
        !t.host.continue_series("daily", next).await.unwrap(),
        "a second sweep inserts nothing"
    );
    assert!(t.host.end_series("hourly").await.unwrap());
    assert!(!t.host.end_series("hourly").await.unwrap());
    assert!(t.host.completed_recurring().await.unwrap().is_empty());

    let inserted = t.host.inbound_message("daily@1").await.unwrap().unwrap();
    assert_eq!(inserted.status, "pending");
    assert_eq!(inserted.tries, 0);
    assert_eq!(inserted.series_id.as_deref(), Some("daily"));
    assert_eq!(inserted.recurrence.as_deref(), Some("0 9 * * *"));
    assert_eq!(
        (inserted.kind.as_str(), inserted.platform_id.as_deref()),
        ("chat", Some("C1"))
    );
    assert_eq!(inserted.content, r#"{"text":"standup"}"#);
    let done = t.host.inbound_message("daily").await.unwrap().unwrap();
    assert_eq!(done.recurrence, None);
    assert!(crate::Seq::new(inserted.seq).is_host());
    assert!(inserted.seq > done.seq);
    assert_eq!(t.host.count_due(now).await.unwrap(), 0, "due in an hour");
    assert_eq!(
        t.host.count_due(now.plus_millis(2 * HOUR)).await.unwrap(),
        1
    );
}

/// `clear_heartbeat` forgets the beat, once.
pub async fn clear_heartbeat_forgets_the_beat(t: &MailboxUnderTest) {
    assert_eq!(t.host.last_heartbeat().await.unwrap(), None);
    assert!(!t.host.clear_heartbeat().await.unwrap());
    let before = Timestamp::now();
    t.guest().touch_heartbeat().await.unwrap();
    let beat = t.host.last_heartbeat().await.unwrap().expect("a beat");
    // File times may be coarser than milliseconds.
    assert!(
        beat.as_millis() >= before.as_millis() - 2_000,
        "{beat} {before}"
    );
    assert!(t.host.clear_heartbeat().await.unwrap());
    assert_eq!(t.host.last_heartbeat().await.unwrap(), None);
    assert!(!t.host.clear_heartbeat().await.unwrap());
}

/// A mailbox exists once created, and only then.
pub async fn a_mailbox_exists_once_created(t: &MailboxUnderTest) {
    assert!(t.factory.mailbox_exists(&t.session).await.unwrap());
    let other = fresh_session();
    assert!(!t.factory.mailbox_exists(&other).await.unwrap());
    t.factory.create_mailbox(&other).await.unwrap();
    assert!(t.factory.mailbox_exists(&other).await.unwrap());
}
