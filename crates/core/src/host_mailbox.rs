//! The host half of the mailbox seam: one session's mailbox as the host sees
//! it, and the factory that hands those out.

use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::attachment::{OutboxFile, SessionRef};
use crate::error::{Error, Result};
use crate::ids::MessageId;
use crate::mailbox::{
    ContainerState, Destination, InboundMessage, MailboxCounts, NewHostMessage, NewInboundMessage,
    OutboundMessage, Routing, WrittenMessage,
};
use crate::message_content::{declared_files, system_response_content};
use crate::pages::{ChangeStamps, HostPage, PageLimits};
use crate::seq::Seq;
use crate::session::{ContainerStatus, Session};
use crate::time::Timestamp;

/// A host-side mailbox usable as `dyn`.
pub type DynHostMailbox = dyn HostMailboxStore;

/// How the host settled one outbound message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum DeliveryOutcome {
    /// Handed to the platform.
    Delivered {
        /// The platform's id of the sent message, if it gave one.
        platform_message_id: Option<String>,
    },
    /// Given up for good (dead-lettered).
    Failed,
}

/// What a guest about to start needs from its mailbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestSetup {
    /// The folder to mount into the sandbox, for mailboxes that live in one.
    pub session_dir: Option<std::path::PathBuf>,
    /// Environment for the guest process (e.g. the mount self-test's nonce).
    pub env: Vec<(String, String)>,
}

/// Proof that a session's guest is not running, taken from a registry read.
///
/// Only the registry makes one ([`SessionStoreExt::guest_stopped`] and
/// [`SessionStoreExt::mark_guest_stopped`](crate::SessionStoreExt::mark_guest_stopped)),
/// from the session as it answered, so a caller cannot claim a guest is
/// stopped without having asked: a hand-built [`Session`] proves nothing.
///
/// ```compile_fail
/// // Outside core the constructor cannot be named.
/// fn forge(s: &airlock_core::Session) -> Option<airlock_core::GuestStopped> {
///     airlock_core::GuestStopped::from_session(s)
/// }
/// ```
///
/// [`SessionStoreExt::guest_stopped`]: crate::SessionStoreExt::guest_stopped
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestStopped(());

impl GuestStopped {
    /// `Some` only when the registry says the container is `stopped`.
    pub(crate) fn from_session(session: &Session) -> Option<GuestStopped> {
        (session.container_status == ContainerStatus::Stopped).then_some(GuestStopped(()))
    }
}

/// One outbound message with the files it declared, ready to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueOutbound {
    /// The message.
    pub message: OutboundMessage,
    /// Its readable declared files (unsafe or missing names skipped).
    pub files: Vec<OutboxFile>,
}

/// The occurrence that continues a recurring series (see
/// [`HostMailboxStore::continue_series`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesNext {
    /// Id of the new occurrence (derived from the series, never from the clock).
    pub id: MessageId,
    /// When it fires.
    pub process_after: Timestamp,
    /// The expression carried forward.
    pub recurrence: String,
}

