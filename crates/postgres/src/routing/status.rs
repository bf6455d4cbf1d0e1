//! What waits in the queue: per owner, per session (stranded or not), and
//! the dead letters, with the operator's two ways out of one (re-queue,
//! purge).

use std::time::Duration;

use airlock_core::{Error, Result};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PgRouteQueue;

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

/// The queue of one session: what `airlock sessions` shows.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QueuedSession {
    /// The session.
    pub session_id: String,
    /// The host its messages wait for.
    pub owner_host: String,
    /// Messages waiting to be applied (dead letters not counted).
    pub queued: i64,
    /// Age of the oldest waiting message, in whole seconds.
    pub oldest_age_secs: Option<u64>,
    /// Waiting messages that failed at least once (waiting for a retry).
    pub retrying: i64,
    /// Messages the owner gave up on, kept until an operator acts.
    pub dead_letters: i64,
    /// Whether the owner holds no live lease: nothing applies the waiting
    /// messages until it comes back or the session is reassigned.
    pub stranded: bool,
}

/// A routed message the owner could not apply within its attempts.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeadLetter {
    /// Queue id (for [`PgRouteQueue::retry_dead`] and [`PgRouteQueue::purge_dead`]).
    pub queue_id: i64,
    /// The session.
    pub session_id: String,
    /// The message id the sender gave.
    pub message_id: String,
    /// The owner that gave up.
    pub owner_host: String,
    /// The host that accepted it.
    pub enqueued_by: String,
    /// Failed applies.
    pub attempts: i32,
    /// The last apply's error.
    pub last_error: Option<String>,
    /// How long ago it became a dead letter, in whole seconds.
    pub dead_for_secs: u64,
}

fn secs(age: f64) -> u64 {
    // An age computed on one server clock is never negative, but a float
    // cast must not be trusted to say so.
    if age.is_finite() && age > 0.0 {
        age as u64
    } else {
        0
    }
}

const DEAD_COLUMNS: &str = "id, session_id, message_id, owner_host, enqueued_by, attempts, \
     last_error, extract(epoch FROM now() - dead_at)::float8 AS dead_for";

fn dead_letter(row: &PgRow) -> Result<DeadLetter, sqlx::Error> {
    Ok(DeadLetter {
        queue_id: row.try_get("id")?,
        session_id: row.try_get("session_id")?,
        message_id: row.try_get("message_id")?,
        owner_host: row.try_get("owner_host")?,
        enqueued_by: row.try_get("enqueued_by")?,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
        dead_for_secs: secs(row.try_get("dead_for")?),
    })
}

impl PgRouteQueue {
    /// How many messages wait for `owner` (dead letters not counted).
    pub async fn queued_for(&self, owner: &str) -> Result<i64> {
        sqlx::query_scalar(
            "SELECT count(*) FROM routed_messages WHERE owner_host = $1 AND dead_at IS NULL",
        )
        .bind(owner)
        .fetch_one(self.store.pool())
        .await
        .map_err(|e| {
            self.errors()
                .map(format!("counting messages queued for {owner}"), e)
        })
    }

    /// Queued messages whose owner holds no live lease, per session, oldest
    /// first (ages by the server's clock; dead letters not counted).
    pub async fn stranded(&self) -> Result<Vec<StrandedQueue>> {
        let rows = sqlx::query(
            "SELECT r.owner_host, r.session_id, count(*) AS messages, \
                    extract(epoch FROM now() - min(r.enqueued_at))::float8 AS age \
             FROM routed_messages r LEFT JOIN hosts h ON h.host_id = r.owner_host \
             WHERE r.dead_at IS NULL AND (h.lease_until IS NULL OR h.lease_until < now()) \
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
                    oldest_age: Duration::from_secs(secs(age)),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.errors().map("reading stranded routed messages", e))
    }

