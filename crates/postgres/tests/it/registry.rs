//! PostgreSQL-specific behaviour beyond the shared suite: schemas,
//! migrations, option checks, error mapping and rows edited by hand.

use crate::common;

use std::time::Duration;

use airlock_core::testing::{agent, chat, request};
use airlock_core::{
    Error, MessagingGroupId, NewMessagingGroup, SessionFilter, SessionId, SessionMode,
    SessionStore, SessionUpdate,
};
use airlock_postgres::{OpenError, PgSessionStore, PgStoreOptions};

async fn table_names(store: &PgSessionStore, schema: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = $1 ORDER BY table_name",
    )
    .bind(schema)
    .fetch_all(store.pool())
    .await
    .unwrap()
}

#[tokio::test]
#[cfg_attr(
    not(airlock_pg),
    ignore = "needs AIRLOCK_TEST_PG_URL (set it and rebuild)"
)]
async fn two_schemas_share_one_database_without_seeing_each_other() {
    let Some((a, guard_a)) = common::fresh_store("two schemas").await else {
        return;
    };
    let Some((b, guard_b)) = common::fresh_store("two schemas").await else {
        return;
    };
    assert_ne!(a.schema(), b.schema());

    let req = request(&agent("same"), None, None, SessionMode::AgentShared);
    let in_a = a.resolve_session(req.clone()).await.unwrap();
    let in_b = b.resolve_session(req).await.unwrap();
    assert!(
        in_a.created && in_b.created,
        "the same key is free in each schema"
    );
    assert!(
        b.session(&in_a.session.id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(
        a.list_sessions(SessionFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );

    let expected = [
        "_airlock_migrations",
        "hosts",
        "messaging_groups",
        "routed_messages",
        "sessions",
    ];
    assert_eq!(table_names(&a, guard_a.schema()).await, expected);
    assert_eq!(table_names(&b, guard_b.schema()).await, expected);
    let in_public: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('public._airlock_migrations')::text")
            .fetch_one(a.pool())
            .await
            .unwrap();
    assert_eq!(
        in_public, None,
        "the migration table must live in the store's schema"
    );
}

#[tokio::test]
#[cfg_attr(
    not(airlock_pg),
    ignore = "needs AIRLOCK_TEST_PG_URL (set it and rebuild)"
)]
async fn migrations_are_idempotent_and_can_be_required() {
    let Some(url) = common::pg_url("migrations") else {
        return;
    };
    let schema = common::random_schema("airlock_mig");
    let _guard = common::SchemaGuard::new(&url, &schema);

    let unmigrated =
        PgSessionStore::connect_with(common::test_options(&url, &schema).run_migrations(false))
            .await
            .unwrap_err();
    assert!(
        matches!(unmigrated, OpenError::NotMigrated { found: None, .. }),
        "{unmigrated:?}"
    );
    assert!(unmigrated.to_string().contains("migrate"), "{unmigrated}");

    let first = PgSessionStore::connect_with(common::test_options(&url, &schema))
        .await
        .unwrap();
    let id = first
        .resolve_session(request(&agent("m"), None, None, SessionMode::AgentShared))
        .await
        .unwrap()
        .session
        .id;
    first.migrate().await.unwrap();
    let again =
        PgSessionStore::connect_with(common::test_options(&url, &schema).run_migrations(false))
            .await
            .unwrap();
    assert_eq!(
        again.session(&id).await.unwrap().id,
        id,
        "re-migrating kept the data"
    );
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _airlock_migrations")
        .fetch_one(again.pool())
        .await
        .unwrap();
    let known = sqlx::migrate!("./migrations").iter().count() as i64;
    assert_eq!(applied, known, "each migration applied once");
}

#[tokio::test]
async fn bad_options_are_refused_before_connecting() {
    let url = "postgres://postgres@127.0.0.1:1/none";
    let err = PgSessionStore::connect_with(PgStoreOptions::new(url).schema("Bad-Name"))
        .await
        .unwrap_err();
    assert!(matches!(err, OpenError::InvalidOptions(_)), "{err:?}");
    assert!(err.to_string().contains("schema"), "{err}");

    let err = PgSessionStore::connect_with(PgStoreOptions::new(url).max_connections(0))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("max_connections"), "{err}");

    let err = PgSessionStore::connect("mysql://root@localhost/x")
        .await
        .unwrap_err();
    assert!(matches!(err, OpenError::InvalidOptions(_)), "{err:?}");
    assert!(err.to_string().contains("URL"), "{err}");
}

