//! One session's delivery pass: decide from the file stamps alone whether
//! there is anything to do, take the session's lease, deliver the due queue
//! (scheduled and retried messages), then the rows past each cursor, page by
//! page and in seq order, stopping at the first message that backs off.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use airlock_core::mailbox::{Origin, OutboundMessage, Routing};
use airlock_core::{
    ChangeStamps, DynHostMailbox, HostMailboxStore as _, PageLimits, Result, Session, SessionRef,
    Timestamp, escape_for_log,
};
use tracing::Instrument;

use super::adapter::DeliveryError;
use super::delivery::{Delivery, Outcome, declared_files, parse_content};
use super::engine::Engine;
use super::lease::SessionLease;
use super::settle::{Pending, settle};
use super::state::{Cursor, Key, QueuedMessage};
use crate::SessionHandle;

/// What the bulk read of the delivery store says about a session.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hint {
    pub cursor: Option<Cursor>,
    pub wake_at: Option<i64>,
}

/// Both halves' stamps as the cursor stores them, read before anything else
/// of the session (a change after the read makes the next pass look).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamps {
    guest: String,
    host: String,
}

impl From<ChangeStamps> for Stamps {
    fn from(stamps: ChangeStamps) -> Self {
        Self {
            guest: stamp_text(stamps.guest),
            host: stamp_text(stamps.host),
        }
    }
}

/// What the stamps and the hint alone say, before any lease or database:
/// a tally when the session has nothing to do (held, or unchanged with no
/// wake due), `None` when the pass must look.
pub(crate) fn decided_by_stamps(
    hint: &Hint,
    stamps: &Stamps,
    now: i64,
    mode: Mode,
) -> Option<SessionTally> {
    let c = hint.cursor.as_ref()?;
    if !mode.ignore_backoff && c.hold_until.is_some_and(|h| h > now) {
        return Some(SessionTally {
            held: true,
            ..SessionTally::default()
        });
    }
    let unchanged = c.guest_stamp.as_deref() == Some(stamps.guest.as_str())
        && c.host_stamp.as_deref() == Some(stamps.host.as_str());
    let wake_due = hint
        .wake_at
        .is_some_and(|w| w <= now || mode.ignore_backoff);
    (unchanged && !wake_due).then(|| SessionTally {
        idle: true,
        ..SessionTally::default()
    })
}

/// How a pass treats a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mode {
    /// Try messages that are backing off now (an operator's `--once`, a drain).
    pub ignore_backoff: bool,
    /// Wait this long for the lease instead of skipping a busy session.
    pub lease_wait: Option<std::time::Duration>,
}

/// What one session's pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionTally {
    /// Nothing changed since the stored stamps: no database was opened.
    pub idle: bool,
    /// Another deliverer holds the session's lease.
    pub busy: bool,
    /// A message is backing off, so the session waits.
    pub held: bool,
    /// Messages delivered (or handled, for system requests).
    pub delivered: usize,
    /// Messages that failed and will be retried.
    pub retrying: usize,
    /// Messages dead-lettered.
    pub dead_lettered: usize,
    /// The pass stopped at its time budget with rows left; the next pass goes on.
    pub unfinished: bool,
}

impl SessionTally {
    fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Delivered => self.delivered += 1,
            Outcome::Retrying { .. } => self.retrying += 1,
            Outcome::DeadLettered => self.dead_lettered += 1,
        }
    }
}

/// A half's stamp as the cursor stores it.
fn stamp_text(stamp: Option<String>) -> String {
    stamp.unwrap_or_else(|| "absent".to_owned())
}

/// One origin's rows past its cursor, read a page at a time.
struct Stream {
    origin: Origin,
    after: i64,
    /// Nothing more to read: the page came back empty, or the file did not
    /// change since the stamp stored with the cursor.
    done: bool,
    rows: VecDeque<OutboundMessage>,
    /// Ids of the buffered rows that `inbound.db` already records as handled.
    recorded: HashSet<String>,
    /// Where the host cursor may go once the stream is exhausted.
    scanned_to: Option<i64>,
}

