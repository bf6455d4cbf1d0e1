//! `SessionManager`: the host's API, composing the registry with the
//! filesystem mailboxes and attachments.
//!
//! Each method is a thin composition: resolution rules live in the
//! [`SessionStore`], file invariants in `airlock-sqlite-fs`. Mailbox work is
//! blocking file I/O, so it runs on tokio's blocking pool; every operation
//! runs in a `tracing` span carrying the session id.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use airlock_core::mailbox::{
    Destination, MailboxCounts, NewHostMessage, NewInboundMessage, OutboundMessage, Routing,
    WrittenMessage,
};
use airlock_core::{
    ContainerStatus, Error, MessageId, OutboxFile, ResolveRequest, Resolved, Result, Session,
    SessionId, SessionRef, SessionStore, SessionStoreExt, Timestamp,
};
use airlock_sqlite_fs::attachments::{
    AttachmentLimits, InboundExtractor, SessionExtractor, clear_outbox, read_outbox_files,
};
use airlock_sqlite_fs::{HostMailbox, MailboxRoots};
use tracing::Instrument;

use crate::routing::{self, MessageRouter, Placement};

/// Where a [`SessionManager`] keeps its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerConfig {
    /// The data dir: `v2-sessions/` (mounted into guests) and `host-state/`
    /// (host only) live here.
    pub data_dir: PathBuf,
    /// Recorded as `owner_host` of sessions this manager creates.
    pub host_id: Option<String>,
    /// Size caps of inbound attachments and outbox files.
    pub limits: AttachmentLimits,
}

impl ManagerConfig {
    /// Files under `data_dir`, no owner host.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            host_id: None,
            limits: AttachmentLimits::default(),
        }
    }
}

/// What a guest about to start needs: its session folder and the mount nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestLaunch {
    /// The session, its container now marked running.
    pub session: Session,
    /// The session folder on the host; mount it into the sandbox.
    pub session_dir: PathBuf,
    /// The nonce just written into the folder.
    pub mount_nonce: String,
}

impl GuestLaunch {
    /// Environment for the guest process: the nonce its mount self-test expects.
    pub fn env(&self) -> [(&'static str, &str); 1] {
        [(airlock_sqlite_fs::host::MOUNT_NONCE_ENV, &self.mount_nonce)]
    }
}

/// The host's session API.
#[derive(Debug, Clone)]
pub struct SessionManager {
    store: Arc<dyn SessionStore>,
    roots: MailboxRoots,
    extractor: InboundExtractor,
    config: ManagerConfig,
    /// Where messages for other hosts' sessions go (`None`: refused with
    /// `NotOwner`).
    router: Option<Arc<dyn MessageRouter>>,
    /// Who owns new sessions (`None`: this host).
    placement: Option<Arc<dyn Placement>>,
}

/// Runs blocking mailbox work off the async runtime.
pub(crate) async fn blocking<T, F>(job: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> airlock_sqlite_fs::Result<T> + Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(job))
        .await
        .map_err(|e| Error::backend("sqlite", "running a mailbox operation", e))?
        .map_err(Error::from)
}

macro_rules! session_span {
    ($op:literal, $id:expr) => {
        tracing::info_span!($op, session = %$id)
    };
}

impl SessionManager {
    /// A manager over `store`, with session folders under `config.data_dir`
    /// (resolved once here: symlinks in its own path are followed, none below it).
    pub fn new(store: Arc<dyn SessionStore>, mut config: ManagerConfig) -> Self {
        config.data_dir = airlock_sqlite_fs::canonical_dir(&config.data_dir);
        Self {
            roots: MailboxRoots::in_data_dir(&config.data_dir),
            extractor: InboundExtractor::new(config.limits),
            store,
            config,
            router: None,
            placement: None,
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

    /// [`Error::NotOwner`] unless this host may touch `session`'s folder.
    fn check_owner(&self, session: &Session) -> Result<()> {
        routing::check_owner(session, self.host_id())
    }

    /// The registry.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// The data dir.
    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// The session folder and host-state roots.
    pub fn roots(&self) -> &MailboxRoots {
        &self.roots
    }

    /// The host's handle on `session`'s mailbox (no I/O).
    pub fn mailbox(&self, session: &Session) -> HostMailbox {
        self.roots.host(&SessionRef::from(session))
    }

    /// The folder of `session`.
    pub fn session_dir(&self, session: &Session) -> PathBuf {
        self.mailbox(session).paths().dir().to_path_buf()
    }

    /// Finds or creates the session for a chat; the folder and both
    /// databases exist before this returns.
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
            let mailbox = self.mailbox(&resolved.session);
            // Also heals a registry entry whose folder was removed by hand.
            if resolved.created || !mailbox.paths().inbound_db().exists() {
                if let Err(e) = blocking(move || mailbox.create()).await {
                    // A row without its folder would be listed and then break
                    // delivery; the next resolve creates both again.
                    if resolved.created
                        && let Err(undo) = self.store.delete_session(&resolved.session.id).await
                    {
                        tracing::error!(session = %resolved.session.id, error = %undo, "could not remove the session whose folder failed");
                    }
                    return Err(e);
                }
                self.publish_routing(&resolved.session).await?;
            }
            tracing::debug!(session = %resolved.session.id, created = resolved.created, "resolved");
            Ok(resolved)
        }
        .instrument(span)
        .await
    }

