//! A registry file that is not airlock's is refused with one line that
//! says what it is, points to `airlock import` and prints no SQL.

use airlock_sqlite_fs::SqliteSessionStore;
use rusqlite::Connection;

fn refusal(sql: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    Connection::open(&path).unwrap().execute_batch(sql).unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = SqliteSessionStore::open_file(&path)
        .unwrap_err()
        .to_string();
    assert!(!err.contains('\n'), "more than one line: {err}");
    assert!(
        !err.to_uppercase().contains("CREATE TABLE"),
        "prints SQL: {err}"
    );
    assert!(err.contains("airlock import --from"), "{err}");
    let after = std::fs::read(&path).unwrap();
    assert!(before == after, "the foreign file was changed");
    err
}

#[test]
fn a_reference_registry_is_named_and_pointed_to_import() {
    let err = refusal(
        "CREATE TABLE agent_groups (id TEXT PRIMARY KEY, name TEXT, folder TEXT UNIQUE, agent_provider TEXT, created_at TEXT);
         CREATE TABLE messaging_groups (id TEXT PRIMARY KEY, channel_type TEXT, platform_id TEXT, name TEXT,
           is_group INTEGER, unknown_sender_policy TEXT, created_at TEXT, UNIQUE (channel_type, platform_id));
         CREATE TABLE messaging_group_agents (id TEXT PRIMARY KEY, messaging_group_id TEXT, agent_group_id TEXT,
           session_mode TEXT DEFAULT 'shared');
         CREATE TABLE sessions (id TEXT PRIMARY KEY, agent_group_id TEXT, messaging_group_id TEXT, thread_id TEXT,
           status TEXT DEFAULT 'active', created_at TEXT);",
    );
    assert!(err.contains("reference (nanoclaw v2) registry"), "{err}");
}

#[test]
fn any_file_with_foreign_tables_is_refused_naming_them() {
    let err = refusal("CREATE TABLE messaging_groups (x); CREATE TABLE invoices (y);");
    assert!(
        err.contains("not an airlock registry") && err.contains("invoices, messaging_groups"),
        "{err}"
    );
}
