//! Turning registry rows into airlock's types, refusing rows that break
//! airlock's rules (someone edited the tables by hand).

use airlock_core::{
    AgentGroupId, Error, MessagingGroup, MessagingGroupId, Session, SessionId, ThreadId, Timestamp,
};
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;

fn bad_row(table: &str, id: &str, what: impl std::fmt::Display) -> Error {
    Error::invariant(
        None,
        format!(
            "PostgreSQL registry row {table}/{}: {what}",
            airlock_core::escape_for_log(id)
        ),
    )
}

fn get<'r, T>(row: &'r PgRow, table: &str, id: &str, column: &str) -> Result<T, Error>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column)
        .map_err(|e| bad_row(table, id, format!("column {column}: {e}")))
}

/// Decodes a row selected with `session_columns!()`.
pub(crate) fn session(row: &PgRow) -> Result<Session, Error> {
    let raw_id: String = get(row, "sessions", "?", "id")?;
    let id = raw_id.as_str();
    let parse =
        |what: &str, e: &dyn std::fmt::Display| bad_row("sessions", id, format!("{what}: {e}"));
    let text = |column: &str| get::<String>(row, "sessions", id, column);
    let opt_text = |column: &str| get::<Option<String>>(row, "sessions", id, column);
    let time = |column: &str| get::<Option<DateTime<Utc>>>(row, "sessions", id, column);
    Ok(Session {
        id: SessionId::new(id).map_err(|e| parse("id", &e))?,
        agent_group_id: AgentGroupId::new(text("agent_group_id")?)
            .map_err(|e| parse("agent_group_id", &e))?,
        messaging_group_id: opt_text("messaging_group_id")?
            .map(MessagingGroupId::new)
            .transpose()
            .map_err(|e| parse("messaging_group_id", &e))?,
        thread_id: opt_text("thread_id")?
            .map(ThreadId::new)
            .transpose()
            .map_err(|e| parse("thread_id", &e))?,
        mode: text("mode")?.parse().map_err(|e| parse("mode", &e))?,
        agent_provider: opt_text("agent_provider")?,
        status: text("status")?.parse().map_err(|e| parse("status", &e))?,
        container_status: text("container_status")?
            .parse()
            .map_err(|e| parse("container_status", &e))?,
        last_active: time("last_active")?.map(Timestamp::from),
        created_at: time("created_at")?
            .map(Timestamp::from)
            .ok_or_else(|| bad_row("sessions", id, "created_at is NULL"))?,
        owner_host: opt_text("owner_host")?,
    })
}

/// Decodes a row selected with `group_columns!()`.
pub(crate) fn messaging_group(row: &PgRow) -> Result<MessagingGroup, Error> {
    let raw_id: String = get(row, "messaging_groups", "?", "id")?;
    let id = raw_id.as_str();
    let created_at: DateTime<Utc> = get(row, "messaging_groups", id, "created_at")?;
    Ok(MessagingGroup {
        id: MessagingGroupId::new(id).map_err(|e| bad_row("messaging_groups", id, e))?,
        channel_type: get(row, "messaging_groups", id, "channel_type")?,
        platform_id: get(row, "messaging_groups", id, "platform_id")?,
        name: get(row, "messaging_groups", id, "name")?,
        created_at: Timestamp::from(created_at),
    })
}
