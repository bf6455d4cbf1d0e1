//! The SQLite-file mailbox behind core's mailbox seam: [`SqliteMailboxes`]
//! (the factory), [`SqliteHostMailbox`] and [`SqliteGuestMailbox`].
//!
//! An adapter only: each method runs one call of [`HostMailbox`] or
//! [`GuestMailbox`] on tokio's blocking pool and maps the error into core's
//! once, here. The invariants stay where they are enforced today, in the
//! synchronous types (see [`crate::docs`]), the guest's reply with files
//! included ([`GuestMailbox::write_reply`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use airlock_core::mailbox::{
    AckStatus, ContainerState, Destination, InboundMessage, MailboxCounts, NewHostMessage,
    NewInboundMessage, OutboundMessage, Routing, SeqTarget, WrittenMessage,
};
use airlock_core::{
    ChangeStamps, DeliveryOutcome, DynHostMailbox, GuestMailboxStore, GuestSetup, HostMailboxStore,
    HostPage, MailboxFactory, OutboxFile, PageLimits, Reply, Seq, SeriesNext, SessionRef,
    Timestamp, ToolInFlight, WrittenReply, outbox_message_id,
};
use async_trait::async_trait;

use crate::attachments::{AttachmentLimits, InboundExtractor, SessionExtractor};
use crate::error::Result;
use crate::guest::GuestMailbox;
use crate::host::{DeliveredMark, HostMailbox};
use crate::layout::MailboxRoots;

/// Runs blocking mailbox work off the async runtime, in the caller's span,
/// mapping this crate's error into core's.
async fn blocking<T, F>(context: &'static str, job: F) -> airlock_core::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(job))
        .await
        .map_err(|e| airlock_core::Error::backend("sqlite", context, e))?
        .map_err(airlock_core::Error::from)
}

/// The cores this process may use, read once: `available_parallelism`
/// reads the cgroup's files on Linux, and a one-session poll calls
/// [`each_session`] too.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
}

/// Sessions below this many are read on one blocking job.
const MIN_CHUNK: usize = 64;

/// Runs `read` for every session, the sessions split into one blocking job
/// per core: a host stamps every session on every tick, and one hand-off
/// to the blocking pool per session cost more than the read. A job that
/// did not finish answers `failed` for each of its sessions.
async fn each_session<T, F>(
    roots: &MailboxRoots,
    sessions: &[SessionRef],
    read: F,
    failed: fn(&tokio::task::JoinError) -> T,
) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(&HostMailbox) -> T + Clone + Send + 'static,
{
    let chunk = sessions.len().div_ceil(cores()).max(MIN_CHUNK);
    let jobs: Vec<_> = sessions
        .chunks(chunk)
        .map(|part| {
            let mailboxes: Vec<HostMailbox> = part.iter().map(|s| roots.host(s)).collect();
            let (read, span) = (read.clone(), tracing::Span::current());
            let job = tokio::task::spawn_blocking(move || {
                span.in_scope(|| mailboxes.iter().map(&read).collect::<Vec<T>>())
            });
            (part.len(), job)
        })
        .collect();
    let mut answers = Vec::with_capacity(sessions.len());
    for (len, job) in jobs {
        match job.await {
            Ok(part) => answers.extend(part),
            Err(e) => answers.extend((0..len).map(|_| failed(&e))),
        }
    }
    answers
}

/// The SQLite-file mailboxes of every session under one pair of roots.
#[derive(Debug, Clone)]
pub struct SqliteMailboxes {
    roots: MailboxRoots,
    extractor: InboundExtractor,
}

impl SqliteMailboxes {
    /// Mailboxes under `roots`, inline attachments capped by `limits`.
    pub fn new(roots: MailboxRoots, limits: AttachmentLimits) -> Self {
        Self {
            roots,
            extractor: InboundExtractor::new(limits),
        }
    }

    /// The concrete host handle of `session` (no I/O).
    pub fn sqlite_host(&self, session: &SessionRef) -> SqliteHostMailbox {
        SqliteHostMailbox {
            mailbox: self.roots.host(session),
            extractor: self.extractor.clone(),
        }
    }

    /// The roots the mailboxes live under.
    pub fn roots(&self) -> &MailboxRoots {
        &self.roots
    }