impl Stream {
    fn new(origin: Origin, after: i64, changed: bool) -> Self {
        Self {
            origin,
            after,
            done: !changed,
            rows: VecDeque::new(),
            recorded: HashSet::new(),
            scanned_to: None,
        }
    }

    async fn fill(&mut self, engine: &Engine, mailbox: &DynHostMailbox) -> Result<()> {
        if !self.rows.is_empty() || self.done {
            return Ok(());
        }
        let (after, limits) = (self.after, engine.config.page);
        let (rows, scanned_to) = match self.origin {
            Origin::Guest => (mailbox.outbound_page(after, limits).await?, None),
            Origin::Host => {
                let page = mailbox.host_outbound_page(after, limits).await?;
                let full = page.messages.len() >= limits.max_rows.max(1);
                (page.messages, (!full).then_some(page.max_seq))
            }
        };
        let ids: Vec<String> = rows.iter().map(|m| m.id.clone()).collect();
        let recorded = mailbox.settled_among(&ids).await?;
        if rows.is_empty() {
            self.done = true;
        }
        if let Some(last) = rows.last() {
            self.after = last.seq;
        }
        self.rows = rows.into();
        self.recorded = recorded;
        self.scanned_to = scanned_to;
        Ok(())
    }
}

/// Runs one session's pass from its `stamps`, read before the call.
pub(crate) async fn run_session(
    engine: Arc<Engine>,
    session: Session,
    hint: Hint,
    stamps: Stamps,
    mode: Mode,
) -> Result<SessionTally> {
    let started = std::time::Instant::now();
    // Half the session timeout: stopping between messages never leaves a
    // confirmed delivery unrecorded, as cancelling the pass could.
    let budget = engine.config.session_timeout / 2;
    let now = Timestamp::now().as_millis();
    if let Some(tally) = decided_by_stamps(&hint, &stamps, now, mode) {
        return Ok(tally);
    }
    let Stamps {
        guest: guest_stamp,
        host: host_stamp,
    } = stamps;
    let mut tally = SessionTally::default();
    let handle = engine.manager.handle(session.clone())?;
    let mailbox = handle.mailbox().clone();
    let state_dir = engine
        .manager
        .session_state_dir(&SessionRef::from(&session));
    let lease = match mode.lease_wait {
        Some(wait) => SessionLease::acquire_within(&state_dir, wait).await?,
        None => SessionLease::try_acquire(&state_dir)?,
    };
    let Some(_lease) = lease else {
        tally.busy = true;
        return Ok(tally);
    };
    let state = engine.state.clone();
    let id = session.id.to_string();
    let cursor = engine
        .blocking({
            let (state, id) = (state.clone(), id.clone());
            move || state.cursor(&id)
        })
        .await?;
    if !mode.ignore_backoff && cursor.hold_until.is_some_and(|h| h > now) {
        tally.held = true;
        return Ok(tally);
    }
    let mut work = Work {
        engine: &engine,
        session: &session,
        handle: &handle,
        default_routing: None,
        tally,
        pending: Pending::default(),
    };
    // Deliveries a crashed pass recorded but did not settle.
    let left = engine
        .blocking({
            let (state, id) = (state.clone(), id.clone());
            move || state.unsettled(&id)
        })
        .await?;
    settle(&engine, &handle, left).await?;
    let queue = engine
        .blocking({
            let (state, id) = (state.clone(), id.clone());
            move || state.due_queue(&id, now, mode.ignore_backoff)
        })
        .await?;
    for queued in queue {
        if work.deliver_queued(queued).await? {
            return work.finish().await;
        }
    }
    let guest_changed = cursor.guest_stamp.as_deref() != Some(guest_stamp.as_str());
    if guest_changed {
        // The guest's acks live in outbound.db too: copy them while here.
        mailbox.sync_acks().await?;
    }
    let mut guest = Stream::new(Origin::Guest, cursor.guest_seq, guest_changed);
    let mut host = Stream::new(
        Origin::Host,
        cursor.host_seq,
        cursor.host_stamp.as_deref() != Some(host_stamp.as_str()),
    );
    loop {
        if started.elapsed() > budget {
            work.tally.unfinished = true;
            return work.finish().await;
        }
        guest.fill(&engine, mailbox.as_ref()).await?;
        host.fill(&engine, mailbox.as_ref()).await?;
        let stream = match (guest.rows.front(), host.rows.front()) {
            (None, None) => break,
            (Some(_), None) => &mut guest,
            (None, Some(_)) => &mut host,
            (Some(g), Some(h)) if g.seq < h.seq => &mut guest,
            _ => &mut host,
        };
        let Some(message) = stream.rows.pop_front() else {
            break;
        };
        let recorded = stream.recorded.contains(&message.id);
        if work.handle_new(message, recorded, now).await? {
            return work.finish().await;
        }
    }
    let tally = work.finish().await?;
    // The last (empty) host page saw every `messages_in` row up to its max
    // seq: the rows in between are not host messages, never scan them again.
    if let Some(to) = host.scanned_to.take() {
        let (state, id, ag) = (
            state.clone(),
            id.clone(),
            session.agent_group_id.to_string(),
        );
        engine
            .blocking(move || state.advance_host_to(&id, &ag, to))
            .await?;
    }
    let ag = session.agent_group_id.to_string();
    engine
        .blocking(move || state.set_stamps(&id, &ag, &guest_stamp, &host_stamp))
        .await?;
    Ok(tally)
}

