//! A host composed of core's in-memory registry and mailboxes through
//! `SessionManager` itself: the README's library flow, the sweep waking a
//! guest, and the delivery engine over the memory mailbox, with no file of
//! any session anywhere.

use std::sync::Arc;

use airlock_core::mailbox::{AckStatus, NewInboundMessage, NewOutboundMessage, WriteOutcome};
use airlock_core::{
    AgentGroupId, ContainerStatus, GuestMailboxStore, HostMailboxStore, MailboxFactory,
    MemoryMailboxes, MessageId, NewMessagingGroup, OutboxFile, Reply, ResolveRequest, Seq,
    SessionMode, SessionRef, SessionStoreExt, Timestamp,
};
use airlock_host::delivery::RecordingAdapter;
use airlock_host::lifecycle::{FakeRuntime, Runtime, RuntimeTimeouts, SweepConfig, Sweeper};
use airlock_host::{Deliverer, ManagerConfig, SessionManager};

use super::counting::CountingStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_flow_runs_through_the_manager_over_memory_seams() {
    let tmp = tempfile::tempdir().unwrap();
    let store = CountingStore::new();
    let mailboxes = MemoryMailboxes::new();
    let config = ManagerConfig::new(tmp.path());
    let manager = SessionManager::compose(store.clone(), Arc::new(mailboxes.clone()), config);

    // A chat message arrives: find or create its session, mailbox included.
    let chat = store
        .ensure_messaging_group(NewMessagingGroup::new("slack", "C0123"))
        .await
        .unwrap();
    let request = ResolveRequest::new(
        AgentGroupId::new("support-bot").unwrap(),
        Some(chat.id),
        None,
        SessionMode::Shared,
    );
    let session = manager.resolve_session(request).await.unwrap().session;
    let of = SessionRef::from(&session);
    assert!(mailboxes.mailbox_exists(&of).await.unwrap());
    let message = NewInboundMessage::new(
        MessageId::new("1700000000.0001").unwrap(),
        "chat",
        r#"{"text":"hi"}"#,
    );
    let written = manager.write_message(&session.id, message).await.unwrap();
    assert_eq!(written.outcome, WriteOutcome::Inserted);
    assert_eq!(
        Seq::new(written.seq),
        Seq::new(2),
        "the host's seqs are even"
    );
    assert!(
        manager
            .session(&session.id)
            .await
            .unwrap()
            .last_active
            .is_some()
    );

    // The sweep sees due work and wakes a guest through the runtime.
    let fake = Arc::new(FakeRuntime::new());
    let runtime = Runtime::new(fake.clone(), RuntimeTimeouts::default());
    let sweeper = Sweeper::new(manager.clone(), runtime, SweepConfig::default());
    let before = store.reads();
    let tick = sweeper
        .tick_session(&session.id, Timestamp::now())
        .await
        .unwrap();
    let tick_reads = store.reads() - before;
    assert!(tick.woke, "{tick:?}");
    assert_eq!(fake.wakes(&session.id), 1);
    assert_eq!(
        manager.session(&session.id).await.unwrap().container_status,
        ContainerStatus::Running
    );
    eprintln!("registry reads of one waking tick: {tick_reads}");
    assert!(
        tick_reads <= 2,
        "the session once, its chat once: {tick_reads}"
    );

    // The guest reads and replies with a file.
    let guest = mailboxes.guest(&of).unwrap();
    let pending = guest.pending(10, Timestamp::now()).await.unwrap();
    assert_eq!(pending.len(), 1);
    let mut reply = NewOutboundMessage::new(
        MessageId::new("r1").unwrap(),
        "chat",
        r#"{"text":"hello!"}"#,
    );
    reply.in_reply_to = Some(pending[0].id.clone());
    let replied = guest
        .write_reply(Reply {
            message: reply,
            files: vec![OutboxFile {
                name: "a.txt".into(),
                data: b"the file".to_vec(),
            }],
        })
        .await
        .unwrap();
    assert!(replied.seq.is_guest());
    guest
        .ack(&[pending[0].id.clone()], AckStatus::Completed)
        .await
        .unwrap();

    // Back on the host: the delivery engine delivers over the memory mailbox.
    let adapter = Arc::new(RecordingAdapter::new());
    let deliverer = Deliverer::builder(manager.clone(), adapter.clone())
        .build()
        .unwrap();
    let report = deliverer.drain(&session.id).await.unwrap();
    assert_eq!(report.delivered, 1, "{report:?}");
    let recorded = adapter.recorded();
    assert_eq!(recorded[0].id, "r1");
    assert_eq!(
        recorded[0].files,
        [("a.txt".to_owned(), b"the file".to_vec())]
    );
    assert_eq!(recorded[0].routing.platform_id.as_deref(), Some("C0123"));
    assert!(
        manager
            .due_outbound(&session.id, Timestamp::now())
            .await
            .unwrap()
            .is_empty(),
        "recorded as delivered in the mailbox"
    );
    let target = guest.lookup_seq(replied.seq).await.unwrap().unwrap();
    assert_eq!(
        target.platform_message_id.as_deref(),
        Some(recorded[0].platform_id.as_str())
    );
    let host = mailboxes.host_mailbox(&of);
    let files = host
        .read_outbox_files("r1", &["a.txt".to_owned()])
        .await
        .unwrap();
    assert!(files.is_empty(), "the outbox is cleared once settled");
    assert_eq!(
        host.counts().await.unwrap().inbound_pending,
        0,
        "acks synced"
    );
    let again = deliverer.drain(&session.id).await.unwrap();
    assert_eq!(again.delivered, 0, "{again:?}");

    // The guest stops; the proof comes from the registry's answer.
    let stopped = manager.mark_container_stopped(&session.id).await.unwrap();
    assert_eq!(stopped.container_status, ContainerStatus::Stopped);
    assert!(store.guest_stopped(&session.id).await.unwrap().is_some());
}
