//! Attachment files: inbound extraction into `inbox/`, outbox reading and
//! clearing, all confined to the session folder by construction.
//!
//! [`ConfinedDir`] is the only way this module touches a file; see its docs
//! for why string checks are not enough. [`InboundExtractor`] is the
//! synchronous inbound half, [`read_outbox_files`] and [`clear_outbox`] the
//! outbound half, and [`FsAttachmentStore`] wraps them as the async
//! [`airlock_core::AttachmentStore`].

mod base64_stream;
mod confined;
mod inbound;
mod json_entries;
mod limits;
mod named;
mod outbox;
mod regular_file;
mod store;

pub use confined::{
    AccessError, ConfinedDir, Entry, MAX_REMOVE_DEPTH, MAX_REMOVE_ENTRIES, RegularFile,
    RemoveReport, Resolver, StagedFile, TEMP_PREFIX,
};
pub use inbound::{Clock, InboundExtractor, SessionExtractor};
pub use limits::AttachmentLimits;
pub use named::open_named_file;
pub use outbox::{clear_outbox, clear_outbox_in, read_outbox_files, read_outbox_files_in};
pub use store::FsAttachmentStore;
