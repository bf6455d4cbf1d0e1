//! The routing queue: messages a host accepted for a session another host
//! owns, kept in PostgreSQL until the owner stores them in the session's
//! mailbox.

use std::future::Future;
use std::time::Duration;

use airlock_core::{Result, SessionId};
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgListener;
use sqlx::{Connection, Postgres, Row};

use crate::PgSessionStore;
use crate::error::ErrorMapper;

/// The `NOTIFY` channel of every queue; the payload is `<schema>/<owner>`, so
/// schemas sharing a database never wake each other's drainers by mistake.
pub const NOTIFY_CHANNEL: &str = "airlock_routed";

/// First key of the advisory locks of the queue (`'rout'` in ASCII); the
/// second is a hash of the session (enqueue) or owner host (drain).
const ENQUEUE_LOCK: i32 = 0x726f_7574;
/// Lock class of a host's drainer: one drainer per owner at a time keeps
/// each session's messages in arrival order.
const DRAIN_LOCK: i32 = 0x7472_6e64;
/// How long a drain waits for the previous drainer of its owner.
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
}

/// Messages waiting for one owner that no live host serves.
#[derive(Debug, Clone, PartialEq)]
pub struct StrandedQueue {
    /// The owner whose lease expired (or who never heartbeat).
    pub owner_host: String,
    /// The session.
    pub session_id: String,
    /// How many messages wait.
    pub messages: i64,
    /// Age of the oldest one.
    pub oldest_age: Duration,
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

    /// Durably queues `payload` (message `message_id` of `session`) for
    /// `owner`, in one transaction that also notifies the owner's drainer.
    /// Returns the queue position.
    pub async fn enqueue(
        &self,
        owner: &str,
        session: &SessionId,
        message_id: &str,
        payload: &str,
        enqueued_by: &str,
    ) -> Result<i64> {
        let context = || format!("queueing message for session {session} (owner {owner})");
        let map = |e| self.errors().map(context(), e);
        let mut tx = self.store.pool().begin().await.map_err(map)?;
        // Serialises enqueues of one session, so queue ids commit in the
        // order they are taken and the drain sees arrival order.
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(ENQUEUE_LOCK)
            .bind(session.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        let bytes = i32::try_from(payload.len()).unwrap_or(i32::MAX);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO routed_messages \
             (owner_host, session_id, message_id, message, bytes, enqueued_by, enqueued_at) \
             VALUES ($1, $2, $3, $4, $5, $6, now()) RETURNING id",
        )
        .bind(owner)
        .bind(session.as_str())
        .bind(message_id)
        .bind(payload)
        .bind(bytes)
        .bind(enqueued_by)
        .fetch_one(&mut *tx)
        .await
        .map_err(map)?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(NOTIFY_CHANNEL)
            .bind(self.notify_payload(owner))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(id)
    }

    fn notify_payload(&self, owner: &str) -> String {
        format!("{}/{owner}", self.store.schema())
    }

