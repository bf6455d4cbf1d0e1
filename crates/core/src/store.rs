//! The session registry trait and its conveniences.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::host_mailbox::GuestStopped;
use crate::ids::{MessagingGroupId, SessionId};
use crate::session::{
    ContainerStatus, MessagingGroup, NewMessagingGroup, ResolveRequest, Resolved, Session,
    SessionFilter, SessionStatus, SessionUpdate,
};
use crate::time::Timestamp;

/// A session registry shared by the tasks of a host, usable as `dyn`.
pub type DynSessionStore = dyn SessionStore;

/// The registry of messaging groups and sessions.
///
/// # Contract
///
/// Every backend passes `airlock_core::testing` (feature `testing`), which
/// checks each sentence below.
///
/// - Unknown ids give [`Error::NotFound`]; nothing is created implicitly.
/// - Messaging groups are unique on `(channel_type, platform_id)`.
/// - Lists are ordered by `created_at`, then id (ids sort by creation time).
/// - `resolve_session` is atomic across tasks *and* processes: concurrent
///   calls with the same key return the same session, exactly one of them
///   with `created = true`. Backends enforce it with a unique index over the
///   active sessions' [`ResolveRequest::key`], never with a process lock alone.
#[async_trait]
pub trait SessionStore: Debug + Send + Sync + 'static {
    /// Registers a messaging group.
    ///
    /// Fails with [`Error::AlreadyExists`] if `(channel_type, platform_id)`
    /// is taken; see [`SessionStoreExt::ensure_messaging_group`] for
    /// get-or-create.
    async fn create_messaging_group(&self, new: NewMessagingGroup) -> Result<MessagingGroup>;

    /// The messaging group with `id`, or [`Error::NotFound`].
    async fn messaging_group(&self, id: &MessagingGroupId) -> Result<MessagingGroup>;

    /// The messaging group of `(channel_type, platform_id)`, if registered.
    async fn find_messaging_group(
        &self,
        channel_type: &str,
        platform_id: &str,
    ) -> Result<Option<MessagingGroup>>;

    /// Finds the active session for the request's key or creates it.
    ///
    /// - Lookups are scoped by agent group.
    /// - `shared`: one per (agent group, messaging group); the thread is
    ///   ignored and stored as `None`.
    /// - `per-thread`: one per (agent group, messaging group, thread); a
    ///   missing thread behaves like `shared`.
    /// - `agent-shared`: one per agent group; only a session created in this
    ///   mode is found. A new one stores the creating chat and no thread.
    /// - Without a messaging group, modes other than `agent-shared` create a
    ///   new session on every call (the reference's behaviour).
    /// - Only `active` sessions are found; archived ones are never reused.
    /// - A new session is `active`, `stopped`, with no `last_active` and no
    ///   `agent_provider`.
    /// - An unknown messaging group is [`Error::NotFound`].
    ///
    /// The registry does not create the session folder; the host layer does
    /// that before handing the session out.
    async fn resolve_session(&self, request: ResolveRequest) -> Result<Resolved>;

    /// The session with `id`, or [`Error::NotFound`].
    async fn session(&self, id: &SessionId) -> Result<Session>;

    /// Sessions passing `filter`, oldest first.
    async fn list_sessions(&self, filter: SessionFilter) -> Result<Vec<Session>>;

    /// Applies `update` atomically and returns the session as stored after it.
    ///
    /// Archiving frees the session's resolution key at once, so the next
    /// resolve creates a new session. Reactivating an archived session whose
    /// key was taken meanwhile fails with [`Error::Conflict`].
    async fn update_session(&self, id: &SessionId, update: SessionUpdate) -> Result<Session>;

    /// Removes the session from the registry; [`Error::NotFound`] if unknown.
    async fn delete_session(&self, id: &SessionId) -> Result<()>;

    /// Registers `session` exactly as given (its id, mode, statuses and
    /// timestamps), for adopting the sessions of an existing install whose
    /// folders are named by those ids.
    ///
    /// - A session with that id already exists: [`Error::AlreadyExists`],
    ///   whatever its fields; nothing changes.
    /// - It is active and another active session holds its
    ///   [`Session::resolution_key`]: [`Error::Conflict`]; nothing changes.
    /// - Its messaging group is unknown: [`Error::NotFound`].
    /// - Otherwise `resolve_session` finds it from now on, as if it had
    ///   created it.
    async fn adopt_session(&self, session: Session) -> Result<()>;
}

