//! The whole host loop through `SessionManager`, once per registry backend:
//! resolve, an inbound message with an attachment, a guest started with a
//! mount nonce that polls and replies with a file, delivery through the
//! engine (recording adapter), acks, stop.
//! PostgreSQL runs when `AIRLOCK_TEST_PG_URL` is set and says SKIPPED otherwise.

use std::sync::Arc;

use airlock_core::mailbox::{NewInboundMessage, NewOutboundMessage};
use airlock_core::{
    AgentGroupId, ContainerStatus, MessageId, NewMessagingGroup, ResolveRequest, SessionMode,
    SessionStore, SessionStoreExt, Timestamp,
};
use airlock_host::delivery::RecordingAdapter;
use airlock_host::{Deliverer, ManagerConfig, SessionManager};
use airlock_sqlite_fs::guest::{DEFAULT_MOUNT_CHECK_TIMEOUT, check_mount};
use airlock_sqlite_fs::host::MOUNT_NONCE_ENV;
use airlock_sqlite_fs::{GuestMailbox, SqliteSessionStore};
use base64::Engine;
use serde_json::{Value, json};

async fn host_loop(store: Arc<dyn SessionStore>, data_dir: &std::path::Path) {
    let manager = SessionManager::new(store, ManagerConfig::new(data_dir));
    let chat = manager
        .store()
        .ensure_messaging_group(NewMessagingGroup::new("slack", "C-loop"))
        .await
        .unwrap();
    let request = || {
        ResolveRequest::new(
            AgentGroupId::new("ag-loop").unwrap(),
            Some(chat.id.clone()),
            None,
            SessionMode::Shared,
        )
    };
    let first = manager.resolve_session(request()).await.unwrap();
    let again = manager.resolve_session(request()).await.unwrap();
    assert!(first.created && !again.created);
    assert_eq!(first.session.id, again.session.id);
    let id = first.session.id.clone();
    assert_eq!(first.session.last_active, None);

    // A chat bridge delivers a message with an inline attachment.
    let content = json!({
        "text": "please summarise",
        "attachments": [{
            "name": "note.txt",
            "data": base64::engine::general_purpose::STANDARD.encode("the note"),
        }],
    });
    let inbound =
        NewInboundMessage::new(MessageId::new("in-1").unwrap(), "chat", content.to_string());
    let written = manager.write_message(&id, inbound).await.unwrap();
    assert_eq!(written.seq, 2);
    let local = written.attachments[0].local_path.clone().unwrap();
    assert_eq!(local, "inbox/in-1/note.txt");
    assert!(manager.session(&id).await.unwrap().last_active.is_some());

    // The sandbox starts: the host writes a nonce, the guest checks its mount.
    let launch = manager.prepare_guest(&id).await.unwrap();
    assert_eq!(launch.session.container_status, ContainerStatus::Running);
    let dir = launch.session_dir.clone().expect("a folder to mount");
    let nonce = launch.env_var(MOUNT_NONCE_ENV).expect("the mount nonce");
    check_mount(&dir, nonce, DEFAULT_MOUNT_CHECK_TIMEOUT).unwrap();
    check_mount(&dir, "not-the-nonce", std::time::Duration::from_millis(100)).unwrap_err();

    // The guest reads the message and its file, then replies with a file.
    let guest = GuestMailbox::open(&dir).unwrap();
    let pending = guest.pending(10).unwrap();
    assert_eq!(pending.len(), 1);
    let stored: Value = serde_json::from_str(&pending[0].content).unwrap();
    assert_eq!(stored["attachments"][0]["localPath"], local.as_str());
    assert!(stored["attachments"][0].get("data").is_none());
    assert_eq!(std::fs::read(dir.join(&local)).unwrap(), b"the note");
    guest.mark_processing(&["in-1"]).unwrap();
    std::fs::create_dir_all(dir.join("outbox/out-1")).unwrap();
    std::fs::write(dir.join("outbox/out-1/summary.txt"), b"a short note").unwrap();
    let mut reply = NewOutboundMessage::new(
        MessageId::new("out-1").unwrap(),
        "chat",
        json!({"text": "done", "files": ["summary.txt"]}).to_string(),
    );
    reply.in_reply_to = Some("in-1".into());
    assert_eq!(guest.write_message_out(&reply).unwrap(), 3);
    guest.mark_completed(&["in-1"]).unwrap();

    // The delivery engine delivers it with its file, records it, clears the
    // outbox, and copies the guest's acks on the way.
    let adapter = Arc::new(RecordingAdapter::new());
    let deliverer = Deliverer::builder(manager.clone(), adapter.clone())
        .build()
        .unwrap();
    let report = deliverer.drain(&id).await.unwrap();
    assert!(report.is_clean() && report.delivered == 1, "{report:?}");
    let recorded = adapter.recorded();
    assert_eq!(
        recorded.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["out-1"]
    );
    assert_eq!(
        recorded[0].files,
        [("summary.txt".to_owned(), b"a short note".to_vec())]
    );
    // No routing on the row: the session's chat.
    assert_eq!(recorded[0].routing.platform_id.as_deref(), Some("C-loop"));
    assert!(!dir.join("outbox/out-1").exists());
    assert!(
        manager
            .due_outbound(&id, Timestamp::now())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(deliverer.drain(&id).await.unwrap().delivered, 0);
    assert_eq!(manager.sync_acks(&id).await.unwrap(), 0, "already copied");
    let counts = manager.counts(&id).await.unwrap();
    assert_eq!(
        (
            counts.inbound,
            counts.inbound_pending,
            counts.outbound,
            counts.delivered
        ),
        (1, 0, 1, 1)
    );

    let stopped = manager.mark_container_stopped(&id).await.unwrap();
    assert_eq!(stopped.container_status, ContainerStatus::Stopped);
    assert_eq!(
        manager.session(&id).await.unwrap().container_status,
        ContainerStatus::Stopped
    );
}

#[tokio::test]
async fn the_host_loop_on_the_sqlite_registry() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteSessionStore::open_in(tmp.path()).unwrap());
    host_loop(store, tmp.path()).await;
}

#[tokio::test]
#[cfg_attr(
    not(airlock_pg),
    ignore = "needs AIRLOCK_TEST_PG_URL (set it and rebuild)"
)]
async fn the_host_loop_on_the_postgres_registry() {
    let Some((store, _schema)) = airlock_postgres::testing::fresh_store("host loop").await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    host_loop(Arc::new(store), tmp.path()).await;
}
