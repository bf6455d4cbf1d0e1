//! Runs the shared conformance suite against `SqliteSessionStore`.

use std::sync::Arc;

use airlock_core::testing::StoreUnderTest;
use airlock_sqlite_fs::SqliteSessionStore;

async fn sqlite_store() -> Option<StoreUnderTest> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteSessionStore::open_in(dir.path()).expect("open registry");
    Some(StoreUnderTest {
        store: Arc::new(store),
        guard: Box::new(dir),
    })
}

airlock_core::session_store_conformance!(sqlite_store);

/// A second open of the same file finds the schema migrated and the data there.
#[tokio::test]
async fn reopening_keeps_data_and_migrates_once() {
    use airlock_core::{SessionStore, testing};
    let dir = tempfile::tempdir().unwrap();
    let first = SqliteSessionStore::open_in(dir.path()).unwrap();
    let made = first
        .resolve_session(testing::request(
            &testing::agent("a"),
            None,
            None,
            airlock_core::SessionMode::AgentShared,
        ))
        .await
        .unwrap();
    drop(first);
    let again = SqliteSessionStore::open_in(dir.path()).unwrap();
    assert_eq!(again.session(&made.session.id).await.unwrap(), made.session);
    let conn = rusqlite::Connection::open(dir.path().join("airlock.db")).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, airlock_sqlite_fs::SCHEMA_VERSION);
}

/// A registry written by a newer build is refused, not silently used.
#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("airlock.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = SqliteSessionStore::open_file(&path).unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
}
