//! `FsAttachmentStore` through the async `AttachmentStore` trait: the session
//! folder is resolved beneath the sessions root without following symlinks.

use std::fs;
use std::sync::Arc;

use airlock_core::{AgentGroupId, AttachmentStore, MessageId, SessionId, SessionRef};
use airlock_sqlite_fs::attachments::{AttachmentLimits, FsAttachmentStore};

use crate::attachments_support::{Fixture, link};

fn session(ag: &str, sess: &str) -> SessionRef {
    SessionRef::new(
        AgentGroupId::new(ag).unwrap(),
        SessionId::new(sess).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_round_trip_through_the_trait() {
    let fx = Fixture::new();
    let store: Arc<dyn AttachmentStore> = Arc::new(FsAttachmentStore::new(
        &fx.sessions_root,
        AttachmentLimits::default(),
    ));
    let s = session("ag", "sess");
    let id = MessageId::new("m1").unwrap();

    let out = store
        .extract_inbound(
            &s,
            &id,
            r#"{"attachments":[{"name":"a.txt","data":"aGk="}]}"#,
        )
        .await
        .unwrap();
    assert_eq!(
        out.content,
        r#"{"attachments":[{"name":"a.txt","localPath":"inbox/m1/a.txt"}]}"#
    );
    assert_eq!(fs::read(fx.session.join("inbox/m1/a.txt")).unwrap(), b"hi");
    let plain = store.extract_inbound(&s, &id, "not json").await.unwrap();
    assert_eq!(plain.content, "not json");

    let dir = fx.outbox_dir("m1");
    fs::write(dir.join("r.txt"), b"reply").unwrap();
    let files = store
        .read_outbox_files(&s, &id, &["r.txt".into()])
        .await
        .unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].data, b"reply");
    store.clear_outbox(&s, &id).await;
    assert!(!dir.exists());
    // Clearing again, or an unknown session, is logged, never an error.
    store.clear_outbox(&s, &id).await;
    store.clear_outbox(&session("ag", "nope"), &id).await;
}

#[tokio::test]
async fn a_symlinked_session_or_agent_folder_is_refused() {
    let fx = Fixture::new();
    let store = FsAttachmentStore::new(&fx.sessions_root, AttachmentLimits::default());
    link(&fx.outside, &fx.sessions_root.join("evil"));
    link(&fx.outside, &fx.sessions_root.join("ag").join("evil"));
    let id = MessageId::new("m1").unwrap();
    let raw = r#"{"attachments":[{"name":"a.txt","data":"aGk="}]}"#;
    let before = fx.outside_snapshot();
    for s in [session("evil", "m1"), session("ag", "evil")] {
        let err = store.extract_inbound(&s, &id, raw).await.unwrap_err();
        assert!(matches!(err, airlock_core::Error::Io { .. }), "{err}");
        assert!(
            store
                .read_outbox_files(&s, &id, &["a.png".into()])
                .await
                .is_err()
        );
        store.clear_outbox(&s, &id).await;
    }
    assert_eq!(fx.outside_snapshot(), before);
}

#[tokio::test]
async fn a_sessions_root_behind_a_symlink_works() {
    let fx = Fixture::new();
    let alias = fx.tmp.path().join("alias");
    link(&fx.sessions_root, &alias);
    let store = FsAttachmentStore::new(&alias, AttachmentLimits::default());
    let dir = fx.outbox_dir("m1");
    fs::write(dir.join("r.txt"), b"reply").unwrap();
    let id = MessageId::new("m1").unwrap();
    let files = store
        .read_outbox_files(&session("ag", "sess"), &id, &["r.txt".into()])
        .await
        .unwrap();
    assert_eq!(files.len(), 1);
}