/// One session's mailbox, host side.
///
/// # Contract
///
/// Every implementation passes `airlock_core::testing`'s mailbox suite
/// (feature `testing`, [`mailbox_conformance!`](crate::mailbox_conformance)),
/// which checks each sentence below against the host and guest halves of
/// one session.
///
/// - Operations on a mailbox that was never created fail with
///   [`Error::NotFound`].
/// - `write_message` stores the message with the next host (even) seq
///   above every inbound seq, `status = pending`, `series_id = id`.
/// - A retry (same id, same content) is a no-op that returns the stored id
///   and seq with [`WriteOutcome::Duplicate`](crate::mailbox::WriteOutcome);
///   a different message under a used id is stored under a derived id
///   (`<id>#2`, …) and reported as `Renamed`; a message is never dropped.
/// - Host-originated messages get host seqs too, never wake the guest, are
///   never handed to it, and come back from `due_outbound` beside the
///   guest's messages; a retry under the same id returns the stored seq.
/// - `due_outbound` returns every message whose `deliver_after` is absent or
///   not after `now`, not yet settled by `record_outcome`, in seq order.
///   A message settled once (delivered or failed) is never returned again,
///   and a second `record_outcome` for it changes nothing, except that a
///   delivery replaces a recorded failure (a dead letter retried by hand).
/// - `count_due` counts pending, triggering messages whose `process_after`
///   is absent or not after `now`.
/// - `sync_acks` copies the guest's `completed`/`failed` acks into the
///   inbound status (never writing a file the guest owns) and returns how
///   many rows changed; a second call with nothing new returns 0.
/// - `processing_claims` lists the ids the guest acked `processing` and
///   has not finished.
/// - Outbox files are read only under a safe message id and safe names;
///   an unsafe id is [`Error::InvalidId`], missing files are skipped.
///   `clear_outbox` never fails the caller.
/// - `record_outcomes` settles several messages at once, each as
///   `record_outcome` would; `settled_among` names those of the given ids
///   that have an outcome.
/// - `outbound_page` returns the guest's messages with a seq above `after`,
///   `host_outbound_page` the host-originated ones, each in seq order, at
///   most `limits.max_rows` rows and ending with the row that reaches
///   `limits.max_bytes` of content; settled or not, due or not (the engine
///   decides). An empty page means nothing is past the cursor.
/// - `change_stamps`: a write to a half (a reply or an ack of the guest; a
///   message, outcome or status the host writes) changes that half's stamp.
/// - `requeue` and `fail_pending` change only a `pending` inbound message
///   the guest may process (never a host-originated one) and return whether
///   they did; `inbound_message` reads one row as the host holds it.
/// - `completed_recurring` lists completed messages that still carry a
///   recurrence; `continue_series` inserts the next occurrence (pending, no
///   tries, the next host seq, `series_id` of the series, kind, content and
///   routing of `done`) and clears `done`'s recurrence in one step, so it
///   inserts at most once per occurrence; `end_series` clears it alone.
/// - `last_heartbeat` is when the guest last beat; `clear_heartbeat`
///   forgets it (a new guest's beat is then the only one) and says whether
///   there was one.
#[async_trait]
pub trait HostMailboxStore: Debug + Send + Sync + 'static {
    /// Stores an inbound message (inline attachments written beside it).
    async fn write_message(&self, message: NewInboundMessage) -> Result<WrittenMessage>;

    /// Upserts the session's default reply routing.
    async fn write_routing(&self, routing: Routing) -> Result<()>;

    /// Replaces every destination in one step.
    async fn replace_destinations(&self, rows: Vec<Destination>) -> Result<()>;

    /// Stores a message the host sends itself, without waking the guest.
    async fn write_host_message(&self, message: NewHostMessage) -> Result<Seq>;

    /// Outbound messages due at `now` and not yet settled, in seq order.
    async fn due_outbound(&self, now: Timestamp) -> Result<Vec<OutboundMessage>>;

    /// The declared files of outbound message `message_id` (untrusted text).
    async fn read_outbox_files(
        &self,
        message_id: &str,
        names: &[String],
    ) -> Result<Vec<OutboxFile>>;

    /// Removes a settled message's outbox files, best effort (logged, never
    /// returned: reporting it would deliver the message twice).
    async fn clear_outbox(&self, message_id: &str);

    /// Settles outbound messages, each as [`HostMailboxStoreExt::record_outcome`]
    /// does (the first outcome stays, except that a delivery replaces a
    /// failure), in one step where the backend can.
    async fn record_outcomes(&self, outcomes: &[(String, DeliveryOutcome)]) -> Result<()>;

    /// Which of `ids` already have an outcome (delivered or failed).
    async fn settled_among(&self, ids: &[String]) -> Result<HashSet<String>>;

    /// The guest's outbound messages above seq `after`, one bounded page.
    async fn outbound_page(&self, after: i64, limits: PageLimits) -> Result<Vec<OutboundMessage>>;

    /// Host-originated outbound messages above seq `after`, one bounded page.
    async fn host_outbound_page(&self, after: i64, limits: PageLimits) -> Result<HostPage>;

    /// Stamps of both halves, to skip a session where nothing changed.
    async fn change_stamps(&self) -> Result<ChangeStamps>;

    /// Copies finished acks into the inbound status; returns the rows changed.
    async fn sync_acks(&self) -> Result<usize>;

    /// Row counts of both halves.
    async fn counts(&self) -> Result<MailboxCounts>;

    /// Pending, triggering, due inbound messages: whether to wake a guest.
    async fn count_due(&self, now: Timestamp) -> Result<u64>;

    /// Inbound ids the guest claimed (`processing`) and has not finished.
    async fn processing_claims(&self) -> Result<Vec<String>>;

    /// The guest's tool-in-flight row, if it wrote one.
    async fn container_state(&self) -> Result<Option<ContainerState>>;

    /// When the guest last beat; `None` when it never did.
    async fn last_heartbeat(&self) -> Result<Option<Timestamp>>;

    /// Forgets the guest's heartbeat; returns whether there was one.
    async fn clear_heartbeat(&self) -> Result<bool>;

    /// The inbound message `id` as the host holds it.
    async fn inbound_message(&self, id: &str) -> Result<Option<InboundMessage>>;

    /// Puts a still-pending message back with `tries` and a new
    /// `process_after`; returns whether it was pending.
    async fn requeue(&self, id: &str, tries: i64, process_after: Timestamp) -> Result<bool>;

    /// Fails a still-pending message with `tries`; returns whether it was pending.
    async fn fail_pending(&self, id: &str, tries: i64) -> Result<bool>;

    /// Completed messages that still carry a recurrence, in seq order.
    async fn completed_recurring(&self) -> Result<Vec<InboundMessage>>;

    /// Inserts `next` and clears `done`'s recurrence in one step; returns
    /// whether it inserted.
    async fn continue_series(&self, done: &str, next: SeriesNext) -> Result<bool>;

    /// Clears `id`'s recurrence (the series stops); returns whether it had one.
    async fn end_series(&self, id: &str) -> Result<bool>;

    /// Readies the mailbox for a guest about to start.
    async fn prepare_guest(&self) -> Result<GuestSetup>;

    /// Repairs what a guest killed mid-write left behind; returns whether
    /// there was anything. `stopped` proves no guest can be writing.
    async fn recover_stopped_guest(&self, stopped: GuestStopped) -> Result<bool>;
}

