//! Conformance checks of messaging groups, updates, lists and deletion.

use std::sync::Arc;

use crate::error::Error;
use crate::ids::{MessagingGroupId, SessionId};
use crate::session::{
    ContainerStatus, NewMessagingGroup, SessionFilter, SessionMode, SessionStatus, SessionUpdate,
};
use crate::store::{SessionStore, SessionStoreExt};
use crate::time::Timestamp;

use super::{agent, chat, request};

/// Created messaging groups can be fetched by id and by platform key.
pub async fn messaging_group_round_trip(store: Arc<dyn SessionStore>) {
    let mut new = NewMessagingGroup::new("slack", "C0123");
    new.name = Some("#general".into());
    let created = store.create_messaging_group(new).await.unwrap();
    assert_eq!(created.channel_type, "slack");
    assert_eq!(created.platform_id, "C0123");
    assert_eq!(created.name.as_deref(), Some("#general"));
    assert_eq!(store.messaging_group(&created.id).await.unwrap(), created);
    let found = store.find_messaging_group("slack", "C0123").await.unwrap();
    assert_eq!(found, Some(created));
    assert_eq!(
        store.find_messaging_group("slack", "C9").await.unwrap(),
        None
    );
    assert_eq!(
        store.find_messaging_group("teams", "C0123").await.unwrap(),
        None
    );
}

