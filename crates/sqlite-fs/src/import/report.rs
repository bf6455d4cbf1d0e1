//! What an import did (or, with `dry_run`, would do), for people and scripts.

use std::path::PathBuf;

use airlock_core::SessionMode;
use serde::Serialize;

use super::reference::RefSession;

/// What happened to one messaging group or session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Written into airlock's registry.
    Adopted,
    /// Would be written (dry run).
    WouldAdopt,
    /// Already in airlock's registry; left as it is.
    Unchanged,
    /// Another session holds its chat (or thread) in airlock's registry; not adopted.
    Conflict,
    /// Cannot be adopted (see the detail); not adopted.
    Skipped,
}

/// One messaging group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupOutcome {
    /// Platform.
    pub channel_type: String,
    /// Platform chat id.
    pub platform_id: String,
    /// airlock's id of the group (none in a dry run for a new group).
    pub id: Option<String>,
    /// `adopted` (registered now), `would_adopt` or `unchanged` (already registered).
    pub action: Action,
}

/// One session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionOutcome {
    /// The session id (the folder name), as the reference stores it.
    pub id: String,
    /// Its agent group, as the reference stores it.
    pub agent_group: String,
    /// The mode it is adopted in.
    pub mode: Option<SessionMode>,
    /// What happened.
    pub action: Action,
    /// Why, for conflicts and skipped sessions.
    pub detail: Option<String>,
}

impl SessionOutcome {
    /// A session of the reference that cannot be adopted.
    pub(crate) fn skipped(row: &RefSession, reason: impl Into<String>) -> Self {
        Self {
            id: row.id.clone(),
            agent_group: row.agent_group_id.clone(),
            mode: None,
            action: Action::Skipped,
            detail: Some(reason.into()),
        }
    }
}

/// The whole result of an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// The reference registry read.
    pub source: PathBuf,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Agent groups found (airlock keeps no agent group table).
    pub agent_groups: usize,
    /// Every messaging group of the reference.
    pub messaging_groups: Vec<GroupOutcome>,
    /// Every session of the reference.
    pub sessions: Vec<SessionOutcome>,
    /// Decisions taken where the reference was ambiguous.
    pub notes: Vec<String>,
}

impl ImportReport {
    /// Groups and sessions written (or, in a dry run, that would be).
    pub fn changes(&self) -> usize {
        let changed = |a: Action| matches!(a, Action::Adopted | Action::WouldAdopt);
        self.messaging_groups
            .iter()
            .filter(|g| changed(g.action))
            .count()
            + self.sessions.iter().filter(|s| changed(s.action)).count()
    }

    /// Sessions left out: conflicts and skipped ones.
    pub fn problems(&self) -> usize {
        self.sessions
            .iter()
            .filter(|s| matches!(s.action, Action::Conflict | Action::Skipped))
            .count()
    }
}