/// Conveniences built on [`HostMailboxStore`]'s required methods.
#[async_trait]
pub trait HostMailboxStoreExt: HostMailboxStore {
    /// Writes a `system` message answering question `request_id`.
    async fn write_system_response(
        &self,
        id: MessageId,
        request_id: &str,
        status: &str,
        result: serde_json::Value,
    ) -> Result<WrittenMessage> {
        let content = system_response_content(request_id, status, result);
        self.write_message(NewInboundMessage::new(id, "system", content))
            .await
    }

    /// Due messages with the files each declared in its content.
    async fn due_with_files(&self, now: Timestamp) -> Result<Vec<DueOutbound>> {
        let mut out = Vec::new();
        for message in self.due_outbound(now).await? {
            let names = declared_files(&message.content);
            let files = if names.is_empty() {
                Vec::new()
            } else {
                self.read_outbox_files(&message.id, &names).await?
            };
            out.push(DueOutbound { message, files });
        }
        Ok(out)
    }

    /// Settles outbound message `message_id` (the first outcome stays,
    /// except that a delivery replaces a failure).
    async fn record_outcome(&self, message_id: &str, outcome: DeliveryOutcome) -> Result<()> {
        self.record_outcomes(&[(message_id.to_owned(), outcome)])
            .await
    }

