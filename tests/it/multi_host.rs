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
use airlock_host::routing::reassign::{ReassignOutcome, Reassigner, Reassignment};
use airlock_host::routing::{Placement, place_with};
use airlock_host::{ManagerConfig, SessionManager};
use airlock_postgres::PgSessionStore;
use airlock_postgres::RetryPolicy;

fn manager(store: Arc<dyn SessionStore>, dir: &Path, host: &str) -> SessionManager {
    let mut config = ManagerConfig::new(dir);
    config.host_id = Some(host.to_owned());
    SessionManager::new(store, config)
}

async fn session_for(manager: &SessionManager, chat: &str) -> Session {
    session_in(manager, "agent", chat).await
}

async fn session_in(manager: &SessionManager, agent: &str, chat: &str) -> Session {
    let group = manager
        .store()
        .ensure_messaging_group(NewMessagingGroup::new("slack", chat))
        .await
        .unwrap();
    let request = ResolveRequest::new(
        AgentGroupId::new(agent).unwrap(),
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
    assert_eq!(h.drainer.drain_once().await.unwrap().applied, 500);
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
    // Aged on the server's clock, so the age shown is known.
    sqlx::query("UPDATE routed_messages SET enqueued_at = now() - interval '90 seconds'")
        .execute(h.pg.pool())
        .await
        .unwrap();
    let stranded = queue.stranded().await.unwrap();
    assert_eq!(stranded.len(), 1, "{stranded:?}");
    assert_eq!(stranded[0].owner_host, "host-a");
    assert_eq!(stranded[0].session_id, session.id.as_str());
    assert_eq!(stranded[0].messages, 3);
    assert!(
        (90..3600).contains(&stranded[0].oldest_age.as_secs()),
        "{stranded:?}"
    );
    let listed = queue.sessions().await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].stranded && listed[0].queued == 3, "{listed:?}");
    assert!(
        listed[0]
            .oldest_age_secs
            .is_some_and(|age| (90..3600).contains(&age)),
        "{listed:?}"
    );
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
    let handover = queue
        .reassign(&session.id, Some("host-a"), "host-b", false)
        .await
        .unwrap();
    assert_eq!(handover.queued, 2);
    assert_eq!(queue.queued_for("host-a").await.unwrap(), 0);
    assert_eq!(queue.queued_for("host-b").await.unwrap(), 2);
    let moved = h.b.session(&session.id).await.unwrap();
    assert_eq!(moved.owner_host.as_deref(), Some("host-b"));
    // Now A is the non-owner and B drains its queue into its own folder.
    assert_not_owner(h.a.counts(&session.id).await, "host-b");
    let drainer_b = Drainer::new(h.b.clone(), queue.clone()).unwrap();
    assert_eq!(drainer_b.drain_once().await.unwrap().applied, 2);
    assert_eq!(inbound_ids(&h.b, &moved), ["r0", "r1"]);
    let unknown = SessionId::new("sess-unknown").unwrap();
    assert!(matches!(
        queue.reassign(&unknown, None, "host-b", false).await,
        Err(Error::NotFound { .. })
    ));
}

/// Copies `session`'s folder from `from`'s data dir into `to`'s, as an
/// operator moving a stopped host's disk (or mounting it) would.
fn copy_folder(from: &SessionManager, to: &SessionManager, session: &Session) {
    let (src, dst) = (from.session_dir(session), to.session_dir(session));
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(&src)
        .arg(&dst)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cp -a {} {}",
        src.display(),
        dst.display()
    );
}

fn outcome_of<'r>(done: &'r [Reassignment], session: &Session) -> &'r ReassignOutcome {
    &done
        .iter()
        .find(|r| r.session == session.id.as_str())
        .unwrap_or_else(|| panic!("{} not reported: {done:?}", session.id))
        .outcome
}

