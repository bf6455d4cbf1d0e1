//! The host half of [`MemoryMailboxes`](super::MemoryMailboxes).

use std::collections::HashSet;

use async_trait::async_trait;

use super::{MemoryMailboxes, SessionMailbox, lock};
use crate::attachment::{OutboxFile, SessionRef};
use crate::derived_id::free_message_id;
use crate::error::{Error, Result};
use crate::host_mailbox::{
    DeliveryOutcome, GuestSetup, GuestStopped, HostMailboxStore, SeriesNext, outbox_message_id,
};
use crate::ids::MessageId;
use crate::is_due;
use crate::mailbox::{
    AckStatus, ContainerState, Destination, HOST_OUTBOUND_KIND, InboundMessage, InboundStatus,
    MailboxCounts, NewHostMessage, NewInboundMessage, Origin, OutboundMessage, Routing,
    WriteOutcome, WrittenMessage,
};
use crate::pages::{ChangeStamps, HostPage, PageLimits};
use crate::seq::Seq;
use crate::time::Timestamp;

/// The host's handle on one in-memory session mailbox.
#[derive(Debug, Clone)]
pub struct MemoryHostMailbox {
    mailboxes: MemoryMailboxes,
    session: SessionRef,
}

impl MemoryHostMailbox {
    pub(super) fn new(mailboxes: MemoryMailboxes, session: SessionRef) -> Self {
        Self { mailboxes, session }
    }

    /// Runs `f` on the session's state; [`Error::NotFound`] if never created.
    fn with<T>(&self, f: impl FnOnce(&mut SessionMailbox) -> Result<T>) -> Result<T> {
        let shared = self
            .mailboxes
            .find(&self.session)
            .ok_or_else(|| Error::not_found("mailbox", self.session.session.as_str()))?;
        let mut state = lock(&shared);
        f(&mut state)
    }

    /// Like [`Self::with`], for an operation that writes the host's half.
    fn write<T>(&self, f: impl FnOnce(&mut SessionMailbox) -> Result<T>) -> Result<T> {
        self.with(|state| {
            state.host_writes += 1;
            f(state)
        })
    }

    /// Sets fields of `id` when it is pending and the guest may process it.
    fn update_pending(&self, id: &str, f: impl FnOnce(&mut InboundMessage)) -> Result<bool> {
        self.write(|state| {
            let row = state
                .inbound
                .iter_mut()
                .find(|m| m.id == id && m.status.is_pending() && m.kind != HOST_OUTBOUND_KIND);
            match row {
                Some(row) => {
                    f(row);
                    Ok(true)
                }
                None => Ok(false),
            }
        })
    }
}

/// Clears `id`'s recurrence; returns whether it had one.
fn clear_recurrence(state: &mut SessionMailbox, id: &str) -> bool {
    let row = state
        .inbound
        .iter_mut()
        .find(|m| m.id == id && m.recurrence.is_some());
    match row {
        Some(row) => {
            row.recurrence = None;
            true
        }
        None => false,
    }
}

fn next_inbound_seq(state: &SessionMailbox) -> Seq {
    Seq::next_host(state.inbound.iter().map(|m| Seq::new(m.seq)).max())
}

fn host_row(m: &InboundMessage) -> OutboundMessage {
    OutboundMessage {
        origin: Origin::Host,
        id: m.id.clone(),
        seq: m.seq,
        in_reply_to: None,
        timestamp: m.timestamp.clone(),
        deliver_after: m.process_after.clone(),
        recurrence: None,
        kind: "chat".into(),
        platform_id: m.platform_id.clone(),
        channel_type: m.channel_type.clone(),
        thread_id: m.thread_id.clone(),
        content: m.content.clone(),
    }
}

#[async_trait]
impl HostMailboxStore for MemoryHostMailbox {
    async fn write_message(&self, msg: NewInboundMessage) -> Result<WrittenMessage> {
        self.write(|state| {
            // A retry is a message requested under the same id with the same
            // content, wherever it was stored.
            let requested_as = |m: &InboundMessage| {
                state
                    .requested
                    .get(&m.id)
                    .map_or(m.id.as_str(), String::as_str)
                    == msg.id.as_str()
            };
            if let Some(stored) = state
                .inbound
                .iter()
                .find(|m| requested_as(m) && m.content == msg.content)
            {
                return Ok(WrittenMessage {
                    id: MessageId::new(stored.id.clone())?,
                    seq: stored.seq,
                    outcome: WriteOutcome::Duplicate,
                    attachments: Vec::new(),
                    quarantined_journal: None,
                });
            }
            let id = free_message_id::<Error>(&msg.id, |id| {
                Ok(state.inbound.iter().any(|m| m.id == id.as_str()))
            })?;
            let outcome = if id == msg.id {
                WriteOutcome::Inserted
            } else {
                state.requested.insert(id.to_string(), msg.id.to_string());
                WriteOutcome::Renamed {
                    original: msg.id.clone(),
                }
            };
            let seq = next_inbound_seq(state);
            state.inbound.push(InboundMessage {
                id: id.to_string(),
                seq: seq.get(),
                kind: msg.kind.clone(),
                timestamp: msg.timestamp.to_iso(),
                status: InboundStatus::Pending,
                process_after: msg.process_after.as_ref().map(Timestamp::to_iso),
                recurrence: msg.recurrence.clone(),
                series_id: Some(id.to_string()),
                tries: 0,
                trigger: msg.trigger,
                platform_id: msg.platform_id.clone(),
                channel_type: msg.channel_type.clone(),
                thread_id: msg.thread_id.clone(),
                content: msg.content.clone(),
                source_session_id: msg.source_session_id.clone(),
                on_wake: msg.on_wake,
            });
            Ok(WrittenMessage {
                id,
                seq: seq.get(),
                outcome,
                attachments: Vec::new(),
                quarantined_journal: None,
            })
        })
    }

