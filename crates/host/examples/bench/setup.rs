//! A host (registry + `SessionManager`) in a scratch folder, and helpers to
//! make sessions and messages.

use std::path::Path;
use std::sync::Arc;

use airlock_core::mailbox::NewInboundMessage;
use airlock_core::{
    AgentGroupId, MessageId, MessagingGroupId, NewMessagingGroup, ResolveRequest, Session,
    SessionMode, SessionStore, SessionStoreExt, ThreadId,
};
use airlock_host::{ManagerConfig, SessionManager};
use airlock_sqlite_fs::SqliteSessionStore;

use crate::report::fail;

/// The host of one workload.
pub struct Host {
    /// The manager every workload drives.
    pub manager: Arc<SessionManager>,
    /// The registry underneath, for bulk set-up that needs no folders.
    pub store: Arc<dyn SessionStore>,
}

impl Host {
    /// A registry in `<dir>/airlock.db` and session folders under `dir`.
    pub fn open(dir: &Path) -> Result<Self, String> {
        let store: Arc<dyn SessionStore> =
            Arc::new(SqliteSessionStore::open_in(dir).map_err(fail("opening the registry"))?);
        let manager = SessionManager::new(store.clone(), ManagerConfig::new(dir));
        Ok(Self {
            manager: Arc::new(manager),
            store,
        })
    }

    /// A new session of agent group `agent` (no chat: every call creates one).
    pub async fn new_session(&self, agent: &str) -> Result<Session, String> {
        let request = ResolveRequest::new(ids::agent(agent)?, None, None, SessionMode::Shared);
        let resolved = self
            .manager
            .resolve_session(request)
            .await
            .map_err(fail("resolving a session"))?;
        Ok(resolved.session)
    }

    /// The messaging group `(bench, platform_id)`, created on first use.
    pub async fn chat(&self, platform_id: &str) -> Result<MessagingGroupId, String> {
        let group = self
            .store
            .ensure_messaging_group(NewMessagingGroup::new("bench", platform_id))
            .await
            .map_err(fail("creating a messaging group"))?;
        Ok(group.id)
    }
}

/// Typed ids from bench-made strings.
pub mod ids {
    use super::*;

    /// An agent group id.
    pub fn agent(id: &str) -> Result<AgentGroupId, String> {
        AgentGroupId::new(id).map_err(fail("agent group id"))
    }

    /// A thread id.
    pub fn thread(id: &str) -> Result<ThreadId, String> {
        ThreadId::new(id).map_err(fail("thread id"))
    }

    /// A message id.
    pub fn message(id: &str) -> Result<MessageId, String> {
        MessageId::new(id).map_err(fail("message id"))
    }
}

/// A chat message whose content is exactly `bytes` long (at least 12).
pub fn chat_message(id: &str, bytes: usize) -> Result<NewInboundMessage, String> {
    let text = "x".repeat(bytes.saturating_sub(r#"{"text":""}"#.len()));
    Ok(NewInboundMessage::new(
        ids::message(id)?,
        "chat",
        format!(r#"{{"text":"{text}"}}"#),
    ))
}
