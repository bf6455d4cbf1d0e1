//! Registry lookups per delivered message: a session handle read once
//! carries what the mailbox needs, so a pass costs the same few lookups
//! whatever its backlog.

use std::sync::Arc;

use airlock_core::mailbox::NewOutboundMessage;
use airlock_core::{MessageId, OutboxFile, Reply};
use airlock_host::delivery::{DelivererConfig, RecordingAdapter};
use airlock_host::{Deliverer, ManagerConfig, SessionManager};
use airlock_sqlite_fs::GuestMailbox;

use super::counting::CountingStore;

const REPLIES: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_costs_a_few_registry_lookups_whatever_its_backlog() {
    let tmp = tempfile::tempdir().unwrap();
    let store = CountingStore::new();
    let manager = SessionManager::new(store.clone(), ManagerConfig::new(tmp.path()));
    let session = crate::support::chat_session(&manager, "C1").await;
    let guest = GuestMailbox::open(manager.session_dir(&session)).unwrap();
    for i in 0..REPLIES {
        let id = MessageId::new(format!("r{i}")).unwrap();
        let message = NewOutboundMessage::new(id, "chat", r#"{"text":"see file"}"#);
        let reply = Reply {
            message,
            files: vec![OutboxFile {
                name: "a.txt".into(),
                data: b"a file".to_vec(),
            }],
        };
        guest.write_reply(&reply).unwrap();
    }
    let adapter = Arc::new(RecordingAdapter::new());
    let deliverer = Deliverer::builder(manager.clone(), adapter.clone())
        .config(DelivererConfig::default())
        .build()
        .unwrap();

    let before = store.reads();
    let report = deliverer.drain(&session.id).await.unwrap();
    let lookups = store.reads() - before;
    assert_eq!(report.delivered, REPLIES, "{report:?}");
    assert!(adapter.recorded().iter().all(|r| r.files.len() == 1));
    eprintln!(
        "registry lookups: {lookups} for {REPLIES} delivered messages ({:.2} per message)",
        lookups as f64 / REPLIES as f64
    );
    assert!(
        lookups <= 2,
        "{lookups} registry lookups for one pass of {REPLIES} messages: the session is \
         read once, its chat once"
    );
}