    /// Opens the guest side of `session` from the host's machine (what a
    /// guest whose folder is mounted elsewhere does with
    /// [`SqliteGuestMailbox::open`]). Blocking.
    pub fn open_guest(&self, session: &SessionRef) -> Result<SqliteGuestMailbox> {
        SqliteGuestMailbox::open(self.roots.host(session).paths().dir())
    }
}

#[async_trait]
impl MailboxFactory for SqliteMailboxes {
    fn host_mailbox(&self, session: &SessionRef) -> Arc<DynHostMailbox> {
        Arc::new(self.sqlite_host(session))
    }

    async fn mailbox_exists(&self, session: &SessionRef) -> airlock_core::Result<bool> {
        // Complete, not begun: a create cut short (a full disk, a kill)
        // leaves `inbound.db` without `outbound.db`, which a create makes
        // last (after `inbox/` and `outbox/`), and the next resolve must
        // finish it. A file folder removed later is made again by its next
        // writer, so it is not looked for on every resolve.
        let paths = self.roots.sessions().session(session);
        let files = [paths.inbound_db(), paths.outbound_db()];
        Ok(
            tokio::task::spawn_blocking(move || files.iter().all(|f| f.is_file()))
                .await
                .map_err(|e| airlock_core::Error::backend("sqlite", "looking for a mailbox", e))?,
        )
    }

    async fn create_mailbox(
        &self,
        session: &SessionRef,
    ) -> airlock_core::Result<Arc<DynHostMailbox>> {
        let (roots, of) = (self.roots.clone(), session.clone());
        blocking("creating a session mailbox", move || {
            roots.create_session(&of).map(drop)
        })
        .await?;
        Ok(self.host_mailbox(session))
    }

    async fn create_mailbox_routed(
        &self,
        session: &SessionRef,
        routing: Routing,
    ) -> airlock_core::Result<Arc<DynHostMailbox>> {
        let mailbox = self.roots.host(session);
        blocking("creating a session mailbox", move || {
            mailbox.create_routed(&routing)
        })
        .await?;
        Ok(self.host_mailbox(session))
    }

    async fn change_stamps_of(
        &self,
        sessions: &[SessionRef],
    ) -> Vec<airlock_core::Result<ChangeStamps>> {
        let read = |m: &HostMailbox| m.change_stamps().map_err(airlock_core::Error::from);
        let failed = |e: &tokio::task::JoinError| {
            Err(airlock_core::Error::backend(
                "sqlite",
                "reading file stamps",
                e.to_string(),
            ))
        };
        each_session(&self.roots, sessions, read, failed).await
    }

    async fn quiet_for_sweep(&self, sessions: &[SessionRef], now: Timestamp) -> Vec<bool> {
        let read = move |m: &HostMailbox| m.quiet_for_sweep(now);
        each_session(&self.roots, sessions, read, |_| false).await
    }
}

/// The host side of one session's SQLite-file mailbox.
#[derive(Debug, Clone)]
pub struct SqliteHostMailbox {
    mailbox: HostMailbox,
    extractor: InboundExtractor,
}

impl SqliteHostMailbox {
    /// The synchronous mailbox this adapts.
    pub fn inner(&self) -> &HostMailbox {
        &self.mailbox
    }

    fn dir(&self) -> PathBuf {
        self.mailbox.paths().dir().to_path_buf()
    }

    async fn run<T, F>(&self, context: &'static str, job: F) -> airlock_core::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&HostMailbox) -> Result<T> + Send + 'static,
    {
        let mailbox = self.mailbox.clone();
        blocking(context, move || job(&mailbox)).await
    }
}

#[async_trait]
impl HostMailboxStore for SqliteHostMailbox {
    async fn write_message(
        &self,
        message: NewInboundMessage,
    ) -> airlock_core::Result<WrittenMessage> {
        let content = SessionExtractor::new(self.dir(), self.extractor.clone());
        self.run("writing an inbound message", move |m| {
            m.write_message(&message, &content)
        })
        .await
    }

    async fn write_routing(&self, routing: Routing) -> airlock_core::Result<()> {
        self.run("writing routing", move |m| m.write_routing(&routing))
            .await
    }

    async fn replace_destinations(&self, rows: Vec<Destination>) -> airlock_core::Result<()> {
        self.run("replacing destinations", move |m| {
            m.replace_destinations(&rows)
        })
        .await
    }

    async fn write_host_message(&self, message: NewHostMessage) -> airlock_core::Result<Seq> {
        self.run("writing a host message", move |m| {
            m.write_host_message(&message).map(Seq::new)
        })
        .await
    }

