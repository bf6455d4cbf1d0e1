//! Conformance checks of `resolve_session`: every rule of SPEC.md.

use std::collections::HashSet;
use std::sync::Arc;

use crate::error::Error;
use crate::session::{ContainerStatus, SessionMode, SessionStatus, SessionUpdate};
use crate::store::{SessionStore, SessionStoreExt};
use crate::time::Timestamp;

use super::{agent, chat, request, thread};

/// A new session is active, stopped, without last_active or provider, and
/// carries the request's ids.
pub async fn new_session_has_spec_defaults(store: Arc<dyn SessionStore>) {
    let before = Timestamp::now().plus_millis(-1);
    let mg = chat(&*store, "defaults").await;
    let resolved = store
        .resolve_session(request(
            &agent("a"),
            Some(&mg),
            Some(&thread("t")),
            SessionMode::PerThread,
        ))
        .await
        .unwrap();
    assert!(resolved.created);
    let s = resolved.session;
    assert!(s.id.as_str().starts_with("sess-"), "{}", s.id);
    assert_eq!(s.agent_group_id, agent("a"));
    assert_eq!(s.messaging_group_id, Some(mg));
    assert_eq!(s.thread_id, Some(thread("t")));
    assert_eq!(s.mode, SessionMode::PerThread);
    assert_eq!(s.status, SessionStatus::Active);
    assert_eq!(s.container_status, ContainerStatus::Stopped);
    assert_eq!(s.last_active, None);
    assert_eq!(s.agent_provider, None);
    assert!(s.created_at >= before && s.created_at <= Timestamp::now().plus_millis(1));
    assert_eq!(store.session(&s.id).await.unwrap(), s, "stored as returned");
}

/// `shared` finds one session per chat whatever the thread, storing no thread.
pub async fn shared_ignores_the_thread(store: Arc<dyn SessionStore>) {
    let mg = chat(&*store, "shared").await;
    let a = agent("a");
    let first = store
        .resolve_session(request(
            &a,
            Some(&mg),
            Some(&thread("t1")),
            SessionMode::Shared,
        ))
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(
        first.session.thread_id, None,
        "shared stores the thread as NULL"
    );
    for t in [Some(thread("t2")), None] {
        let again = store
            .resolve_session(request(&a, Some(&mg), t.as_ref(), SessionMode::Shared))
            .await
            .unwrap();
        assert!(!again.created);
        assert_eq!(again.session.id, first.session.id);
    }
    let other_chat = chat(&*store, "shared-2").await;
    let other = store
        .resolve_session(request(&a, Some(&other_chat), None, SessionMode::Shared))
        .await
        .unwrap();
    assert!(other.created);
}

/// `per-thread` keeps one session per thread.
pub async fn per_thread_separates_threads(store: Arc<dyn SessionStore>) {
    let mg = chat(&*store, "threads").await;
    let a = agent("a");
    let t1 = store
        .resolve_session(request(
            &a,
            Some(&mg),
            Some(&thread("t1")),
            SessionMode::PerThread,
        ))
        .await
        .unwrap();
    let t2 = store
        .resolve_session(request(
            &a,
            Some(&mg),
            Some(&thread("t2")),
            SessionMode::PerThread,
        ))
        .await
        .unwrap();
    let t1_again = store
        .resolve_session(request(
            &a,
            Some(&mg),
            Some(&thread("t1")),
            SessionMode::PerThread,
        ))
        .await
        .unwrap();
    assert!(t1.created && t2.created && !t1_again.created);
    assert_ne!(t1.session.id, t2.session.id);
    assert_eq!(t1.session.id, t1_again.session.id);
    assert_eq!(t2.session.thread_id, Some(thread("t2")));
}

/// `per-thread` without a thread finds the chat's shared session.
pub async fn per_thread_without_thread_behaves_like_shared(store: Arc<dyn SessionStore>) {
    let mg = chat(&*store, "nothread").await;
    let a = agent("a");
    let shared = store
        .resolve_session(request(&a, Some(&mg), None, SessionMode::Shared))
        .await
        .unwrap();
    let per_thread = store
        .resolve_session(request(&a, Some(&mg), None, SessionMode::PerThread))
        .await
        .unwrap();
    assert!(!per_thread.created);
    assert_eq!(per_thread.session.id, shared.session.id);
    let threaded = store
        .resolve_session(request(
            &a,
            Some(&mg),
            Some(&thread("t")),
            SessionMode::PerThread,
        ))
        .await
        .unwrap();
    assert!(threaded.created, "a real thread gets its own session");
}

