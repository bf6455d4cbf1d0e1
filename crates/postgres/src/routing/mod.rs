//! The routing queue: messages a host accepted for a session another host
//! owns, kept in PostgreSQL until the owner stores them in the session's
//! mailbox.
//!
//! Locks, always taken in this order so no two of them wait on each other:
//! a host's drain lock (one drainer per owner; a reassignment takes the old
//! owner's), then a session's enqueue lock (serialises enqueues and
//! reassignments of one session), then rows.

mod drain;
mod handover;
mod status;

use std::time::Duration;

use airlock_core::{Error, Result, SessionId};
use sqlx::postgres::PgListener;

use crate::PgSessionStore;
use crate::error::ErrorMapper;

pub use drain::{Drained, RetryPolicy};
pub use handover::Handover;
pub use status::{DeadLetter, QueuedSession, StrandedQueue};

/// The `NOTIFY` channel of every queue; the payload is `<schema>/<owner>`, so
/// schemas sharing a database never wake each other's drainers by mistake.
pub const NOTIFY_CHANNEL: &str = "airlock_routed";

/// First key of the advisory locks of the queue (`'rout'` in ASCII); the
/// second is a hash of the session (enqueue) or owner host (drain).
const ENQUEUE_LOCK: i32 = 0x726f_7574;
/// Lock class of a host's drainer: one drainer per owner at a time keeps
/// each session's messages in arrival order.
const DRAIN_LOCK: i32 = 0x7472_6e64;
/// How long a drain (or a reassignment) waits for the owner's running drain.
const DRAIN_LOCK_WAIT: Duration = Duration::from_secs(30);

/// A queued message, as the owner receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutedMessage {
    /// Queue position (arrival order).
    pub queue_id: i64,
    /// The session it is for.
    pub session_id: String,
    /// Its message id, as the sender gave it.
    pub message_id: String,
    /// The message, as the enqueuer serialised it.
    pub payload: String,
    /// The host that accepted it.
    pub enqueued_by: String,
    /// Failed applies before this one.
    pub attempts: i32,
}

/// Where [`PgRouteQueue::enqueue`] put a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    /// Queue position.
    pub queue_id: i64,
    /// The owner it waits for: the session's owner when the transaction
    /// ran, which is not the one asked for if the session was just
    /// reassigned.
    pub owner: String,
}

/// The routing queue of one registry schema; cheap to clone.
#[derive(Debug, Clone)]
pub struct PgRouteQueue {
    store: PgSessionStore,
}

impl PgSessionStore {
    /// The routing queue in this registry's schema.
    pub fn route_queue(&self) -> PgRouteQueue {
        PgRouteQueue {
            store: self.clone(),
        }
    }
}

impl PgRouteQueue {
    fn errors(&self) -> &ErrorMapper {
        self.store.errors()
    }

    /// Durably queues `payload` (message `message_id` of `session`) for the
    /// session's owner, in one transaction that also notifies the owner's
    /// drainer. `owner` is who the caller believes owns it; the owner read
    /// inside the transaction wins, so a message accepted while the session
    /// is being reassigned waits for the new owner, never the old one.
    pub async fn enqueue(
        &self,
        owner: &str,
        session: &SessionId,
        message_id: &str,
        payload: &str,
        enqueued_by: &str,
    ) -> Result<Enqueued> {
        let context = || format!("queueing message for session {session} (owner {owner})");
        let map = |e| self.errors().map(context(), e);
        let mut tx = self.store.pool().begin().await.map_err(map)?;
        // Serialises enqueues (and reassignments) of one session, so queue
        // ids commit in the order they are taken and the drain sees
        // arrival order.
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(ENQUEUE_LOCK)
            .bind(session.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        let current: Option<Option<String>> =
            sqlx::query_scalar("SELECT owner_host FROM sessions WHERE id = $1")
                .bind(session.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(map)?;
        let owner = match current {
            Some(Some(owner)) => owner,
            found => {
                tx.rollback().await.map_err(map)?;
                return Err(match found {
                    None => Error::not_found("session", session),
                    Some(_) => Error::Conflict(format!(
                        "session {session} has no owner host any more: write to it directly"
                    )),
                });
            }
        };
        let bytes = i32::try_from(payload.len()).unwrap_or(i32::MAX);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO routed_messages \
             (owner_host, session_id, message_id, message, bytes, enqueued_by, enqueued_at) \
             VALUES ($1, $2, $3, $4, $5, $6, now()) RETURNING id",
        )
        .bind(&owner)
        .bind(session.as_str())
        .bind(message_id)
        .bind(payload)
        .bind(bytes)
        .bind(enqueued_by)
        .fetch_one(&mut *tx)
        .await
        .map_err(map)?;
        self.notify(&mut tx, &owner).await.map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(Enqueued {
            queue_id: id,
            owner,
        })
    }

    fn notify_payload(&self, owner: &str) -> String {
        format!("{}/{owner}", self.store.schema())
    }

    /// Wakes `owner`'s drainer when `tx` commits.
    async fn notify(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        owner: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(NOTIFY_CHANNEL)
            .bind(self.notify_payload(owner))
            .execute(&mut **tx)
            .await
            .map(|_| ())
    }

    /// A listener woken when messages are queued for `owner`.
    pub async fn listen(&self, owner: &str) -> Result<RouteListener> {
        let map = |e| {
            self.errors()
                .map(format!("listening for messages routed to {owner}"), e)
        };
        let mut listener = PgListener::connect_with(self.store.pool())
            .await
            .map_err(map)?;
        listener.listen(NOTIFY_CHANNEL).await.map_err(map)?;
        Ok(RouteListener {
            listener,
            wanted: self.notify_payload(owner),
        })
    }
}

/// Waits for `NOTIFY`s addressed to one owner.
#[derive(Debug)]
pub struct RouteListener {
    listener: PgListener,
    wanted: String,
}

impl RouteListener {
    /// Returns when a message may be queued for the owner, or after
    /// `timeout` (the polling fallback: a notification lost while the
    /// connection was down is made up by the next poll). Errors mean the
    /// connection is gone; poll and reconnect later.
    pub async fn wait(&mut self, timeout: Duration) -> Result<bool> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.listener.recv()).await {
                Err(_) => return Ok(false),
                Ok(Err(e)) => {
                    return Err(airlock_core::Error::backend(
                        crate::BACKEND,
                        "waiting for routed messages",
                        e,
                    ));
                }
                Ok(Ok(n)) if n.payload() == self.wanted => return Ok(true),
                Ok(Ok(_)) => {}
            }
        }
    }
}