    /// Every session with messages in the queue (waiting or dead), by
    /// session id.
    pub async fn sessions(&self) -> Result<Vec<QueuedSession>> {
        let rows = sqlx::query(
            "SELECT r.session_id, r.owner_host, \
                    count(*) FILTER (WHERE r.dead_at IS NULL) AS queued, \
                    count(*) FILTER (WHERE r.dead_at IS NULL AND r.attempts > 0) AS retrying, \
                    count(*) FILTER (WHERE r.dead_at IS NOT NULL) AS dead, \
                    extract(epoch FROM now() - min(r.enqueued_at) \
                        FILTER (WHERE r.dead_at IS NULL))::float8 AS age, \
                    bool_or(h.lease_until IS NULL OR h.lease_until < now()) AS stranded \
             FROM routed_messages r LEFT JOIN hosts h ON h.host_id = r.owner_host \
             GROUP BY r.session_id, r.owner_host ORDER BY r.session_id, r.owner_host",
        )
        .fetch_all(self.store.pool())
        .await
        .map_err(|e| self.errors().map("listing the routing queue", e))?;
        rows.iter()
            .map(|row| {
                let queued: i64 = row.try_get("queued")?;
                let age: Option<f64> = row.try_get("age")?;
                Ok(QueuedSession {
                    session_id: row.try_get("session_id")?,
                    owner_host: row.try_get("owner_host")?,
                    queued,
                    oldest_age_secs: age.map(secs),
                    retrying: row.try_get("retrying")?,
                    dead_letters: row.try_get("dead")?,
                    stranded: queued > 0 && row.try_get::<bool, _>("stranded")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.errors().map("reading the routing queue", e))
    }

    /// The dead letters, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DEAD_COLUMNS} FROM routed_messages WHERE dead_at IS NOT NULL ORDER BY id"
        )))
        .fetch_all(self.store.pool())
        .await
        .map_err(|e| self.errors().map("listing routed dead letters", e))?;
        rows.iter()
            .map(dead_letter)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.errors().map("reading routed dead letters", e))
    }

    /// Puts dead letter `queue_id` back in its session's queue with its
    /// attempts reset (in its original arrival position), and wakes the
    /// owner's drainer. `NotFound` unless it is a dead letter.
    pub async fn retry_dead(&self, queue_id: i64) -> Result<DeadLetter> {
        let map = |e| {
            self.errors()
                .map(format!("re-queueing routed dead letter {queue_id}"), e)
        };
        let mut tx = self.store.pool().begin().await.map_err(map)?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DEAD_COLUMNS} FROM routed_messages WHERE id = $1 AND dead_at IS NOT NULL \
             FOR UPDATE"
        )))
        .bind(queue_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?;
        let Some(row) = row else {
            tx.rollback().await.map_err(map)?;
            return Err(Error::not_found("routed dead letter", queue_id));
        };
        let dead = dead_letter(&row).map_err(map)?;
        sqlx::query(
            "UPDATE routed_messages SET attempts = 0, retry_at = NULL, dead_at = NULL \
             WHERE id = $1",
        )
        .bind(queue_id)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        self.notify(&mut tx, &dead.owner_host).await.map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(dead)
    }

    /// Removes dead letter `queue_id` for good (an operator's decision).
    /// `NotFound` unless it is a dead letter.
    pub async fn purge_dead(&self, queue_id: i64) -> Result<DeadLetter> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM routed_messages WHERE id = $1 AND dead_at IS NOT NULL \
             RETURNING {DEAD_COLUMNS}"
        )))
        .bind(queue_id)
        .fetch_optional(self.store.pool())
        .await
        .map_err(|e| {
            self.errors()
                .map(format!("purging routed dead letter {queue_id}"), e)
        })?;
        match row {
            Some(row) => dead_letter(&row).map_err(|e| {
                self.errors()
                    .map(format!("reading purged dead letter {queue_id}"), e)
            }),
            None => Err(Error::not_found("routed dead letter", queue_id)),
        }
    }
}