/// `agent-shared` gives every chat of the agent group one session, which
/// stores the creating chat and no thread.
pub async fn agent_shared_spans_messaging_groups(store: Arc<dyn SessionStore>) {
    let (m1, m2) = (chat(&*store, "as-1").await, chat(&*store, "as-2").await);
    let a = agent("a");
    let first = store
        .resolve_session(request(
            &a,
            Some(&m1),
            Some(&thread("t")),
            SessionMode::AgentShared,
        ))
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(first.session.messaging_group_id, Some(m1.clone()));
    assert_eq!(first.session.thread_id, None);
    assert_eq!(first.session.mode, SessionMode::AgentShared);
    let second = store
        .resolve_session(request(&a, Some(&m2), None, SessionMode::AgentShared))
        .await
        .unwrap();
    let no_chat = store
        .resolve_session(request(&a, None, None, SessionMode::AgentShared))
        .await
        .unwrap();
    assert!(!second.created && !no_chat.created);
    assert_eq!(second.session.id, first.session.id);
    assert_eq!(no_chat.session.id, first.session.id);
    assert_eq!(
        second.session.messaging_group_id,
        Some(m1),
        "keeps the creating chat"
    );
}

/// `agent-shared` finds only sessions created in that mode, and `shared`
/// never takes the agent-shared session.
pub async fn agent_shared_never_takes_a_chat_session(store: Arc<dyn SessionStore>) {
    let mg = chat(&*store, "mixed").await;
    let a = agent("a");
    let chat_session = store
        .resolve_session(request(&a, Some(&mg), None, SessionMode::Shared))
        .await
        .unwrap();
    let agent_session = store
        .resolve_session(request(&a, Some(&mg), None, SessionMode::AgentShared))
        .await
        .unwrap();
    assert!(
        agent_session.created,
        "the reference would have taken the shared session"
    );
    assert_ne!(agent_session.session.id, chat_session.session.id);
    let chat_again = store
        .resolve_session(request(&a, Some(&mg), None, SessionMode::Shared))
        .await
        .unwrap();
    assert_eq!(chat_again.session.id, chat_session.session.id);
}

/// Two agents wired to one chat never share or steal a session.
pub async fn lookups_are_scoped_by_agent_group(store: Arc<dyn SessionStore>) {
    let mg = chat(&*store, "two-agents").await;
    for mode in [
        SessionMode::Shared,
        SessionMode::PerThread,
        SessionMode::AgentShared,
    ] {
        let t = thread("t");
        let (a, b) = (agent(&format!("a-{mode}")), agent(&format!("b-{mode}")));
        let sa = store
            .resolve_session(request(&a, Some(&mg), Some(&t), mode))
            .await
            .unwrap();
        let sb = store
            .resolve_session(request(&b, Some(&mg), Some(&t), mode))
            .await
            .unwrap();
        assert!(sa.created && sb.created, "{mode}");
        assert_ne!(sa.session.id, sb.session.id, "{mode}");
        assert_eq!(sb.session.agent_group_id, b);
        let sa_again = store
            .resolve_session(request(&a, Some(&mg), Some(&t), mode))
            .await
            .unwrap();
        assert_eq!(sa_again.session.id, sa.session.id, "{mode}");
    }
}

/// Without a messaging group, `shared` and `per-thread` create a new
/// session on every call (the reference's behaviour).
pub async fn no_messaging_group_creates_every_time(store: Arc<dyn SessionStore>) {
    let a = agent("a");
    let mut ids = HashSet::new();
    for mode in [SessionMode::Shared, SessionMode::PerThread] {
        for t in [None, Some(thread("t"))] {
            for _ in 0..2 {
                let r = store
                    .resolve_session(request(&a, None, t.as_ref(), mode))
                    .await
                    .unwrap();
                assert!(r.created);
                assert_eq!(r.session.messaging_group_id, None);
                ids.insert(r.session.id);
            }
        }
    }
    assert_eq!(ids.len(), 8);
}

