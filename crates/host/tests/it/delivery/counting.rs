//! A registry that counts its reads: how many lookups an operation costs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use airlock_core::{
    MemorySessionStore, MessagingGroup, MessagingGroupId, NewMessagingGroup, ResolveRequest,
    Resolved, Result, Session, SessionFilter, SessionId, SessionStore, SessionUpdate,
};

/// [`MemorySessionStore`] counting every read (`session`, `list_sessions`,
/// `messaging_group`, `find_messaging_group`) and every session update.
#[derive(Debug, Default)]
pub struct CountingStore {
    inner: MemorySessionStore,
    reads: AtomicUsize,
    updates: AtomicUsize,
}

impl CountingStore {
    /// A fresh, empty registry.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Reads so far.
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    /// `update_session` calls so far (a `last_active` touch is one).
    pub fn updates(&self) -> usize {
        self.updates.load(Ordering::SeqCst)
    }

    fn read(&self) {
        self.reads.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl SessionStore for CountingStore {
    async fn create_messaging_group(&self, new: NewMessagingGroup) -> Result<MessagingGroup> {
        self.inner.create_messaging_group(new).await
    }
    async fn messaging_group(&self, id: &MessagingGroupId) -> Result<MessagingGroup> {
        self.read();
        self.inner.messaging_group(id).await
    }
    async fn find_messaging_group(
        &self,
        channel_type: &str,
        platform_id: &str,
    ) -> Result<Option<MessagingGroup>> {
        self.read();
        self.inner
            .find_messaging_group(channel_type, platform_id)
            .await
    }
    async fn resolve_session(&self, request: ResolveRequest) -> Result<Resolved> {
        self.inner.resolve_session(request).await
    }
    async fn session(&self, id: &SessionId) -> Result<Session> {
        self.read();
        self.inner.session(id).await
    }
    async fn list_sessions(&self, filter: SessionFilter) -> Result<Vec<Session>> {
        self.read();
        self.inner.list_sessions(filter).await
    }
    async fn update_session(&self, id: &SessionId, update: SessionUpdate) -> Result<Session> {
        self.updates.fetch_add(1, Ordering::SeqCst);
        self.inner.update_session(id, update).await
    }
    async fn delete_session(&self, id: &SessionId) -> Result<()> {
        self.inner.delete_session(id).await
    }
    async fn adopt_session(&self, session: Session) -> Result<()> {
        self.inner.adopt_session(session).await
    }
}