/// Conveniences built on [`SessionStore`]'s required methods.
#[async_trait]
pub trait SessionStoreExt: SessionStore {
    /// Gets the messaging group of `(channel_type, platform_id)` or registers
    /// it; concurrent calls agree on one group.
    async fn ensure_messaging_group(&self, new: NewMessagingGroup) -> Result<MessagingGroup> {
        if let Some(found) = self
            .find_messaging_group(&new.channel_type, &new.platform_id)
            .await?
        {
            return Ok(found);
        }
        let (channel_type, platform_id) = (new.channel_type.clone(), new.platform_id.clone());
        match self.create_messaging_group(new).await {
            Err(Error::AlreadyExists { .. }) => self
                .find_messaging_group(&channel_type, &platform_id)
                .await?
                .ok_or_else(|| Error::not_found("messaging group", &platform_id)),
            other => other,
        }
    }

    /// Marks the session archived, so it is never resolved again.
    async fn archive_session(&self, id: &SessionId) -> Result<Session> {
        self.update_session(
            id,
            SessionUpdate {
                status: Some(SessionStatus::Archived),
                ..SessionUpdate::default()
            },
        )
        .await
    }

    /// Sets the container status; `running` also sets `last_active = now`.
    async fn set_container_status(
        &self,
        id: &SessionId,
        status: ContainerStatus,
        now: Timestamp,
    ) -> Result<Session> {
        self.update_session(
            id,
            SessionUpdate {
                container_status: Some(status),
                last_active: (status == ContainerStatus::Running).then_some(now),
                ..SessionUpdate::default()
            },
        )
        .await
    }

    /// Marks the container stopped; returns the session as the registry
    /// answered and, when that answer says `stopped`, the proof of it.
    async fn mark_guest_stopped(
        &self,
        id: &SessionId,
        now: Timestamp,
    ) -> Result<(Session, Option<GuestStopped>)> {
        let session = self
            .set_container_status(id, ContainerStatus::Stopped, now)
            .await?;
        let proof = GuestStopped::from_session(&session);
        Ok((session, proof))
    }

    /// The proof that the session's guest is stopped, if the registry says so now.
    async fn guest_stopped(&self, id: &SessionId) -> Result<Option<GuestStopped>> {
        Ok(GuestStopped::from_session(&self.session(id).await?))
    }

    /// Sets `last_active`.
    async fn touch_session(&self, id: &SessionId, at: Timestamp) -> Result<Session> {
        self.update_session(
            id,
            SessionUpdate {
                last_active: Some(at),
                ..SessionUpdate::default()
            },
        )
        .await
    }
}

impl<T: SessionStore + ?Sized> SessionStoreExt for T {}

macro_rules! forward_session_store {
    ($wrapper:ty) => {
        #[async_trait]
        impl<T: SessionStore + ?Sized> SessionStore for $wrapper {
            async fn create_messaging_group(
                &self,
                new: NewMessagingGroup,
            ) -> Result<MessagingGroup> {
                (**self).create_messaging_group(new).await
            }
            async fn messaging_group(&self, id: &MessagingGroupId) -> Result<MessagingGroup> {
                (**self).messaging_group(id).await
            }
            async fn find_messaging_group(
                &self,
                channel_type: &str,
                platform_id: &str,
            ) -> Result<Option<MessagingGroup>> {
                (**self)
                    .find_messaging_group(channel_type, platform_id)
                    .await
            }
            async fn resolve_session(&self, request: ResolveRequest) -> Result<Resolved> {
                (**self).resolve_session(request).await
            }
            async fn session(&self, id: &SessionId) -> Result<Session> {
                (**self).session(id).await
            }
            async fn list_sessions(&self, filter: SessionFilter) -> Result<Vec<Session>> {
                (**self).list_sessions(filter).await
            }
            async fn update_session(
                &self,
                id: &SessionId,
                update: SessionUpdate,
            ) -> Result<Session> {
                (**self).update_session(id, update).await
            }
            async fn delete_session(&self, id: &SessionId) -> Result<()> {
                (**self).delete_session(id).await
            }
            async fn adopt_session(&self, session: Session) -> Result<()> {
                (**self).adopt_session(session).await
            }
        }
    };
}

forward_session_store!(Arc<T>);
forward_session_store!(Box<T>);