    /// Creates `id`'s folder and databases if missing (this host must own
    /// it); returns whether it did.
    pub async fn ensure_folder(&self, id: &SessionId) -> Result<bool> {
        let session = self.store.session(id).await?;
        self.check_owner(&session)?;
        let mailbox = self.mailbox(&session);
        if mailbox.paths().inbound_db().exists() {
            return Ok(false);
        }
        blocking(move || mailbox.create()).await?;
        self.publish_routing(&session).await?;
        Ok(true)
    }

    /// The session with `id`.
    pub async fn session(&self, id: &SessionId) -> Result<Session> {
        self.store.session(id).await
    }

    /// Writes an inbound message (attachments extracted) and sets
    /// `last_active`. For a session another host owns, the message is
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
            let mailbox = self.mailbox(&session);
            let content = SessionExtractor::new(mailbox.paths().dir(), self.extractor.clone());
            let written = blocking(move || mailbox.write_message(&message, &content)).await?;
            for failed in written.attachments.iter().filter(|a| a.error.is_some()) {
                tracing::warn!(message = %written.id, index = failed.index, error = ?failed.error, "attachment not stored");
            }
            self.store.touch_session(id, Timestamp::now()).await?;
            Ok(written)
        }
        .instrument(session_span!("write_message", id))
        .await
    }

    /// Writes `session_routing` from the session's messaging group and
    /// thread, and returns what it wrote. [`resolve_session`](Self::resolve_session)
    /// does this when it creates a session and
    /// [`prepare_guest`](Self::prepare_guest) before every start, as the
    /// reference does on every wake.
    pub async fn write_routing(&self, id: &SessionId) -> Result<Routing> {
        let session = self.store.session(id).await?;
        self.publish_routing(&session).await
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

    async fn publish_routing(&self, session: &Session) -> Result<Routing> {
        async {
            self.check_owner(session)?;
            let routing = self.routing_of(session).await?;
            let mailbox = self.mailbox(session);
            let written = routing.clone();
            blocking(move || mailbox.write_routing(&written)).await?;
            Ok(routing)
        }
        .instrument(session_span!("write_routing", session.id))
        .await
    }

    /// Replaces the whole `destinations` table in one transaction.
    pub async fn replace_destinations(&self, id: &SessionId, rows: Vec<Destination>) -> Result<()> {
        self.with_mailbox("replace_destinations", id, move |m| {
            m.replace_destinations(&rows)
        })
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
        self.with_mailbox("write_system_response", id, move |m| {
            m.write_system_response(message_id, &request_id, &status, result)
        })
        .await
    }

    /// Stores a host-originated outbound message (never in the guest's
    /// `outbound.db`); returns its seq.
    pub async fn write_host_message(&self, id: &SessionId, message: NewHostMessage) -> Result<i64> {
        self.with_mailbox("write_host_message", id, move |m| {
            m.write_host_message(&message)
        })
        .await
    }

    /// Outbound messages due at `now` and not yet delivered, in seq order.
    pub async fn due_outbound(
        &self,
        id: &SessionId,
        now: Timestamp,
    ) -> Result<Vec<OutboundMessage>> {
        self.with_mailbox("due_outbound", id, move |m| m.due_outbound(now))
            .await
    }

    /// Records a delivery.
    pub async fn mark_delivered(
        &self,
        id: &SessionId,
        message_id: String,
        platform_message_id: Option<String>,
    ) -> Result<()> {
        self.with_mailbox("mark_delivered", id, move |m| {
            m.mark_delivered(&message_id, platform_message_id.as_deref())
        })
        .await
    }

    /// Records a delivery that failed for good.
    pub async fn mark_delivery_failed(&self, id: &SessionId, message_id: String) -> Result<()> {
        self.with_mailbox("mark_delivery_failed", id, move |m| {
            m.mark_delivery_failed(&message_id)
        })
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
        let session = self.store.session(id).await?;
        self.check_owner(&session)?;
        let dir = self.session_dir(&session);
        let limits = self.config.limits;
        tokio::task::spawn_blocking(move || read_outbox_files(&dir, &message_id, &names, &limits))
            .instrument(session_span!("read_outbox_files", id))
            .await
            .map_err(|e| Error::backend("sqlite", "reading outbox files", e))?
    }

    /// Removes a delivered message's outbox folder, best effort: failures
    /// are logged, never returned (that would deliver the message twice).
    pub async fn clear_outbox(&self, id: &SessionId, message_id: String) {
        let Ok(session) = self.store.session(id).await else {
            tracing::warn!(session = %id, "clear_outbox: session not found");
            return;
        };
        if let Err(e) = self.check_owner(&session) {
            tracing::warn!(session = %id, error = %e, "clear_outbox: not this host's session");
            return;
        }
        let dir = self.session_dir(&session);
        let cleared = tokio::task::spawn_blocking(move || clear_outbox(&dir, &message_id))
            .instrument(session_span!("clear_outbox", id))
            .await;
        if let Err(e) = cleared {
            tracing::warn!(session = %id, error = %e, "clear_outbox did not finish");
        }
    }

    /// Copies the guest's completed/failed acks into `messages_in.status`.
    pub async fn sync_acks(&self, id: &SessionId) -> Result<usize> {
        self.with_mailbox("sync_acks", id, |m| m.sync_acks()).await
    }

    /// Pending, triggering, due inbound messages: whether to wake a guest.
    pub async fn count_due(&self, id: &SessionId, now: Timestamp) -> Result<u64> {
        self.with_mailbox("count_due", id, move |m| m.count_due(now))
            .await
    }

    /// Message counts of both mailboxes.
    pub async fn counts(&self, id: &SessionId) -> Result<MailboxCounts> {
        self.with_mailbox("counts", id, |m| m.counts()).await
    }

    /// Age of the guest's heartbeat, or `None` when it never beat.
    pub async fn heartbeat_age(&self, id: &SessionId, now: Timestamp) -> Result<Option<Duration>> {
        self.with_mailbox("heartbeat_age", id, move |m| m.heartbeat_age(now))
            .await
    }

    /// Prepares `id`'s folder for a guest that is about to start: writes its
    /// `session_routing` and a fresh mount nonce into it and marks the
    /// container running. Start the
    /// guest with [`GuestLaunch::env`], so its mount self-test
    /// (`airlock_sqlite_fs::guest::check_mount_from_env`) can tell a mount
    /// that hides host writes from one that works.
    pub async fn prepare_guest(&self, id: &SessionId) -> Result<GuestLaunch> {
        async {
            let session = self.store.session(id).await?;
            self.check_owner(&session)?;
            self.publish_routing(&session).await?;
            let mailbox = self.mailbox(&session);
            let session_dir = mailbox.paths().dir().to_path_buf();
            let mount_nonce = blocking(move || mailbox.write_mount_nonce()).await?;
            let session = self.set_container(id, ContainerStatus::Running).await?;
            Ok(GuestLaunch {
                session,
                session_dir,
                mount_nonce,
            })
        }
        .instrument(session_span!("prepare_guest", id))
        .await
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
        self.check_owner(&self.store.session(id).await?)?;
        let (session, stopped) = self
            .store
            .mark_guest_stopped(id, Timestamp::now())
            .instrument(session_span!("set_container_status", id))
            .await?;
        if let Some(stopped) = stopped {
            let mailbox = self.mailbox(&session);
            let recovered = blocking(move || mailbox.recover_outbound(stopped))
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

    async fn with_mailbox<T, F>(&self, op: &'static str, id: &SessionId, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&HostMailbox) -> airlock_sqlite_fs::Result<T> + Send + 'static,
    {
        let span = tracing::info_span!("mailbox", op, session = %id);
        async {
            let session = self.store.session(id).await?;
            self.check_owner(&session)?;
            let mailbox = self.mailbox(&session);
            blocking(move || job(&mailbox)).await
        }
        .instrument(span)
        .await
    }
}
