//! Transient failures retried with attempts recorded; permanent ones
//! dead-lettered with the agent told and the outbox kept; `retry` re-queues.

use std::sync::Arc;

use airlock_host::delivery::{RecordingAdapter, Scope, Script};
use airlock_sqlite_fs::GuestMailbox;
use serde_json::Value;

use crate::delivery::support::{Host, quick};

#[tokio::test]
async fn transient_failures_then_success_deliver_once_with_attempts_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let host = Host::at(tmp.path());
    let session = host.session("flaky").await;
    host.reply(&session, "r1", "hello");
    host.reply(&session, "r2", "after");
    let adapter = Arc::new(RecordingAdapter::new());
    adapter.script_message("r1", Script::Transient(3));
    let deliverer = host.deliverer(adapter.clone(), quick());
    let mut retried = 0;
    for _ in 0..500 {
        let report = deliverer.poll(Scope::Active).await.unwrap();
        retried += report.retrying;
        if adapter.recorded().len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let recorded = adapter.recorded();
    let ids: Vec<&str> = recorded.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["r1", "r2"], "once each, r2 waited for r1");
    assert_eq!(recorded[0].attempt, 4);
    assert_eq!(retried, 3);
    assert_eq!(adapter.calls(), 5);
    assert!(deliverer.failures(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_permanent_failure_is_dead_lettered_the_agent_told_and_retry_delivers_it_once() {
    let tmp = tempfile::tempdir().unwrap();
    let host = Host::at(tmp.path());
    let session = host.session("refused").await;
    let dir = host.session_dir(&session);
    std::fs::create_dir_all(dir.join("outbox/bad")).unwrap();
    std::fs::write(dir.join("outbox/bad/a.txt"), b"kept").unwrap();
    let guest = GuestMailbox::open(&dir).unwrap();
    let mut msg = airlock_core::mailbox::NewOutboundMessage::new(
        airlock_core::MessageId::new("bad").unwrap(),
        "chat",
        r#"{"text":"x","files":["a.txt"]}"#,
    );
    msg.platform_id = Some("C-other".into());
    guest.write_message_out(&msg).unwrap();
    let adapter = Arc::new(RecordingAdapter::new());
    adapter.script_message("bad", Script::Permanent);
    let deliverer = host.deliverer(adapter.clone(), quick());
    let report = deliverer.poll(Scope::Active).await.unwrap();
    assert_eq!(report.dead_lettered, 1, "{report:?}");
    assert!(adapter.recorded().is_empty());

    let failures = deliverer.failures(Some(&session.id)).await.unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].message_id, "bad");
    assert_eq!(failures[0].attempts, 1);
    assert!(
        failures[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("scripted refusal")
    );
    assert!(failures[0].reason.is_some());
    // Outbox kept for inspection; recorded as failed for the guest.
    assert_eq!(
        std::fs::read(dir.join("outbox/bad/a.txt")).unwrap(),
        b"kept"
    );
    let inbound = rusqlite::Connection::open(dir.join("inbound.db")).unwrap();
    let status: String = inbound
        .query_row(
            "SELECT status FROM delivered WHERE message_out_id = 'bad'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(status, "failed");
    // The agent is told through its inbound.
    let pending = guest.pending(10).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].kind, "system");
    let notice: Value = serde_json::from_str(&pending[0].content).unwrap();
    assert_eq!(notice["type"], "delivery_failed");
    assert_eq!(notice["messageId"], "bad");
    drop(inbound);

    // Nothing happens to it on later passes until someone retries it.
    deliverer.deliver_now(Scope::Active).await.unwrap();
    assert_eq!(adapter.calls(), 1);
    adapter.script_message("bad", Script::Transient(0));
    deliverer.retry_failure(failures[0].id).await.unwrap();
    let report = deliverer.poll(Scope::Active).await.unwrap();
    assert_eq!(report.delivered, 1, "{report:?}");
    let again = deliverer.deliver_now(Scope::Active).await.unwrap();
    assert_eq!(again.delivered, 0);
    let recorded = adapter.recorded();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].files, [("a.txt".to_owned(), b"kept".to_vec())]);
    assert_eq!(recorded[0].routing.platform_id.as_deref(), Some("C-other"));
    assert!(deliverer.failures(None).await.unwrap().is_empty());
    assert!(!dir.join("outbox/bad").exists(), "cleared once delivered");
    // The guest's view follows: delivered now, with the platform's id.
    let inbound = rusqlite::Connection::open(dir.join("inbound.db")).unwrap();
    let (status, platform_id): (String, Option<String>) = inbound
        .query_row(
            "SELECT status, platform_message_id FROM delivered WHERE message_out_id = 'bad'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        status, "delivered",
        "a retried dead letter is recorded as delivered"
    );
    assert!(platform_id.is_some());
}

#[tokio::test]
async fn an_unknown_system_action_is_marked_handled_not_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let host = Host::at(tmp.path());
    let session = host.session("system").await;
    let guest = GuestMailbox::open(host.session_dir(&session)).unwrap();
    let msg = airlock_core::mailbox::NewOutboundMessage::new(
        airlock_core::MessageId::new("sys-1").unwrap(),
        "system",
        r#"{"action":"no_such_action"}"#,
    );
    guest.write_message_out(&msg).unwrap();
    host.reply(&session, "chat-1", "hi");
    let adapter = Arc::new(RecordingAdapter::new());
    let deliverer = host.deliverer(adapter.clone(), quick());
    let report = deliverer.poll(Scope::Active).await.unwrap();
    assert_eq!(report.delivered, 2, "{report:?}");
    let ids: Vec<String> = adapter.recorded().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, ["chat-1"], "system requests never reach the channel");
    assert_eq!(
        deliverer
            .deliver_now(Scope::Active)
            .await
            .unwrap()
            .delivered,
        0
    );
}
