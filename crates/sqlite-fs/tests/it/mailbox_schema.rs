//! Schemas as SQLite reports them, lazy migrations of older folders, and journal-mode checks.

use airlock_core::mailbox::NewOutboundMessage;
use airlock_core::{AgentGroupId, MessageId, Seq, SessionId, SessionRef};
use airlock_sqlite_fs::{Error, GuestMailbox, MailboxRoots, PlainContent};
use rusqlite::Connection;

use crate::mailbox_common::{Fixture, assert_no_wal, msg};

fn schema_of(path: &std::path::Path) -> String {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok(format!(
                "-- {} {}\n{};",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?
            ))
        })
        .unwrap();
    rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
}

fn user_version(path: &std::path::Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

#[test]
fn inbound_schema_matches_spec() {
    let fx = Fixture::new();
    insta::assert_snapshot!("inbound_schema", schema_of(&fx.host.paths().inbound_db()));
    fx.assert_no_wal();
}

#[test]
fn outbound_schema_matches_spec() {
    let fx = Fixture::new();
    insta::assert_snapshot!("outbound_schema", schema_of(&fx.host.paths().outbound_db()));
    fx.assert_no_wal();
}

#[test]
fn an_existing_host_db_gets_the_pending_index_on_its_next_write() {
    let fx = Fixture::new();
    fx.host
        .write_message(&msg("m1", "{}"), &PlainContent)
        .unwrap();
    let host_db = fx
        .dir
        .path()
        .join("host-state/sessions/ag-1/sess-1/host.db");
    let indexed = || schema_of(&host_db).contains("idx_messages_in_pending");
    assert!(indexed(), "a new host.db has the index");
    // As an airlock from before the index left it.
    Connection::open(&host_db)
        .unwrap()
        .execute_batch("DROP INDEX idx_messages_in_pending; PRAGMA user_version = 0;")
        .unwrap();
    assert!(!indexed());
    fx.host
        .write_message(&msg("m2", "{}"), &PlainContent)
        .unwrap();
    assert!(indexed(), "added by the next write");
    assert_eq!(user_version(&host_db), 1);
    assert_eq!(fx.host.list_inbound(10).unwrap().len(), 2);
}

#[test]
fn create_session_is_idempotent_and_keeps_rows() {
    let fx = Fixture::new();
    fx.host
        .write_message(&msg("m1", "{}"), &PlainContent)
        .unwrap();
    let again = fx.roots.create_session(&fx.session).unwrap();
    assert_eq!(again.list_inbound(10).unwrap().len(), 1);
    for sub in ["inbox", "outbox"] {
        assert!(fx.session_dir().join(sub).is_dir());
    }
    let host_state = fx.dir.path().join("host-state");
    assert!(
        !host_state.starts_with(fx.roots.sessions().path()),
        "host state must be outside the sessions root"
    );
    assert!(
        host_state
            .join("sessions/ag-1/sess-1/inbound.lock")
            .exists()
    );
    assert_eq!(user_version(&fx.host.paths().inbound_db()), 2);
    fx.assert_no_wal();
}

/// `inbound.db` as older reference hosts wrote it (before series_id, trigger,
/// source_session_id, on_wake, delivered.platform_message_id/status).
const LEGACY_INBOUND: &str = "
CREATE TABLE messages_in (
  id TEXT PRIMARY KEY, seq INTEGER UNIQUE, kind TEXT NOT NULL, timestamp TEXT NOT NULL,
  status TEXT DEFAULT 'pending', process_after TEXT, recurrence TEXT, tries INTEGER DEFAULT 0,
  platform_id TEXT, channel_type TEXT, thread_id TEXT, content TEXT NOT NULL);
CREATE TABLE delivered (message_out_id TEXT PRIMARY KEY, delivered_at TEXT NOT NULL);
CREATE TABLE destinations (
  name TEXT PRIMARY KEY, display_name TEXT, type TEXT NOT NULL,
  channel_type TEXT, platform_id TEXT, agent_group_id TEXT);
CREATE TABLE session_routing (
  id INTEGER PRIMARY KEY CHECK (id = 1), channel_type TEXT, platform_id TEXT, thread_id TEXT);
INSERT INTO messages_in (id, seq, kind, timestamp, content) VALUES
  ('old-1', 2, 'chat', '2025-01-01 10:00:00', '{\"text\":\"one\"}'),
  ('old-2', 4, 'chat', '2025-01-01T10:00:01.000Z', '{\"text\":\"two\"}');
INSERT INTO delivered (message_out_id, delivered_at) VALUES ('r-1', '2025-01-01T10:00:02.000Z');
";

/// `outbound.db` as older guests wrote it (session_state without updated_at, no container_state).
const LEGACY_OUTBOUND: &str = "
CREATE TABLE messages_out (
  id TEXT PRIMARY KEY, seq INTEGER UNIQUE, in_reply_to TEXT, timestamp TEXT NOT NULL,
  deliver_after TEXT, recurrence TEXT, kind TEXT NOT NULL,
  platform_id TEXT, channel_type TEXT, thread_id TEXT, content TEXT NOT NULL);
CREATE TABLE processing_ack (message_id TEXT PRIMARY KEY, status TEXT NOT NULL, status_changed TEXT NOT NULL);
CREATE TABLE session_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO messages_out (id, seq, timestamp, kind, content) VALUES ('r-1', 3, '2025-01-01T10:00:01.500Z', 'chat', '{}');
INSERT INTO session_state (key, value) VALUES ('k', 'v');
";

fn legacy_session() -> (tempfile::TempDir, MailboxRoots, SessionRef) {
    let dir = crate::mailbox_common::temp_dir();
    let roots = MailboxRoots::in_data_dir(dir.path());
    let session = SessionRef::new(
        AgentGroupId::new("ag").unwrap(),
        SessionId::new("sess-old").unwrap(),
    );
    let paths = roots.sessions().session(&session);
    std::fs::create_dir_all(paths.dir()).unwrap();
    Connection::open(paths.inbound_db())
        .unwrap()
        .execute_batch(LEGACY_INBOUND)
        .unwrap();
    Connection::open(paths.outbound_db())
        .unwrap()
        .execute_batch(LEGACY_OUTBOUND)
        .unwrap();
    (dir, roots, session)
}

fn columns(path: &std::path::Path, table: &str) -> Vec<String> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare(&format!("PRAGMA table_info({table})"))
        .unwrap();
    stmt.query_map([], |r| r.get(1))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn guest_reads_an_unmigrated_inbound_file() {
    let (dir, roots, session) = legacy_session();
    let paths = roots.sessions().session(&session);
    let guest = GuestMailbox::open(paths.dir()).unwrap();
    let pending = guest.pending(10).unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0].id, "old-1");
    assert!(pending[0].trigger && !pending[0].on_wake);
    assert_eq!(pending[0].series_id.as_deref(), Some("old-1"));
    // The guest never migrates the host's file.
    assert!(!columns(&paths.inbound_db(), "messages_in").contains(&"on_wake".to_string()));
    assert_eq!(user_version(&paths.inbound_db()), 0);
    // Odd look-up against a delivered table without platform_message_id.
    let target = guest.lookup_seq(Seq::new(3)).unwrap().unwrap();
    assert_eq!(
        (target.message_id.as_str(), target.platform_message_id),
        ("r-1", None)
    );
    // ...but it migrated its own outbound.db.
    assert!(columns(&paths.outbound_db(), "session_state").contains(&"updated_at".to_string()));
    assert!(!columns(&paths.outbound_db(), "container_state").is_empty());
    assert_eq!(guest.state_get("k").unwrap().as_deref(), Some("v"));
    guest.set_tool_in_flight("bash", Some(1000)).unwrap();
    let seq = guest
        .write_message_out(&NewOutboundMessage::new(
            MessageId::new("r-2").unwrap(),
            "chat",
            "{}",
        ))
        .unwrap();
    assert_eq!(seq, 5, "next odd above max(4, 3)");
    assert_no_wal(dir.path());
}