    async fn due_outbound(&self, now: Timestamp) -> airlock_core::Result<Vec<OutboundMessage>> {
        self.run("reading due messages", move |m| m.due_outbound(now))
            .await
    }

    async fn read_outbox_files(
        &self,
        message_id: &str,
        names: &[String],
    ) -> airlock_core::Result<Vec<OutboxFile>> {
        let id = outbox_message_id(message_id)?;
        let (dir, names, limits) = (self.dir(), names.to_vec(), *self.extractor.limits());
        tokio::task::spawn_blocking(move || {
            crate::attachments::read_outbox_files(&dir, id.as_str(), &names, &limits)
        })
        .await
        .map_err(|e| airlock_core::Error::backend("sqlite", "reading outbox files", e))?
    }

    async fn clear_outbox(&self, message_id: &str) {
        let (dir, id) = (self.dir(), message_id.to_owned());
        let cleared =
            tokio::task::spawn_blocking(move || crate::attachments::clear_outbox(&dir, &id)).await;
        if let Err(e) = cleared {
            tracing::warn!(error = %e, "clear_outbox did not finish");
        }
    }

    async fn record_outcomes(
        &self,
        outcomes: &[(String, DeliveryOutcome)],
    ) -> airlock_core::Result<()> {
        let marks: Vec<DeliveredMark> = outcomes
            .iter()
            .map(|(id, outcome)| match outcome {
                DeliveryOutcome::Delivered {
                    platform_message_id,
                } => DeliveredMark::delivered(id, platform_message_id.as_deref()),
                DeliveryOutcome::Failed => DeliveredMark::failed(id),
            })
            .collect();
        self.run("recording deliveries", move |m| {
            m.mark_delivered_many(&marks)
        })
        .await
    }

    async fn settled_among(&self, ids: &[String]) -> airlock_core::Result<HashSet<String>> {
        let ids = ids.to_vec();
        self.run("reading deliveries", move |m| {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            m.delivered_among(&ids)
        })
        .await
    }

    async fn outbound_page(
        &self,
        after: i64,
        limits: PageLimits,
    ) -> airlock_core::Result<Vec<OutboundMessage>> {
        self.run("reading a page of replies", move |m| {
            m.outbound_page(after, limits)
        })
        .await
    }

    async fn host_outbound_page(
        &self,
        after: i64,
        limits: PageLimits,
    ) -> airlock_core::Result<HostPage> {
        self.run("reading a page of host messages", move |m| {
            m.host_outbound_page(after, limits)
        })
        .await
    }

    async fn change_stamps(&self) -> airlock_core::Result<ChangeStamps> {
        self.run("reading file stamps", |m| m.change_stamps()).await
    }

    async fn sync_acks(&self) -> airlock_core::Result<usize> {
        self.run("syncing acks", |m| m.sync_acks()).await
    }

    async fn counts(&self) -> airlock_core::Result<MailboxCounts> {
        self.run("counting messages", |m| m.counts()).await
    }

    async fn count_due(&self, now: Timestamp) -> airlock_core::Result<u64> {
        self.run("counting due messages", move |m| m.count_due(now))
            .await
    }

    async fn processing_claims(&self) -> airlock_core::Result<Vec<String>> {
        self.run("reading claims", |m| m.processing_claims()).await
    }

    async fn container_state(&self) -> airlock_core::Result<Option<ContainerState>> {
        self.run("reading container_state", |m| m.container_state())
            .await
    }

    async fn last_heartbeat(&self) -> airlock_core::Result<Option<Timestamp>> {
        self.run("reading the heartbeat", |m| m.last_heartbeat())
            .await
    }

    async fn clear_heartbeat(&self) -> airlock_core::Result<bool> {
        self.run("removing the heartbeat", |m| m.clear_heartbeat())
            .await
    }

    async fn inbound_message(&self, id: &str) -> airlock_core::Result<Option<InboundMessage>> {
        let id = id.to_owned();
        self.run("reading a message", move |m| m.inbound_message(&id))
            .await
    }

    async fn requeue(
        &self,
        id: &str,
        tries: i64,
        process_after: Timestamp,
    ) -> airlock_core::Result<bool> {
        let id = id.to_owned();
        self.run("requeueing a message", move |m| {
            m.requeue(&id, tries, process_after)
        })
        .await
    }

