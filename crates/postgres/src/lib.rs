//! airlock-postgres: airlock's session registry in PostgreSQL, via sqlx.
//!
//! [`PgSessionStore`] implements [`airlock_core::SessionStore`] and passes
//! the shared conformance suite. It is for hosts that outgrow one machine or
//! run several host processes against one registry.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use airlock_postgres::{PgSessionStore, PgStoreOptions};
//!
//! let store = PgSessionStore::connect_with(
//!     PgStoreOptions::new("postgres://airlock@db.internal:5432/airlock").schema("prod"),
//! )
//! .await?;
//! # Ok(()) }
//! ```
//!
//! # Schema and migrations
//!
//! Everything lives in one schema (default `airlock`, see
//! [`PgStoreOptions::schema`]): the tables, their indexes and the
//! migration table `_airlock_migrations`. Two deployments can share a
//! database with two schemas. Connecting creates the schema if missing and
//! applies the versioned migrations in `migrations/` (embedded with
//! `sqlx::migrate!`), one migrator per schema at a time, so many hosts may
//! start together. Every pooled connection has `search_path` set to the
//! schema as a startup parameter.
//!
//! # Atomic resolution
//!
//! A partial unique index over the resolution key
//! ([`airlock_core::ResolveRequest::key`]) of *active* sessions allows one
//! active session per key. `resolve_session` is one statement that returns
//! the active session of the key or inserts the new one with
//! `ON CONFLICT DO NOTHING`; when a concurrent insert wins, the statement
//! is run again and finds the winner. So concurrent resolves of one key in
//! any number of processes and machines agree on one session, exactly one
//! of them is told it created it, and none gets an error. Archiving frees
//! the key; reactivating into a taken key is [`airlock_core::Error::Conflict`].
//!
//! # Several hosts
//!
//! Only the registry is shared: messaging groups and sessions (which chat
//! maps to which session, its status, its container status, `last_active`).
//! A session's folder (its mailboxes `inbound.db`/`outbound.db` and its
//! inbox/outbox attachment files) stays on the machine that runs its
//! sandbox, because the sandbox reaches it through a bind mount. So each
//! session records the host that has its folder: pass
//! [`ResolveRequest::owner_host`](airlock_core::ResolveRequest::owner_host)
//! when resolving, and let every host serve only sessions with
//! `SessionFilter { owner_host: Some(me), .. }`. A host must never write
//! another host's session folder; messages for such a session are routed to
//! its owner. `created_at` comes from the clock of the host that created the
//! session, so run NTP on every host.
//!
//! # Errors and connection loss
//!
//! Driver errors become [`airlock_core::Error::Backend`] with
//! `backend = "postgres"` and what was being done; uniqueness and missing
//! rows become `AlreadyExists`, `Conflict` and `NotFound`. While the server
//! is unreachable, calls fail after
//! [`PgStoreOptions::acquire_timeout`] with a message naming the server;
//! once it is back, the same store works again (idle connections are
//! tested before use, broken ones replaced). Opening errors are
//! [`OpenError`].
//!
//! # TLS and production settings
//!
//! TLS is rustls (ring, the system's root certificates or a CA file): the
//! URL's `sslmode` (`verify-full` checks the chain and the host name),
//! `sslrootcert=PATH`, `sslcert`/`sslkey`. Pool size and timeouts come from
//! [`PgStoreOptions`] or the URL ([`PgStoreOptions::from_url`]).
//!
//! # Routing between hosts
//!
//! [`PgRouteQueue`] (migration 2) holds messages a host accepted for a
//! session another host owns, until the owner drains them into the
//! session's mailbox; the `hosts` table holds each host's lease, so
//! messages waiting for a host that stopped heartbeating show as stranded.
//! A message the owner cannot apply is retried per [`RetryPolicy`], then
//! kept as a [`DeadLetter`] (migration 3) that no longer blocks its session.
//! [`PgRouteQueue::reassign`] hands a session and its queue to another host,
//! never while the old owner holds a live lease.

mod error;
mod migrate;
mod options;
mod queries;
mod routing;
mod rows;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::OpenError;
pub use migrate::{MigrationStatus, migration_status};
pub use options::{DEFAULT_SCHEMA, PgStoreOptions, URL_SETTINGS, validate_schema};
pub use routing::{
    DeadLetter, Drained, Enqueued, Handover, NOTIFY_CHANNEL, PgRouteQueue, QueuedSession,
    RetryPolicy, RouteListener, RoutedMessage, StrandedQueue,
};
pub use store::PgSessionStore;

/// The `backend` name in [`airlock_core::Error::Backend`].
pub const BACKEND: &str = "postgres";
