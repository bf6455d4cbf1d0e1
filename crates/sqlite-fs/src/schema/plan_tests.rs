//! The pending index serves the guest's poll and the host's `count_due`:
//! their query plans go through `idx_messages_in_pending` (pending rows
//! only, in seq order) instead of the whole history.

use rusqlite::Connection;

use super::{INBOUND_INDEXES, INBOUND_SCHEMA, InboundColumns};
use crate::guest::inbound::pending_sql;
use crate::host::read::count_due_sql;

fn plan(conn: &Connection, sql: &str) -> String {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, String>(3)).unwrap();
    rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
}

/// A long history: many completed rows, a few pending ones.
fn history() -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(INBOUND_SCHEMA).unwrap();
    conn.execute_batch(INBOUND_INDEXES).unwrap();
    let mut insert = conn
        .prepare(
            "INSERT INTO messages_in (id, seq, kind, timestamp, status, content)
             VALUES (?1, ?2, 'chat', '2026-01-01 00:00:00.000', ?3, '{}')",
        )
        .unwrap();
    for i in 1..=2000_i64 {
        let status = if i % 500 == 0 { "pending" } else { "completed" };
        insert
            .execute(rusqlite::params![format!("m{i}"), 2 * i, status])
            .unwrap();
    }
    drop(insert);
    conn.execute_batch("ANALYZE").unwrap();
    conn
}

#[test]
fn the_guest_poll_and_count_due_read_only_pending_rows() {
    let queries = [
        pending_sql(InboundColumns::ALL, true),
        pending_sql(InboundColumns::ALL, false),
        count_due_sql().to_owned(),
    ];
    let conn = history();
    for sql in &queries {
        let plan = plan(&conn, sql);
        assert!(
            plan.contains("USING INDEX idx_messages_in_pending")
                || plan.contains("USING COVERING INDEX idx_messages_in_pending"),
            "{sql}\n{plan}"
        );
    }
}
