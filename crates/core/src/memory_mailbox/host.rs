//! The host half of [`MemoryMailboxes`](super::MemoryMailboxes).

use std::time::Duration;

use async_trait::async_trait;

use super::{MemoryMailboxes, SessionMailbox, is_due, lock};
use crate::attachment::{OutboxFile, SessionRef};
use crate::derived_id::free_message_id;
use crate::error::{Error, Result};
use crate::host_mailbox::{
    DeliveryOutcome, GuestSetup, GuestStopped, HostMailboxStore, outbox_message_id,
};
use crate::ids::MessageId;
use crate::mailbox::{
    AckStatus, ContainerState, Destination, HOST_OUTBOUND_KIND, InboundMessage, MailboxCounts,
    NewHostMessage, NewInboundMessage, Origin, OutboundMessage, Routing, WriteOutcome,
    WrittenMessage,
};
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
        self.with(|state| {
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
                status: "pending".into(),
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
        self.with(|state| {
            state.routing = Some(routing);
            Ok(())
        })
    }

    async fn replace_destinations(&self, rows: Vec<Destination>) -> Result<()> {
        self.with(|state| {
            state.destinations = rows;
            Ok(())
        })
    }

    async fn write_host_message(&self, msg: NewHostMessage) -> Result<Seq> {
        self.with(|state| {
            if let Some(stored) = state.inbound.iter().find(|m| m.id == msg.id.as_str()) {
                return Ok(Seq::new(stored.seq));
            }
            let seq = next_inbound_seq(state);
            state.inbound.push(InboundMessage {
                id: msg.id.to_string(),
                seq: seq.get(),
                kind: HOST_OUTBOUND_KIND.into(),
                timestamp: msg.timestamp.to_iso(),
                status: "completed".into(),
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

    async fn record_outcome(&self, message_id: &str, outcome: DeliveryOutcome) -> Result<()> {
        self.with(|state| {
            let entry = state.delivered.entry(message_id.to_owned());
            match entry {
                std::collections::btree_map::Entry::Occupied(mut e)
                    if matches!(e.get(), DeliveryOutcome::Failed)
                        && matches!(outcome, DeliveryOutcome::Delivered { .. }) =>
                {
                    e.insert(outcome);
                }
                e => {
                    e.or_insert(outcome);
                }
            }
            Ok(())
        })
    }

    async fn sync_acks(&self) -> Result<usize> {
        self.with(|state| {
            let mut changed = 0;
            for ack in state.acks.values() {
                if !ack.status.is_finished() {
                    continue;
                }
                for row in state.inbound.iter_mut() {
                    if row.id == ack.message_id
                        && row.status != ack.status.as_str()
                        && row.kind != HOST_OUTBOUND_KIND
                    {
                        row.status = ack.status.as_str().to_owned();
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
                    .filter(|m| m.status == "pending")
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
                    m.status == "pending" && m.trigger && is_due(m.process_after.as_deref(), now)
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

    async fn heartbeat_age(&self, now: Timestamp) -> Result<Option<Duration>> {
        self.with(|state| {
            Ok(state.heartbeat.map(|beat| {
                let millis = now.as_millis().saturating_sub(beat.as_millis()).max(0);
                Duration::from_millis(millis as u64)
            }))
        })
    }

    async fn prepare_guest(&self) -> Result<GuestSetup> {
        self.with(|_| Ok(GuestSetup::default()))
    }

    async fn recover_stopped_guest(&self, _stopped: GuestStopped) -> Result<bool> {
        // Nothing can be half-written in memory: every operation is atomic.
        self.with(|_| Ok(false))
    }
}
