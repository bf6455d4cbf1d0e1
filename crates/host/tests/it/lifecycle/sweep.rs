//! The sweep with the fake runtime and a scripted guest: a guest that
//! claims and dies, backoff that wakes nothing, a retry that completes, a
//! message that fails on every try, and a stuck guest killed.

use airlock_core::ContainerStatus;
use airlock_host::lifecycle::{Stuck, TickReport};

use crate::lifecycle::support::{Guest, Rig};

async fn tick(rig: &Rig, secs: i64, session: &airlock_core::Session) -> TickReport {
    let now = rig.at_secs(secs);
    rig.sweeper.tick_session(&session.id, now).await.unwrap()
}

#[tokio::test]
async fn a_claim_whose_guest_died_is_retried_after_backoff_and_completed() {
    let rig = Rig::new(&[Guest::ClaimAndDie, Guest::Answer]);
    let s = rig.session("c1").await;
    rig.at_secs(0);
    rig.send(&s, "m1").await;

    let first = tick(&rig, 0, &s).await;
    assert!(first.woke);
    assert_eq!(rig.fake.wakes(&s.id), 1);

    // The guest claimed m1 and died: requeued with backoff, not woken.
    let gone = tick(&rig, 1, &s).await;
    assert!(gone.stopped && !gone.woke, "{gone:?}");
    assert_eq!(gone.requeued, ["m1"]);
    let m1 = rig.inbound(&s, "m1");
    assert_eq!((m1.status.as_str(), m1.tries), ("pending", 1));
    assert_eq!(
        rig.manager.session(&s.id).await.unwrap().container_status,
        ContainerStatus::Stopped
    );

    // Nothing is woken while the backoff (10 s) runs.
    for secs in [2, 5, 10] {
        let r = tick(&rig, secs, &s).await;
        assert!(!r.woke && r.requeued.is_empty(), "at {secs}s: {r:?}");
    }
    assert_eq!(rig.fake.wakes(&s.id), 1);

    // After it, a new guest is woken and completes m1.
    let retried = tick(&rig, 12, &s).await;
    assert!(retried.woke);
    let done = tick(&rig, 13, &s).await;
    assert_eq!(done.acks_synced, 1);
    assert!(done.killed.is_none() && !done.woke);
    let m1 = rig.inbound(&s, "m1");
    assert_eq!((m1.status.as_str(), m1.tries), ("completed", 1));
    let replies = rig
        .manager
        .due_outbound(&s.id, rig.at_secs(14))
        .await
        .unwrap();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].in_reply_to.as_deref(), Some("m1"));
}

