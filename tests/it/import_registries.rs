//! `airlock_sqlite_fs::import` into each registry backend through the
//! `SessionStore` trait: a reference session keeps its id and fields, the
//! host resolves its chat to it, and a second import changes nothing.
//! PostgreSQL runs when `AIRLOCK_TEST_PG_URL` is set and says SKIPPED otherwise.

use std::path::Path;
use std::sync::Arc;

use airlock_core::{
    AgentGroupId, ContainerStatus, ResolveRequest, SessionFilter, SessionId, SessionMode,
    SessionStore, Timestamp,
};
use airlock_host::{ManagerConfig, SessionManager};
use airlock_sqlite_fs::import::{Action, ImportOptions, import_reference};
use airlock_sqlite_fs::{SessionsRoot, SqliteSessionStore};

const SESSION: &str = "sess-1767258000000-zz9zz9";

/// A reference install: one chat wired agent-shared, one session, its folder.
fn reference_install(data: &Path) {
    let registry = rusqlite::Connection::open(data.join("v2.db")).unwrap();
    registry
        .execute_batch(
            "CREATE TABLE agent_groups (id TEXT PRIMARY KEY, name TEXT, folder TEXT UNIQUE, agent_provider TEXT, created_at TEXT);
             CREATE TABLE messaging_groups (id TEXT PRIMARY KEY, channel_type TEXT, platform_id TEXT, name TEXT,
               is_group INTEGER, unknown_sender_policy TEXT, created_at TEXT, UNIQUE(channel_type, platform_id));
             CREATE TABLE messaging_group_agents (id TEXT PRIMARY KEY, messaging_group_id TEXT, agent_group_id TEXT,
               trigger_rules TEXT, response_scope TEXT, session_mode TEXT DEFAULT 'shared', priority INTEGER,
               created_at TEXT, UNIQUE(messaging_group_id, agent_group_id));
             CREATE TABLE sessions (id TEXT PRIMARY KEY, agent_group_id TEXT, messaging_group_id TEXT, thread_id TEXT,
               agent_provider TEXT, status TEXT DEFAULT 'active', container_status TEXT DEFAULT 'stopped',
               last_active TEXT, created_at TEXT);
             INSERT INTO agent_groups VALUES ('ag-ref', 'Ref', 'ref', 'claude', '2026-01-01 09:00:00');
             INSERT INTO messaging_groups VALUES ('mg-ref', 'discord', 'D-1', 'lobby', 1, 'strict', '2026-01-01 09:00:00');
             INSERT INTO messaging_group_agents VALUES ('w-1', 'mg-ref', 'ag-ref', NULL, 'all', 'agent-shared', 0, '2026-01-01 09:00:00');
             INSERT INTO sessions VALUES ('sess-1767258000000-zz9zz9', 'ag-ref', 'mg-ref', NULL, 'claude', 'active',
               'idle', '2026-01-03T12:00:00.250Z', '2026-01-01 09:30:00');",
        )
        .unwrap();
    let folder = data.join("v2-sessions/ag-ref").join(SESSION);
    std::fs::create_dir_all(&folder).unwrap();
    for (db, schema) in [
        ("inbound.db", airlock_sqlite_fs::schema::INBOUND_SCHEMA),
        ("outbound.db", airlock_sqlite_fs::schema::OUTBOUND_SCHEMA),
    ] {
        let conn = rusqlite::Connection::open(folder.join(db)).unwrap();
        conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
        conn.execute_batch(schema).unwrap();
    }
}

async fn adopt_into(store: Arc<dyn SessionStore>, data: &Path) {
    reference_install(data);
    let options = ImportOptions {
        from: data.to_path_buf(),
        sessions_root: SessionsRoot::in_data_dir(data),
        dry_run: false,
    };
    let first = import_reference(&*store, &options).await.unwrap();
    assert_eq!(first.sessions.len(), 1);
    assert_eq!(first.sessions[0].action, Action::Adopted, "{first:?}");

    let id = SessionId::new(SESSION).unwrap();
    let session = store.session(&id).await.unwrap();
    assert_eq!(session.mode, SessionMode::AgentShared);
    assert_eq!(session.container_status, ContainerStatus::Idle);
    assert_eq!(session.agent_provider.as_deref(), Some("claude"));
    assert_eq!(
        session.created_at,
        Timestamp::parse("2026-01-01 09:30:00").unwrap()
    );
    assert_eq!(
        session.last_active,
        Some(Timestamp::parse("2026-01-03 12:00:00.250").unwrap())
    );

    let manager = SessionManager::new(store.clone(), ManagerConfig::new(data));
    let resolved = manager
        .resolve_session(ResolveRequest::new(
            AgentGroupId::new("ag-ref").unwrap(),
            session.messaging_group_id.clone(),
            None,
            SessionMode::AgentShared,
        ))
        .await
        .unwrap();
    assert!(!resolved.created);
    assert_eq!(resolved.session.id, id);
    // As the reference does on every wake, a guest start writes its routing.
    let launch = manager.prepare_guest(&id).await.unwrap();
    let guest =
        airlock_sqlite_fs::GuestMailbox::open(launch.session_dir.as_ref().unwrap()).unwrap();
    let routing = guest.session_routing().unwrap().unwrap();
    assert_eq!(routing.channel_type.as_deref(), Some("discord"));
    assert_eq!(routing.platform_id.as_deref(), Some("D-1"));

    manager.mark_container_idle(&id).await.unwrap();
    let before = store.list_sessions(SessionFilter::default()).await.unwrap();
    let second = import_reference(&*store, &options).await.unwrap();
    assert_eq!(second.changes(), 0, "{second:?}");
    assert_eq!(
        store.list_sessions(SessionFilter::default()).await.unwrap(),
        before
    );
}

#[tokio::test]
async fn a_reference_install_is_adopted_into_the_sqlite_registry() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteSessionStore::open_in(tmp.path()).unwrap());
    adopt_into(store, tmp.path()).await;
}

#[tokio::test]
#[cfg_attr(
    not(airlock_pg),
    ignore = "needs AIRLOCK_TEST_PG_URL (set it and rebuild)"
)]
async fn a_reference_install_is_adopted_into_the_postgres_registry() {
    let Some((store, _schema)) = airlock_postgres::testing::fresh_store("import").await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    adopt_into(Arc::new(store), tmp.path()).await;
}
