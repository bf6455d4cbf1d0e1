//! Registry writes per inbound message: `last_active` touches are
//! coalesced to one per session per interval, and none is lost.

use std::time::{Duration, Instant};

use airlock_core::mailbox::NewInboundMessage;
use airlock_core::{MessageId, Session, Timestamp};
use airlock_host::{ManagerConfig, SessionManager};

use super::counting::CountingStore;

fn manager(
    store: &std::sync::Arc<CountingStore>,
    dir: &std::path::Path,
    every: Duration,
) -> SessionManager {
    let mut config = ManagerConfig::new(dir);
    config.last_active_interval = every;
    SessionManager::new(store.clone(), config)
}

async fn write(manager: &SessionManager, session: &Session, n: usize) {
    let message = NewInboundMessage::new(MessageId::new(format!("m{n}")).unwrap(), "chat", "{}");
    manager.write_message(&session.id, message).await.unwrap();
}

async fn last_active(manager: &SessionManager, session: &Session) -> Timestamp {
    manager
        .session(&session.id)
        .await
        .unwrap()
        .last_active
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_writes_touches_the_registry_once_and_a_flush_writes_the_newest() {
    let tmp = tempfile::tempdir().unwrap();
    let store = CountingStore::new();
    let manager = manager(&store, tmp.path(), Duration::from_secs(600));
    let session = crate::support::chat_session(&manager, "C1").await;
    let before = store.updates();
    write(&manager, &session, 0).await;
    let first = last_active(&manager, &session).await;
    let mut newest = first;
    for n in 1..30 {
        newest = Timestamp::now();
        write(&manager, &session, n).await;
    }
    assert_eq!(
        store.updates() - before,
        1,
        "30 writes in one interval: one touch"
    );
    assert_eq!(
        last_active(&manager, &session).await,
        first,
        "the rest is held"
    );

    manager.flush_last_active().await;
    assert_eq!(
        store.updates() - before,
        2,
        "the flush writes the held touch"
    );
    assert!(last_active(&manager, &session).await >= newest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_touch_is_written_when_its_interval_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let store = CountingStore::new();
    let manager = manager(&store, tmp.path(), Duration::from_secs(3));
    let session = crate::support::chat_session(&manager, "C1").await;
    write(&manager, &session, 0).await;
    let second = Timestamp::now();
    write(&manager, &session, 1).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while last_active(&manager, &session).await < second {
        assert!(
            Instant::now() < deadline,
            "the held touch was never written"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_interval_writes_every_touch() {
    let tmp = tempfile::tempdir().unwrap();
    let store = CountingStore::new();
    let manager = manager(&store, tmp.path(), Duration::ZERO);
    let session = crate::support::chat_session(&manager, "C1").await;
    let before = store.updates();
    for n in 0..5 {
        write(&manager, &session, n).await;
    }
    assert_eq!(store.updates() - before, 5);
}