    async fn fail_pending(&self, id: &str, tries: i64) -> airlock_core::Result<bool> {
        let id = id.to_owned();
        self.run("failing a message", move |m| m.fail_pending(&id, tries))
            .await
    }

    async fn completed_recurring(&self) -> airlock_core::Result<Vec<InboundMessage>> {
        self.run("reading recurring messages", |m| m.completed_recurring())
            .await
    }

    async fn continue_series(&self, done: &str, next: SeriesNext) -> airlock_core::Result<bool> {
        let done = done.to_owned();
        self.run("continuing a series", move |m| {
            m.continue_series(&done, &next)
        })
        .await
    }

    async fn end_series(&self, id: &str) -> airlock_core::Result<bool> {
        let id = id.to_owned();
        self.run("ending a series", move |m| m.end_series(&id))
            .await
    }

    async fn prepare_guest(&self) -> airlock_core::Result<GuestSetup> {
        let nonce = self
            .run("writing the mount nonce", |m| m.write_mount_nonce())
            .await?;
        Ok(GuestSetup {
            session_dir: Some(self.dir()),
            env: vec![(crate::host::MOUNT_NONCE_ENV.to_owned(), nonce)],
        })
    }

    async fn recover_stopped_guest(
        &self,
        stopped: airlock_core::GuestStopped,
    ) -> airlock_core::Result<bool> {
        self.run("recovering outbound.db", move |m| {
            m.recover_outbound(stopped)
        })
        .await
    }
}

/// The guest side of one session's SQLite-file mailbox.
#[derive(Debug, Clone)]
pub struct SqliteGuestMailbox {
    mailbox: Arc<GuestMailbox>,
}

impl SqliteGuestMailbox {
    /// Opens the session folder as a starting guest ([`GuestMailbox::open`]). Blocking.
    pub fn open(session_dir: impl AsRef<Path>) -> Result<Self> {
        Ok(Self::from(GuestMailbox::open(session_dir)?))
    }

    /// The synchronous mailbox this adapts.
    pub fn inner(&self) -> &GuestMailbox {
        &self.mailbox
    }

    async fn run<T, F>(&self, context: &'static str, job: F) -> airlock_core::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&GuestMailbox) -> Result<T> + Send + 'static,
    {
        let mailbox = self.mailbox.clone();
        blocking(context, move || job(&mailbox)).await
    }
}

impl From<GuestMailbox> for SqliteGuestMailbox {
    fn from(mailbox: GuestMailbox) -> Self {
        Self {
            mailbox: Arc::new(mailbox),
        }
    }
}

#[async_trait]
impl GuestMailboxStore for SqliteGuestMailbox {
    async fn pending(
        &self,
        limit: usize,
        now: Timestamp,
    ) -> airlock_core::Result<Vec<InboundMessage>> {
        self.run("polling", move |m| m.pending_at(limit, now)).await
    }

    async fn ack(&self, ids: &[String], status: AckStatus) -> airlock_core::Result<()> {
        let ids = ids.to_vec();
        self.run("acking", move |m| {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            match status {
                AckStatus::Processing => m.mark_processing(&ids),
                AckStatus::Completed => m.mark_completed(&ids),
                AckStatus::Failed => m.mark_failed(&ids),
            }
        })
        .await
    }

    async fn write_reply(&self, reply: Reply) -> airlock_core::Result<WrittenReply> {
        self.run("writing a reply", move |m| m.write_reply(&reply))
            .await
    }

    async fn lookup_seq(&self, seq: Seq) -> airlock_core::Result<Option<SeqTarget>> {
        self.run("looking up a seq", move |m| m.lookup_seq(seq))
            .await
    }

    async fn state(&self, key: &str) -> airlock_core::Result<Option<String>> {
        let key = key.to_owned();
        self.run("reading session_state", move |m| m.state_get(&key))
            .await
    }

    async fn set_state(&self, key: &str, value: &str) -> airlock_core::Result<()> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.run("writing session_state", move |m| m.state_set(&key, &value))
            .await
    }

    async fn set_tool_in_flight(&self, tool: Option<ToolInFlight>) -> airlock_core::Result<()> {
        self.run("writing container_state", move |m| match tool {
            Some(t) => m.set_tool_in_flight(&t.tool, t.declared_timeout_ms),
            None => m.clear_tool_in_flight(),
        })
        .await
    }

    async fn touch_heartbeat(&self) -> airlock_core::Result<()> {
        self.run("touching the heartbeat", |m| m.touch_heartbeat())
            .await
    }
}
