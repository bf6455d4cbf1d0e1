//! airlock-sqlite-fs: airlock's embedded backend.
//!
//! - [`SqliteSessionStore`]: the session registry in `<data_dir>/airlock.db`
//!   (host-only, WAL, one long-lived connection).
//! - Session mailboxes live as two SQLite files per session folder
//!   (`<sessions_root>/<agent_group>/<session>/`): `inbound.db`, written only
//!   by the host, and `outbound.db`, written only by the guest. See
//!   [`docs`] for the design: the cross-mount invariants and how the types
//!   enforce them, host-originated messages, journal quarantine and lock files.

mod attachment_hook;
pub mod attachments;
pub mod docs;
pub mod doctor;
pub mod error;
pub mod guest;
pub mod host;
mod host_state;
pub mod import;
pub mod layout;
pub mod mailbox_impl;
mod registry;
pub mod schema;
mod sqlite_util;

pub use error::{Error, Result};
pub use guest::GuestMailbox;
pub use host::{HostMailbox, InboundContent, MailboxReport, PlainContent};
pub use host_state::TamperEvent;
pub use layout::{HostSessionState, HostStateRoot, MailboxRoots, SessionPaths, SessionsRoot};
pub use registry::{
    ForeignRegistry, MigrateError, OpenStoreError, REGISTRY_FILE, SCHEMA_VERSION,
    SqliteSessionStore,
};
pub use sqlite_util::{
    DbHeader, JournalKind, RetryStatsSnapshot, canonical_dir, is_read_only, read_header,
};
