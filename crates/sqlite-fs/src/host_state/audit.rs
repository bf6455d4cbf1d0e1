//! The full comparison `doctor` runs: every row of the published
//! `inbound.db` against `host.db`, to catch what the O(1) check cannot (a
//! guest edit in place during a host write keeps the host's ctime).

use std::time::Duration;

use super::tamper::{self, TamperEvent};
use super::{batch, open_host_db, record};
use crate::error::{Error, Result};
use crate::host::read::INBOUND_COLUMNS;
use crate::layout::{HostSessionState, SessionPaths};
use crate::schema::INBOUND_COLUMNS_VERSION;
use crate::sqlite_util::{OpenMode, open_file};

/// Rows that differ between the published file and `host.db` (both ways).
fn differing_rows(state: &HostSessionState) -> rusqlite::Result<Option<i64>> {
    let conn = open_file(
        &state.published_db(),
        OpenMode::ReadOnly,
        Duration::from_secs(2),
    )?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version < INBOUND_COLUMNS_VERSION {
        // An adopted older shape, rebuilt by the first write: nothing to compare yet.
        return Ok(None);
    }
    conn.execute(
        "ATTACH DATABASE ?1 AS h",
        [state.host_db().display().to_string()],
    )?;
    let d = "message_out_id, platform_message_id, status, delivered_at";
    let both_ways = |table: &str, cols: &str| {
        format!(
            "(SELECT count(*) FROM (SELECT {cols} FROM main.{table} EXCEPT SELECT {cols} FROM h.{table}))
             + (SELECT count(*) FROM (SELECT {cols} FROM h.{table} EXCEPT SELECT {cols} FROM main.{table}))"
        )
    };
    let sql = format!(
        "SELECT {} + {}",
        both_ways("messages_in", INBOUND_COLUMNS),
        both_ways("delivered", d)
    );
    conn.query_row(&sql, [], |r| r.get(0)).map(Some)
}

/// Compares the published copy with `host.db` row by row; on a difference
/// records a tamper event and rebuilds the copy. Returns the new events.
pub(crate) fn audit(paths: &SessionPaths, state: &HostSessionState) -> Result<Vec<TamperEvent>> {
    let mut events = batch::commit(paths, state, |tx| Ok(tx.tamper.to_vec()))?;
    let differing = match differing_rows(state) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "the published inbound.db could not be compared");
            Some(-1)
        }
    };
    if let Some(n) = differing.filter(|n| *n != 0) {
        let reason = if n < 0 {
            "the published inbound.db cannot be read".to_owned()
        } else {
            format!("{n} row(s) of the published inbound.db differ from host.db")
        };
        let mut event = vec![TamperEvent::new(
            "inbound.db",
            reason,
            None,
            "rebuilt from host.db",
        )];
        let conn = open_host_db(state)?;
        tamper::store(&conn, &mut event)
            .map_err(|e| Error::sqlite(state.host_db(), "recording tamper events", e))?;
        // Without a record the next check rebuilds the file from host.db.
        record::clear(state);
        batch::commit(paths, state, |_| Ok(()))?;
        events.extend(event);
    }
    Ok(events)
}
