//! Several hosts on one registry: a session's folder is touched only by its
//! owner (`NotOwner` elsewhere), and messages written through another host
//! reach the owner's mailbox through PostgreSQL's routing queue exactly
//! once, in order per session, also when the owner's drain is killed.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use airlock_core::mailbox::{NewInboundMessage, WriteOutcome};
use airlock_core::{
    AgentGroupId, Error, MemorySessionStore, MessageId, NewMessagingGroup, ResolveRequest, Session,
    SessionId, SessionMode, SessionStore, SessionStoreExt,
};
use airlock_host::routing::pg::{Drainer, PgRouter};
use airlock_host::{ManagerConfig, SessionManager};
use airlock_postgres::PgSessionStore;

fn manager(store: Arc<dyn SessionStore>, dir: &Path, host: &str) -> SessionManager {
    let mut config = ManagerConfig::new(dir);
    config.host_id = Some(host.to_owned());
    SessionManager::new(store, config)
}

async fn session_for(manager: &SessionManager, chat: &str) -> Session {
    let group = manager
        .store()
        .ensure_messaging_group(NewMessagingGroup::new("slack", chat))
        .await
        .unwrap();
    let request = ResolveRequest::new(
        AgentGroupId::new("agent").unwrap(),
        Some(group.id),
        None,
        SessionMode::Shared,
    );
    manager.resolve_session(request).await.unwrap().session
}

fn message(id: &str, text: &str) -> NewInboundMessage {
    NewInboundMessage::new(
        MessageId::new(id).unwrap(),
        "chat",
        serde_json::json!({ "text": text }).to_string(),
    )
}

/// Inbound ids of `session` in `manager`'s mailbox, in seq order.
fn inbound_ids(manager: &SessionManager, session: &Session) -> Vec<String> {
    let mut rows = manager.mailbox(session).list_inbound(100_000).unwrap();
    rows.sort_by_key(|r| r.seq);
    rows.into_iter().map(|r| r.id).collect()
}

fn assert_not_owner<T: std::fmt::Debug>(result: airlock_core::Result<T>, owner: &str) {
    match result {
        Err(Error::NotOwner { owner: o, .. }) => assert_eq!(o, owner),
        other => panic!("expected NotOwner {{ owner: {owner} }}, got {other:?}"),
    }
}

#[tokio::test]
async fn a_non_owner_touches_no_folder_and_gets_not_owner() {
    let store: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::new());
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = manager(store.clone(), dir_a.path(), "host-a");
    let b = manager(store.clone(), dir_b.path(), "host-b");
    let session = session_for(&a, "C1").await;
    assert_eq!(session.owner_host.as_deref(), Some("host-a"));

    // B resolves the same chat: the same session, and no folder on B.
    let again = session_for(&b, "C1").await;
    assert_eq!(again.id, session.id);
    assert!(!b.session_dir(&session).exists(), "B created A's folder");

    let id = &session.id;
    assert_not_owner(b.write_message(id, message("m1", "hi")).await, "host-a");
    assert_not_owner(b.counts(id).await, "host-a");
    assert_not_owner(
        b.due_outbound(id, airlock_core::Timestamp::now()).await,
        "host-a",
    );
    assert_not_owner(b.write_routing(id).await, "host-a");
    assert_not_owner(b.prepare_guest(id).await, "host-a");
    assert_not_owner(b.mark_container_stopped(id).await, "host-a");
    assert_not_owner(b.ensure_folder(id).await, "host-a");
    assert_not_owner(
        b.read_outbox_files(id, "out-1".into(), vec!["a.png".into()])
            .await,
        "host-a",
    );
    assert!(!b.session_dir(&session).exists(), "B created A's folder");
    assert!(
        std::fs::read_dir(dir_b.path().join("v2-sessions"))
            .map(|d| d.count() == 0)
            .unwrap_or(true),
        "B's sessions root is not empty"
    );

    // The owner is unaffected and heals its own folder.
    a.write_message(id, message("m1", "hi")).await.unwrap();
    assert_eq!(inbound_ids(&a, &session), ["m1"]);
}