#[tokio::test]
#[cfg_attr(
    not(airlock_pg),
    ignore = "needs AIRLOCK_TEST_PG_URL (set it and rebuild)"
)]
async fn reassign_moves_only_reachable_sessions_and_the_new_owner_applies_their_queue_once() {
    let Some(h) = two_hosts("routing reassign reachable").await else {
        return;
    };
    let queue = h.pg.route_queue();
    let reachable = [session_for(&h.a, "M1").await, session_for(&h.a, "M2").await];
    let unreachable = session_for(&h.a, "M3").await;
    // A is live while it applies the first messages.
    queue
        .heartbeat("host-a", Duration::from_secs(3600))
        .await
        .unwrap();
    let mut expected: HashMap<SessionId, Vec<String>> = HashMap::new();
    for session in reachable.iter().chain([&unreachable]) {
        let id = format!("{}-early", session.id);
        h.b.write_message(&session.id, message(&id, "x"))
            .await
            .unwrap();
        expected.entry(session.id.clone()).or_default().push(id);
    }
    assert_eq!(h.drainer.drain_once().await.unwrap().applied, 3);
    // A crashed between applying `crash` and removing it from the queue:
    // it is in A's folder and still queued.
    let crash = message("crash", "applied by A, still queued");
    h.a.write_message(&reachable[0].id, crash.clone())
        .await
        .unwrap();
    queue
        .enqueue(
            "host-a",
            &reachable[0].id,
            "crash",
            &serde_json::to_string(&crash).unwrap(),
            "host-b",
        )
        .await
        .unwrap();
    expected
        .get_mut(&reachable[0].id)
        .unwrap()
        .push("crash".into());
    for n in 0..3 {
        for session in reachable.iter().chain([&unreachable]) {
            let id = format!("{}-late-{n}", session.id);
            h.b.write_message(&session.id, message(&id, "x"))
                .await
                .unwrap();
            expected.entry(session.id.clone()).or_default().push(id);
        }
    }
    for session in &reachable {
        copy_folder(&h.a, &h.b, session);
    }
    let reassigner = Reassigner::new(h.b.clone(), queue.clone()).unwrap();
    let mut ids = reassigner.sessions_of("host-a").await.unwrap();
    assert_eq!(ids.len(), 3);

    // A live owner is never moved.
    let live = reassigner.reassign_all(&ids, false).await.unwrap();
    assert!(live.iter().all(Reassignment::is_refused), "{live:?}");
    for session in &reachable {
        match outcome_of(&live, session) {
            ReassignOutcome::Refused { reason } => {
                assert!(reason.contains("live lease"), "{reason}")
            }
            other => panic!("moved from a live owner: {other:?}"),
        }
    }
    // A stops.
    queue.release("host-a").await.unwrap();

    // A dry run reports what would move and changes nothing.
    let dry = reassigner.reassign_all(&ids, true).await.unwrap();
    assert_eq!(
        outcome_of(&dry, &reachable[0]),
        &ReassignOutcome::WouldMove { queued: 4 }
    );
    assert_eq!(
        outcome_of(&dry, &reachable[1]),
        &ReassignOutcome::WouldMove { queued: 3 }
    );
    match outcome_of(&dry, &unreachable) {
        ReassignOutcome::Refused { reason } => {
            assert!(reason.contains("is not on this host"), "{reason}")
        }
        other => panic!("an unreachable folder was not refused: {other:?}"),
    }
    assert_eq!(queue.queued_for("host-a").await.unwrap(), 10);
    assert_eq!(queue.queued_for("host-b").await.unwrap(), 0);
    assert_eq!(
        h.b.session(&reachable[0].id)
            .await
            .unwrap()
            .owner_host
            .as_deref(),
        Some("host-a")
    );

    ids.push(SessionId::new("sess-unknown").unwrap());
    let done = reassigner.reassign_all(&ids, false).await.unwrap();
    assert_eq!(
        outcome_of(&done, &reachable[0]),
        &ReassignOutcome::Moved { queued: 4 }
    );
    assert_eq!(
        outcome_of(&done, &reachable[1]),
        &ReassignOutcome::Moved { queued: 3 }
    );
    assert!(
        done[3].is_refused() && done[3].session == "sess-unknown",
        "{done:?}"
    );
    assert!(matches!(
        outcome_of(&done, &unreachable),
        ReassignOutcome::Refused { .. }
    ));
    assert_eq!(queue.queued_for("host-a").await.unwrap(), 3);
    assert_eq!(queue.queued_for("host-b").await.unwrap(), 7);
    // (B runs no drainer here, so its lease is missing too: only A's count.)
    let stranded: Vec<_> = queue
        .stranded()
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.owner_host == "host-a")
        .collect();
    assert_eq!(stranded.len(), 1, "{stranded:?}");
    assert_eq!(stranded[0].session_id, unreachable.id.as_str());

    // B's drain applies the moved messages, each once (`crash` was in the
    // copied folder already), in order.
    let drainer_b = Drainer::new(h.b.clone(), queue.clone()).unwrap();
    assert_eq!(drainer_b.drain_once().await.unwrap().applied, 7);
    assert_eq!(drainer_b.drain_once().await.unwrap().applied, 0);
    for session in &reachable {
        assert_eq!(inbound_ids(&h.b, session), expected[&session.id]);
        assert_not_owner(h.a.counts(&session.id).await, "host-b");
    }
    assert!(!h.b.session_dir(&unreachable).exists());
    assert_eq!(
        h.b.session(&unreachable.id)
            .await
            .unwrap()
            .owner_host
            .as_deref(),
        Some("host-a")
    );
    // Once moved, a second run has nothing to do.
    assert_eq!(
        reassigner
            .reassign(&reachable[0].id, false)
            .await
            .unwrap()
            .outcome,
        ReassignOutcome::AlreadyOwned
    );
}