/// Archived sessions are never found again, in any mode.
pub async fn archived_sessions_are_never_reused(store: Arc<dyn SessionStore>) {
    let mg = chat(&*store, "archive").await;
    let a = agent("a");
    let t = thread("t");
    for mode in [
        SessionMode::Shared,
        SessionMode::PerThread,
        SessionMode::AgentShared,
    ] {
        let req = request(&a, Some(&mg), Some(&t), mode);
        let first = store.resolve_session(req.clone()).await.unwrap().session;
        let archived = store.archive_session(&first.id).await.unwrap();
        assert_eq!(archived.status, SessionStatus::Archived);
        let next = store.resolve_session(req.clone()).await.unwrap();
        assert!(next.created, "{mode}: an archived session was reused");
        assert_ne!(next.session.id, first.id);
        let again = store.resolve_session(req).await.unwrap();
        assert_eq!(again.session.id, next.session.id);
        assert_eq!(
            store.session(&first.id).await.unwrap().status,
            SessionStatus::Archived,
            "archived sessions stay on record"
        );
    }
}

/// Reactivating an archived session whose key is taken is a conflict;
/// once the key is free it succeeds and is found again.
pub async fn reactivating_into_a_taken_key_conflicts(store: Arc<dyn SessionStore>) {
    let mg = chat(&*store, "reactivate").await;
    let req = request(&agent("a"), Some(&mg), None, SessionMode::Shared);
    let old = store.resolve_session(req.clone()).await.unwrap().session;
    store.archive_session(&old.id).await.unwrap();
    let new = store.resolve_session(req.clone()).await.unwrap().session;
    let activate = SessionUpdate {
        status: Some(SessionStatus::Active),
        ..SessionUpdate::default()
    };
    let err = store
        .update_session(&old.id, activate.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(
        store.session(&old.id).await.unwrap().status,
        SessionStatus::Archived
    );

    store.archive_session(&new.id).await.unwrap();
    store.update_session(&old.id, activate).await.unwrap();
    let found = store.resolve_session(req).await.unwrap();
    assert!(!found.created);
    assert_eq!(found.session.id, old.id);
}

/// 32 concurrent resolves of one new key yield exactly one session, and
/// exactly one caller is told it created it.
pub async fn concurrent_resolves_create_one_session(store: Arc<dyn SessionStore>) {
    let mg = chat(&*store, "race").await;
    for mode in [
        SessionMode::Shared,
        SessionMode::PerThread,
        SessionMode::AgentShared,
    ] {
        let req = request(
            &agent(&format!("race-{mode}")),
            Some(&mg),
            Some(&thread("t")),
            mode,
        );
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (store, req) = (store.clone(), req.clone());
                tokio::spawn(async move { store.resolve_session(req).await.unwrap() })
            })
            .collect();
        let mut ids = HashSet::new();
        let mut created = 0;
        for task in tasks {
            let r = task.await.unwrap();
            created += usize::from(r.created);
            ids.insert(r.session.id);
        }
        assert_eq!(ids.len(), 1, "{mode}: {ids:?}");
        assert_eq!(created, 1, "{mode}");
    }
}

/// Concurrent resolves of many keys agree per key.
pub async fn concurrent_resolves_of_many_keys(store: Arc<dyn SessionStore>) {
    let mg = chat(&*store, "many").await;
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = store.clone();
            let mg = mg.clone();
            tokio::spawn(async move {
                let t = thread(&format!("t{}", i % 8));
                let r = store
                    .resolve_session(request(
                        &agent("many"),
                        Some(&mg),
                        Some(&t),
                        SessionMode::PerThread,
                    ))
                    .await
                    .unwrap();
                (i % 8, r.session.id)
            })
        })
        .collect();
    let mut by_key = std::collections::HashMap::new();
    for task in tasks {
        let (key, id) = task.await.unwrap();
        let seen = by_key.entry(key).or_insert_with(|| id.clone());
        assert_eq!(*seen, id, "thread t{key} resolved to two sessions");
    }
    let ids: HashSet<_> = by_key.values().collect();
    assert_eq!(ids.len(), 8);
}
