//! `airlock import` on a reference (nanoclaw v2) install made from the
//! reference's documented shape: its registry `v2.db` and two session
//! folders, one current and one old-shaped. After the import every command
//! works on both sessions in place, `resolve` finds them, and a second
//! import changes nothing.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::cli::util::{TestCommand, TestDir, str_field};

const AGENT: &str = "ag-main";
const CURRENT: &str = "sess-1767258000000-abc123";
const OLD: &str = "sess-1767258000001-def456";

/// The reference's central registry (v2.0.64), reduced to the tables and
/// columns airlock reads plus one it ignores.
const REGISTRY_SQL: &str = "
CREATE TABLE agent_groups (id TEXT PRIMARY KEY, name TEXT NOT NULL, folder TEXT NOT NULL UNIQUE,
  agent_provider TEXT, created_at TEXT NOT NULL);
CREATE TABLE messaging_groups (id TEXT PRIMARY KEY, channel_type TEXT NOT NULL, platform_id TEXT NOT NULL,
  name TEXT, is_group INTEGER DEFAULT 0, unknown_sender_policy TEXT NOT NULL DEFAULT 'strict',
  created_at TEXT NOT NULL, UNIQUE(channel_type, platform_id));
CREATE TABLE messaging_group_agents (id TEXT PRIMARY KEY, messaging_group_id TEXT NOT NULL,
  agent_group_id TEXT NOT NULL, trigger_rules TEXT, response_scope TEXT DEFAULT 'all',
  session_mode TEXT DEFAULT 'shared', priority INTEGER DEFAULT 0, created_at TEXT NOT NULL,
  UNIQUE(messaging_group_id, agent_group_id));
CREATE TABLE sessions (id TEXT PRIMARY KEY, agent_group_id TEXT NOT NULL, messaging_group_id TEXT,
  thread_id TEXT, agent_provider TEXT, status TEXT DEFAULT 'active',
  container_status TEXT DEFAULT 'stopped', last_active TEXT, created_at TEXT NOT NULL);
CREATE TABLE users (id TEXT PRIMARY KEY, kind TEXT);
INSERT INTO agent_groups VALUES ('ag-main', 'Main', 'main', 'claude', '2026-01-01T09:00:00.000Z');
INSERT INTO messaging_groups VALUES ('mg-1', 'slack', 'C100', 'general', 1, 'strict', '2026-01-01 09:00:00');
INSERT INTO messaging_groups VALUES ('mg-2', 'telegram', '555', NULL, 0, 'strict', '2026-01-01 09:00:01');
INSERT INTO messaging_group_agents VALUES ('mga-1', 'mg-1', 'ag-main', NULL, 'all', 'shared', 0, '2026-01-01 09:00:00');
INSERT INTO messaging_group_agents VALUES ('mga-2', 'mg-2', 'ag-main', NULL, 'all', 'per-thread', 0, '2026-01-01 09:00:00');
INSERT INTO sessions VALUES ('sess-1767258000000-abc123', 'ag-main', 'mg-1', NULL, 'claude', 'active', 'stopped',
  '2026-01-02 10:00:00', '2026-01-01T09:30:00.000Z');
INSERT INTO sessions VALUES ('sess-1767258000001-def456', 'ag-main', 'mg-2', 'th-7', NULL, 'active', 'idle',
  NULL, '2026-01-01 09:31:00');
";

/// A folder as the current reference writes it (user_version 0).
const CURRENT_INBOUND: &str = "
CREATE TABLE messages_in (id TEXT PRIMARY KEY, seq INTEGER UNIQUE, kind TEXT NOT NULL, timestamp TEXT NOT NULL,
  status TEXT DEFAULT 'pending', process_after TEXT, recurrence TEXT, series_id TEXT, tries INTEGER DEFAULT 0,
  trigger INTEGER NOT NULL DEFAULT 1, platform_id TEXT, channel_type TEXT, thread_id TEXT, content TEXT NOT NULL,
  source_session_id TEXT, on_wake INTEGER NOT NULL DEFAULT 0);
CREATE INDEX idx_messages_in_series ON messages_in(series_id);
CREATE TABLE delivered (message_out_id TEXT PRIMARY KEY, platform_message_id TEXT,
  status TEXT NOT NULL DEFAULT 'delivered', delivered_at TEXT NOT NULL);
CREATE TABLE destinations (name TEXT PRIMARY KEY, display_name TEXT, type TEXT NOT NULL,
  channel_type TEXT, platform_id TEXT, agent_group_id TEXT);
CREATE TABLE session_routing (id INTEGER PRIMARY KEY CHECK (id = 1), channel_type TEXT, platform_id TEXT, thread_id TEXT);
INSERT INTO messages_in (id, seq, kind, timestamp, status, series_id, platform_id, channel_type, content)
  VALUES ('in-1', 2, 'chat', '2026-01-02 09:59:00', 'completed', 'in-1', 'C100', 'slack', '{\"text\":\"hello\"}');
