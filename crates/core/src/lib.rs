//! airlock-core: the domain of airlock, with no I/O.
//!
//! Typed ids that are always safe path components, sessions and the rules
//! that resolve a chat to a session, the [`Error`] every store returns, and
//! the async storage traits ([`SessionStore`], [`AttachmentStore`], and the
//! mailbox seam [`HostMailboxStore`] / [`GuestMailboxStore`] /
//! [`MailboxFactory`]) that the backends implement. [`MemorySessionStore`]
//! and [`MemoryMailboxes`] are the in-memory reference implementations.
//! [`Seq`] holds the parity rule of sequence numbers. With the `testing`
//! feature, [`testing`] holds the conformance suites every backend runs.

mod attachment;
mod attachment_name;
mod derived_id;
mod error;
mod guest_mailbox;
mod host_mailbox;
mod idgen;
mod ids;
mod inbound_status;
pub mod mailbox;
mod memory;
mod memory_mailbox;
mod message_content;
mod pages;
mod seq;
mod session;
mod store;
mod time;

#[cfg(feature = "testing")]
pub mod testing;

pub use attachment::{
    AttachmentOutcome, AttachmentStore, ExtractedContent, OutboxFile, SessionRef,
};
pub use attachment_name::{
    AttachmentName, Derived, MAX_NAME_BYTES, NameDeduper, NameError, NameHints, NameProblem,
    check_name, extension_for_mime, extension_for_type, split_extension,
};
pub use derived_id::{derived_message_id, free_message_id};
pub use error::{BoxError, Error, Result, StorageFault};
pub use guest_mailbox::{DynGuestMailbox, GuestMailboxStore, Reply, ToolInFlight, WrittenReply};
pub use host_mailbox::{
    DeliveryOutcome, DueOutbound, DynHostMailbox, GuestSetup, GuestStopped, HostMailboxStore,
    HostMailboxStoreExt, MailboxFactory, SeriesNext, outbox_message_id,
};
pub use ids::{
    AgentGroupId, IdError, IdProblem, MAX_ID_BYTES, MessageId, MessagingGroupId, SessionId,
    ThreadId, escape_for_log, validate_component,
};
pub use memory::MemorySessionStore;
pub use memory_mailbox::{MemoryGuestMailbox, MemoryHostMailbox, MemoryMailboxes};
pub use message_content::{
    FILES_KEY, declared_files, system_response_content, with_declared_files,
};
pub use pages::{ChangeStamps, HostPage, PageLimits};
pub use seq::{Parity, Seq, SeqParseError};
pub use session::{
    ContainerStatus, MessagingGroup, NewMessagingGroup, ParseEnumError, ResolveRequest, Resolved,
    Session, SessionFilter, SessionMode, SessionStatus, SessionUpdate,
};
pub use store::{DynSessionStore, SessionStore, SessionStoreExt};
pub use time::{Timestamp, TimestampError, due_at, is_due};