#[tokio::test]
async fn an_unreachable_server_fails_fast_naming_it_without_the_password() {
    // Port 1 on loopback: nothing listens there, so the connection is refused.
    let url = "postgres://airlock:hunter2@127.0.0.1:1/registry";
    let opened = tokio::time::timeout(Duration::from_secs(30), PgSessionStore::connect(url))
        .await
        .expect("connecting to a dead port must fail, not hang");
    let err = opened.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, OpenError::Connect { .. }), "{err:?}");
    assert!(text.contains("127.0.0.1:1/registry"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    let core: Error = err.into();
    assert!(
        matches!(
            core,
            Error::Backend {
                backend: "postgres",
                ..
            }
        ),
        "{core:?}"
    );
}

#[tokio::test]
#[cfg_attr(
    not(airlock_pg),
    ignore = "needs AIRLOCK_TEST_PG_URL (set it and rebuild)"
)]
async fn nul_bytes_are_invalid_input_not_driver_errors() {
    let Some((store, _guard)) = common::fresh_store("nul bytes").await else {
        return;
    };
    let err = store
        .create_messaging_group(NewMessagingGroup::new("slack", "C\0x"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    assert!(err.to_string().contains("platform id"), "{err}");
    assert_eq!(
        store.find_messaging_group("slack", "C\0x").await.unwrap(),
        None
    );

    let mut req = request(&agent("a"), None, None, SessionMode::AgentShared);
    req.owner_host = Some("host\0".into());
    let err = store.resolve_session(req).await.unwrap_err();
    assert!(err.to_string().contains("owner host"), "{err}");

    let session = store
        .resolve_session(request(&agent("a"), None, None, SessionMode::AgentShared))
        .await
        .unwrap()
        .session;
    let update = SessionUpdate {
        agent_provider: Some(Some("x\0".into())),
        ..SessionUpdate::default()
    };
    let err = store.update_session(&session.id, update).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
}

#[tokio::test]
#[cfg_attr(
    not(airlock_pg),
    ignore = "needs AIRLOCK_TEST_PG_URL (set it and rebuild)"
)]
async fn driver_failures_are_backend_errors_saying_what_was_done() {
    let Some((store, _guard)) = common::fresh_store("backend errors").await else {
        return;
    };
    store.close().await;
    let id = SessionId::new("sess-1-x").unwrap();
    let err = store.session(&id).await.unwrap_err();
    match &err {
        Error::Backend {
            backend, context, ..
        } => {
            assert_eq!(*backend, "postgres");
            assert!(context.contains("fetching session sess-1-x"), "{context}");
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
}

#[tokio::test]
#[cfg_attr(
    not(airlock_pg),
    ignore = "needs AIRLOCK_TEST_PG_URL (set it and rebuild)"
)]
async fn rows_edited_by_hand_into_unsafe_ids_are_refused() {
    let Some((store, _guard)) = common::fresh_store("bad rows").await else {
        return;
    };
    let mg = chat(&store, "bad").await;
    let session = store
        .resolve_session(request(&agent("ok"), Some(&mg), None, SessionMode::Shared))
        .await
        .unwrap()
        .session;
    sqlx::query("UPDATE sessions SET agent_group_id = '../../etc' WHERE id = $1")
        .bind(session.id.as_str())
        .execute(store.pool())
        .await
        .unwrap();
    let err = store.session(&session.id).await.unwrap_err();
    assert!(matches!(err, Error::InvariantViolated { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("agent_group_id") && text.contains(session.id.as_str()),
        "{text}"
    );
}

#[tokio::test]
#[cfg_attr(
    not(airlock_pg),
    ignore = "needs AIRLOCK_TEST_PG_URL (set it and rebuild)"
)]
async fn debug_output_hides_the_password() {
    let Some(url) = common::pg_url("debug output") else {
        return;
    };
    let schema = common::random_schema("airlock_dbg");
    let _guard = common::SchemaGuard::new(&url, &schema);
    let store = PgSessionStore::connect_with(common::test_options(&url, &schema))
        .await
        .unwrap();
    let shown = format!("{store:?}");
    assert!(shown.contains(&schema), "{shown}");
    assert!(!shown.contains("password"), "{shown}");
}

#[tokio::test]
#[cfg_attr(
    not(airlock_pg),
    ignore = "needs AIRLOCK_TEST_PG_URL (set it and rebuild)"
)]
async fn an_unknown_messaging_group_is_not_found_even_when_agent_shared_matches() {
    let Some((store, _guard)) = common::fresh_store("unknown chat").await else {
        return;
    };
    let known = chat(&store, "known").await;
    let a = agent("a");
    store
        .resolve_session(request(&a, Some(&known), None, SessionMode::AgentShared))
        .await
        .unwrap();
    let ghost = MessagingGroupId::new("mg-0-ghost").unwrap();
    for mode in [
        SessionMode::AgentShared,
        SessionMode::Shared,
        SessionMode::PerThread,
    ] {
        let err = store
            .resolve_session(request(&a, Some(&ghost), None, mode))
            .await
            .unwrap_err();
        assert!(err.is_not_found(), "{mode}: {err:?}");
        assert!(err.to_string().contains("mg-0-ghost"), "{err}");
    }
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_when_opening() {
    // Accepted by the kernel's backlog but never served: like a hung server.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let options = PgStoreOptions::new(format!("postgres://postgres@127.0.0.1:{port}/x"))
        .acquire_timeout(Duration::from_millis(500));
    let opened = tokio::time::timeout(
        Duration::from_secs(30),
        PgSessionStore::connect_with(options),
    )
    .await
    .expect("opening must give up after the acquire timeout");
    let err = opened.unwrap_err();
    assert!(matches!(err, OpenError::ConnectTimeout { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    drop(silent);
}
