//! `SessionManager`: the host's API, composing the registry
//! ([`SessionStore`]) with a mailbox factory ([`MailboxFactory`]), both
//! behind core's traits.
//!
//! Each operation reads the session from the registry once, checks that
//! this host owns it, and works on the [`SessionHandle`] that answer gives:
//! every mailbox call after that needs no further lookup. Every operation
//! runs in a `tracing` span carrying the session id. The default wiring
//! (SQLite-file mailboxes under a data dir) is in `wiring.rs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use airlock_core::mailbox::{
    Destination, MailboxCounts, NewHostMessage, NewInboundMessage, OutboundMessage, Routing,
    WrittenMessage,
};
use airlock_core::{
    ContainerStatus, DynHostMailbox, Error, HostMailboxStore as _, HostMailboxStoreExt,
    MailboxFactory, MessageId, OutboxFile, ResolveRequest, Resolved, Result, Session, SessionId,
    SessionRef, SessionStore, SessionStoreExt, Timestamp,
};
use tracing::Instrument;

use crate::last_active::LastActive;
use crate::routing::{self, MessageRouter, Placement};

pub use crate::wiring::ManagerConfig;

/// What a guest about to start needs: its session folder and environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestLaunch {
    /// The session, its container now marked running.
    pub session: Session,
    /// The session folder on the host to mount into the sandbox (`None` for
    /// a mailbox that lives in no folder).
    pub session_dir: Option<PathBuf>,
    /// Environment for the guest process (the mount self-test's nonce).
    pub env: Vec<(String, String)>,
}

impl GuestLaunch {
    /// Environment for the guest process: what its mount self-test expects.
    pub fn env(&self) -> impl Iterator<Item = (&str, &str)> {
        self.env.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The value of environment variable `name` for the guest.
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env().find(|(k, _)| *k == name).map(|(_, v)| v)
    }
}

/// One session as the registry answered, with the host side of its mailbox.
///
/// Obtained with one registry lookup ([`SessionManager::open`]) or none
/// ([`SessionManager::handle`], from a session read in bulk); only for a
/// session this host owns. Every mailbox call on it needs no further lookup.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    session: Session,
    mailbox: Arc<DynHostMailbox>,
}

impl SessionHandle {
    /// The session as the registry answered.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The host side of its mailbox.
    pub fn mailbox(&self) -> &Arc<DynHostMailbox> {
        &self.mailbox
    }
}

/// The host's session API.
#[derive(Debug, Clone)]
pub struct SessionManager {
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) mailboxes: Arc<dyn MailboxFactory>,
    pub(crate) config: ManagerConfig,
    /// Host-only files of the host layer (`delivery.db`, delivery leases,
    /// prune intents).
    pub(crate) state_dir: PathBuf,
    /// Where messages for other hosts' sessions go (`None`: refused with
    /// `NotOwner`).
    router: Option<Arc<dyn MessageRouter>>,
    /// Who owns new sessions (`None`: this host).
    placement: Option<Arc<dyn Placement>>,
    /// The `last_active` touches of inbound writes, coalesced.
    last_active: Arc<LastActive>,
}

macro_rules! session_span {
    ($op:literal, $id:expr) => {
        tracing::info_span!($op, session = %$id)
    };
}

impl SessionManager {
    /// A manager over `store` and `mailboxes`; the host layer's own files
    /// (`delivery.db`, leases) go under `config.data_dir`'s `host-state/`.
    pub fn compose(
        store: Arc<dyn SessionStore>,
        mailboxes: Arc<dyn MailboxFactory>,
        config: ManagerConfig,
    ) -> Self {
        let state_dir = config.data_dir.join("host-state");
        Self::with_state_dir(store, mailboxes, config, state_dir)
    }

    pub(crate) fn with_state_dir(
        store: Arc<dyn SessionStore>,
        mailboxes: Arc<dyn MailboxFactory>,
        config: ManagerConfig,
        state_dir: PathBuf,
    ) -> Self {
        let last_active = Arc::new(LastActive::new(config.last_active_interval));
        Self {
            store,
            mailboxes,
            config,
            state_dir,
            router: None,
            placement: None,
            last_active,
        }
    }

    /// Routes messages for sessions another host owns through `router`
    /// instead of refusing them.
    pub fn with_router(mut self, router: Arc<dyn MessageRouter>) -> Self {
        self.router = Some(router);
        self
    }

    /// Lets `placement` choose the owner of each session this manager
    /// creates (default: this host); see [`Placement`].
    pub fn with_placement(mut self, placement: Arc<dyn Placement>) -> Self {
        self.placement = Some(placement);
        self
    }

    /// This host's id (`owner_host` of the sessions it creates).
    pub fn host_id(&self) -> Option<&str> {
        self.config.host_id.as_deref()
    }

