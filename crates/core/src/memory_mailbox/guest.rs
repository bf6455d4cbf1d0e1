//! The guest half of [`MemoryMailboxes`](super::MemoryMailboxes).

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;

use super::{Shared, lock};
use crate::error::Result;
use crate::guest_mailbox::{GuestMailboxStore, Reply, ToolInFlight, WrittenReply};
use crate::is_due;
use crate::mailbox::{
    AckStatus, ContainerState, InboundMessage, Origin, OutboundMessage, ProcessingAck, SeqTarget,
};
use crate::message_content::{declared_files, with_declared_files};
use crate::seq::Seq;
use crate::time::Timestamp;

/// The guest's handle on one in-memory session mailbox.
#[derive(Debug)]
pub struct MemoryGuestMailbox {
    shared: Shared,
    first_poll: AtomicBool,
}

impl MemoryGuestMailbox {
    /// A fresh guest: forgets the claims of the guest before it.
    pub(super) fn start(shared: Shared) -> Self {
        lock(&shared)
            .acks
            .retain(|_, ack| ack.status != AckStatus::Processing);
        Self {
            shared,
            first_poll: AtomicBool::new(true),
        }
    }
}

#[async_trait]
impl GuestMailboxStore for MemoryGuestMailbox {
    async fn pending(&self, limit: usize, now: Timestamp) -> Result<Vec<InboundMessage>> {
        let first = self.first_poll.swap(false, Ordering::SeqCst);
        let state = lock(&self.shared);
        let mut out: Vec<InboundMessage> = state
            .inbound
            .iter()
            .rev()
            .filter(|m| m.status.is_pending() && is_due(m.process_after.as_deref(), now))
            .filter(|m| first || !m.on_wake)
            .filter(|m| !state.acks.contains_key(&m.id))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        Ok(out)
    }

    async fn ack(&self, ids: &[String], status: AckStatus) -> Result<()> {
        let now = Timestamp::now().to_iso();
        let mut state = lock(&self.shared);
        state.guest_writes += 1;
        for id in ids {
            state.acks.insert(
                id.clone(),
                ProcessingAck {
                    message_id: id.clone(),
                    status,
                    status_changed: now.clone(),
                },
            );
        }
        Ok(())
    }

    async fn write_reply(&self, reply: Reply) -> Result<WrittenReply> {
        let names = reply.checked_names()?;
        let content = with_declared_files(&reply.message.content, &names)?;
        let mut state = lock(&self.shared);
        let msg = reply.message;
        if let Some(stored) = state.outbound.iter().find(|m| m.id == msg.id.as_str()) {
            return Ok(WrittenReply {
                id: msg.id,
                seq: Seq::new(stored.seq),
                files: declared_files(&stored.content),
            });
        }
        let seq = Seq::next_guest(state.max_seq());
        state.guest_writes += 1;
        if !reply.files.is_empty() {
            state.outbox.insert(msg.id.to_string(), reply.files);
        }
        state.outbound.push(OutboundMessage {
            origin: Origin::Guest,
            id: msg.id.to_string(),
            seq: seq.get(),
            in_reply_to: msg.in_reply_to,
            timestamp: msg.timestamp.to_iso(),
            deliver_after: msg.deliver_after.as_ref().map(Timestamp::to_iso),
            recurrence: msg.recurrence,
            kind: msg.kind,
            platform_id: msg.platform_id,
            channel_type: msg.channel_type,
            thread_id: msg.thread_id,
            content,
        });
        Ok(WrittenReply {
            id: msg.id,
            seq,
            files: names,
        })
    }

    async fn lookup_seq(&self, seq: Seq) -> Result<Option<SeqTarget>> {
        let state = lock(&self.shared);
        if seq.is_host() {
            return Ok(state
                .inbound
                .iter()
                .find(|m| m.seq == seq.get())
                .map(|m| SeqTarget {
                    message_id: m.id.clone(),
                    platform_message_id: Some(m.id.clone()),
                    origin: Origin::Host,
                }));
        }
        Ok(state
            .outbound
            .iter()
            .find(|m| m.seq == seq.get())
            .map(|m| SeqTarget {
                message_id: m.id.clone(),
                platform_message_id: match state.delivered.get(&m.id) {
                    Some(crate::DeliveryOutcome::Delivered {
                        platform_message_id,
                    }) => platform_message_id.clone(),
                    _ => None,
                },
                origin: Origin::Guest,
            }))
    }

    async fn state(&self, key: &str) -> Result<Option<String>> {
        Ok(lock(&self.shared).state.get(key).cloned())
    }

    async fn set_state(&self, key: &str, value: &str) -> Result<()> {
        let mut state = lock(&self.shared);
        state.guest_writes += 1;
        state.state.insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    async fn set_tool_in_flight(&self, tool: Option<ToolInFlight>) -> Result<()> {
        let now = Timestamp::now().to_iso();
        let mut state = lock(&self.shared);
        state.guest_writes += 1;
        state.container = Some(match tool {
            Some(t) => ContainerState {
                current_tool: Some(t.tool),
                tool_declared_timeout_ms: t.declared_timeout_ms,
                tool_started_at: Some(now.clone()),
                updated_at: now,
            },
            None => ContainerState {
                updated_at: now,
                ..ContainerState::default()
            },
        });
        Ok(())
    }

    async fn touch_heartbeat(&self) -> Result<()> {
        lock(&self.shared).heartbeat = Some(Timestamp::now());
        Ok(())
    }
}
