//! Sessions, messaging groups and the rules that map a chat to a session.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::{AgentGroupId, MessagingGroupId, SessionId, ThreadId};
use crate::time::Timestamp;

/// A string that is not one of an enum's spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: expected one of {}", expected.trim_end_matches(", "))]
pub struct ParseEnumError {
    /// Which enum was being parsed.
    pub kind: &'static str,
    /// The refused text.
    pub value: String,
    /// The accepted spellings, each followed by `", "` (the message drops the last).
    pub expected: &'static str,
}

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident, $kind:literal { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored spelling.
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ParseEnumError;
            fn from_str(s: &str) -> Result<Self, ParseEnumError> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(ParseEnumError {
                        kind: $kind,
                        value: s.chars().take(64).collect(),
                        expected: concat!($($text, ", "),+),
                    }),
                }
            }
        }
    };
}

text_enum!(
    /// How chats map to sessions of one agent group.
    SessionMode, "session mode" {
        /// One session per (agent group, messaging group); the thread is ignored.
        Shared = "shared",
        /// One session per (agent group, messaging group, thread).
        PerThread = "per-thread",
        /// One session per agent group, whatever the chat.
        AgentShared = "agent-shared",
    }
);

text_enum!(
    /// Whether a session can still be resolved.
    SessionStatus, "session status" {
        /// Found by resolution.
        Active = "active",
        /// Kept for the record; never reused.
        Archived = "archived",
    }
);

text_enum!(
    /// What the host last knew of the session's sandbox.
    ContainerStatus, "container status" {
        /// The guest is running and may write `outbound.db`.
        Running = "running",
        /// The guest is alive but waiting for work.
        Idle = "idle",
        /// No guest runs; the host may recover `outbound.db`.
        Stopped = "stopped",
    }
);

/// One chat on one platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagingGroup {
    /// Registry id.
    pub id: MessagingGroupId,
    /// Platform, e.g. `slack`.
    pub channel_type: String,
    /// The platform's id of the chat, e.g. `C0123`.
    pub platform_id: String,
    /// Display name, if known.
    pub name: Option<String>,
    /// When it was registered.
    pub created_at: Timestamp,
}

/// What is needed to register a messaging group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessagingGroup {
    /// Platform, e.g. `slack`.
    pub channel_type: String,
    /// The platform's id of the chat.
    pub platform_id: String,
    /// Display name, if known.
    pub name: Option<String>,
}

impl NewMessagingGroup {
    /// A messaging group without a display name.
    pub fn new(channel_type: impl Into<String>, platform_id: impl Into<String>) -> Self {
        Self {
            channel_type: channel_type.into(),
            platform_id: platform_id.into(),
            name: None,
        }
    }
}

/// One conversation context of one agent group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Registry id; also the folder name.
    pub id: SessionId,
    /// The agent group that owns it; also the parent folder name.
    pub agent_group_id: AgentGroupId,
    /// The chat it was created for, if any.
    pub messaging_group_id: Option<MessagingGroupId>,
    /// The thread it serves (`per-thread` sessions only).
    pub thread_id: Option<ThreadId>,
    /// The mode it was created in.
    pub mode: SessionMode,
    /// Which agent runtime serves it, once known.
    pub agent_provider: Option<String>,
    /// Whether it is still resolvable.
    pub status: SessionStatus,
    /// What the host last knew of its sandbox.
    pub container_status: ContainerStatus,
    /// Last time a message was written or the guest started.
    pub last_active: Option<Timestamp>,
    /// When it was created.
    pub created_at: Timestamp,
    /// The host that has the session's folder (multi-host deployments).
    pub owner_host: Option<String>,
}

impl Session {
    /// The resolution key this session holds while it is active: the
    /// [`ResolveRequest::key`] of the requests that find it.
    pub fn resolution_key(&self) -> Option<String> {
        ResolveRequest::new(
            self.agent_group_id.clone(),
            self.messaging_group_id.clone(),
            self.thread_id.clone(),
            self.mode,
        )
        .key()
    }
}

/// The arguments of `resolve_session`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveRequest {
    /// Whose session.
    pub agent_group: AgentGroupId,
    /// The chat the message came from, if any.
    pub messaging_group: Option<MessagingGroupId>,
    /// The thread inside that chat, if any.
    pub thread: Option<ThreadId>,
    /// How the agent group is wired to the chat.
    pub mode: SessionMode,
    /// Host recorded as owner of a newly created session.
    pub owner_host: Option<String>,
}

impl ResolveRequest {
    /// A request with no owner host.
    pub fn new(
        agent_group: AgentGroupId,
        messaging_group: Option<MessagingGroupId>,
        thread: Option<ThreadId>,
        mode: SessionMode,
    ) -> Self {
        Self {
            agent_group,
            messaging_group,
            thread,
            mode,
            owner_host: None,
        }
    }

    /// The key under which at most one active session may exist, or `None`
    /// when every call must create a new session (no messaging group and a
    /// mode other than `agent-shared`, as in the reference).
    ///
    /// Backends store this in a column with a partial unique index over
    /// active sessions, which is what makes resolution atomic.
    pub fn key(&self) -> Option<String> {
        let ag = self.agent_group.as_str();
        // Ids never contain `/`, so the key cannot be ambiguous.
        match (self.mode, &self.messaging_group, &self.thread) {
            (SessionMode::AgentShared, _, _) => Some(format!("agent/{ag}")),
            (_, None, _) => None,
            (SessionMode::PerThread, Some(mg), Some(thread)) => {
                Some(format!("thread/{ag}/{mg}/{thread}"))
            }
            (SessionMode::Shared | SessionMode::PerThread, Some(mg), _) => {
                Some(format!("chat/{ag}/{mg}"))
            }
        }
    }