INSERT INTO session_routing VALUES (1, 'slack', 'C100', NULL);
";
const CURRENT_OUTBOUND: &str = "
CREATE TABLE messages_out (id TEXT PRIMARY KEY, seq INTEGER UNIQUE, in_reply_to TEXT, timestamp TEXT NOT NULL,
  deliver_after TEXT, recurrence TEXT, kind TEXT NOT NULL, platform_id TEXT, channel_type TEXT, thread_id TEXT,
  content TEXT NOT NULL);
CREATE TABLE processing_ack (message_id TEXT PRIMARY KEY, status TEXT NOT NULL, status_changed TEXT NOT NULL);
CREATE TABLE session_state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE container_state (id INTEGER PRIMARY KEY CHECK (id = 1), current_tool TEXT,
  tool_declared_timeout_ms INTEGER, tool_started_at TEXT, updated_at TEXT NOT NULL);
INSERT INTO messages_out VALUES ('out-1', 3, 'in-1', '2026-01-02 10:00:00', NULL, NULL, 'chat', 'C100', 'slack', NULL,
  '{\"text\":\"hi from the reference\"}');
INSERT INTO processing_ack VALUES ('in-1', 'completed', '2026-01-02 10:00:00');
";

/// A folder from before `series_id`, `trigger`, `source_session_id`,
/// `on_wake`, `delivered.platform_message_id/status`,
/// `session_state.updated_at` and `container_state`.
const OLD_INBOUND: &str = "
CREATE TABLE messages_in (id TEXT PRIMARY KEY, seq INTEGER UNIQUE, kind TEXT NOT NULL, timestamp TEXT NOT NULL,
  status TEXT DEFAULT 'pending', process_after TEXT, recurrence TEXT, tries INTEGER DEFAULT 0,
  platform_id TEXT, channel_type TEXT, thread_id TEXT, content TEXT NOT NULL);
CREATE TABLE delivered (message_out_id TEXT PRIMARY KEY, delivered_at TEXT NOT NULL);
CREATE TABLE destinations (name TEXT PRIMARY KEY, display_name TEXT, type TEXT NOT NULL,
  channel_type TEXT, platform_id TEXT, agent_group_id TEXT);
INSERT INTO messages_in (id, seq, kind, timestamp, status, platform_id, channel_type, thread_id, content)
  VALUES ('in-2', 2, 'chat', '2025-06-01T08:00:00.000Z', 'pending', '555', 'telegram', 'th-7', '{\"text\":\"old\"}');
";
const OLD_OUTBOUND: &str = "
CREATE TABLE messages_out (id TEXT PRIMARY KEY, seq INTEGER UNIQUE, in_reply_to TEXT, timestamp TEXT NOT NULL,
  deliver_after TEXT, recurrence TEXT, kind TEXT NOT NULL, platform_id TEXT, channel_type TEXT, thread_id TEXT,
  content TEXT NOT NULL);
CREATE TABLE processing_ack (message_id TEXT PRIMARY KEY, status TEXT NOT NULL, status_changed TEXT NOT NULL);
CREATE TABLE session_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO messages_out VALUES ('out-2', 3, 'in-2', '2025-06-01 08:00:05', NULL, NULL, 'chat', '555', 'telegram',
  'th-7', '{\"text\":\"old reply\"}');
";

fn sqlite(path: &Path, sql: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
    conn.execute_batch(sql).unwrap();
}

fn session_dir(data: &Path, session: &str) -> PathBuf {
    data.join("v2-sessions").join(AGENT).join(session)
}

/// Writes the reference install into the test's data dir.
pub(crate) fn reference_install(env: &TestDir) -> PathBuf {
    let data = env.data_dir();
    sqlite(&data.join("v2.db"), REGISTRY_SQL);
    for (session, inbound, outbound) in [
        (CURRENT, CURRENT_INBOUND, CURRENT_OUTBOUND),
        (OLD, OLD_INBOUND, OLD_OUTBOUND),
    ] {
        let dir = session_dir(&data, session);
        sqlite(&dir.join("inbound.db"), inbound);
        sqlite(&dir.join("outbound.db"), outbound);
    }
    data
}

fn import(env: &TestDir, data: &Path) -> serde_json::Value {
    let out = env
        .cmd(&["--json", "import", "--from"])
        .path(data)
        .run()
        .success();
    serde_json::from_str(&out).unwrap()
}

fn actions(report: &serde_json::Value, list: &str) -> Vec<String> {
    report[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| str_field(e, "action"))
        .collect()
}

/// `resolve` for the reference's Slack chat, wired `shared`.
fn resolve_slack(env: &TestDir) -> serde_json::Value {
    env.json(&[
        "resolve",
        "--agent-group",
        AGENT,
        "--channel",
        "slack",
        "--platform-id",
        "C100",
        "--mode",
        "shared",
    ])
}

fn sessions_json(env: &TestDir) -> serde_json::Value {
    env.json(&["sessions"])
}