#[tokio::test]
async fn sessions_without_an_owner_are_served_by_every_manager() {
    let store: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::new());
    let dir = tempfile::tempdir().unwrap();
    let single = SessionManager::new(store.clone(), ManagerConfig::new(dir.path()));
    let session = session_for(&single, "C1").await;
    assert_eq!(session.owner_host, None);
    single
        .write_message(&session.id, message("m1", "hi"))
        .await
        .unwrap();
    // A manager with a host id still serves ownerless sessions.
    let named = manager(store, dir.path(), "host-a");
    named
        .write_message(&session.id, message("m2", "hi"))
        .await
        .unwrap();
    assert_eq!(inbound_ids(&named, &session), ["m1", "m2"]);
}

/// Host A and host B on one fresh PostgreSQL schema; B routes through the queue.
struct TwoHosts {
    a: SessionManager,
    b: SessionManager,
    drainer: Drainer,
    pg: PgSessionStore,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    _schema: airlock_postgres::testing::SchemaGuard,
}

async fn two_hosts(test: &str) -> Option<TwoHosts> {
    let (pg, schema) = airlock_postgres::testing::fresh_store(test).await?;
    let store: Arc<dyn SessionStore> = Arc::new(pg.clone());
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = manager(store.clone(), dir_a.path(), "host-a")
        .with_router(Arc::new(PgRouter::new(pg.route_queue(), "host-a")));
    let b = manager(store, dir_b.path(), "host-b")
        .with_router(Arc::new(PgRouter::new(pg.route_queue(), "host-b")));
    let drainer = Drainer::new(a.clone(), pg.route_queue()).unwrap();
    Some(TwoHosts {
        a,
        b,
        drainer,
        pg,
        _dirs: (dir_a, dir_b),
        _schema: schema,
    })
}

/// A small deterministic generator: the trials' "random" points.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[tokio::test]
#[cfg_attr(
    not(airlock_pg),
    ignore = "needs AIRLOCK_TEST_PG_URL (set it and rebuild)"
)]
async fn messages_written_through_another_host_reach_the_owner_once_in_order() {
    let Some(h) = two_hosts("routing 500").await else {
        return;
    };
    let mut sessions = Vec::new();
    for chat in ["C1", "C2", "C3", "C4", "C5"] {
        sessions.push(session_for(&h.a, chat).await);
    }
    let mut expected: HashMap<SessionId, Vec<String>> = HashMap::new();
    for n in 0..500 {
        let session = &sessions[n % sessions.len()];
        let id = format!("m{n}");
        // Every tenth message carries an inline attachment.
        let content = if n % 10 == 0 {
            serde_json::json!({ "text": n, "attachments": [{ "name": "a.txt", "data": "aGVsbG8=" }] })
                .to_string()
        } else {
            serde_json::json!({ "text": n }).to_string()
        };
        let mut m = message(&id, "");
        m.content = content;
        let ack = h.b.write_message(&session.id, m).await.unwrap();
        assert_eq!(
            ack.outcome,
            WriteOutcome::Routed {
                owner: "host-a".into()
            }
        );
        expected.entry(session.id.clone()).or_default().push(id);
    }
    assert_eq!(h.pg.route_queue().queued_for("host-a").await.unwrap(), 500);
    assert_eq!(h.drainer.drain_once().await.unwrap(), 500);
    assert_eq!(h.pg.route_queue().queued_for("host-a").await.unwrap(), 0);
    for session in &sessions {
        assert_eq!(inbound_ids(&h.a, session), expected[&session.id]);
        assert!(!h.b.session_dir(session).exists(), "B created a folder");
    }
    let attached = h.a.session_dir(&sessions[0]).join("inbox/m0/a.txt");
    assert_eq!(std::fs::read(attached).unwrap(), b"hello");
    // B's direct mailbox calls are refused.
    assert_not_owner(h.b.counts(&sessions[0].id).await, "host-a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(airlock_pg),
    ignore = "needs AIRLOCK_TEST_PG_URL (set it and rebuild)"
)]
async fn a_drain_killed_at_random_points_loses_and_duplicates_nothing() {
    let Some(h) = two_hosts("routing kill").await else {
        return;
    };
    let sessions = [session_for(&h.a, "K1").await, session_for(&h.a, "K2").await];
    let mut expected: HashMap<SessionId, Vec<String>> = HashMap::new();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut interrupted = 0;
    for trial in 0..60 {
        for k in 0..6 {
            let session = &sessions[(trial + k) % 2];
            let id = format!("t{trial}-{k}");
            h.b.write_message(&session.id, message(&id, "x"))
                .await
                .unwrap();
            expected.entry(session.id.clone()).or_default().push(id);
        }
        let drainer = h.drainer.clone().batch(1 + rng.below(4) as usize);
        let task = tokio::spawn(async move { drainer.drain_once().await });
        // Kill it at a random moment: before, during or after applying
        // some of its batches (each batch is one transaction).
        tokio::time::sleep(Duration::from_micros(rng.below(30_000))).await;
        task.abort();
        if task.await.is_err() {
            interrupted += 1;
        }
    }
    h.drainer.drain_once().await.unwrap();
    assert!(interrupted > 0, "no drain was ever interrupted");
    assert_eq!(h.pg.route_queue().queued_for("host-a").await.unwrap(), 0);
    for session in &sessions {
        assert_eq!(inbound_ids(&h.a, session), expected[&session.id]);
    }
}

