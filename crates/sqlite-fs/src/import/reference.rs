//! Reads the reference's central registry (`<data dir>/v2.db`) read-only.
//!
//! Only the four tables airlock adopts are read, and only the columns it
//! needs; a column an older reference lacks reads as its default there.
//! Values stay text: [`super::plan`] decides what each one means.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use super::ImportError;
use crate::sqlite_util::{OpenMode, open_file};

/// File name of the reference's registry inside its data dir.
pub const REFERENCE_REGISTRY_FILE: &str = "v2.db";

/// One `agent_groups` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefAgentGroup {
    /// `id`: also the folder under `v2-sessions/`.
    pub id: String,
    /// `name`.
    pub name: Option<String>,
}

/// One `messaging_groups` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefMessagingGroup {
    /// `id` (the reference's; airlock keys groups by platform chat).
    pub id: String,
    /// `channel_type`.
    pub channel_type: String,
    /// `platform_id`.
    pub platform_id: String,
    /// `name`.
    pub name: Option<String>,
}

/// One `messaging_group_agents` row: how an agent group is wired to a chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefWiring {
    /// `messaging_group_id`.
    pub messaging_group_id: String,
    /// `agent_group_id`.
    pub agent_group_id: String,
    /// `session_mode` (`shared` when the column is NULL or absent).
    pub session_mode: String,
}

/// One `sessions` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefSession {
    /// `id`: also the session's folder name.
    pub id: String,
    /// `agent_group_id`.
    pub agent_group_id: String,
    /// `messaging_group_id`.
    pub messaging_group_id: Option<String>,
    /// `thread_id`.
    pub thread_id: Option<String>,
    /// `agent_provider`.
    pub agent_provider: Option<String>,
    /// `status` (`active` when NULL).
    pub status: String,
    /// `container_status` (`stopped` when NULL).
    pub container_status: String,
    /// `last_active`.
    pub last_active: Option<String>,
    /// `created_at`.
    pub created_at: Option<String>,
}

/// Everything airlock adopts from a reference registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferenceRegistry {
    /// `agent_groups`, by id.
    pub agent_groups: Vec<RefAgentGroup>,
    /// `messaging_groups`, by id.
    pub messaging_groups: Vec<RefMessagingGroup>,
    /// `messaging_group_agents`.
    pub wirings: Vec<RefWiring>,
    /// `sessions`, oldest first.
    pub sessions: Vec<RefSession>,
}

/// `column` when `table` has it, else `fallback` (an SQL literal), named `column`.
fn column_or(
    conn: &Connection,
    table: &str,
    column: &str,
    fallback: &str,
) -> rusqlite::Result<String> {
    let present = conn
        .prepare(&format!(
            "SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?1"
        ))?
        .exists([column])?;
    Ok(if present {
        column.to_owned()
    } else {
        format!("{fallback} AS {column}")
    })
}

fn text_or(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<String> {
    column_or(conn, table, column, "NULL")
}

/// Reads the registry of the reference install in `data_dir`; the file is
/// opened read-only and never written.
pub fn read_reference(data_dir: &Path) -> Result<ReferenceRegistry, ImportError> {
    let path = data_dir.join(REFERENCE_REGISTRY_FILE);
    if !path.is_file() {
        return Err(ImportError::NoRegistry { path });
    }
    let fail = |path: &PathBuf| {
        let path = path.clone();
        move |source| ImportError::Read { path, source }
    };
    let conn = open_file(&path, OpenMode::ReadOnly, Duration::from_secs(5)).map_err(fail(&path))?;
    conn.pragma_update(None, "query_only", true)
        .map_err(fail(&path))?;
    conn.pragma_update(None, "trusted_schema", false)
        .map_err(fail(&path))?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(fail(&path))?;
    for needed in [
        "agent_groups",
        "messaging_groups",
        "messaging_group_agents",
        "sessions",
    ] {
        if !tables.iter().any(|t| t == needed) {
            return Err(ImportError::NotReference {
                path,
                missing: needed,
            });
        }
    }
    read_tables(&conn).map_err(fail(&path))
}

fn read_tables(conn: &Connection) -> rusqlite::Result<ReferenceRegistry> {
    let agent_groups = conn
        .prepare(&format!(
            "SELECT id, {} FROM agent_groups ORDER BY id",
            text_or(conn, "agent_groups", "name")?
        ))?
        .query_map([], |r| {
            Ok(RefAgentGroup {
                id: r.get(0)?,
                name: r.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let messaging_groups = conn
        .prepare(&format!(
            "SELECT id, channel_type, platform_id, {} FROM messaging_groups ORDER BY id",
            text_or(conn, "messaging_groups", "name")?
        ))?
        .query_map([], |r| {
            Ok(RefMessagingGroup {
                id: r.get(0)?,
                channel_type: r.get(1)?,
                platform_id: r.get(2)?,
                name: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let wirings = conn
        .prepare(&format!(
            "SELECT messaging_group_id, agent_group_id, COALESCE({}, 'shared') \
             FROM messaging_group_agents ORDER BY messaging_group_id, agent_group_id",
            column_or(conn, "messaging_group_agents", "session_mode", "'shared'")?
        ))?
        .query_map([], |r| {
            Ok(RefWiring {
                messaging_group_id: r.get(0)?,
                agent_group_id: r.get(1)?,
                session_mode: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let sessions = conn
        .prepare(&format!(
            "SELECT id, agent_group_id, {}, {}, {}, COALESCE({}, 'active'), COALESCE({}, 'stopped'), {}, {} \
             FROM sessions ORDER BY created_at, id",
            text_or(conn, "sessions", "messaging_group_id")?,
            text_or(conn, "sessions", "thread_id")?,
            text_or(conn, "sessions", "agent_provider")?,
            column_or(conn, "sessions", "status", "'active'")?,
            column_or(conn, "sessions", "container_status", "'stopped'")?,
            text_or(conn, "sessions", "last_active")?,
            text_or(conn, "sessions", "created_at")?,
        ))?
        .query_map([], |r| {
            Ok(RefSession {
                id: r.get(0)?,
                agent_group_id: r.get(1)?,
                messaging_group_id: r.get(2)?,
                thread_id: r.get(3)?,
                agent_provider: r.get(4)?,
                status: r.get(5)?,
                container_status: r.get(6)?,
                last_active: r.get(7)?,
                created_at: r.get(8)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(ReferenceRegistry {
        agent_groups,
        messaging_groups,
        wirings,
        sessions,
    })
}
