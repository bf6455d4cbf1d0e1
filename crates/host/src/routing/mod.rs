//! Several hosts on one registry: which host may touch a session's folder
//! (only its `owner_host`), and how a message for another host's session
//! reaches that host (a [`MessageRouter`], PostgreSQL's in [`pg`]).
//!
//! A session without an owner (single-host setups) is served by every
//! manager, as before owners existed.

pub mod pg;
pub(crate) mod placement;
pub mod reassign;

pub use placement::{Placement, place_with};

use airlock_core::mailbox::{NewInboundMessage, WriteOutcome, WrittenMessage};
use airlock_core::{Error, Result, Session, SessionId};
use async_trait::async_trait;

/// The host that owns `session` when it is not `me`: this host must not
/// touch its folder. `me = None` (a manager without a host id) owns only
/// sessions without an owner.
pub fn foreign_owner<'s>(session: &'s Session, me: Option<&str>) -> Option<&'s str> {
    session
        .owner_host
        .as_deref()
        .filter(|owner| Some(*owner) != me)
}

/// `Ok` when `me` may touch `session`'s folder, else [`Error::NotOwner`].
pub fn check_owner(session: &Session, me: Option<&str>) -> Result<()> {
    match foreign_owner(session, me) {
        None => Ok(()),
        Some(owner) => Err(Error::NotOwner {
            session: session.id.to_string(),
            owner: owner.to_owned(),
        }),
    }
}

/// Hands a message for a session another host owns to that host.
///
/// # Contract
/// `route` returns only once the message is durably accepted (it survives
/// a crash of this host), and the owner stores it in the session's mailbox
/// exactly once, in the order `route` calls for one session returned.
#[async_trait]
pub trait MessageRouter: std::fmt::Debug + Send + Sync + 'static {
    /// Queues `message` for `session`, owned by `owner` as far as the caller
    /// knows; returns the host it was queued for (the session's owner when
    /// it was queued, which differs from `owner` if the session was just
    /// reassigned).
    async fn route(
        &self,
        owner: &str,
        session: &SessionId,
        message: &NewInboundMessage,
    ) -> Result<String>;
}

/// What [`crate::SessionManager::write_message`] answers for a routed message.
pub(crate) fn routed_ack(message: &NewInboundMessage, owner: &str) -> WrittenMessage {
    WrittenMessage {
        id: message.id.clone(),
        seq: 0,
        outcome: WriteOutcome::Routed {
            owner: owner.to_owned(),
        },
        attachments: Vec::new(),
        quarantined_journal: None,
    }
}