    async fn write_routing(&self, routing: Routing) -> Result<()> {
        self.write(|state| {
            state.routing = Some(routing);
            Ok(())
        })
    }

    async fn replace_destinations(&self, rows: Vec<Destination>) -> Result<()> {
        self.write(|state| {
            state.destinations = rows;
            Ok(())
        })
    }

    async fn write_host_message(&self, msg: NewHostMessage) -> Result<Seq> {
        self.write(|state| {
            if let Some(stored) = state.inbound.iter().find(|m| m.id == msg.id.as_str()) {
                return Ok(Seq::new(stored.seq));
            }
            let seq = next_inbound_seq(state);
            state.inbound.push(InboundMessage {
                id: msg.id.to_string(),
                seq: seq.get(),
                kind: HOST_OUTBOUND_KIND.into(),
                timestamp: msg.timestamp.to_iso(),
                status: InboundStatus::Completed,
                process_after: msg.deliver_after.as_ref().map(Timestamp::to_iso),
                recurrence: None,
                series_id: Some(msg.id.to_string()),
                tries: 0,
                trigger: false,
                platform_id: msg.platform_id,
                channel_type: msg.channel_type,
                thread_id: msg.thread_id,
                content: msg.content,
                source_session_id: None,
                on_wake: false,
            });
            Ok(seq)
        })
    }

    async fn due_outbound(&self, now: Timestamp) -> Result<Vec<OutboundMessage>> {
        self.with(|state| {
            let host: Vec<&InboundMessage> = state
                .inbound
                .iter()
                .filter(|m| m.kind == HOST_OUTBOUND_KIND)
                .collect();
            let unsettled_and_due = |m: &OutboundMessage| {
                !state.delivered.contains_key(&m.id) && is_due(m.deliver_after.as_deref(), now)
            };
            let mut due: Vec<OutboundMessage> = host
                .iter()
                .map(|m| host_row(m))
                .filter(unsettled_and_due)
                .collect();
            due.extend(
                state
                    .outbound
                    .iter()
                    .filter(|m| !host.iter().any(|h| h.id == m.id))
                    .filter(|m| unsettled_and_due(m))
                    .cloned(),
            );
            due.sort_by_key(|m| m.seq);
            Ok(due)
        })
    }

    async fn read_outbox_files(
        &self,
        message_id: &str,
        names: &[String],
    ) -> Result<Vec<OutboxFile>> {
        let id = outbox_message_id(message_id)?;
        self.with(|state| {
            let stored = state.outbox.get(id.as_str());
            Ok(names
                .iter()
                .filter_map(|name| {
                    stored.and_then(|files| files.iter().find(|f| &f.name == name).cloned())
                })
                .collect())
        })
    }

    async fn clear_outbox(&self, message_id: &str) {
        let cleared = self.with(|state| {
            state.outbox.remove(message_id);
            Ok(())
        });
        if let Err(e) = cleared {
            tracing::warn!(error = %e, "outbox not cleared");
        }
    }

    async fn record_outcomes(&self, outcomes: &[(String, DeliveryOutcome)]) -> Result<()> {
        self.write(|state| {
            for (message_id, outcome) in outcomes {
                let entry = state.delivered.entry(message_id.clone());
                match entry {
                    std::collections::btree_map::Entry::Occupied(mut e)
                        if matches!(e.get(), DeliveryOutcome::Failed)
                            && matches!(outcome, DeliveryOutcome::Delivered { .. }) =>
                    {
                        e.insert(outcome.clone());
                    }
                    e => {
                        e.or_insert_with(|| outcome.clone());
                    }
                }
            }
            Ok(())
        })
    }

    async fn settled_among(&self, ids: &[String]) -> Result<HashSet<String>> {
        self.with(|state| {
            Ok(ids
                .iter()
                .filter(|id| state.delivered.contains_key(*id))
                .cloned()
                .collect())
        })
    }

    async fn outbound_page(&self, after: i64, limits: PageLimits) -> Result<Vec<OutboundMessage>> {
        self.with(|state| {
            let mut rows: Vec<&OutboundMessage> =
                state.outbound.iter().filter(|m| m.seq > after).collect();
            rows.sort_by_key(|m| m.seq);
            limits.fill(rows.into_iter().map(|m| Ok(Some(m.clone()))))
        })
    }