#[tokio::test]
#[cfg_attr(
    not(airlock_pg),
    ignore = "needs AIRLOCK_TEST_PG_URL (set it and rebuild)"
)]
async fn messages_for_a_stopped_owner_are_stranded_then_applied_when_it_returns() {
    let Some(h) = two_hosts("routing stranded").await else {
        return;
    };
    let session = session_for(&h.a, "S1").await;
    let queue = h.pg.route_queue();
    // A has never heartbeat: it is stopped as far as the registry knows.
    for n in 0..3 {
        let ack =
            h.b.write_message(&session.id, message(&format!("s{n}"), "x"))
                .await
                .unwrap();
        assert!(matches!(ack.outcome, WriteOutcome::Routed { .. }));
    }
    let stranded = queue.stranded().await.unwrap();
    assert_eq!(stranded.len(), 1, "{stranded:?}");
    assert_eq!(stranded[0].owner_host, "host-a");
    assert_eq!(stranded[0].session_id, session.id.as_str());
    assert_eq!(stranded[0].messages, 3);
    assert!(inbound_ids(&h.a, &session).is_empty());

    // A comes back: its drainer heartbeats, listens and applies the queue.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let drainer = h.drainer.clone();
    let running = tokio::spawn(async move {
        drainer
            .run(
                Duration::from_secs(3600),
                Duration::from_secs(7200),
                async {
                    let _ = stopped.await;
                },
            )
            .await
    });
    while queue.queued_for("host-a").await.unwrap() > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(queue.stranded().await.unwrap().is_empty());
    // Only NOTIFY can wake the drainer before its hour-long poll: a new
    // message is applied too.
    h.b.write_message(&session.id, message("s3", "x"))
        .await
        .unwrap();
    while inbound_ids(&h.a, &session).len() < 4 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(inbound_ids(&h.a, &session), ["s0", "s1", "s2", "s3"]);
    stop.send(()).unwrap();
    running.await.unwrap();
    // A released its lease on the way out: new messages strand again.
    h.b.write_message(&session.id, message("s4", "x"))
        .await
        .unwrap();
    assert_eq!(queue.stranded().await.unwrap()[0].messages, 1);
}

#[tokio::test]
#[cfg_attr(
    not(airlock_pg),
    ignore = "needs AIRLOCK_TEST_PG_URL (set it and rebuild)"
)]
async fn reassigning_a_session_moves_its_ownership_and_its_queue() {
    let Some(h) = two_hosts("routing reassign").await else {
        return;
    };
    let session = session_for(&h.a, "R1").await;
    let queue = h.pg.route_queue();
    for n in 0..2 {
        h.b.write_message(&session.id, message(&format!("r{n}"), "x"))
            .await
            .unwrap();
    }
    assert_eq!(queue.reassign(&session.id, "host-b").await.unwrap(), 2);
    assert_eq!(queue.queued_for("host-a").await.unwrap(), 0);
    assert_eq!(queue.queued_for("host-b").await.unwrap(), 2);
    let moved = h.b.session(&session.id).await.unwrap();
    assert_eq!(moved.owner_host.as_deref(), Some("host-b"));
    // Now A is the non-owner and B drains its queue into its own folder.
    assert_not_owner(h.a.counts(&session.id).await, "host-b");
    let drainer_b = Drainer::new(h.b.clone(), queue.clone()).unwrap();
    assert_eq!(drainer_b.drain_once().await.unwrap(), 2);
    assert_eq!(inbound_ids(&h.b, &moved), ["r0", "r1"]);
    let unknown = SessionId::new("sess-unknown").unwrap();
    assert!(matches!(
        queue.reassign(&unknown, "host-b").await,
        Err(Error::NotFound { .. })
    ));
}