    /// The registry.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// The mailbox factory.
    pub fn mailboxes(&self) -> &Arc<dyn MailboxFactory> {
        &self.mailboxes
    }

    /// The data dir.
    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// Where the host layer keeps its own files (`delivery.db`, leases).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The host layer's own files of one session (its delivery lease), in
    /// the same per-session folder as the default wiring's host state, so
    /// pruning the session removes both.
    pub fn session_state_dir(&self, session: &SessionRef) -> PathBuf {
        self.state_dir
            .join("sessions")
            .join(session.agent_group.as_str())
            .join(session.session.as_str())
    }

    /// The handle of `session` as read already (no registry lookup);
    /// [`Error::NotOwner`] unless this host may touch its mailbox.
    pub fn handle(&self, session: Session) -> Result<SessionHandle> {
        routing::check_owner(&session, self.host_id())?;
        let mailbox = self.mailboxes.host_mailbox(&SessionRef::from(&session));
        Ok(SessionHandle { session, mailbox })
    }

    /// Reads session `id` from the registry (one lookup) and returns its handle.
    pub async fn open(&self, id: &SessionId) -> Result<SessionHandle> {
        self.handle(self.store.session(id).await?)
    }

    /// Finds or creates the session for a chat; its mailbox exists before
    /// this returns.
    pub async fn resolve_session(&self, mut request: ResolveRequest) -> Result<Resolved> {
        if request.owner_host.is_none() {
            request.owner_host = match &self.placement {
                Some(placement) => placement
                    .place(&request)
                    .await?
                    .map(routing::placement::checked_owner)
                    .transpose()?,
                None => None,
            }
            .or_else(|| self.config.host_id.clone());
        }
        let span = tracing::info_span!("resolve_session", agent_group = %request.agent_group);
        async {
            let resolved = self.store.resolve_session(request).await?;
            // Another host's folder is neither created nor healed here.
            if routing::foreign_owner(&resolved.session, self.host_id()).is_some() {
                return Ok(resolved);
            }
            let of = SessionRef::from(&resolved.session);
            // Also heals a registry entry whose folder was removed by hand.
            if (resolved.created || !self.mailboxes.mailbox_exists(&of).await?)
                && let Err(e) = self.create_routed(&resolved.session).await
            {
                // A row without its folder (or its routing) would be listed
                // and then break delivery; the next resolve creates both again.
                if resolved.created
                    && let Err(undo) = self.store.delete_session(&resolved.session.id).await
                {
                    tracing::error!(session = %resolved.session.id, error = %undo, "could not remove the session whose folder failed");
                }
                return Err(e);
            }
            tracing::debug!(session = %resolved.session.id, created = resolved.created, "resolved");
            Ok(resolved)
        }
        .instrument(span)
        .await
    }

    /// Creates `id`'s mailbox if missing (this host must own it); returns
    /// whether it did.
    pub async fn ensure_folder(&self, id: &SessionId) -> Result<bool> {
        let handle = self.open(id).await?;
        let of = SessionRef::from(handle.session());
        if self.mailboxes.mailbox_exists(&of).await? {
            return Ok(false);
        }
        self.create_routed(handle.session()).await?;
        Ok(true)
    }

    /// Creates `session`'s mailbox with its routing written (one commit
    /// where the backend can).
    async fn create_routed(&self, session: &Session) -> Result<Arc<DynHostMailbox>> {
        async {
            let routing = self.routing_of(session).await?;
            self.mailboxes
                .create_mailbox_routed(&SessionRef::from(session), routing)
                .await
        }
        .instrument(session_span!("create_mailbox", session.id))
        .await
    }

    /// The session with `id`.
    pub async fn session(&self, id: &SessionId) -> Result<Session> {
        self.store.session(id).await
    }

    /// Writes an inbound message (attachments extracted) and sets
    /// `last_active` (coalesced: see [`ManagerConfig::last_active_interval`]). For a session another host owns, the message is
    /// routed to it (outcome `Routed`, once durably queued) when the manager
    /// has a router, else refused with [`Error::NotOwner`].
    pub async fn write_message(
        &self,
        id: &SessionId,
        message: NewInboundMessage,
    ) -> Result<WrittenMessage> {
        async {
            let session = self.store.session(id).await?;
            if let Some(owner) = routing::foreign_owner(&session, self.host_id()) {
                let Some(router) = &self.router else {
                    return Err(Error::NotOwner {
                        session: id.to_string(),
                        owner: owner.to_owned(),
                    });
                };
                let owner = router.route(owner, id, &message).await?;
                return Ok(routing::routed_ack(&message, &owner));
            }
            let handle = self.handle(session)?;
            self.write_to(&handle, message).await
        }
        .instrument(session_span!("write_message", id))
        .await
    }