#[tokio::test]
async fn a_message_that_fails_five_times_ends_failed_and_stays_failed() {
    let rig = Rig::new(&[]);
    let s = rig.session("c1").await;
    rig.at_secs(0);
    rig.send(&s, "m1").await;
    // Every 15 minutes (past the longest backoff), for 3 hours.
    let mut failed = Vec::new();
    for step in 0..12 {
        let r = tick(&rig, step * 15 * 60, &s).await;
        failed.extend(r.failed);
    }
    assert_eq!(rig.fake.wakes(&s.id), 5, "{:?}", rig.fake.calls());
    assert_eq!(failed, ["m1"]);
    let m1 = rig.inbound(&s, "m1");
    assert_eq!((m1.status.as_str(), m1.tries), ("failed", 5));
    // The agent's next run is told, without being woken for it.
    let notes: Vec<_> = rig
        .manager
        .mailbox(&s)
        .list_inbound(100)
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == "system")
        .collect();
    assert_eq!(notes.len(), 1);
    assert!(!notes[0].trigger);
    let note: serde_json::Value = serde_json::from_str(&notes[0].content).unwrap();
    assert_eq!(
        (
            note["type"].as_str(),
            note["messageId"].as_str(),
            note["tries"].as_i64()
        ),
        (Some("message_failed"), Some("m1"), Some(5))
    );
    assert_eq!(
        rig.manager
            .count_due(&s.id, rig.at_secs(86_400))
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn a_guest_that_holds_a_claim_silently_is_killed_and_the_claim_requeued() {
    let rig = Rig::new(&[Guest::ClaimAndHang]);
    let s = rig.session("c1").await;
    rig.at_secs(0);
    rig.send(&s, "m1").await;
    assert!(tick(&rig, 0, &s).await.woke);
    // Seen claimed at 1 s; within the 60 s tolerance nothing happens.
    for secs in [1, 30, 61] {
        let r = tick(&rig, secs, &s).await;
        assert!(r.killed.is_none(), "at {secs}s: {r:?}");
    }
    let r = tick(&rig, 62, &s).await;
    assert!(
        matches!(&r.killed, Some(Stuck::KillClaim { message_id, .. }) if message_id == "m1"),
        "{r:?}"
    );
    assert!(r.stopped && !r.woke);
    assert_eq!(r.requeued, ["m1"]);
    assert_eq!(rig.fake.kills(&s.id), 1);
    assert!(!rig.fake.running(&s.id));
}

#[tokio::test]
async fn a_failing_session_does_not_stop_the_others() {
    let rig = Rig::new(&[Guest::Answer, Guest::Answer]);
    let a = rig.session("a").await;
    let b = rig.session("b").await;
    rig.at_secs(0);
    rig.send(&a, "ma").await;
    rig.send(&b, "mb").await;
    // a's folder is gone: its tick fails, b's still wakes a guest.
    std::fs::remove_dir_all(rig.manager.session_dir(&a)).unwrap();
    let out = rig.sweeper.tick(rig.at_secs(0)).await.unwrap();
    let by_id =
        |id: &airlock_core::SessionId| out.iter().find(|(s, _)| s == id).map(|(_, o)| o).unwrap();
    assert!(by_id(&a.id).problem().is_some());
    assert!(matches!(by_id(&b.id), airlock_host::runner::JobOutcome::Done(r) if r.woke));
}

/// The one outcome of a whole tick over the rig's single session.
async fn tick_all(rig: &Rig, secs: i64) -> TickReport {
    let out = rig.sweeper.tick(rig.at_secs(secs)).await.unwrap();
    assert_eq!(out.len(), 1, "one session");
    match out.into_iter().next().unwrap().1 {
        airlock_host::runner::JobOutcome::Done(report) => report,
        other => panic!("the tick failed: {:?}", other.problem()),
    }
}

/// Whole ticks skip the reads of a session whose mailbox calls it quiet,
/// and still see each change that makes it busy: a scheduled message coming
/// due, a registry row marked running with no guest, an ack to copy.
#[tokio::test]
async fn whole_ticks_over_a_quiet_session_still_see_each_change() {
    let rig = Rig::new(&[Guest::Answer]);
    let s = rig.session("q").await;
    let mut later = airlock_core::mailbox::NewInboundMessage::new(
        airlock_core::MessageId::new("later").unwrap(),
        "chat",
        r#"{"text":"hi"}"#,
    );
    later.process_after = Some(rig.at_secs(100));
    rig.manager.write_message(&s.id, later).await.unwrap();
    for secs in [0, 1, 2] {
        assert_eq!(
            tick_all(&rig, secs).await,
            TickReport::default(),
            "at {secs}s"
        );
    }
    assert!(
        rig.manager.mailbox(&s).quiet_for_sweep(rig.at_secs(3)),
        "idle ticks leave the session quiet"
    );
    // Marked running behind the sweep's back, with no guest: stopped again.
    rig.manager.mark_container_running(&s.id).await.unwrap();
    let stopped = tick_all(&rig, 3).await;
    assert!(stopped.stopped && !stopped.woke, "{stopped:?}");
    assert_eq!(
        rig.manager.session(&s.id).await.unwrap().container_status,
        ContainerStatus::Stopped
    );
    tick_all(&rig, 4).await;
    // The scheduled message comes due with nothing written: woken.
    let woke = tick_all(&rig, 100).await;
    assert!(woke.woke, "{woke:?}");
    // The guest answered and completed it: the ack is copied.
    rig.fake.set_running(&s.id, false);
    let synced = tick_all(&rig, 101).await;
    assert_eq!(synced.acks_synced, 1, "{synced:?}");
    assert_eq!(rig.inbound(&s, "later").status, "completed");
}
