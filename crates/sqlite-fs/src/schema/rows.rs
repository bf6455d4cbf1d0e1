//! The `messages_in` row shape, shared by the host's reads of `host.db` and
//! the guest's reads of `inbound.db` (the guest half must not import the
//! host half).

use airlock_core::mailbox::{InboundMessage, InboundStatus};
use rusqlite::Row;

#[cfg(feature = "host")]
pub(crate) const INBOUND_COLUMNS: &str =
    "id, seq, kind, timestamp, status, process_after, recurrence, series_id,
    tries, trigger, platform_id, channel_type, thread_id, content, source_session_id, on_wake";

pub(crate) fn inbound_row(r: &Row<'_>) -> rusqlite::Result<InboundMessage> {
    Ok(InboundMessage {
        id: r.get(0)?,
        seq: r.get(1)?,
        kind: r.get(2)?,
        timestamp: r.get(3)?,
        status: InboundStatus::parse(r.get::<_, Option<String>>(4)?.as_deref()),
        process_after: r.get(5)?,
        recurrence: r.get(6)?,
        series_id: r.get(7)?,
        tries: r.get::<_, Option<i64>>(8)?.unwrap_or(0),
        trigger: r.get::<_, Option<i64>>(9)?.unwrap_or(1) != 0,
        platform_id: r.get(10)?,
        channel_type: r.get(11)?,
        thread_id: r.get(12)?,
        content: r.get(13)?,
        source_session_id: r.get(14)?,
        on_wake: r.get::<_, Option<i64>>(15)?.unwrap_or(0) != 0,
    })
}