    /// Writes an inbound message through `handle` (no registry lookup) and
    /// sets `last_active`.
    pub async fn write_to(
        &self,
        handle: &SessionHandle,
        message: NewInboundMessage,
    ) -> Result<WrittenMessage> {
        let written = handle.mailbox.write_message(message).await?;
        for failed in written.attachments.iter().filter(|a| a.error.is_some()) {
            tracing::warn!(message = %written.id, index = failed.index, error = ?failed.error, "attachment not stored");
        }
        self.last_active
            .touch(&self.store, &handle.session.id, Timestamp::now())
            .await?;
        Ok(written)
    }

    /// Writes every `last_active` touch still held by the coalescing
    /// interval (call before a long-lived host stops).
    pub async fn flush_last_active(&self) {
        self.last_active.flush(&self.store).await;
    }

    /// Writes `session_routing` from the session's messaging group and
    /// thread, and returns what it wrote. [`resolve_session`](Self::resolve_session)
    /// does this when it creates a session and
    /// [`prepare_guest`](Self::prepare_guest) before every start, as the
    /// reference does on every wake.
    pub async fn write_routing(&self, id: &SessionId) -> Result<Routing> {
        let handle = self.open(id).await?;
        self.publish_routing(&handle).await
    }

    /// The session's default routing: its messaging group's chat and its
    /// thread (all `None` without a messaging group).
    pub async fn routing_of(&self, session: &Session) -> Result<Routing> {
        let Some(mg) = &session.messaging_group_id else {
            return Ok(Routing::default());
        };
        let group = self.store.messaging_group(mg).await?;
        Ok(Routing {
            channel_type: Some(group.channel_type),
            platform_id: Some(group.platform_id),
            thread_id: session.thread_id.as_ref().map(|t| t.to_string()),
        })
    }

    async fn publish_routing(&self, handle: &SessionHandle) -> Result<Routing> {
        async {
            let routing = self.routing_of(&handle.session).await?;
            handle.mailbox.write_routing(routing.clone()).await?;
            Ok(routing)
        }
        .instrument(session_span!("write_routing", handle.session.id))
        .await
    }

    /// Replaces the whole `destinations` table in one transaction.
    pub async fn replace_destinations(&self, id: &SessionId, rows: Vec<Destination>) -> Result<()> {
        let handle = self.open(id).await?;
        handle
            .mailbox
            .replace_destinations(rows)
            .instrument(session_span!("replace_destinations", id))
            .await
    }

    /// Writes a `question_response` system message.
    pub async fn write_system_response(
        &self,
        id: &SessionId,
        message_id: MessageId,
        request_id: String,
        status: String,
        result: serde_json::Value,
    ) -> Result<WrittenMessage> {
        let handle = self.open(id).await?;
        handle
            .mailbox
            .write_system_response(message_id, &request_id, &status, result)
            .instrument(session_span!("write_system_response", id))
            .await
    }

    /// Stores a host-originated outbound message (never in the guest's
    /// `outbound.db`); returns its seq.
    pub async fn write_host_message(&self, id: &SessionId, message: NewHostMessage) -> Result<i64> {
        let handle = self.open(id).await?;
        let seq = handle
            .mailbox
            .write_host_message(message)
            .instrument(session_span!("write_host_message", id))
            .await?;
        Ok(seq.get())
    }

    /// Outbound messages due at `now` and not yet delivered, in seq order.
    pub async fn due_outbound(
        &self,
        id: &SessionId,
        now: Timestamp,
    ) -> Result<Vec<OutboundMessage>> {
        let handle = self.open(id).await?;
        handle
            .mailbox
            .due_outbound(now)
            .instrument(session_span!("due_outbound", id))
            .await
    }

    /// Records a delivery.
    pub async fn mark_delivered(
        &self,
        id: &SessionId,
        message_id: String,
        platform_message_id: Option<String>,
    ) -> Result<()> {
        let handle = self.open(id).await?;
        handle
            .mailbox
            .mark_delivered(&message_id, platform_message_id)
            .instrument(session_span!("mark_delivered", id))
            .await
    }

    /// Records a delivery that failed for good.
    pub async fn mark_delivery_failed(&self, id: &SessionId, message_id: String) -> Result<()> {
        let handle = self.open(id).await?;
        handle
            .mailbox
            .mark_delivery_failed(&message_id)
            .instrument(session_span!("mark_delivery_failed", id))
            .await
    }

    /// Reads the files a guest declared for outbound message `message_id`
    /// from its outbox; unsafe, missing or non-regular files are skipped.
    /// An unsafe `message_id` (it comes from the guest) is an error.
    pub async fn read_outbox_files(
        &self,
        id: &SessionId,
        message_id: String,
        names: Vec<String>,
    ) -> Result<Vec<OutboxFile>> {
        let handle = self.open(id).await?;
        handle
            .mailbox
            .read_outbox_files(&message_id, &names)
            .instrument(session_span!("read_outbox_files", id))
            .await
    }

