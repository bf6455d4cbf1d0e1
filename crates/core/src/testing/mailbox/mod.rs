//! The conformance suite every mailbox implementation runs (feature `testing`).
//!
//! Each check is a plain `pub async fn` over a [`MailboxUnderTest`]: the host
//! half of one fresh session and a way to start guests on it. The
//! [`mailbox_conformance!`](crate::mailbox_conformance) macro turns them into
//! one `#[tokio::test]` each:
//!
//! ```text
//! async fn fresh_mailbox() -> Option<airlock_core::testing::MailboxUnderTest> { … }
//! airlock_core::mailbox_conformance!(fresh_mailbox);
//! ```
//!
//! Where a backend legitimately does less, it says so in
//! [`MailboxCapabilities`]; a check it cannot run prints that it was skipped
//! and why, never passing silently.

mod engine;
mod exchange;
mod files;
mod guest;
mod host;
mod platform_ids;
mod seqs;
mod sweep_reads;

use std::any::Any;
use std::sync::Arc;

use crate::attachment::SessionRef;
use crate::guest_mailbox::DynGuestMailbox;
use crate::host_mailbox::{DynHostMailbox, MailboxFactory};
use crate::ids::{AgentGroupId, MessageId, SessionId};
use crate::mailbox::{NewInboundMessage, NewOutboundMessage};

pub use engine::*;
pub use exchange::*;
pub use files::*;
pub use guest::*;
pub use host::*;
pub use platform_ids::*;
pub use seqs::*;
pub use sweep_reads::*;

/// An hour in milliseconds, for scheduled messages.
const HOUR: i64 = 3_600_000;

/// What a mailbox backend can do beyond the common contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxCapabilities {
    /// `write_message` decodes inline `attachments[].data` into files.
    pub inline_attachments: bool,
}

/// Starts a guest on the session under test, like a fresh sandbox would.
pub type StartGuest = Box<dyn Fn() -> Arc<DynGuestMailbox> + Send + Sync>;

/// One fresh session's mailbox for one test, plus whatever keeps its storage alive.
pub struct MailboxUnderTest {
    /// The factory that made the session's mailbox.
    pub factory: Arc<dyn MailboxFactory>,
    /// The session, already created through `factory`.
    pub session: SessionRef,
    /// The host half of the session's mailbox.
    pub host: Arc<DynHostMailbox>,
    /// Starts a guest on the session (each call is a new guest process).
    pub start_guest: StartGuest,
    /// What the backend can do.
    pub capabilities: MailboxCapabilities,
    /// Dropped at the end of the test.
    pub guard: Box<dyn Any + Send>,
}

impl MailboxUnderTest {
    /// A new guest on the session.
    pub fn guest(&self) -> Arc<DynGuestMailbox> {
        (self.start_guest)()
    }
}

/// A fresh session reference for tests.
pub fn fresh_session() -> SessionRef {
    SessionRef::new(
        AgentGroupId::new("conformance").expect("test agent group id"),
        SessionId::generate(),
    )
}

/// A message id for tests.
pub fn mid(id: &str) -> MessageId {
    MessageId::new(id).expect("test message id")
}

/// A chat message from the host.
pub fn inbound(id: &str, text: &str) -> NewInboundMessage {
    NewInboundMessage::new(mid(id), "chat", format!(r#"{{"text":"{text}"}}"#))
}

/// A chat reply from the guest.
pub fn outbound(id: &str, text: &str) -> NewOutboundMessage {
    NewOutboundMessage::new(mid(id), "chat", format!(r#"{{"text":"{text}"}}"#))
}

/// The ids of the messages due at `now`, in the order the host returns them.
pub async fn due_ids(t: &MailboxUnderTest, now: crate::time::Timestamp) -> Vec<String> {
    let due = t.host.due_outbound(now).await.expect("due_outbound");
    due.into_iter().map(|m| m.id).collect()
}

/// Expands the mailbox conformance suite into one `#[tokio::test]` per check.
///
/// `$factory` is an `async fn() -> Option<MailboxUnderTest>`.
#[macro_export]
macro_rules! mailbox_conformance {
    ($factory:path) => {
        $crate::__mailbox_conformance!(
            $factory;
            host_guest_exchange,
            acks_reach_the_host_once,
            host_seqs_are_even_and_grow,
            guest_seqs_are_odd_above_both_halves,
            a_retry_returns_the_stored_seq,
            a_reused_id_is_stored_under_a_derived_id,
            platform_ids_that_look_derived_are_not_retries,
            every_distinct_platform_message_is_stored_once,
            host_messages_are_delivered_not_processed,
            deliver_after_holds_messages_back,
            a_settled_message_is_never_due_again,
            count_due_counts_pending_triggering_due,
            pending_is_the_newest_n_oldest_first,
            on_wake_is_only_for_a_first_poll,
            a_new_guest_drops_stale_claims,
            reply_retry_returns_the_stored_seq,
            lookup_seq_follows_parity,
            state_and_tool_in_flight,
            heartbeat_age_follows_the_guest,
            guest_start_and_stop_leave_the_mailbox_usable,
            system_responses_are_system_messages,
            routing_and_destinations_are_stored,
            unknown_mailbox_is_not_found,
            create_mailbox_is_idempotent,
            create_mailbox_routed_creates_once,
            reply_files_travel_with_the_reply,
            unsafe_reply_files_store_nothing,
            unsafe_outbox_ids_are_refused,
            inline_attachments_are_written_once,
            pages_read_past_a_cursor_in_seq_order,
            change_stamps_move_with_each_half,
            outcomes_recorded_together_settle_each,
            requeue_and_fail_change_only_pending,
            a_series_continues_once,
            clear_heartbeat_forgets_the_beat,
            a_mailbox_exists_once_created,
            change_stamps_of_answers_as_each_mailbox,
            quiet_for_sweep_never_hides_work,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __mailbox_conformance {
    ($factory:path; $($name:ident),+ $(,)?) => {
        mod mailbox_conformance {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    match $factory().await {
                        Some(under_test) => {
                            $crate::testing::$name(&under_test).await;
                            drop(under_test);
                        }
                        None => eprintln!(
                            "SKIPPED {}: the backend is not available here (see above)",
                            stringify!($name)
                        ),
                    }
                }
            )+
        }
    };
}