/// The state of one session's pass once its lease is held.
struct Work<'a> {
    engine: &'a Arc<Engine>,
    session: &'a Session,
    handle: &'a SessionHandle,
    default_routing: Option<Routing>,
    tally: SessionTally,
    /// Delivered and recorded, not yet settled (see [`super::settle`]).
    pending: Pending,
}

impl Work<'_> {
    /// Settles what is pending and ends the pass.
    async fn finish(mut self) -> Result<SessionTally> {
        self.settle_pending().await?;
        Ok(self.tally)
    }

    async fn settle_pending(&mut self) -> Result<()> {
        let batch = self.pending.take();
        settle(self.engine, self.handle, batch).await
    }

    fn key(&self, message: &OutboundMessage) -> Key {
        Key {
            session: self.session.id.to_string(),
            agent_group: self.session.agent_group_id.to_string(),
            origin: message.origin,
            seq: message.seq,
            message_id: message.id.clone(),
        }
    }

    /// A queued message, read back by its seq. Returns whether the session must stop.
    async fn deliver_queued(&mut self, queued: QueuedMessage) -> Result<bool> {
        let (mailbox, seq) = (self.handle.mailbox(), queued.seq);
        let rows = match queued.origin {
            Origin::Guest => mailbox.outbound_page(seq - 1, PageLimits::one()).await?,
            Origin::Host => {
                mailbox
                    .host_outbound_page(seq - 1, PageLimits::one())
                    .await?
                    .messages
            }
        };
        let found = rows.into_iter().next();
        let Some(message) = found.filter(|m| m.seq == seq && m.id == queued.message_id) else {
            tracing::warn!(session = %self.session.id, seq, "a queued message is gone from the mailbox; forgotten");
            let (state, id) = (self.engine.state.clone(), queued.id);
            self.engine.blocking(move || state.drop_queued(id)).await?;
            return Ok(false);
        };
        let outcome = self.deliver(message, Some(queued)).await?;
        Ok(matches!(outcome, Outcome::Retrying { .. }))
    }

    /// A row past the cursor. Returns whether the session must stop.
    async fn handle_new(
        &mut self,
        message: OutboundMessage,
        recorded: bool,
        now: i64,
    ) -> Result<bool> {
        let key = self.key(&message);
        let state = self.engine.state.clone();
        if recorded {
            // Delivered or dead-lettered before this engine kept a cursor.
            self.engine.blocking(move || state.advance(&key)).await?;
            return Ok(false);
        }
        if let Some(due) = later(message.deliver_after.as_deref(), now) {
            self.engine
                .blocking(move || state.defer(&key, due, now))
                .await?;
            return Ok(false);
        }
        let outcome = self.deliver(message, None).await?;
        Ok(matches!(outcome, Outcome::Retrying { .. }))
    }

    async fn routing_for(&mut self, message: &OutboundMessage) -> Result<Routing> {
        if message.channel_type.is_some() || message.platform_id.is_some() {
            return Ok(Routing {
                channel_type: message.channel_type.clone(),
                platform_id: message.platform_id.clone(),
                thread_id: message.thread_id.clone(),
            });
        }
        if let Some(routing) = &self.default_routing {
            return Ok(routing.clone());
        }
        let routing = match &self.session.messaging_group_id {
            Some(mg) => {
                let group = self.engine.manager.store().messaging_group(mg).await?;
                Routing {
                    channel_type: Some(group.channel_type),
                    platform_id: Some(group.platform_id),
                    thread_id: self.session.thread_id.as_ref().map(|t| t.to_string()),
                }
            }
            None => Routing::default(),
        };
        self.default_routing = Some(routing.clone());
        Ok(routing)
    }

    async fn deliver(
        &mut self,
        message: OutboundMessage,
        queued: Option<QueuedMessage>,
    ) -> Result<Outcome> {
        let span = tracing::info_span!(
            "deliver",
            session = %self.session.id,
            message = %escape_for_log(&message.id),
            seq = message.seq,
        );
        let outcome = self
            .deliver_in_span(message, queued)
            .instrument(span)
            .await?;
        self.tally.count(&outcome);
        Ok(outcome)
    }

    async fn deliver_in_span(
        &mut self,
        message: OutboundMessage,
        queued: Option<QueuedMessage>,
    ) -> Result<Outcome> {
        let engine = self.engine;
        let content = parse_content(&message.content);
        let routing = self.routing_for(&message).await?;
        let names = declared_files(&content);
        let (files, files_error) = if names.is_empty() || message.origin == Origin::Host {
            (Vec::new(), None)
        } else {
            match self
                .handle
                .mailbox()
                .read_outbox_files(&message.id, &names)
                .instrument(tracing::info_span!("read_outbox_files"))
                .await
            {
                Ok(files) => (files, None),
                // An unsafe message id from the guest: deliver the text, not the files.
                Err(e) => (Vec::new(), Some(e.to_string())),
            }
        };
        let delivery = Delivery {
            engine: engine.clone(),
            handle: self.handle.clone(),
            message,
            content,
            routing,
            files,
            files_error,
            queued,
        };
        let timeout = engine.config.call_timeout;
        let call = async {
            if delivery.message.kind == "system" {
                match engine.handlers.for_request(&delivery) {
                    (_, Some(handler)) => handler.handle(&delivery).await.map(|()| None),
                    (action, None) => {
                        tracing::warn!(action = ?action.as_deref().map(escape_for_log), "no handler for this system action; marked handled");
                        Ok(None)
                    }
                }
            } else {
                engine.adapter.deliver(&delivery).await.map(Some)
            }
        };
        let result = match tokio::time::timeout(timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(DeliveryError::transient(format!(
                "the call did not return within {timeout:?}"
            ))),
        };
        match result {
            Ok(platform_id) => {
                self.pending
                    .push(delivery.record_delivered(platform_id).await?);
                if self.pending.due(&engine.config) {
                    self.settle_pending().await?;
                }
                Ok(Outcome::Delivered)
            }
            Err(error) => delivery.failed(error).await,
        }
    }
}

/// The due time of a message scheduled for after `now`; `None` when due
/// (an unreadable time is due: never lose a message).
fn later(deliver_after: Option<&str>, now: i64) -> Option<i64> {
    let now = Timestamp::from_millis(now)?;
    match airlock_core::due_at(deliver_after, now) {
        Ok(true) => None,
        Ok(false) => deliver_after
            .and_then(|text| Timestamp::parse(text).ok())
            .map(|t| t.as_millis()),
        Err(text) => {
            tracing::warn!(value = %escape_for_log(text), "unreadable deliver_after; delivering now");
            None
        }
    }
}