#[test]
fn host_migrates_legacy_inbound_idempotently() {
    let (dir, roots, session) = legacy_session();
    let host = roots.host(&session);
    let rows = host.list_inbound(10).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0].series_id.as_deref(),
        Some("old-1"),
        "series_id backfilled"
    );
    assert_eq!(rows[1].series_id.as_deref(), Some("old-2"));
    let path = host.paths().inbound_db();
    // Reading adopted the folder into host state without writing its file
    // (the guest copes with the older shape).
    assert_eq!(user_version(&path), 0);
    assert!(!columns(&path, "messages_in").contains(&"on_wake".to_string()));
    // The first write publishes a file of the current shape.
    let w = host
        .write_message(&msg("new", "{}"), &PlainContent)
        .unwrap();
    assert_eq!(w.seq, 6);
    for col in ["series_id", "trigger", "source_session_id", "on_wake"] {
        assert!(
            columns(&path, "messages_in").contains(&col.to_string()),
            "{col}"
        );
    }
    for col in ["platform_message_id", "status"] {
        assert!(
            columns(&path, "delivered").contains(&col.to_string()),
            "{col}"
        );
    }
    assert_eq!(user_version(&path), 2);
    assert!(schema_of(&path).contains("idx_messages_in_pending"));
    let before = schema_of(&path);
    // Idempotent: a second open (and create) changes nothing, rows intact.
    roots.create_session(&session).unwrap();
    assert_eq!(schema_of(&path), before);
    assert_eq!(host.list_inbound(10).unwrap().len(), 3);
    // Host reads the legacy outbound file (no container_state table) without error.
    assert_eq!(host.container_state().unwrap(), None);
    assert_eq!(host.outbound_count().unwrap(), 1);
    // delivered row kept its meaning: r-1 is not due again.
    assert!(
        host.due_outbound(airlock_core::Timestamp::now())
            .unwrap()
            .is_empty()
    );
    assert_no_wal(dir.path());
}

