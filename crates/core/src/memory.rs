//! `MemorySessionStore`: the in-memory reference registry.
//!
//! It is the first backend of the conformance suite and what doctests use.
//! One mutex guards the whole state, which makes every method atomic.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::ids::{MessagingGroupId, SessionId};
use crate::session::{
    MessagingGroup, NewMessagingGroup, ResolveRequest, Resolved, Session, SessionFilter,
    SessionStatus, SessionUpdate,
};
use crate::store::SessionStore;
use crate::time::Timestamp;

#[derive(Debug, Default)]
struct State {
    groups: BTreeMap<MessagingGroupId, MessagingGroup>,
    sessions: BTreeMap<SessionId, Session>,
    /// Resolution key -> active session holding it.
    active_keys: HashMap<String, SessionId>,
    /// Session -> its resolution key, if it has one.
    keys: HashMap<SessionId, String>,
}

/// A registry kept in memory; nothing survives the process.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use airlock_core::{MemorySessionStore, ResolveRequest, SessionMode, SessionStore, AgentGroupId};
///
/// let store = MemorySessionStore::new();
/// let request = ResolveRequest::new(AgentGroupId::new("support").unwrap(), None, None, SessionMode::AgentShared);
/// let first = store.resolve_session(request.clone()).await.unwrap();
/// let again = store.resolve_session(request).await.unwrap();
/// assert!(first.created && !again.created);
/// assert_eq!(first.session.id, again.session.id);
/// # });
/// ```
#[derive(Debug, Default)]
pub struct MemorySessionStore {
    state: Mutex<State>,
}

impl MemorySessionStore {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn create_messaging_group(&self, new: NewMessagingGroup) -> Result<MessagingGroup> {
        let mut state = self.lock();
        if state
            .groups
            .values()
            .any(|g| g.channel_type == new.channel_type && g.platform_id == new.platform_id)
        {
            return Err(Error::AlreadyExists {
                kind: "messaging group",
                id: format!("{}/{}", new.channel_type, new.platform_id),
            });
        }
        let group = MessagingGroup {
            id: MessagingGroupId::generate(),
            channel_type: new.channel_type,
            platform_id: new.platform_id,
            name: new.name,
            created_at: Timestamp::now(),
        };
        state.groups.insert(group.id.clone(), group.clone());
        Ok(group)
    }

    async fn messaging_group(&self, id: &MessagingGroupId) -> Result<MessagingGroup> {
        self.lock()
            .groups
            .get(id)
            .cloned()
            .ok_or_else(|| Error::not_found("messaging group", id))
    }

    async fn find_messaging_group(
        &self,
        channel_type: &str,
        platform_id: &str,
    ) -> Result<Option<MessagingGroup>> {
        Ok(self
            .lock()
            .groups
            .values()
            .find(|g| g.channel_type == channel_type && g.platform_id == platform_id)
            .cloned())
    }

    async fn resolve_session(&self, request: ResolveRequest) -> Result<Resolved> {
        let mut state = self.lock();
        if let Some(mg) = &request.messaging_group
            && !state.groups.contains_key(mg)
        {
            return Err(Error::not_found("messaging group", mg));
        }
        let key = request.key();
        if let Some(key) = &key
            && let Some(id) = state.active_keys.get(key)
        {
            let session = state.sessions[id].clone();
            return Ok(Resolved {
                session,
                created: false,
            });
        }
        let session = request.new_session(SessionId::generate(), Timestamp::now());
        if let Some(key) = key {
            state.active_keys.insert(key.clone(), session.id.clone());
            state.keys.insert(session.id.clone(), key);
        }
        state.sessions.insert(session.id.clone(), session.clone());
        Ok(Resolved {
            session,
            created: true,
        })
    }

    async fn session(&self, id: &SessionId) -> Result<Session> {
        self.lock()
            .sessions
            .get(id)
            .cloned()
            .ok_or_else(|| Error::not_found("session", id))
    }

    async fn list_sessions(&self, filter: SessionFilter) -> Result<Vec<Session>> {
        let state = self.lock();
        let mut sessions: Vec<Session> = state
            .sessions
            .values()
            .filter(|s| filter.matches(s))
            .cloned()
            .collect();
        sessions.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(sessions)
    }

    async fn update_session(&self, id: &SessionId, update: SessionUpdate) -> Result<Session> {
        let mut state = self.lock();
        let state = &mut *state;
        let Some(session) = state.sessions.get_mut(id) else {
            return Err(Error::not_found("session", id));
        };
        let mut updated = session.clone();
        update.apply(&mut updated);
        if let Some(key) = state.keys.get(id) {
            match (session.status, updated.status) {
                (SessionStatus::Active, SessionStatus::Archived) => {
                    state.active_keys.remove(key);
                }
                (SessionStatus::Archived, SessionStatus::Active) => {
                    if state.active_keys.contains_key(key) {
                        return Err(Error::Conflict(format!(
                            "cannot reactivate session {id}: another active session holds its key"
                        )));
                    }
                    state.active_keys.insert(key.clone(), id.clone());
                }
                _ => {}
            }
        }
        *session = updated.clone();
        Ok(updated)
    }

    async fn adopt_session(&self, session: Session) -> Result<()> {
        let mut state = self.lock();
        if state.sessions.contains_key(&session.id) {
            return Err(Error::AlreadyExists {
                kind: "session",
                id: session.id.to_string(),
            });
        }
        if let Some(mg) = &session.messaging_group_id
            && !state.groups.contains_key(mg)
        {
            return Err(Error::not_found("messaging group", mg));
        }
        let key = session.resolution_key();
        if let Some(key) = &key {
            let active = session.status == SessionStatus::Active;
            if active && let Some(holder) = state.active_keys.get(key) {
                return Err(Error::Conflict(format!(
                    "cannot adopt session {}: active session {holder} holds its key",
                    session.id
                )));
            }
            if active {
                state.active_keys.insert(key.clone(), session.id.clone());
            }
            state.keys.insert(session.id.clone(), key.clone());
        }
        state.sessions.insert(session.id.clone(), session);
        Ok(())
    }

    async fn delete_session(&self, id: &SessionId) -> Result<()> {
        let mut state = self.lock();
        if state.sessions.remove(id).is_none() {
            return Err(Error::not_found("session", id));
        }
        if let Some(key) = state.keys.remove(id)
            && state.active_keys.get(&key) == Some(id)
        {
            state.active_keys.remove(&key);
        }
        Ok(())
    }
}