    async fn host_outbound_page(&self, after: i64, limits: PageLimits) -> Result<HostPage> {
        self.with(|state| {
            let rows = state
                .inbound
                .iter()
                .filter(|m| m.seq > after && m.kind == HOST_OUTBOUND_KIND)
                .map(|m| Ok::<_, Error>(Some(host_row(m))));
            Ok(HostPage {
                messages: limits.fill(rows)?,
                max_seq: state.inbound.iter().map(|m| m.seq).max().unwrap_or(0),
            })
        })
    }

    async fn change_stamps(&self) -> Result<ChangeStamps> {
        self.with(|state| {
            Ok(ChangeStamps {
                guest: (state.guest_writes > 0).then(|| state.guest_writes.to_string()),
                host: Some(state.host_writes.to_string()),
            })
        })
    }

    async fn sync_acks(&self) -> Result<usize> {
        self.write(|state| {
            let mut changed = 0;
            for ack in state.acks.values() {
                let Some(settled) = InboundStatus::settled_by(ack.status) else {
                    continue;
                };
                for row in state.inbound.iter_mut() {
                    if row.id == ack.message_id
                        && row.status != settled
                        && row.kind != HOST_OUTBOUND_KIND
                    {
                        row.status = settled.clone();
                        changed += 1;
                    }
                }
            }
            Ok(changed)
        })
    }

    async fn counts(&self) -> Result<MailboxCounts> {
        self.with(|state| {
            Ok(MailboxCounts {
                inbound: state.inbound.len() as u64,
                inbound_pending: state
                    .inbound
                    .iter()
                    .filter(|m| m.status.is_pending())
                    .count() as u64,
                outbound: state.outbound.len() as u64,
                delivered: state.delivered.len() as u64,
            })
        })
    }

    async fn count_due(&self, now: Timestamp) -> Result<u64> {
        self.with(|state| {
            Ok(state
                .inbound
                .iter()
                .filter(|m| {
                    m.status.is_pending() && m.trigger && is_due(m.process_after.as_deref(), now)
                })
                .count() as u64)
        })
    }

    async fn processing_claims(&self) -> Result<Vec<String>> {
        self.with(|state| {
            Ok(state
                .acks
                .values()
                .filter(|a| a.status == AckStatus::Processing)
                .map(|a| a.message_id.clone())
                .collect())
        })
    }

    async fn container_state(&self) -> Result<Option<ContainerState>> {
        self.with(|state| Ok(state.container.clone()))
    }

    async fn last_heartbeat(&self) -> Result<Option<Timestamp>> {
        self.with(|state| Ok(state.heartbeat))
    }

    async fn clear_heartbeat(&self) -> Result<bool> {
        self.with(|state| Ok(state.heartbeat.take().is_some()))
    }

    async fn inbound_message(&self, id: &str) -> Result<Option<InboundMessage>> {
        self.with(|state| Ok(state.inbound.iter().find(|m| m.id == id).cloned()))
    }

    async fn requeue(&self, id: &str, tries: i64, process_after: Timestamp) -> Result<bool> {
        self.update_pending(id, |m| {
            m.tries = tries;
            m.process_after = Some(process_after.to_iso());
        })
    }

    async fn fail_pending(&self, id: &str, tries: i64) -> Result<bool> {
        self.update_pending(id, |m| {
            m.tries = tries;
            m.status = InboundStatus::Failed;
        })
    }

    async fn completed_recurring(&self) -> Result<Vec<InboundMessage>> {
        self.with(|state| {
            Ok(state
                .inbound
                .iter()
                .filter(|m| m.status == InboundStatus::Completed && m.recurrence.is_some())
                .cloned()
                .collect())
        })
    }

    async fn continue_series(&self, done: &str, next: SeriesNext) -> Result<bool> {
        self.write(|state| {
            let taken = state.inbound.iter().any(|m| m.id == next.id.as_str());
            let source = state
                .inbound
                .iter()
                .find(|m| m.id == done && m.recurrence.is_some())
                .cloned();
            let inserted = match source {
                Some(source) if !taken => {
                    let seq = next_inbound_seq(state);
                    state.inbound.push(InboundMessage {
                        id: next.id.to_string(),
                        seq: seq.get(),
                        timestamp: Timestamp::now().to_iso(),
                        status: InboundStatus::Pending,
                        process_after: Some(next.process_after.to_iso()),
                        recurrence: Some(next.recurrence.clone()),
                        series_id: Some(
                            source
                                .series_id
                                .clone()
                                .unwrap_or_else(|| source.id.clone()),
                        ),
                        tries: 0,
                        ..source
                    });
                    true
                }
                _ => false,
            };
            clear_recurrence(state, done);
            Ok(inserted)
        })
    }

    async fn end_series(&self, id: &str) -> Result<bool> {
        self.write(|state| Ok(clear_recurrence(state, id)))
    }

    async fn prepare_guest(&self) -> Result<GuestSetup> {
        self.with(|_| Ok(GuestSetup::default()))
    }

    async fn recover_stopped_guest(&self, _stopped: GuestStopped) -> Result<bool> {
        // Nothing can be half-written in memory: every operation is atomic.
        self.with(|_| Ok(false))
    }
}