#[test]
fn an_imported_reference_install_works_in_place_and_a_second_import_changes_nothing() {
    let env = TestDir::new();
    let data = reference_install(&env);

    let report = import(&env, &data);
    assert_eq!(actions(&report, "messaging_groups"), ["adopted", "adopted"]);
    assert_eq!(
        actions(&report, "sessions"),
        ["adopted", "adopted"],
        "{report}"
    );
    let modes: Vec<String> = report["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| str_field(s, "mode"))
        .collect();
    assert_eq!(modes, ["shared", "per-thread"]);

    for (session, inbound, outbound) in [(CURRENT, "in-1", "out-1"), (OLD, "in-2", "out-2")] {
        let shown = env.json(&["show", session]);
        assert_eq!(str_field(&shown, "id"), session, "{shown}");
        let listed = env.ok(&["messages", session]);
        assert!(
            listed.contains(inbound) && listed.contains(outbound),
            "{listed}"
        );
        let delivered = env.ok(&["deliver", "--session", session, "--once"]);
        assert!(
            delivered.contains(outbound),
            "deliver {session}: {delivered}"
        );
        assert_eq!(env.ok(&["deliver", "--session", session, "--once"]), "");
    }
    let doctor = env.ok(&["doctor"]);
    assert!(
        doctor.contains("2 session(s) checked, 0 finding(s)"),
        "{doctor}"
    );

    let current = resolve_slack(&env);
    assert_eq!(
        (str_field(&current, "id"), current["created"].as_bool()),
        (CURRENT.into(), Some(false))
    );
    let old = env.json(&[
        "resolve",
        "--agent-group",
        AGENT,
        "--channel",
        "telegram",
        "--platform-id",
        "555",
        "--thread",
        "th-7",
        "--mode",
        "per-thread",
    ]);
    assert_eq!(
        (str_field(&old, "id"), old["created"].as_bool()),
        (OLD.into(), Some(false))
    );
    let folders = std::fs::read_dir(data.join("v2-sessions").join(AGENT))
        .unwrap()
        .count();
    assert_eq!(folders, 2, "resolve made a second folder");

    let before = sessions_json(&env);
    let again = import(&env, &data);
    assert_eq!(
        actions(&again, "messaging_groups"),
        ["unchanged", "unchanged"]
    );
    assert_eq!(actions(&again, "sessions"), ["unchanged", "unchanged"]);
    assert_eq!(sessions_json(&env), before);
}

#[test]
fn a_dry_run_writes_nothing_and_a_bound_chat_is_a_reported_conflict() {
    let env = TestDir::new();
    let data = reference_install(&env);
    let registry = std::fs::read(data.join("v2.db")).unwrap();

    let dry = env
        .cmd(&["--json", "import", "--dry-run", "--from"])
        .path(&data)
        .run()
        .success();
    let dry: serde_json::Value = serde_json::from_str(&dry).unwrap();
    assert_eq!(actions(&dry, "sessions"), ["would_adopt", "would_adopt"]);
    assert!(
        !data.join("airlock.db").exists(),
        "a dry run created the registry"
    );

    // A chat airlock already serves keeps its session; the reference's is not adopted.
    let mine = resolve_slack(&env);
    let run = env.cmd(&["--json", "import", "--from"]).path(&data).run();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let line = run.failure();
    assert!(
        line.contains("1 session(s) of the reference were not adopted"),
        "{line}"
    );
    assert_eq!(actions(&report, "sessions"), ["conflict", "adopted"]);
    let again = resolve_slack(&env);
    assert_eq!(str_field(&again, "id"), str_field(&mine, "id"));
    assert_eq!(
        std::fs::read(data.join("v2.db")).unwrap(),
        registry,
        "v2.db was written"
    );
}

#[test]
fn the_reference_registry_as_registry_is_refused_pointing_to_import() {
    let env = TestDir::new();
    let data = reference_install(&env);
    let registry = data.join("v2.db");
    let line = TestCommand::new(data.clone())
        .args(&["--registry", registry.to_str().unwrap(), "doctor"])
        .run()
        .failure();
    assert!(
        line.contains("reference (nanoclaw v2) registry") && line.contains("airlock import --from"),
        "{line}"
    );
    assert!(!line.contains("CREATE"), "{line}");
    let line = env
        .cmd(&["import", "--from"])
        .path(&env.root().join("nowhere"))
        .run()
        .failure();
    assert!(line.contains("no reference registry"), "{line}");
}

#[test]
fn a_dry_run_into_a_data_dir_that_does_not_exist_creates_nothing() {
    let env = TestDir::new();
    let data = reference_install(&env);
    let nowhere = env.root().join("not-yet");
    let run = TestCommand::new(nowhere.clone())
        .args(&["--json", "import", "--dry-run", "--from"])
        .path(&data)
        .run();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    // Its folders are not below that data dir: reported, not adopted.
    assert_eq!(actions(&report, "sessions"), ["skipped", "skipped"]);
    assert_eq!(
        actions(&report, "messaging_groups"),
        ["would_adopt", "would_adopt"]
    );
    let line = run.failure();
    assert!(line.contains("were not adopted"), "{line}");
    assert!(!nowhere.exists(), "a dry run created the data dir");
}