/// `(channel_type, platform_id)` is unique; the same platform id on
/// another channel is a different group.
pub async fn messaging_group_is_unique_per_platform_chat(store: Arc<dyn SessionStore>) {
    let first = store
        .create_messaging_group(NewMessagingGroup::new("slack", "C1"))
        .await
        .unwrap();
    let err = store
        .create_messaging_group(NewMessagingGroup::new("slack", "C1"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    let other = store
        .create_messaging_group(NewMessagingGroup::new("telegram", "C1"))
        .await
        .unwrap();
    assert_ne!(first.id, other.id);
    let ensured = store
        .ensure_messaging_group(NewMessagingGroup::new("slack", "C1"))
        .await
        .unwrap();
    assert_eq!(ensured.id, first.id);
}

/// Concurrent get-or-create of one chat yields one group.
pub async fn concurrent_ensure_messaging_group_agrees(store: Arc<dyn SessionStore>) {
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .ensure_messaging_group(NewMessagingGroup::new("whatsapp", "+1555"))
                    .await
                    .unwrap()
                    .id
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
}

/// Unknown ids are `NotFound` everywhere and nothing is created.
pub async fn unknown_ids_are_not_found(store: Arc<dyn SessionStore>) {
    let ghost_session = SessionId::new("sess-0-ghost").unwrap();
    let ghost_group = MessagingGroupId::new("mg-0-ghost").unwrap();
    assert!(
        store
            .session(&ghost_session)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        store
            .messaging_group(&ghost_group)
            .await
            .unwrap_err()
            .is_not_found()
    );
    let err = store
        .update_session(&ghost_session, SessionUpdate::default())
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert!(
        store
            .delete_session(&ghost_session)
            .await
            .unwrap_err()
            .is_not_found()
    );
    let err = store
        .resolve_session(request(
            &agent("a"),
            Some(&ghost_group),
            None,
            SessionMode::Shared,
        ))
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert!(
        store
            .list_sessions(SessionFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
}

/// Each update field is applied, and only the fields that are set.
pub async fn update_session_applies_each_field(store: Arc<dyn SessionStore>) {
    let mg = chat(&*store, "upd").await;
    let session = store
        .resolve_session(request(&agent("a"), Some(&mg), None, SessionMode::Shared))
        .await
        .unwrap()
        .session;
    let at = Timestamp::from_millis(1_800_000_000_000).unwrap();

    let running = store
        .set_container_status(&session.id, ContainerStatus::Running, at)
        .await
        .unwrap();
    assert_eq!(running.container_status, ContainerStatus::Running);
    assert_eq!(running.last_active, Some(at));

    let later = at.plus_millis(5_000);
    let idle = store
        .set_container_status(&session.id, ContainerStatus::Idle, later)
        .await
        .unwrap();
    assert_eq!(idle.container_status, ContainerStatus::Idle);
    assert_eq!(
        idle.last_active,
        Some(at),
        "only `running` touches last_active"
    );

    let touched = store.touch_session(&session.id, later).await.unwrap();
    assert_eq!(touched.last_active, Some(later));

    let with_provider = store
        .update_session(
            &session.id,
            SessionUpdate {
                agent_provider: Some(Some("claude".into())),
                ..SessionUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(with_provider.agent_provider.as_deref(), Some("claude"));
    assert_eq!(with_provider.container_status, ContainerStatus::Idle);

    let unchanged = store
        .update_session(&session.id, SessionUpdate::default())
        .await
        .unwrap();
    assert_eq!(unchanged, with_provider);
    assert_eq!(store.session(&session.id).await.unwrap(), unchanged);

    let cleared = store
        .update_session(
            &session.id,
            SessionUpdate {
                agent_provider: Some(None),
                container_status: Some(ContainerStatus::Stopped),
                ..SessionUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(cleared.agent_provider, None);
    assert_eq!(cleared.container_status, ContainerStatus::Stopped);
    assert_eq!(store.session(&session.id).await.unwrap(), cleared);
}

/// Lists filter by status, container status and agent group, oldest first.
pub async fn list_sessions_filters_and_orders(store: Arc<dyn SessionStore>) {
    let (a, b) = (agent("list-a"), agent("list-b"));
    let mut made = Vec::new();
    for owner in [&a, &b, &a] {
        let s = store
            .resolve_session(request(owner, None, None, SessionMode::Shared))
            .await
            .unwrap()
            .session;
        made.push(s);
    }
    let all = store.list_sessions(SessionFilter::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|s| &s.id).collect::<Vec<_>>(),
        made.iter().map(|s| &s.id).collect::<Vec<_>>(),
        "oldest first"
    );

    store
        .set_container_status(&made[1].id, ContainerStatus::Running, Timestamp::now())
        .await
        .unwrap();
    store.archive_session(&made[2].id).await.unwrap();

    let ids = |v: Vec<crate::session::Session>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_sessions(SessionFilter::active()).await.unwrap()),
        vec![made[0].id.clone(), made[1].id.clone()]
    );
    assert_eq!(
        ids(store.list_sessions(SessionFilter::running()).await.unwrap()),
        vec![made[1].id.clone()]
    );
    assert_eq!(
        ids(store
            .list_sessions(SessionFilter::agent_group(a.clone()))
            .await
            .unwrap()),
        vec![made[0].id.clone(), made[2].id.clone()]
    );
    let archived_of_a = SessionFilter {
        status: Some(SessionStatus::Archived),
        agent_group: Some(a),
        ..SessionFilter::default()
    };
    assert_eq!(
        ids(store.list_sessions(archived_of_a).await.unwrap()),
        vec![made[2].id.clone()]
    );
}

/// Deleting removes the session and frees its key for a new one.
pub async fn deleting_a_session_frees_its_key(store: Arc<dyn SessionStore>) {
    let mg = chat(&*store, "del").await;
    let req = request(&agent("a"), Some(&mg), None, SessionMode::Shared);
    let first = store.resolve_session(req.clone()).await.unwrap().session;
    store.delete_session(&first.id).await.unwrap();
    assert!(store.session(&first.id).await.unwrap_err().is_not_found());
    let second = store.resolve_session(req).await.unwrap();
    assert!(second.created);
    assert_ne!(second.session.id, first.id);
}

/// The owner host given at creation is stored and filterable.
pub async fn owner_host_is_recorded(store: Arc<dyn SessionStore>) {
    let mut req = request(&agent("a"), None, None, SessionMode::AgentShared);
    req.owner_host = Some("host-1".into());
    let session = store.resolve_session(req).await.unwrap().session;
    assert_eq!(session.owner_host.as_deref(), Some("host-1"));
    assert_eq!(
        store
            .session(&session.id)
            .await
            .unwrap()
            .owner_host
            .as_deref(),
        Some("host-1")
    );
    let filter = |host: &str| SessionFilter {
        owner_host: Some(host.into()),
        ..SessionFilter::default()
    };
    assert_eq!(
        store.list_sessions(filter("host-1")).await.unwrap().len(),
        1
    );
    assert!(
        store
            .list_sessions(filter("host-2"))
            .await
            .unwrap()
            .is_empty()
    );
}