    /// Applies up to `limit` of `owner`'s queued messages in arrival order
    /// and removes each one applied, in one transaction: a crash (or a
    /// dropped future) before the commit leaves every row queued, so
    /// `apply` must be idempotent on the message id. Stops at the first
    /// failing `apply` (later messages of the session must not overtake
    /// it), keeps what was applied before it and returns the error.
    /// Returns how many were applied. Drainers of one owner take turns
    /// (an advisory lock, waited for up to 30 s), which keeps each
    /// session's messages in arrival order.
    pub async fn drain<F, Fut>(&self, owner: &str, limit: i64, mut apply: F) -> Result<usize>
    where
        F: FnMut(RoutedMessage) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let context = || format!("draining the routing queue of host {owner}");
        let map = |e| self.errors().map(context(), e);
        let mut claim = Claim(Some(self.store.pool().acquire().await.map_err(map)?));
        let conn = claim.0.as_mut().expect("claimed connection");
        let mut tx = conn.begin().await.map_err(map)?;
        // Waits rather than skips: the holder may be a drain that was just
        // cancelled, whose rollback the pool has not sent yet.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SET LOCAL lock_timeout = {}",
            DRAIN_LOCK_WAIT.as_millis()
        )))
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(DRAIN_LOCK)
            .bind(owner)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        let rows = sqlx::query(
            "SELECT id, session_id, message_id, message, enqueued_by FROM routed_messages \
             WHERE owner_host = $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind(owner)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .map_err(map)?;
        let mut applied = 0;
        let mut failure = None;
        for row in rows {
            let message = RoutedMessage {
                queue_id: row.try_get("id").map_err(map)?,
                session_id: row.try_get("session_id").map_err(map)?,
                message_id: row.try_get("message_id").map_err(map)?,
                payload: row.try_get("message").map_err(map)?,
                enqueued_by: row.try_get("enqueued_by").map_err(map)?,
            };
            let queue_id = message.queue_id;
            if let Err(e) = apply(message).await {
                failure = Some(e);
                break;
            }
            sqlx::query("DELETE FROM routed_messages WHERE id = $1")
                .bind(queue_id)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            applied += 1;
        }
        tx.commit().await.map_err(map)?;
        claim.finish();
        match failure {
            Some(e) => Err(e),
            None => Ok(applied),
        }
    }

    /// How many messages wait for `owner`.
    pub async fn queued_for(&self, owner: &str) -> Result<i64> {
        sqlx::query_scalar("SELECT count(*) FROM routed_messages WHERE owner_host = $1")
            .bind(owner)
            .fetch_one(self.store.pool())
            .await
            .map_err(|e| {
                self.errors()
                    .map(format!("counting messages queued for {owner}"), e)
            })
    }

    /// Queued messages whose owner holds no live lease, per session, oldest
    /// first (ages by the server's clock).
    pub async fn stranded(&self) -> Result<Vec<StrandedQueue>> {
        let rows = sqlx::query(
            "SELECT r.owner_host, r.session_id, count(*) AS messages, \
                    extract(epoch FROM now() - min(r.enqueued_at))::float8 AS age \
             FROM routed_messages r LEFT JOIN hosts h ON h.host_id = r.owner_host \
             WHERE h.lease_until IS NULL OR h.lease_until < now() \
             GROUP BY r.owner_host, r.session_id ORDER BY age DESC, r.session_id",
        )
        .fetch_all(self.store.pool())
        .await
        .map_err(|e| self.errors().map("listing stranded routed messages", e))?;
        rows.iter()
            .map(|row| {
                let age: f64 = row.try_get("age")?;
                Ok(StrandedQueue {
                    owner_host: row.try_get("owner_host")?,
                    session_id: row.try_get("session_id")?,
                    messages: row.try_get("messages")?,
                    oldest_age: Duration::from_secs_f64(age.max(0.0)),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.errors().map("reading stranded routed messages", e))
    }

    /// Renews `host`'s lease for `lease` from now (server clock).
    pub async fn heartbeat(&self, host: &str, lease: Duration) -> Result<()> {
        sqlx::query(
            "INSERT INTO hosts (host_id, started_at, heartbeat_at, lease_until) \
             VALUES ($1, now(), now(), now() + make_interval(secs => $2)) \
             ON CONFLICT (host_id) DO UPDATE SET heartbeat_at = now(), \
             lease_until = now() + make_interval(secs => $2)",
        )
        .bind(host)
        .bind(lease.as_secs_f64())
        .execute(self.store.pool())
        .await
        .map_err(|e| {
            self.errors()
                .map(format!("renewing the lease of host {host}"), e)
        })?;
        Ok(())
    }

    /// Ends `host`'s lease now (a clean shutdown), so its queue shows as
    /// stranded at once.
    pub async fn release(&self, host: &str) -> Result<()> {
        sqlx::query("UPDATE hosts SET lease_until = now() WHERE host_id = $1")
            .bind(host)
            .execute(self.store.pool())
            .await
            .map_err(|e| {
                self.errors()
                    .map(format!("releasing the lease of host {host}"), e)
            })?;
        Ok(())
    }

    /// Moves `session` to `new_owner`: the registry's `owner_host` and every
    /// message queued for it, in one transaction. The caller checks that
    /// `new_owner` can reach the session's folder.
    pub async fn reassign(&self, session: &SessionId, new_owner: &str) -> Result<u64> {
        let context = || format!("reassigning session {session} to host {new_owner}");
        let map = |e| self.errors().map(context(), e);
        let mut tx = self.store.pool().begin().await.map_err(map)?;
        let updated = sqlx::query("UPDATE sessions SET owner_host = $2 WHERE id = $1")
            .bind(session.as_str())
            .bind(new_owner)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        if updated.rows_affected() == 0 {
            // Explicitly: a dropped transaction's rollback waits in the
            // pooled connection (with its row locks) until its next use.
            tx.rollback().await.map_err(map)?;
            return Err(airlock_core::Error::not_found("session", session));
        }
        let moved = sqlx::query("UPDATE routed_messages SET owner_host = $2 WHERE session_id = $1")
            .bind(session.as_str())
            .bind(new_owner)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(NOTIFY_CHANNEL)
            .bind(self.notify_payload(new_owner))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(moved.rows_affected())
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

/// The connection of one drain. Dropped before [`finish`](Self::finish)
/// (the drain was cancelled, or failed mid-way), the connection is closed
/// instead of going back to the pool: the server then rolls back at once and
/// frees the rows and the drain lock, as when the host process dies. Back in
/// the pool, its rollback would wait for the connection's next use.
struct Claim(Option<PoolConnection<Postgres>>);

impl Claim {
    fn finish(&mut self) {
        self.0 = None;
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            drop(conn.detach());
        }
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
