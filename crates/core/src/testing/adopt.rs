//! Conformance checks of `adopt_session`: sessions of an existing install
//! registered under their own ids.

use std::sync::Arc;

use crate::error::Error;
use crate::ids::{MessagingGroupId, SessionId};
use crate::session::{ContainerStatus, Session, SessionFilter, SessionMode, SessionStatus};
use crate::store::SessionStore;
use crate::time::Timestamp;

use super::{agent, chat, request, thread};

/// A session as a reference install would hold it: its own id, a provider,
/// an idle container and timestamps in the past.
fn foreign(id: &str, mg: Option<&MessagingGroupId>, mode: SessionMode) -> Session {
    Session {
        id: SessionId::new(id).expect("test session id"),
        agent_group_id: agent("ag-adopt"),
        messaging_group_id: mg.cloned(),
        thread_id: (mode == SessionMode::PerThread).then(|| thread("t-1")),
        mode,
        agent_provider: Some("claude".into()),
        status: SessionStatus::Active,
        container_status: ContainerStatus::Idle,
        last_active: Timestamp::from_millis(1_750_000_123_456),
        created_at: Timestamp::from_millis(1_750_000_000_000).expect("test time"),
        owner_host: None,
    }
}

/// An adopted session is stored exactly as given and is what
/// `resolve_session` finds for its key, in every mode.
pub async fn adopted_session_is_stored_as_given_and_resolved(store: Arc<dyn SessionStore>) {
    let mg = chat(&*store, "adopt-1").await;
    let cases = [
        ("sess-1750000000000-aaaaaa", SessionMode::Shared),
        ("sess-1750000000000-bbbbbb", SessionMode::PerThread),
        ("sess-1750000000000-cccccc", SessionMode::AgentShared),
    ];
    for (id, mode) in cases {
        let session = foreign(id, Some(&mg), mode);
        store.adopt_session(session.clone()).await.unwrap();
        assert_eq!(store.session(&session.id).await.unwrap(), session);
        let thread = session.thread_id.clone();
        let resolved = store
            .resolve_session(request(
                &session.agent_group_id,
                Some(&mg),
                thread.as_ref(),
                mode,
            ))
            .await
            .unwrap();
        assert!(
            !resolved.created,
            "{mode}: resolve created a second session"
        );
        assert_eq!(resolved.session, session, "{mode}");
    }
    let listed = store.list_sessions(SessionFilter::default()).await.unwrap();
    assert_eq!(listed.len(), 3);
}

/// A second adoption of the same id is `AlreadyExists` and changes nothing.
pub async fn adopting_an_existing_id_changes_nothing(store: Arc<dyn SessionStore>) {
    let mg = chat(&*store, "adopt-2").await;
    let session = foreign("sess-1750000000000-dddddd", Some(&mg), SessionMode::Shared);
    store.adopt_session(session.clone()).await.unwrap();
    let mut changed = session.clone();
    changed.status = SessionStatus::Archived;
    changed.container_status = ContainerStatus::Running;
    let err = store.adopt_session(changed).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    assert_eq!(store.session(&session.id).await.unwrap(), session);
}

/// An active session whose key another active session holds is a
/// `Conflict` and is not stored; an archived one with that key is stored
/// and never found by resolution.
pub async fn adopting_into_a_taken_key_conflicts(store: Arc<dyn SessionStore>) {
    let mg = chat(&*store, "adopt-3").await;
    let owner = store
        .resolve_session(request(
            &agent("ag-adopt"),
            Some(&mg),
            None,
            SessionMode::Shared,
        ))
        .await
        .unwrap()
        .session;
    let rival = foreign("sess-1750000000000-eeeeee", Some(&mg), SessionMode::Shared);
    let err = store.adopt_session(rival.clone()).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert!(store.session(&rival.id).await.unwrap_err().is_not_found());

    let mut archived = rival;
    archived.status = SessionStatus::Archived;
    store.adopt_session(archived.clone()).await.unwrap();
    assert_eq!(store.session(&archived.id).await.unwrap(), archived);
    let again = store
        .resolve_session(request(
            &agent("ag-adopt"),
            Some(&mg),
            None,
            SessionMode::Shared,
        ))
        .await
        .unwrap();
    assert_eq!(again.session.id, owner.id);
}

/// A session naming an unknown messaging group is `NotFound`; one with no
/// messaging group (resolved anew every time) is stored and never found.
pub async fn adopting_checks_the_messaging_group(store: Arc<dyn SessionStore>) {
    let unknown = MessagingGroupId::new("mg-unknown").unwrap();
    let session = foreign(
        "sess-1750000000000-ffffff",
        Some(&unknown),
        SessionMode::Shared,
    );
    let err = store.adopt_session(session.clone()).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert!(store.session(&session.id).await.unwrap_err().is_not_found());

    let loose = foreign("sess-1750000000000-gggggg", None, SessionMode::Shared);
    store.adopt_session(loose.clone()).await.unwrap();
    assert_eq!(store.session(&loose.id).await.unwrap(), loose);
    let resolved = store
        .resolve_session(request(
            &loose.agent_group_id,
            None,
            None,
            SessionMode::Shared,
        ))
        .await
        .unwrap();
    assert!(resolved.created && resolved.session.id != loose.id);
}