    /// Time since the guest's last heartbeat (zero for one in the future);
    /// `None` when it never beat.
    async fn heartbeat_age(&self, now: Timestamp) -> Result<Option<Duration>> {
        Ok(self.last_heartbeat().await?.map(|beat| {
            let millis = now.as_millis().saturating_sub(beat.as_millis()).max(0);
            Duration::from_millis(u64::try_from(millis).unwrap_or(0))
        }))
    }

    /// Records a delivery.
    async fn mark_delivered(
        &self,
        message_id: &str,
        platform_message_id: Option<String>,
    ) -> Result<()> {
        self.record_outcome(
            message_id,
            DeliveryOutcome::Delivered {
                platform_message_id,
            },
        )
        .await
    }

    /// Records a delivery that failed for good.
    async fn mark_delivery_failed(&self, message_id: &str) -> Result<()> {
        self.record_outcome(message_id, DeliveryOutcome::Failed)
            .await
    }
}

impl<T: HostMailboxStore + ?Sized> HostMailboxStoreExt for T {}

/// Hands out the host side of each session's mailbox.
///
/// # Contract
///
/// - `host_mailbox` does no I/O and never fails; using the handle of a
///   mailbox that was never created fails with [`Error::NotFound`].
/// - `create_mailbox` makes both halves of the session's mailbox (and its
///   folder, where it has one) and is idempotent: calling it again keeps
///   every stored message.
/// - `mailbox_exists` is true once `create_mailbox` succeeded (and the
///   mailbox was not removed behind the factory's back since); a create
///   cut short (a full disk, a kill) leaves it false, so the next
///   `create_mailbox` finishes the mailbox.
#[async_trait]
pub trait MailboxFactory: Debug + Send + Sync + 'static {
    /// The host side of `session`'s mailbox (no I/O).
    fn host_mailbox(&self, session: &SessionRef) -> Arc<DynHostMailbox>;

    /// Whether `session`'s mailbox was created.
    async fn mailbox_exists(&self, session: &SessionRef) -> Result<bool>;

    /// Creates `session`'s mailbox if it does not exist yet.
    async fn create_mailbox(&self, session: &SessionRef) -> Result<Arc<DynHostMailbox>>;

    /// Creates `session`'s mailbox if it does not exist yet and writes its
    /// `routing` (what a new session needs before its guest starts). The
    /// default is [`create_mailbox`](Self::create_mailbox) then
    /// [`HostMailboxStore::write_routing`]; a backend may do both in one
    /// commit.
    async fn create_mailbox_routed(
        &self,
        session: &SessionRef,
        routing: Routing,
    ) -> Result<Arc<DynHostMailbox>> {
        let mailbox = self.create_mailbox(session).await?;
        mailbox.write_routing(routing).await?;
        Ok(mailbox)
    }

    /// The change stamps of every session in `sessions`, in their order:
    /// what [`HostMailboxStore::change_stamps`] answers for each, read in
    /// as few calls as the backend can (a delivery pass stamps every
    /// active session). The default asks each mailbox in turn.
    async fn change_stamps_of(&self, sessions: &[SessionRef]) -> Vec<Result<ChangeStamps>> {
        let mut stamps = Vec::with_capacity(sessions.len());
        for session in sessions {
            stamps.push(self.host_mailbox(session).change_stamps().await);
        }
        stamps
    }

    /// For each of `sessions`, whether a lifecycle sweep at `now` is known
    /// to find nothing in its mailbox: `sync_acks` would change no row,
    /// `completed_recurring` would be empty and `count_due(now)` zero.
    /// `false` means "not known", never "busy", so the default (every
    /// session `false`) is always right; a backend that remembers its
    /// idle reads answers without reading the rows.
    async fn quiet_for_sweep(&self, sessions: &[SessionRef], now: Timestamp) -> Vec<bool> {
        let _ = now;
        vec![false; sessions.len()]
    }
}

/// Refuses an outbound message id that is not a safe path component.
pub fn outbox_message_id(message_id: &str) -> Result<MessageId> {
    MessageId::new(message_id).map_err(Error::from)
}

