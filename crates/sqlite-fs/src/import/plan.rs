//! What a reference registry becomes in airlock's: pure, so every rule
//! (mode derivation, statuses, timestamps) is tested without files.

use std::collections::BTreeSet;

use airlock_core::{
    AgentGroupId, ContainerStatus, NewMessagingGroup, Session, SessionId, SessionMode,
    SessionStatus, ThreadId, Timestamp,
};

use super::reference::{RefSession, ReferenceRegistry};
use super::report::SessionOutcome;

/// A session to adopt; its messaging group is filled in once the group's
/// airlock id is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedSession {
    /// The session as airlock will store it, `messaging_group_id` unset.
    pub session: Session,
    /// Index into [`Plan::groups`] of its chat, if it has one.
    pub chat: Option<usize>,
}

/// Everything an import does, decided before anything is written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Every messaging group of the reference.
    pub groups: Vec<NewMessagingGroup>,
    /// Sessions to adopt, most recently active first: where the reference
    /// holds two active sessions for one key, the first one adopted keeps it.
    pub sessions: Vec<PlannedSession>,
    /// Sessions that cannot be adopted, with the reason.
    pub skipped: Vec<SessionOutcome>,
    /// What the import decided where the reference was ambiguous.
    pub notes: Vec<String>,
}

/// The mode of a session from its own chat's wiring: `agent-shared` when the
/// wiring says so, `per-thread` only for a session with a thread, else `shared`.
fn derive_mode(wiring: Option<&str>, has_thread: bool) -> Result<SessionMode, String> {
    match wiring {
        Some("agent-shared") => Ok(SessionMode::AgentShared),
        Some("per-thread") if has_thread => Ok(SessionMode::PerThread),
        Some("per-thread" | "shared") => Ok(SessionMode::Shared),
        Some(other) => Err(format!("its wiring's session_mode {other:?} is unknown")),
        None => Err("no wiring links its chat to its agent group".into()),
    }
}

/// Turns the reference's rows into a plan.
pub fn plan(reference: &ReferenceRegistry) -> Plan {
    let mut plan = Plan {
        groups: reference
            .messaging_groups
            .iter()
            .map(|g| NewMessagingGroup {
                channel_type: g.channel_type.clone(),
                platform_id: g.platform_id.clone(),
                name: g.name.clone(),
            })
            .collect(),
        ..Plan::default()
    };
    note_mixed_modes(reference, &mut plan.notes);
    for row in &reference.sessions {
        match plan_session(reference, row, &mut plan.notes) {
            Ok(planned) => plan.sessions.push(planned),
            Err(reason) => plan.skipped.push(SessionOutcome::skipped(row, reason)),
        }
    }
    plan.sessions.sort_by(|a, b| {
        let recency = |s: &Session| s.last_active.unwrap_or(s.created_at);
        recency(&b.session)
            .cmp(&recency(&a.session))
            .then_with(|| a.session.id.cmp(&b.session.id))
    });
    plan
}

fn plan_session(
    reference: &ReferenceRegistry,
    row: &RefSession,
    notes: &mut Vec<String>,
) -> Result<PlannedSession, String> {
    let id = SessionId::new(row.id.as_str()).map_err(|e| e.to_string())?;
    let agent_group = AgentGroupId::new(row.agent_group_id.as_str()).map_err(|e| e.to_string())?;
    let thread = row
        .thread_id
        .as_deref()
        .map(ThreadId::new)
        .transpose()
        .map_err(|e| e.to_string())?;
    if !reference
        .agent_groups
        .iter()
        .any(|g| g.id == row.agent_group_id)
    {
        notes.push(format!(
            "session {id}: agent group {agent_group} is not in agent_groups; adopted anyway"
        ));
    }
    let chat = row.messaging_group_id.as_ref().and_then(|mg| {
        let found = reference.messaging_groups.iter().position(|g| &g.id == mg);
        if found.is_none() {
            notes.push(format!(
                "session {id}: messaging group {mg:?} is not in messaging_groups; adopted without a chat"
            ));
        }
        found
    });
    let mode = match chat {
        None => SessionMode::Shared,
        Some(index) => {
            let mg = &reference.messaging_groups[index].id;
            let wiring = reference
                .wirings
                .iter()
                .find(|w| &w.messaging_group_id == mg && w.agent_group_id == row.agent_group_id)
                .map(|w| w.session_mode.as_str());
            derive_mode(wiring, thread.is_some()).unwrap_or_else(|why| {
                notes.push(format!("session {id}: {why}; adopted as shared"));
                SessionMode::Shared
            })
        }
    };
    let status = match row.status.as_str() {
        "active" => SessionStatus::Active,
        "archived" => SessionStatus::Archived,
        other => {
            notes.push(format!(
                "session {id}: status {other:?} adopted as archived (never resolved again)"
            ));
            SessionStatus::Archived
        }
    };
    let container_status = row.container_status.parse().unwrap_or_else(|_| {
        notes.push(format!(
            "session {id}: container status {:?} adopted as stopped",
            row.container_status
        ));
        ContainerStatus::Stopped
    });
    let mut time = |what: &str, text: Option<&str>| -> Option<Timestamp> {
        let text = text?;
        Timestamp::parse(text)
            .inspect_err(|e| notes.push(format!("session {id}: {what}: {e}; left empty")))
            .ok()
    };
    let last_active = time("last_active", row.last_active.as_deref());
    let created_at = time("created_at", row.created_at.as_deref())
        .or(last_active)
        .unwrap_or_else(Timestamp::now);
    Ok(PlannedSession {
        session: Session {
            id: id.clone(),
            agent_group_id: agent_group,
            messaging_group_id: None,
            thread_id: thread,
            mode,
            agent_provider: row.agent_provider.clone(),
            status,
            container_status,
            last_active,
            created_at,
            owner_host: None,
        },
        chat,
    })
}

