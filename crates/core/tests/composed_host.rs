//! The README's library flow, composed only of core's traits over the
//! in-memory registry and mailboxes: what `SessionManager` will hold once it
//! composes `Arc<dyn SessionStore>` with `Arc<dyn MailboxFactory>`.

use std::sync::Arc;

use airlock_core::mailbox::{AckStatus, NewInboundMessage, NewOutboundMessage, WriteOutcome};
use airlock_core::{
    AgentGroupId, GuestMailboxStore, HostMailboxStoreExt, MailboxFactory, MemoryMailboxes,
    MemorySessionStore, MessageId, NewMessagingGroup, Reply, ResolveRequest, Seq, SessionMode,
    SessionRef, SessionStore, SessionStoreExt, Timestamp,
};

#[tokio::test]
async fn the_readme_flow_runs_over_the_seams_alone() {
    let mailboxes = MemoryMailboxes::new();
    let store: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::new());
    let factory: Arc<dyn MailboxFactory> = Arc::new(mailboxes.clone());

    // A chat message arrives: find or create its session, then its mailbox.
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
    let session = store.resolve_session(request).await.unwrap().session;
    let host = factory
        .create_mailbox(&SessionRef::from(&session))
        .await
        .unwrap();
    let message = NewInboundMessage::new(
        MessageId::new("1700000000.0001").unwrap(),
        "chat",
        r#"{"text":"hi"}"#,
    );
    let written = host.write_message(message).await.unwrap();
    assert_eq!(written.outcome, WriteOutcome::Inserted);
    assert_eq!(
        Seq::new(written.seq),
        Seq::new(2),
        "the host's seqs are even"
    );
    assert_eq!(host.count_due(Timestamp::now()).await.unwrap(), 1);
    host.prepare_guest().await.unwrap();

    // The guest reads and replies.
    let guest = mailboxes.guest(&SessionRef::from(&session)).unwrap();
    let pending = guest.pending(10, Timestamp::now()).await.unwrap();
    let mut reply = NewOutboundMessage::new(
        MessageId::new("r1").unwrap(),
        "chat",
        r#"{"text":"hello!"}"#,
    );
    reply.in_reply_to = Some(pending[0].id.clone());
    let replied = guest.write_reply(Reply::new(reply)).await.unwrap();
    assert!(replied.seq.is_guest());
    guest
        .ack(&[pending[0].id.clone()], AckStatus::Completed)
        .await
        .unwrap();

    // Back on the host: deliver what is due, then record it.
    assert_eq!(host.sync_acks().await.unwrap(), 1);
    let due = host.due_with_files(Timestamp::now()).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].message.id, "r1");
    host.mark_delivered("r1", Some("platform-msg-1".into()))
        .await
        .unwrap();
    assert!(
        host.due_outbound(Timestamp::now())
            .await
            .unwrap()
            .is_empty()
    );

    // The guest stops; the proof comes from the registry's answer.
    let (stopped, proof) = store
        .mark_guest_stopped(&session.id, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(
        stopped.container_status,
        airlock_core::ContainerStatus::Stopped
    );
    let proof = proof.expect("the registry says stopped");
    assert_eq!(store.guest_stopped(&session.id).await.unwrap(), Some(proof));
    assert!(!host.recover_stopped_guest(proof).await.unwrap());
    store
        .set_container_status(
            &session.id,
            airlock_core::ContainerStatus::Running,
            Timestamp::now(),
        )
        .await
        .unwrap();
    assert_eq!(store.guest_stopped(&session.id).await.unwrap(), None);
}