fn make_wal(path: &std::path::Path) {
    let conn = Connection::open(path).unwrap();
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.execute_batch("INSERT INTO messages_in (id, seq, kind, timestamp, content) VALUES ('w', 2, 'chat', 'x', '{}')")
        .unwrap();
    drop(conn);
    let bytes = std::fs::read(path).unwrap();
    assert_eq!((bytes[18], bytes[19]), (2, 2));
}

/// A guest that switches the published file to WAL (adding a row) changed
/// a file the host owns: a tamper event; the file is rebuilt from host
/// state in rollback-journal mode, without the guest's row.
#[test]
fn wal_inbound_is_a_tamper_event_and_rebuilt_in_delete_mode() {
    let fx = Fixture::new();
    make_wal(&fx.host.paths().inbound_db());
    let w = fx
        .host
        .write_message(&msg("m", "{}"), &PlainContent)
        .unwrap();
    assert_eq!(w.seq, 2);
    assert_eq!(fx.host.list_inbound(10).unwrap().len(), 1);
    assert!(!fx.host.tamper_events().unwrap().is_empty());
    fx.assert_no_wal();
}

#[test]
fn wal_inbound_is_refused_by_the_guest_with_the_reason() {
    let fx = Fixture::new();
    let guest = GuestMailbox::open(fx.session_dir()).unwrap();
    make_wal(&fx.host.paths().inbound_db());
    let err = guest.pending(10).unwrap_err();
    assert!(matches!(err, Error::WrongJournalMode { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("wal") && text.contains("stale"), "{text}");
    // Refusing did not touch the file.
    let bytes = std::fs::read(fx.host.paths().inbound_db()).unwrap();
    assert_eq!((bytes[18], bytes[19]), (2, 2));
    // The host's next operation repairs it (without the guest's row) and
    // the guest reads again.
    fx.host.verify().unwrap();
    assert_eq!(guest.pending(10).unwrap().len(), 0);
    fx.assert_no_wal();
}

#[test]
fn wal_outbound_is_refused_by_the_host_and_converted_by_its_owner() {
    let fx = Fixture::new();
    let path = fx.host.paths().outbound_db();
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "journal_mode", "WAL")
        .unwrap();
    let err = fx.host.outbound_count().unwrap_err();
    assert!(matches!(err, Error::WrongJournalMode { .. }), "{err}");
    GuestMailbox::open(fx.session_dir()).unwrap();
    assert_eq!(fx.host.outbound_count().unwrap(), 0);
    fx.assert_no_wal();
}