/// The reference's `agent-shared` resolution returns the newest active
/// session of the agent group, whatever created it; airlock's finds only a
/// session created `agent-shared`. Say where that can route a chat anew.
fn note_mixed_modes(reference: &ReferenceRegistry, notes: &mut Vec<String>) {
    let groups: BTreeSet<&str> = reference
        .wirings
        .iter()
        .map(|w| w.agent_group_id.as_str())
        .collect();
    for group in groups {
        let modes: BTreeSet<&str> = reference
            .wirings
            .iter()
            .filter(|w| w.agent_group_id == group)
            .map(|w| w.session_mode.as_str())
            .collect();
        if modes.contains("agent-shared") && modes.len() > 1 {
            notes.push(format!(
                "agent group {group}: its wirings disagree ({}); each session takes the mode of its \
                 own chat's wiring, and chats wired agent-shared resolve only to an agent-shared session",
                modes.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::reference::{RefAgentGroup, RefMessagingGroup, RefWiring};

    fn registry(modes: &[(&str, &str)]) -> ReferenceRegistry {
        ReferenceRegistry {
            agent_groups: vec![RefAgentGroup {
                id: "ag".into(),
                name: None,
            }],
            messaging_groups: modes
                .iter()
                .map(|(mg, _)| RefMessagingGroup {
                    id: (*mg).into(),
                    channel_type: "slack".into(),
                    platform_id: format!("C-{mg}"),
                    name: None,
                })
                .collect(),
            wirings: modes
                .iter()
                .map(|(mg, mode)| RefWiring {
                    messaging_group_id: (*mg).into(),
                    agent_group_id: "ag".into(),
                    session_mode: (*mode).into(),
                })
                .collect(),
            sessions: Vec::new(),
        }
    }

    fn session(id: &str, mg: Option<&str>, thread: Option<&str>) -> RefSession {
        RefSession {
            id: id.into(),
            agent_group_id: "ag".into(),
            messaging_group_id: mg.map(Into::into),
            thread_id: thread.map(Into::into),
            agent_provider: None,
            status: "active".into(),
            container_status: "stopped".into(),
            last_active: None,
            created_at: Some("2026-01-01 10:00:00".into()),
        }
    }

    #[test]
    fn modes_come_from_the_sessions_own_wiring() {
        assert_eq!(
            derive_mode(Some("agent-shared"), true),
            Ok(SessionMode::AgentShared)
        );
        assert_eq!(
            derive_mode(Some("per-thread"), true),
            Ok(SessionMode::PerThread)
        );
        assert_eq!(
            derive_mode(Some("per-thread"), false),
            Ok(SessionMode::Shared)
        );
        assert_eq!(derive_mode(Some("shared"), true), Ok(SessionMode::Shared));
        assert!(derive_mode(Some("threaded"), true).is_err());
        assert!(derive_mode(None, false).is_err());
    }

    #[test]
    fn disagreeing_wirings_are_noted_and_each_session_keeps_its_chats_mode() {
        let mut reference = registry(&[("mg-a", "agent-shared"), ("mg-b", "shared")]);
        reference.sessions = vec![
            session("sess-a", Some("mg-a"), None),
            session("sess-b", Some("mg-b"), Some("t1")),
        ];
        let plan = plan(&reference);
        let mode = |id: &str| {
            plan.sessions
                .iter()
                .find(|p| p.session.id.as_str() == id)
                .map(|p| p.session.mode)
        };
        assert_eq!(mode("sess-a"), Some(SessionMode::AgentShared));
        assert_eq!(mode("sess-b"), Some(SessionMode::Shared));
        assert!(
            plan.notes.iter().any(|n| n.contains("disagree")),
            "{:?}",
            plan.notes
        );
    }

    #[test]
    fn odd_rows_are_adopted_with_a_note_or_skipped_with_a_reason() {
        let mut reference = registry(&[("mg-a", "per-thread")]);
        let mut odd = session("sess-odd", Some("mg-gone"), None);
        odd.status = "closed".into();
        odd.container_status = "exploded".into();
        odd.created_at = Some("last tuesday".into());
        odd.last_active = Some("2026-02-01T00:00:00.000Z".into());
        reference.sessions = vec![odd, session("../evil", Some("mg-a"), None)];
        let plan = plan(&reference);
        assert_eq!(plan.sessions.len(), 1);
        let s = &plan.sessions[0].session;
        assert_eq!(plan.sessions[0].chat, None);
        assert_eq!(s.status, SessionStatus::Archived);
        assert_eq!(s.container_status, ContainerStatus::Stopped);
        assert_eq!(s.created_at, s.last_active.unwrap());
        assert_eq!(plan.skipped.len(), 1);
        assert_eq!(plan.skipped[0].id, "../evil");
        assert_eq!(plan.notes.len(), 4, "{:?}", plan.notes);
    }

    #[test]
    fn the_most_recently_active_session_is_adopted_first() {
        let mut reference = registry(&[("mg-a", "shared")]);
        let old = session("sess-old", Some("mg-a"), None);
        let mut new = session("sess-new", Some("mg-a"), None);
        new.last_active = Some("2026-03-01 00:00:00".into());
        reference.sessions = vec![old, new];
        let plan = plan(&reference);
        assert_eq!(plan.sessions[0].session.id.as_str(), "sess-new");
    }
}
