//! airlock-sqlite-fs: airlock's embedded backend.
//!
//! - [`SqliteSessionStore`]: the session registry in `<data_dir>/airlock.db`
//!   (host-only, WAL, one long-lived connection).
//! - Session mailboxes live as two SQLite files per session folder
//!   (`<sessions_root>/<agent_group>/<session>/`): `inbound.db`, written only
//!   by the host, and `outbound.db`, written only by the guest. See
//!   [`docs`] for the design: the cross-mount invariants and how the types
//!   enforce them, host-originated messages, journal quarantine and lock files.
//!
//! Cargo feature `host` (default) is everything above. Without it
//! (`default-features = false`) the crate is the guest half alone: the
//! synchronous [`GuestMailbox`], the layout and the schema, on rusqlite and
//! core, with no tokio, no registry and no host state.

#[cfg(feature = "host")]
mod attachment_hook;
#[cfg(feature = "host")]
pub mod attachments;
#[cfg(feature = "host")]
pub mod docs;
#[cfg(feature = "host")]
pub mod doctor;
pub mod error;
pub mod guest;
#[cfg(feature = "host")]
pub mod host;
#[cfg(feature = "host")]
mod host_state;
#[cfg(feature = "host")]
pub mod import;
pub mod layout;
#[cfg(feature = "host")]
pub mod mailbox_impl;
mod mount;
#[cfg(feature = "host")]
mod registry;
pub mod schema;
mod sqlite_util;

pub use error::{Error, Result};
pub use guest::GuestMailbox;
#[cfg(feature = "host")]
pub use host::{HostMailbox, InboundContent, MailboxReport, PlainContent};
#[cfg(feature = "host")]
pub use host_state::TamperEvent;
pub use layout::{HostSessionState, HostStateRoot, MailboxRoots, SessionPaths, SessionsRoot};
#[cfg(feature = "host")]
pub use registry::{
    ForeignRegistry, MigrateError, OpenStoreError, REGISTRY_FILE, SCHEMA_VERSION,
    SqliteSessionStore,
};
pub use sqlite_util::{
    DbHeader, JournalKind, RetryStatsSnapshot, canonical_dir, is_read_only, read_header,
};
