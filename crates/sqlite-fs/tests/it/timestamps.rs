//! Every text timestamp column airlock writes, in a form the reference's
//! plain string comparisons get right: `col <= datetime('now')` is true for
//! a past instant and false for a future one, and values sort correctly
//! against `datetime('now')`-style strings. Also: old rows stay readable
//! and the registry's old-form rows are rewritten by its migration.

use airlock_core::mailbox::{NewInboundMessage, NewOutboundMessage};
use airlock_core::{
    MessageId, NewMessagingGroup, ResolveRequest, SessionMode, SessionStore, SessionStoreExt,
    Timestamp, testing,
};
use airlock_sqlite_fs::host::PlainContent;
use airlock_sqlite_fs::{GuestMailbox, SqliteSessionStore};
use rusqlite::Connection;

use crate::mailbox_common::Fixture;

/// An hour: far beyond any pause between a write and its check.
const HOUR: i64 = 3_600_000;

/// How a stored value must compare, as text, against SQLite's clock.
#[derive(Clone, Copy, Debug)]
enum When {
    /// Written for an instant an hour ago.
    Past,
    /// Written for an instant an hour ahead.
    Future,
    /// Stamped by airlock with the current time.
    Now,
}

/// Checks one stored value: the stored form, the parser, and the string
/// comparisons the reference makes against `datetime('now')`.
fn check(conn: &Connection, column: &str, value: &str, when: When) {
    let shape = value.len() == 23
        && value.as_bytes()[10] == b' '
        && value.as_bytes()[19] == b'.'
        && !value.contains(['T', 'Z']);
    assert!(shape, "{column}: {value:?} is not YYYY-MM-DD HH:MM:SS.sss");
    Timestamp::parse(value).unwrap_or_else(|e| panic!("{column}: {e}"));
    let ask = |sql: &str| -> bool {
        conn.query_row(sql, [value], |r| r.get::<_, bool>(0))
            .unwrap_or_else(|e| panic!("{column}: {sql}: {e}"))
    };
    match when {
        When::Past => {
            assert!(
                ask("SELECT ?1 <= datetime('now')"),
                "{column}: past {value} not due"
            );
            assert!(
                ask("SELECT ?1 < datetime('now', '-30 minutes')"),
                "{column}: sorts after a later value"
            );
            assert!(
                ask("SELECT ?1 > datetime('now', '-90 minutes')"),
                "{column}: sorts before an earlier value"
            );
        }
        When::Future => {
            assert!(
                !ask("SELECT ?1 <= datetime('now')"),
                "{column}: future {value} is due"
            );
            assert!(
                ask("SELECT ?1 > datetime('now', '+30 minutes')"),
                "{column}: sorts before an earlier value"
            );
            assert!(
                ask("SELECT ?1 < datetime('now', '+90 minutes')"),
                "{column}: sorts after a later value"
            );
        }
        When::Now => {
            assert!(
                ask("SELECT ?1 <= datetime('now', '+1 hour')"),
                "{column}: {value} is in the future"
            );
            assert!(
                !ask("SELECT ?1 <= datetime('now', '-1 hour')"),
                "{column}: {value} is in the past"
            );
        }
    }
    // Against the datetime() form of its own instant: never "due" before
    // that second is over, and ordered against the neighbouring seconds.
    assert!(
        ask("SELECT ?1 > datetime(?1) AND ?1 < datetime(?1, '+1 second')"),
        "{column}: {value}"
    );
    assert!(
        ask("SELECT ?1 > datetime(?1, '-1 second')"),
        "{column}: {value}"
    );
}