    /// The thread stored on a new session: only `per-thread` keeps it.
    pub fn stored_thread(&self) -> Option<ThreadId> {
        match self.mode {
            SessionMode::PerThread if self.messaging_group.is_some() => self.thread.clone(),
            _ => None,
        }
    }

    /// The session this request creates when none matches.
    pub fn new_session(&self, id: SessionId, now: Timestamp) -> Session {
        Session {
            id,
            agent_group_id: self.agent_group.clone(),
            messaging_group_id: self.messaging_group.clone(),
            thread_id: self.stored_thread(),
            mode: self.mode,
            agent_provider: None,
            status: SessionStatus::Active,
            container_status: ContainerStatus::Stopped,
            last_active: None,
            created_at: now,
            owner_host: self.owner_host.clone(),
        }
    }
}

/// The result of `resolve_session`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The session found or created.
    pub session: Session,
    /// Whether this call created it.
    pub created: bool,
}

/// Which sessions `list_sessions` returns; every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    /// Only sessions with this status.
    pub status: Option<SessionStatus>,
    /// Only sessions with this container status.
    pub container_status: Option<ContainerStatus>,
    /// Only sessions of this agent group.
    pub agent_group: Option<AgentGroupId>,
    /// Only sessions owned by this host.
    pub owner_host: Option<String>,
}

impl SessionFilter {
    /// Active sessions.
    pub fn active() -> Self {
        Self {
            status: Some(SessionStatus::Active),
            ..Self::default()
        }
    }

    /// Sessions whose sandbox is running.
    pub fn running() -> Self {
        Self {
            container_status: Some(ContainerStatus::Running),
            ..Self::default()
        }
    }

    /// Sessions of one agent group.
    pub fn agent_group(agent_group: AgentGroupId) -> Self {
        Self {
            agent_group: Some(agent_group),
            ..Self::default()
        }
    }

    /// Whether `session` passes this filter.
    pub fn matches(&self, session: &Session) -> bool {
        self.status.is_none_or(|s| s == session.status)
            && self
                .container_status
                .is_none_or(|c| c == session.container_status)
            && self
                .agent_group
                .as_ref()
                .is_none_or(|a| *a == session.agent_group_id)
            && self
                .owner_host
                .as_ref()
                .is_none_or(|h| session.owner_host.as_ref() == Some(h))
    }
}

/// Changes to apply to a session atomically; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionUpdate {
    /// New status.
    pub status: Option<SessionStatus>,
    /// New container status.
    pub container_status: Option<ContainerStatus>,
    /// New last-active time.
    pub last_active: Option<Timestamp>,
    /// New agent provider (`Some(None)` clears it).
    pub agent_provider: Option<Option<String>>,
}

impl SessionUpdate {
    /// Applies the set fields to `session`.
    pub fn apply(&self, session: &mut Session) {
        if let Some(status) = self.status {
            session.status = status;
        }
        if let Some(container_status) = self.container_status {
            session.container_status = container_status;
        }
        if let Some(last_active) = self.last_active {
            session.last_active = Some(last_active);
        }
        if let Some(provider) = &self.agent_provider {
            session.agent_provider = provider.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(mode: SessionMode, mg: Option<&str>, thread: Option<&str>) -> ResolveRequest {
        ResolveRequest::new(
            AgentGroupId::new("ag").unwrap(),
            mg.map(|m| MessagingGroupId::new(m).unwrap()),
            thread.map(|t| ThreadId::new(t).unwrap()),
            mode,
        )
    }

    #[test]
    fn modes_parse_and_print() {
        for mode in SessionMode::ALL {
            assert_eq!(mode.as_str().parse::<SessionMode>().unwrap(), *mode);
        }
        let err = "threaded".parse::<SessionMode>().unwrap_err();
        assert!(err.to_string().contains("per-thread"), "{err}");
    }

    #[test]
    fn keys_follow_the_spec() {
        use SessionMode::*;
        assert_eq!(
            req(Shared, Some("m"), Some("t")).key(),
            req(Shared, Some("m"), None).key()
        );
        assert_eq!(
            req(PerThread, Some("m"), None).key(),
            req(Shared, Some("m"), None).key()
        );
        assert_ne!(
            req(PerThread, Some("m"), Some("t")).key(),
            req(Shared, Some("m"), None).key()
        );
        assert_eq!(
            req(AgentShared, Some("a"), None).key(),
            req(AgentShared, Some("b"), Some("t")).key()
        );
        assert_eq!(req(Shared, None, None).key(), None);
        assert_eq!(req(PerThread, None, Some("t")).key(), None);
        assert_eq!(
            req(AgentShared, None, None).key().as_deref(),
            Some("agent/ag")
        );
        assert_eq!(req(Shared, Some("m"), Some("t")).stored_thread(), None);
        assert_eq!(req(AgentShared, Some("m"), Some("t")).stored_thread(), None);
    }
}