macro_rules! forward_host_mailbox {
    ($wrapper:ty) => {
        #[async_trait]
        impl<T: HostMailboxStore + ?Sized> HostMailboxStore for $wrapper {
            async fn write_message(&self, message: NewInboundMessage) -> Result<WrittenMessage> {
                (**self).write_message(message).await
            }
            async fn write_routing(&self, routing: Routing) -> Result<()> {
                (**self).write_routing(routing).await
            }
            async fn replace_destinations(&self, rows: Vec<Destination>) -> Result<()> {
                (**self).replace_destinations(rows).await
            }
            async fn write_host_message(&self, message: NewHostMessage) -> Result<Seq> {
                (**self).write_host_message(message).await
            }
            async fn due_outbound(&self, now: Timestamp) -> Result<Vec<OutboundMessage>> {
                (**self).due_outbound(now).await
            }
            async fn read_outbox_files(
                &self,
                message_id: &str,
                names: &[String],
            ) -> Result<Vec<OutboxFile>> {
                (**self).read_outbox_files(message_id, names).await
            }
            async fn clear_outbox(&self, message_id: &str) {
                (**self).clear_outbox(message_id).await
            }
            async fn record_outcomes(&self, outcomes: &[(String, DeliveryOutcome)]) -> Result<()> {
                (**self).record_outcomes(outcomes).await
            }
            async fn settled_among(&self, ids: &[String]) -> Result<HashSet<String>> {
                (**self).settled_among(ids).await
            }
            async fn outbound_page(
                &self,
                after: i64,
                limits: PageLimits,
            ) -> Result<Vec<OutboundMessage>> {
                (**self).outbound_page(after, limits).await
            }
            async fn host_outbound_page(&self, after: i64, limits: PageLimits) -> Result<HostPage> {
                (**self).host_outbound_page(after, limits).await
            }
            async fn change_stamps(&self) -> Result<ChangeStamps> {
                (**self).change_stamps().await
            }
            async fn sync_acks(&self) -> Result<usize> {
                (**self).sync_acks().await
            }
            async fn counts(&self) -> Result<MailboxCounts> {
                (**self).counts().await
            }
            async fn count_due(&self, now: Timestamp) -> Result<u64> {
                (**self).count_due(now).await
            }
            async fn processing_claims(&self) -> Result<Vec<String>> {
                (**self).processing_claims().await
            }
            async fn container_state(&self) -> Result<Option<ContainerState>> {
                (**self).container_state().await
            }
            async fn last_heartbeat(&self) -> Result<Option<Timestamp>> {
                (**self).last_heartbeat().await
            }
            async fn clear_heartbeat(&self) -> Result<bool> {
                (**self).clear_heartbeat().await
            }
            async fn inbound_message(&self, id: &str) -> Result<Option<InboundMessage>> {
                (**self).inbound_message(id).await
            }
            async fn requeue(
                &self,
                id: &str,
                tries: i64,
                process_after: Timestamp,
            ) -> Result<bool> {
                (**self).requeue(id, tries, process_after).await
            }
            async fn fail_pending(&self, id: &str, tries: i64) -> Result<bool> {
                (**self).fail_pending(id, tries).await
            }
            async fn completed_recurring(&self) -> Result<Vec<InboundMessage>> {
                (**self).completed_recurring().await
            }
            async fn continue_series(&self, done: &str, next: SeriesNext) -> Result<bool> {
                (**self).continue_series(done, next).await
            }
            async fn end_series(&self, id: &str) -> Result<bool> {
                (**self).end_series(id).await
            }
            async fn prepare_guest(&self) -> Result<GuestSetup> {
                (**self).prepare_guest().await
            }
            async fn recover_stopped_guest(&self, stopped: GuestStopped) -> Result<bool> {
                (**self).recover_stopped_guest(stopped).await
            }
        }
    };
}

forward_host_mailbox!(Arc<T>);
forward_host_mailbox!(Box<T>);
