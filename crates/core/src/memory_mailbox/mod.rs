//! `MemoryMailboxes`: the in-memory reference mailbox, both halves.
//!
//! The host and guest handles of one session share one state behind one
//! mutex, which makes every operation atomic; it is the first backend the
//! mailbox conformance suite runs against and what doctests use.

mod guest;
mod host;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::attachment::{OutboxFile, SessionRef};
use crate::error::{Error, Result};
use crate::host_mailbox::{DeliveryOutcome, DynHostMailbox, MailboxFactory};
use crate::mailbox::{
    ContainerState, Destination, InboundMessage, OutboundMessage, ProcessingAck, Routing,
};
use crate::time::Timestamp;

pub use guest::MemoryGuestMailbox;
pub use host::MemoryHostMailbox;

/// Everything one session's mailbox holds (both "files").
#[derive(Debug, Default)]
struct SessionMailbox {
    /// `messages_in`, in seq order (host seqs only ever grow).
    inbound: Vec<InboundMessage>,
    /// The requested id of each message stored under a derived id.
    requested: HashMap<String, String>,
    delivered: BTreeMap<String, DeliveryOutcome>,
    destinations: Vec<Destination>,
    routing: Option<Routing>,
    /// `messages_out`, in seq order.
    outbound: Vec<OutboundMessage>,
    outbox: HashMap<String, Vec<OutboxFile>>,
    acks: BTreeMap<String, ProcessingAck>,
    state: HashMap<String, String>,
    container: Option<ContainerState>,
    heartbeat: Option<Timestamp>,
    /// Bumped by every write of the guest's half: its change stamp.
    guest_writes: u64,
    /// Bumped by every write of the host's half: its change stamp.
    host_writes: u64,
}

impl SessionMailbox {
    /// The largest seq of both halves, if any row exists.
    fn max_seq(&self) -> Option<crate::Seq> {
        let inbound = self.inbound.iter().map(|m| m.seq);
        let outbound = self.outbound.iter().map(|m| m.seq);
        inbound.chain(outbound).max().map(crate::Seq::new)
    }
}

type Shared = Arc<Mutex<SessionMailbox>>;

fn lock(shared: &Shared) -> MutexGuard<'_, SessionMailbox> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// The mailboxes of many sessions, kept in memory; nothing survives the process.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use airlock_core::mailbox::{AckStatus, NewInboundMessage, NewOutboundMessage};
/// use airlock_core::{
///     AgentGroupId, GuestMailboxStore, HostMailboxStore, MailboxFactory, MemoryMailboxes,
///     MessageId, Reply, SessionId, SessionRef, Timestamp,
/// };
///
/// let mailboxes = MemoryMailboxes::new();
/// let session = SessionRef::new(AgentGroupId::new("support").unwrap(), SessionId::generate());
/// let host = mailboxes.create_mailbox(&session).await.unwrap();
/// let question = NewInboundMessage::new(MessageId::new("m1").unwrap(), "chat", r#"{"text":"hi"}"#);
/// host.write_message(question).await.unwrap();
///
/// let guest = mailboxes.guest(&session).unwrap();
/// let pending = guest.pending(10, Timestamp::now()).await.unwrap();
/// let answer = NewOutboundMessage::new(MessageId::new("r1").unwrap(), "chat", r#"{"text":"hello"}"#);
/// guest.write_reply(Reply::new(answer)).await.unwrap();
/// guest.ack(&[pending[0].id.clone()], AckStatus::Completed).await.unwrap();
///
/// let due = host.due_outbound(Timestamp::now()).await.unwrap();
/// assert_eq!(due[0].id, "r1");
/// # });
/// ```
#[derive(Debug, Default, Clone)]
pub struct MemoryMailboxes {
    sessions: Arc<Mutex<HashMap<SessionRef, Shared>>>,
}

impl MemoryMailboxes {
    /// No mailboxes yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn find(&self, session: &SessionRef) -> Option<Shared> {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.get(session).cloned()
    }

    /// Starts a guest on `session`'s mailbox: like a fresh sandbox, it sees
    /// `on_wake` messages on its first poll and drops the `processing`
    /// claims a previous guest left. [`Error::NotFound`] if never created.
    pub fn guest(&self, session: &SessionRef) -> Result<MemoryGuestMailbox> {
        let shared = self
            .find(session)
            .ok_or_else(|| Error::not_found("mailbox", session.session.as_str()))?;
        Ok(MemoryGuestMailbox::start(shared))
    }
}

#[async_trait]
impl MailboxFactory for MemoryMailboxes {
    fn host_mailbox(&self, session: &SessionRef) -> Arc<DynHostMailbox> {
        Arc::new(MemoryHostMailbox::new(self.clone(), session.clone()))
    }

    async fn mailbox_exists(&self, session: &SessionRef) -> Result<bool> {
        Ok(self.find(session).is_some())
    }

    async fn create_mailbox(&self, session: &SessionRef) -> Result<Arc<DynHostMailbox>> {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(session.clone())
            .or_default();
        Ok(self.host_mailbox(session))
    }
}
