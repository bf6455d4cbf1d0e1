//! Where the guest's replies go: the session's default (`session_routing`)
//! and the named destinations (`destinations`), both read from `inbound.db`.
//!
//! The reference host drops a reply whose routing columns are NULL (it logs
//! "Message missing routing fields" and marks it delivered), so a reply
//! that names no routing must get the session's; the reference guest does
//! the same.

use airlock_core::mailbox::{NewOutboundMessage, Routing};
use rusqlite::{Connection, OptionalExtension};

use super::GuestMailbox;
use crate::error::{Error, Result};

/// Channel type of agent-to-agent routing; the platform id is the target agent group.
pub const AGENT_CHANNEL: &str = "agent";

fn has_table(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")?
        .exists([name])
}

fn read_routing(conn: &Connection) -> rusqlite::Result<Option<Routing>> {
    if !has_table(conn, "session_routing")? {
        return Ok(None);
    }
    conn.query_row(
        "SELECT channel_type, platform_id, thread_id FROM session_routing WHERE id = 1",
        [],
        |r| {
            Ok(Routing {
                channel_type: r.get(0)?,
                platform_id: r.get(1)?,
                thread_id: r.get(2)?,
            })
        },
    )
    .optional()
}

/// `(type, channel_type, platform_id, agent_group_id)` of a destination.
type DestinationRow = (String, Option<String>, Option<String>, Option<String>);

impl GuestMailbox {
    /// The session's default reply target, if the host wrote one.
    pub fn session_routing(&self) -> Result<Option<Routing>> {
        self.read_inbound("reading session_routing", read_routing)
    }

    /// The routing of the destination named `name`. A channel destination
    /// that is the session's own chat keeps the session's thread (as in the
    /// reference), so a reply lands in the thread it answers; an agent
    /// destination routes to `agent`/<agent group>.
    pub fn destination_routing(&self, name: &str) -> Result<Routing> {
        let (row, routing, names) = self.read_inbound("reading destinations", |conn| {
            if !has_table(conn, "destinations")? {
                return Ok((None, None, Vec::new()));
            }
            let row: Option<DestinationRow> = conn
                .query_row(
                    "SELECT type, channel_type, platform_id, agent_group_id FROM destinations WHERE name = ?1",
                    [name],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let names = conn
                .prepare("SELECT name FROM destinations ORDER BY name LIMIT 20")?
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((row, read_routing(conn)?, names))
        })?;
        let Some((kind, channel_type, platform_id, agent_group_id)) = row else {
            let known = if names.is_empty() {
                "none are configured".to_owned()
            } else {
                format!("known: {}", names.join(", "))
            };
            return Err(Error::InvalidInput(format!(
                "no destination named {} ({known})",
                airlock_core::escape_for_log(name)
            )));
        };
        if kind == AGENT_CHANNEL {
            return Ok(Routing {
                channel_type: Some(AGENT_CHANNEL.to_owned()),
                platform_id: agent_group_id,
                thread_id: None,
            });
        }
        let thread_id = routing
            .filter(|r| r.channel_type == channel_type && r.platform_id == platform_id)
            .and_then(|r| r.thread_id);
        Ok(Routing {
            channel_type,
            platform_id,
            thread_id,
        })
    }

    /// `msg` with the session's default routing when it names none
    /// (explicit routing, or a destination resolved by the caller, wins).
    pub(super) fn with_default_routing(
        &self,
        msg: &NewOutboundMessage,
    ) -> Result<NewOutboundMessage> {
        let mut msg = msg.clone();
        let named =
            msg.channel_type.is_some() || msg.platform_id.is_some() || msg.thread_id.is_some();
        if !named && let Some(routing) = self.session_routing()? {
            msg.channel_type = routing.channel_type;
            msg.platform_id = routing.platform_id;
            msg.thread_id = routing.thread_id;
        }
        Ok(msg)
    }
}
