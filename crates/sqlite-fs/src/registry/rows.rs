//! Conversions between registry rows and core types.

use airlock_core::{
    AgentGroupId, Error, MessagingGroup, MessagingGroupId, Result, Session, SessionId, ThreadId,
    Timestamp,
};
use rusqlite::Row;

/// Columns selected for a session, in the order [`session_from_row`] reads them.
pub const SESSION_COLUMNS: &str = "id, agent_group_id, messaging_group_id, thread_id, mode, \
     agent_provider, status, container_status, last_active, created_at, owner_host";

/// Columns selected for a messaging group.
pub const GROUP_COLUMNS: &str = "id, channel_type, platform_id, name, created_at";

fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::invariant(
        None,
        format!("registry row has an invalid {what}: {detail}"),
    )
}

fn text(row: &Row<'_>, index: usize) -> Result<String> {
    row.get(index)
        .map_err(|e| Error::backend("sqlite", "reading a registry row", e))
}

fn opt_text(row: &Row<'_>, index: usize) -> Result<Option<String>> {
    row.get(index)
        .map_err(|e| Error::backend("sqlite", "reading a registry row", e))
}

fn timestamp(raw: &str) -> Result<Timestamp> {
    Timestamp::parse(raw).map_err(|e| corrupt("timestamp", e))
}

/// Decodes a row selected with [`SESSION_COLUMNS`].
pub fn session_from_row(row: &Row<'_>) -> Result<Session> {
    Ok(Session {
        id: SessionId::new(text(row, 0)?)?,
        agent_group_id: AgentGroupId::new(text(row, 1)?)?,
        messaging_group_id: opt_text(row, 2)?.map(MessagingGroupId::new).transpose()?,
        thread_id: opt_text(row, 3)?.map(ThreadId::new).transpose()?,
        mode: text(row, 4)?.parse().map_err(|e| corrupt("mode", e))?,
        agent_provider: opt_text(row, 5)?,
        status: text(row, 6)?.parse().map_err(|e| corrupt("status", e))?,
        container_status: text(row, 7)?
            .parse()
            .map_err(|e| corrupt("container status", e))?,
        last_active: opt_text(row, 8)?.as_deref().map(timestamp).transpose()?,
        created_at: timestamp(&text(row, 9)?)?,
        owner_host: opt_text(row, 10)?,
    })
}

/// Decodes a row selected with [`GROUP_COLUMNS`].
pub fn group_from_row(row: &Row<'_>) -> Result<MessagingGroup> {
    Ok(MessagingGroup {
        id: MessagingGroupId::new(text(row, 0)?)?,
        channel_type: text(row, 1)?,
        platform_id: text(row, 2)?,
        name: opt_text(row, 3)?,
        created_at: timestamp(&text(row, 4)?)?,
    })
}