#[tokio::test]
#[cfg_attr(
    not(airlock_pg),
    ignore = "needs AIRLOCK_TEST_PG_URL (set it and rebuild)"
)]
async fn a_poison_routed_message_is_retried_then_kept_as_a_dead_letter_without_blocking() {
    let Some(h) = two_hosts("routing poison").await else {
        return;
    };
    let queue = h.pg.route_queue();
    let drainer = h.drainer.clone().retry(RetryPolicy {
        max_attempts: 3,
        first_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    });
    let (p1, p2) = (session_for(&h.a, "P1").await, session_for(&h.a, "P2").await);
    h.b.write_message(&p1.id, message("p1-0", "x"))
        .await
        .unwrap();
    // Not a message at all (a corrupted row, or a sender of another version).
    queue
        .enqueue("host-a", &p1.id, "p1-bad", "not json", "host-b")
        .await
        .unwrap();
    h.b.write_message(&p1.id, message("p1-1", "x"))
        .await
        .unwrap();
    // P2's guest planted a symlink where the next attachment goes: storing
    // that message fails on every attempt, whatever is retried.
    let elsewhere = tempfile::tempdir().unwrap();
    let inbox = h.a.session_dir(&p2).join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), inbox.join("p2-evil")).unwrap();
    let mut evil = message("p2-evil", "");
    evil.content =
        serde_json::json!({ "text": "x", "attachments": [{ "name": "a.txt", "data": "aGVsbG8=" }] })
            .to_string();
    h.b.write_message(&p2.id, evil).await.unwrap();
    h.b.write_message(&p2.id, message("p2-1", "x"))
        .await
        .unwrap();
    h.b.write_message(&p2.id, message("p2-2", "x"))
        .await
        .unwrap();

    let first = drainer.drain_once().await.unwrap();
    assert_eq!((first.applied, first.failed), (1, 2), "{first:?}");
    // The failed messages' later ones wait behind them.
    assert_eq!(inbound_ids(&h.a, &p1), ["p1-0"]);
    assert!(inbound_ids(&h.a, &p2).is_empty());
    let state = queue.sessions().await.unwrap();
    assert_eq!(state.len(), 2, "{state:?}");
    assert!(
        state.iter().all(|q| q.retrying == 1 && q.dead_letters == 0),
        "{state:?}"
    );

    let second = drainer.drain_once().await.unwrap();
    assert_eq!((second.applied, second.failed), (0, 2), "{second:?}");
    let third = drainer.drain_once().await.unwrap();
    assert_eq!((third.applied, third.dead_lettered), (3, 2), "{third:?}");
    assert_eq!(inbound_ids(&h.a, &p1), ["p1-0", "p1-1"]);
    assert_eq!(inbound_ids(&h.a, &p2), ["p2-1", "p2-2"]);
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    assert_eq!(queue.queued_for("host-a").await.unwrap(), 0);

    // Kept, visibly: with its attempts and last error, per session.
    let dead = queue.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 2, "{dead:?}");
    let bad = dead.iter().find(|d| d.message_id == "p1-bad").unwrap();
    assert_eq!(bad.attempts, 3);
    assert!(
        bad.last_error
            .as_deref()
            .unwrap()
            .contains("is not a message"),
        "{bad:?}"
    );
    let planted = dead.iter().find(|d| d.message_id == "p2-evil").unwrap();
    assert_eq!(planted.session_id, p2.id.as_str());
    let state = queue.sessions().await.unwrap();
    assert!(
        state
            .iter()
            .all(|q| q.queued == 0 && q.dead_letters == 1 && !q.stranded),
        "{state:?}"
    );
    assert!(queue.stranded().await.unwrap().is_empty());
    assert_eq!(drainer.drain_once().await.unwrap(), Default::default());

    // Re-queued, it is tried again with fresh attempts; purged, it is gone.
    assert!(matches!(
        queue.purge_dead(i64::MAX).await,
        Err(Error::NotFound { .. })
    ));
    queue.retry_dead(bad.queue_id).await.unwrap();
    assert!(matches!(
        queue.purge_dead(bad.queue_id).await,
        Err(Error::NotFound { .. })
    ));
    let again = drainer.drain_once().await.unwrap();
    assert_eq!((again.failed, again.dead_lettered), (1, 0), "{again:?}");
    let purged = queue.purge_dead(planted.queue_id).await.unwrap();
    assert_eq!(purged.message_id, "p2-evil");
    let left: Vec<String> = queue
        .dead_letters()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.message_id)
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
#[cfg_attr(
    not(airlock_pg),
    ignore = "needs AIRLOCK_TEST_PG_URL (set it and rebuild)"
)]
async fn a_session_placed_on_another_host_gets_its_folder_there_with_its_first_message() {
    let Some(h) = two_hosts("routing placement").await else {
        return;
    };
    // A places the sessions of agent group "remote" on host B.
    let a =
        h.a.clone()
            .with_placement(Arc::new(place_with(|req: &ResolveRequest| {
                (req.agent_group.as_str() == "remote").then(|| "host-b".to_owned())
            })));
    let placed = session_in(&a, "remote", "b-1").await;
    assert_eq!(placed.owner_host.as_deref(), Some("host-b"));
    assert!(!a.session_dir(&placed).exists(), "A made B's folder");
    let local = session_for(&a, "a-1").await;
    assert_eq!(local.owner_host.as_deref(), Some("host-a"));
    assert!(a.session_dir(&local).join("inbound.db").exists());

    let ack = a
        .write_message(&placed.id, message("first", "x"))
        .await
        .unwrap();
    assert_eq!(
        ack.outcome,
        WriteOutcome::Routed {
            owner: "host-b".into()
        }
    );
    let drainer_b = Drainer::new(h.b.clone(), h.pg.route_queue()).unwrap();
    assert_eq!(drainer_b.drain_once().await.unwrap().applied, 1);
    assert_eq!(inbound_ids(&h.b, &placed), ["first"]);
}