    /// Removes a delivered message's outbox folder, best effort: failures
    /// are logged, never returned (that would deliver the message twice).
    pub async fn clear_outbox(&self, id: &SessionId, message_id: String) {
        match self.open(id).await {
            Ok(handle) => {
                handle
                    .mailbox
                    .clear_outbox(&message_id)
                    .instrument(session_span!("clear_outbox", id))
                    .await
            }
            Err(e) => {
                tracing::warn!(session = %id, error = %e, "clear_outbox: not this host's session")
            }
        }
    }

    /// Copies the guest's completed/failed acks into `messages_in.status`.
    pub async fn sync_acks(&self, id: &SessionId) -> Result<usize> {
        let handle = self.open(id).await?;
        handle
            .mailbox
            .sync_acks()
            .instrument(session_span!("sync_acks", id))
            .await
    }

    /// Pending, triggering, due inbound messages: whether to wake a guest.
    pub async fn count_due(&self, id: &SessionId, now: Timestamp) -> Result<u64> {
        let handle = self.open(id).await?;
        handle
            .mailbox
            .count_due(now)
            .instrument(session_span!("count_due", id))
            .await
    }

    /// Message counts of both mailboxes.
    pub async fn counts(&self, id: &SessionId) -> Result<MailboxCounts> {
        let handle = self.open(id).await?;
        handle
            .mailbox
            .counts()
            .instrument(session_span!("counts", id))
            .await
    }

    /// Age of the guest's heartbeat, or `None` when it never beat.
    pub async fn heartbeat_age(&self, id: &SessionId, now: Timestamp) -> Result<Option<Duration>> {
        let handle = self.open(id).await?;
        handle
            .mailbox
            .heartbeat_age(now)
            .instrument(session_span!("heartbeat_age", id))
            .await
    }

    /// Prepares `id`'s mailbox for a guest that is about to start: writes
    /// its `session_routing` and a fresh mount nonce into it and marks the
    /// container running. Start the guest with [`GuestLaunch::env`], so its
    /// mount self-test (the SQLite-file guest's `check_mount_from_env`)
    /// can tell a mount that hides host writes from one that works.
    pub async fn prepare_guest(&self, id: &SessionId) -> Result<GuestLaunch> {
        let handle = self.open(id).await?;
        self.prepare(&handle)
            .instrument(session_span!("prepare_guest", id))
            .await
    }

    /// [`Self::prepare_guest`] through `handle` (no registry lookup).
    pub async fn prepare(&self, handle: &SessionHandle) -> Result<GuestLaunch> {
        self.publish_routing(handle).await?;
        let setup = handle.mailbox.prepare_guest().await?;
        let session = self
            .set_container(&handle.session.id, ContainerStatus::Running)
            .await?;
        Ok(GuestLaunch {
            session,
            session_dir: setup.session_dir,
            env: setup.env,
        })
    }

    /// Marks the container running (and the session active now).
    pub async fn mark_container_running(&self, id: &SessionId) -> Result<Session> {
        self.set_container(id, ContainerStatus::Running).await
    }

    /// Marks the container idle.
    pub async fn mark_container_idle(&self, id: &SessionId) -> Result<Session> {
        self.set_container(id, ContainerStatus::Idle).await
    }

    /// Marks the container stopped, then recovers a hot journal a killed
    /// guest may have left in `outbound.db` (the one moment the host may
    /// open that file read-write).
    pub async fn mark_container_stopped(&self, id: &SessionId) -> Result<Session> {
        let handle = self.open(id).await?;
        self.mark_stopped(&handle).await
    }

    /// [`Self::mark_container_stopped`] through `handle`: the registry's
    /// answer to the write is the proof that the guest is stopped.
    pub async fn mark_stopped(&self, handle: &SessionHandle) -> Result<Session> {
        let id = &handle.session.id;
        let (session, stopped) = self
            .store
            .mark_guest_stopped(id, Timestamp::now())
            .instrument(session_span!("set_container_status", id))
            .await?;
        if let Some(stopped) = stopped {
            let recovered = handle
                .mailbox
                .recover_stopped_guest(stopped)
                .instrument(session_span!("recover_outbound", id))
                .await?;
            if recovered {
                tracing::warn!(session = %id, "rolled back a hot journal left in outbound.db by a stopped guest");
            }
        }
        Ok(session)
    }

    async fn set_container(&self, id: &SessionId, status: ContainerStatus) -> Result<Session> {
        self.store
            .set_container_status(id, status, Timestamp::now())
            .instrument(session_span!("set_container_status", id))
            .await
    }
}