fn column_values(conn: &Connection, table: &str, column: &str, key: &str) -> Vec<(String, String)> {
    let sql =
        format!("SELECT {key}, {column} FROM {table} WHERE {column} IS NOT NULL ORDER BY {key}");
    conn.prepare(&sql)
        .unwrap()
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

fn when_of(key: &str) -> When {
    if key.ends_with("-now") {
        When::Now
    } else if key.contains("past") {
        When::Past
    } else if key.contains("future") {
        When::Future
    } else {
        When::Now
    }
}

/// Checks every value of `table.column`; each row's key says when it was written for.
fn check_column(conn: &Connection, table: &str, column: &str, key: &str, expected_rows: usize) {
    let values = column_values(conn, table, column, key);
    assert_eq!(values.len(), expected_rows, "{table}.{column}: {values:?}");
    for (k, value) in values {
        check(
            conn,
            &format!("{table}.{column} ({k})"),
            &value,
            when_of(&k),
        );
    }
}

fn id(text: &str) -> MessageId {
    MessageId::new(text).unwrap()
}

#[test]
fn mailbox_timestamp_columns_compare_and_sort_like_datetime_now() {
    let fx = Fixture::new();
    let now = Timestamp::now();
    let (past, future) = (now.plus_millis(-HOUR), now.plus_millis(HOUR));
    for (name, at) in [("in-past", past), ("in-future", future)] {
        let mut msg = NewInboundMessage::new(id(name), "chat", "{}");
        msg.timestamp = at;
        msg.process_after = Some(at);
        fx.host.write_message(&msg, &PlainContent).unwrap();
    }
    let guest = GuestMailbox::open(fx.session_dir()).unwrap();
    for (name, at) in [("out-past", past), ("out-future", future)] {
        let mut msg = NewOutboundMessage::new(id(name), "chat", "{}");
        msg.timestamp = at;
        msg.deliver_after = Some(at);
        guest.write_message_out(&msg).unwrap();
    }
    guest.mark_processing(&["in-past"]).unwrap();
    guest.state_set("k-now", "v").unwrap();
    guest.set_tool_in_flight("Bash", Some(1000)).unwrap();
    fx.host.mark_delivered("out-past", Some("p-1")).unwrap();

    let inbound = Connection::open(fx.host.paths().inbound_db()).unwrap();
    check_column(&inbound, "messages_in", "timestamp", "id", 2);
    check_column(&inbound, "messages_in", "process_after", "id", 2);
    // Keyed by message_out_id: "out-past" was delivered now.
    let delivered = column_values(&inbound, "delivered", "delivered_at", "message_out_id");
    assert_eq!(delivered.len(), 1);
    check(
        &inbound,
        "delivered.delivered_at",
        &delivered[0].1,
        When::Now,
    );

    let outbound = Connection::open(fx.host.paths().outbound_db()).unwrap();
    check_column(&outbound, "messages_out", "timestamp", "id", 2);
    check_column(&outbound, "messages_out", "deliver_after", "id", 2);
    let acks = column_values(&outbound, "processing_ack", "status_changed", "message_id");
    check(
        &outbound,
        "processing_ack.status_changed",
        &acks[0].1,
        When::Now,
    );
    check_column(&outbound, "session_state", "updated_at", "key", 1);
    for column in ["tool_started_at", "updated_at"] {
        let rows = column_values(&outbound, "container_state", column, "CAST(id AS TEXT)");
        assert_eq!(rows.len(), 1, "container_state.{column}");
        check(
            &outbound,
            &format!("container_state.{column}"),
            &rows[0].1,
            When::Now,
        );
    }

    // The reference host's own queries on the guest's file: due replies,
    // ordered by timestamp, mixed with a row its guest wrote (`datetime('now')`).
    outbound
        .execute(
            "INSERT INTO messages_out (id, seq, timestamp, kind, content) \
             VALUES ('ref-now', 101, datetime('now'), 'chat', '{}')",
            [],
        )
        .unwrap();
    let order: Vec<String> = outbound
        .prepare("SELECT id FROM messages_out ORDER BY timestamp")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(order, ["out-past", "ref-now", "out-future"]);
    let due: Vec<String> = outbound
        .prepare(
            "SELECT id FROM messages_out WHERE deliver_after <= datetime('now') ORDER BY timestamp",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(due, ["out-past"]);
}

#[tokio::test]
async fn registry_timestamp_columns_compare_and_sort_like_datetime_now() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteSessionStore::open_in(dir.path()).unwrap();
    let group = store
        .create_messaging_group(NewMessagingGroup::new("slack", "C-now"))
        .await
        .unwrap();
    let now = Timestamp::now();
    for (agent, at) in [
        ("ag-past", now.plus_millis(-HOUR)),
        ("ag-future", now.plus_millis(HOUR)),
    ] {
        let request = ResolveRequest::new(
            testing::agent(agent),
            Some(group.id.clone()),
            None,
            SessionMode::Shared,
        );
        let session = store.resolve_session(request).await.unwrap().session;
        store.touch_session(&session.id, at).await.unwrap();
    }
    drop(store);
    let conn = Connection::open(dir.path().join("airlock.db")).unwrap();
    check_column(
        &conn,
        "messaging_groups",
        "created_at",
        "channel_type || '-now'",
        1,
    );
    check_column(
        &conn,
        "sessions",
        "created_at",
        "agent_group_id || '-now'",
        2,
    );
    check_column(&conn, "sessions", "last_active", "agent_group_id", 2);
}

/// A registry written before the switch (version 1, `…T…Z` rows) is
/// rewritten by migration 2, so old and new rows sort together.
#[tokio::test]
async fn old_form_registry_rows_are_rewritten_and_sort_with_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("airlock.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(include_str!("../../src/registry/migrations/0001_init.sql"))
        .unwrap();
    conn.execute_batch(
        "INSERT INTO messaging_groups VALUES ('mg-old', 'slack', 'C1', NULL, '2099-01-01T10:00:00.000Z');
         INSERT INTO sessions (id, agent_group_id, mode, status, container_status, last_active, created_at)
           VALUES ('sess-old', 'ag', 'shared', 'active', 'stopped', '2099-01-01T11:00:00.500Z', '2099-01-01T10:00:00.000Z');
         PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(conn);
    let store = SqliteSessionStore::open_file(&path).unwrap();
    let old = store.session(&"sess-old".parse().unwrap()).await.unwrap();
    assert_eq!(
        old.created_at,
        Timestamp::parse("2099-01-01T10:00:00Z").unwrap()
    );
    assert_eq!(
        old.last_active,
        Some(Timestamp::parse("2099-01-01 11:00:00.5").unwrap())
    );
    let conn = Connection::open(&path).unwrap();
    let stored: (String, String, String) = conn
        .query_row(
            "SELECT s.created_at, s.last_active, g.created_at FROM sessions s, messaging_groups g",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        stored,
        (
            "2099-01-01 10:00:00.000".to_owned(),
            "2099-01-01 11:00:00.500".to_owned(),
            "2099-01-01 10:00:00.000".to_owned()
        )
    );
}

/// Rows an older airlock wrote into a mailbox (`…T…Z`) stay readable.
#[test]
fn old_form_mailbox_rows_stay_readable() {
    let fx = Fixture::new();
    let inbound = Connection::open(fx.host.paths().inbound_db()).unwrap();
    inbound
        .execute(
            "INSERT INTO messages_in (id, seq, kind, timestamp, status, process_after, content) \
             VALUES ('old', 2, 'chat', '2020-01-01T00:00:00.000Z', 'pending', '2020-01-01T00:00:00.000Z', '{}')",
            [],
        )
        .unwrap();
    drop(inbound);
    // A folder from before host state existed (an older airlock): its rows
    // are adopted once, old timestamps included. (With host state present,
    // an edit of the folder's file would be a guest's tampering.)
    std::fs::remove_dir_all(fx.host.host_state().dir()).unwrap();
    assert_eq!(fx.host.count_due(Timestamp::now()).unwrap(), 1);
    let guest = GuestMailbox::open(fx.session_dir()).unwrap();
    let pending = guest.pending(10).unwrap();
    assert_eq!(pending.len(), 1);
    assert!(Timestamp::parse(&pending[0].timestamp).is_ok());
}

/// "Due" has one definition, `airlock_core::is_due`, for the host's
/// `count_due` and the guest's poll alike: a time in any form either side
/// writes is compared, and a time nobody can read (a bare date included,
/// which SQLite's `julianday` would have read as a far future) is due.
#[test]
fn due_is_one_definition_for_the_host_count_and_the_guest_poll() {
    let fx = Fixture::new();
    let times = [
        Some("2020-01-01T01:00:00+01:00"),
        Some("2999-01-01 00:00:00.000"),
        Some("2999-01-01"),
        Some("soon"),
        None,
    ];
    let inbound = Connection::open(fx.host.paths().inbound_db()).unwrap();
    for (i, at) in times.iter().enumerate() {
        inbound
            .execute(
                "INSERT INTO messages_in (id, seq, kind, timestamp, status, process_after, content) \
                 VALUES (?1, ?2, 'chat', '2020-01-01 00:00:00.000', 'pending', ?3, '{}')",
                rusqlite::params![format!("m{i}"), 2 * (i as i64 + 1), at],
            )
            .unwrap();
    }
    drop(inbound);
    // Adopted once, as rows from before host state existed.
    std::fs::remove_dir_all(fx.host.host_state().dir()).unwrap();
    let now = Timestamp::now();
    let expected = times
        .iter()
        .filter(|at| airlock_core::is_due(**at, now))
        .count();
    assert_eq!(expected, 4, "only the far future is held back");
    assert_eq!(fx.host.count_due(now).unwrap(), expected as u64);
    let guest = GuestMailbox::open(fx.session_dir()).unwrap();
    let ids: Vec<String> = guest
        .pending_at(10, now)
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, ["m0", "m2", "m3", "m4"]);
}