/// A placement that cannot decide (its lookup failed).
#[derive(Debug)]
struct Failing;

#[async_trait::async_trait]
impl Placement for Failing {
    async fn place(&self, _: &ResolveRequest) -> airlock_core::Result<Option<String>> {
        Err(Error::Conflict("no host has room".into()))
    }
}

#[tokio::test]
async fn placement_chooses_the_owner_of_new_sessions_only_and_its_errors_create_nothing() {
    let store: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::new());
    let dir = tempfile::tempdir().unwrap();
    let a = manager(store.clone(), dir.path(), "host-a").with_placement(Arc::new(place_with(
        |req: &ResolveRequest| (req.agent_group.as_str() == "remote").then(|| "host-b".into()),
    )));
    let placed = session_in(&a, "remote", "C1").await;
    assert_eq!(placed.owner_host.as_deref(), Some("host-b"));
    assert!(!a.session_dir(&placed).exists(), "A made B's folder");
    // Without a router, A refuses B's session: placement made B the owner.
    assert_not_owner(
        a.write_message(&placed.id, message("m", "x")).await,
        "host-b",
    );
    let local = session_in(&a, "local", "C1").await;
    assert_eq!(local.owner_host.as_deref(), Some("host-a"));

    // An existing session keeps its owner whatever placement says now.
    let c = manager(store.clone(), dir.path(), "host-c").with_placement(Arc::new(place_with(
        |_: &ResolveRequest| Some("host-c".into()),
    )));
    assert_eq!(session_in(&c, "remote", "C1").await.id, placed.id);
    assert_eq!(
        c.session(&placed.id).await.unwrap().owner_host.as_deref(),
        Some("host-b")
    );
    // A request naming its owner is not placed.
    let mut named = ResolveRequest::new(
        AgentGroupId::new("remote").unwrap(),
        None,
        None,
        SessionMode::AgentShared,
    );
    named.owner_host = Some("host-a".into());
    let named = c.resolve_session(named).await.unwrap().session;
    assert_eq!(named.owner_host.as_deref(), Some("host-a"));

    // A failing or unusable placement fails the resolve; nothing is created.
    let before = store.list_sessions(Default::default()).await.unwrap().len();
    let failing = manager(store.clone(), dir.path(), "host-a").with_placement(Arc::new(Failing));
    let request = ResolveRequest::new(
        AgentGroupId::new("new").unwrap(),
        None,
        None,
        SessionMode::AgentShared,
    );
    let err = failing.resolve_session(request.clone()).await.unwrap_err();
    assert!(err.to_string().contains("no host has room"), "{err}");
    let blank = manager(store.clone(), dir.path(), "host-a")
        .with_placement(Arc::new(place_with(|_: &ResolveRequest| Some(" ".into()))));
    let err = blank.resolve_session(request).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert_eq!(
        store.list_sessions(Default::default()).await.unwrap().len(),
        before
    );
}
