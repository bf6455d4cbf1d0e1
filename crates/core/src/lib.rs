//! airlock-core: the domain of airlock, with no I/O.
//!
//! Typed ids that are always safe path components, sessions and the rules
//! that resolve a chat to a session, the [`Error`] every store returns, and
//! the async storage traits ([`SessionStore`], [`AttachmentStore`]) that the
//! backends implement. [`MemorySessionStore`] is the in-memory reference
//! registry. With the `testing` feature, [`testing`] holds the conformance
//! suite every backend runs.

mod attachment;
mod attachment_name;
mod error;
mod idgen;
mod ids;
pub mod mailbox;
mod memory;
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
pub use error::{BoxError, Error, Result};
pub use ids::{
    AgentGroupId, IdError, IdProblem, MAX_ID_BYTES, MessageId, MessagingGroupId, SessionId,
    ThreadId, escape_for_log, validate_component,
};
pub use memory::MemorySessionStore;
pub use session::{
    ContainerStatus, MessagingGroup, NewMessagingGroup, ParseEnumError, ResolveRequest, Resolved,
    Session, SessionFilter, SessionMode, SessionStatus, SessionUpdate,
};
pub use store::{DynSessionStore, SessionStore, SessionStoreExt};
pub use time::{Timestamp, TimestampError};
