//! The owner's side of the queue: applying its messages in arrival order,
//! and keeping a message it cannot apply from blocking its session forever.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use airlock_core::Result;
use sqlx::pool::PoolConnection;
use sqlx::{Connection, Postgres, Row};

use super::{DRAIN_LOCK, DRAIN_LOCK_WAIT, PgRouteQueue, RoutedMessage};

/// How a drain retries a message whose apply failed.
///
/// Every failure counts, whatever its cause: a message the sandbox can make
/// fail (a symlink planted where its attachment goes) must not block its
/// session, nor an owner's queue, for good. While a message waits for its
/// retry, its session's later messages wait behind it (arrival order); other
/// sessions go on. After `max_attempts` failures it becomes a dead letter:
/// kept in the queue with its last error, shown by `airlock sessions` and
/// `airlock doctor`, and no longer in its session's way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Failed applies after which a message is a dead letter (at least 1).
    pub max_attempts: u32,
    /// Wait after the first failure; doubled after each further one.
    pub first_delay: Duration,
    /// Longest wait between two attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Ten attempts over about 13 minutes (1 s, 2 s, … capped at 5 min):
    /// long enough to ride out a brief outage of the owner's disk, short
    /// enough that a poison message holds up its session only briefly.
    fn default() -> Self {
        Self {
            max_attempts: 10,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `failures`-th failure (1-based).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.first_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay)
    }
}

/// What one [`PgRouteQueue::drain`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drained {
    /// Rows the drain took (at most its limit).
    pub selected: usize,
    /// Applied and removed from the queue.
    pub applied: usize,
    /// Failed and left for a later attempt.
    pub failed: usize,
    /// Failed for the last allowed time: now dead letters.
    pub dead_lettered: usize,
}

impl std::ops::AddAssign for Drained {
    fn add_assign(&mut self, other: Self) {
        self.selected += other.selected;
        self.applied += other.applied;
        self.failed += other.failed;
        self.dead_lettered += other.dead_lettered;
    }
}

impl PgRouteQueue {
    /// Applies up to `limit` of `owner`'s queued messages in arrival order
    /// and removes each one applied, in one transaction: a crash (or a
    /// dropped future) before the commit leaves every row queued, so
    /// `apply` must be idempotent on the message id.
    ///
    /// A failing `apply` is recorded on its row (attempts, last error, the
    /// time of the next attempt per `retry`, or a dead letter once
    /// `retry.max_attempts` is reached) and the drain goes on with other
    /// sessions; the failing session's later messages are not taken until
    /// its failed one is applied or dead. Drainers of one owner take turns
    /// (an advisory lock, waited for up to 30 s), which keeps each
    /// session's messages in arrival order. Errors are the queue's own
    /// (PostgreSQL), never `apply`'s.
    pub async fn drain<F, Fut>(
        &self,
        owner: &str,
        limit: i64,
        retry: RetryPolicy,
        mut apply: F,
    ) -> Result<Drained>
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
        // A row is due unless it waits for a retry or an earlier live row of
        // its session does (arrival order); dead letters are in nobody's way.
        let rows = sqlx::query(
            "SELECT r.id, r.session_id, r.message_id, r.message, r.enqueued_by, r.attempts \
             FROM routed_messages r \
             WHERE r.owner_host = $1 AND r.dead_at IS NULL \
               AND (r.retry_at IS NULL OR r.retry_at <= now()) \
               AND NOT EXISTS (SELECT 1 FROM routed_messages w \
                   WHERE w.session_id = r.session_id AND w.id < r.id \
                     AND w.dead_at IS NULL AND w.retry_at > now()) \
             ORDER BY r.id LIMIT $2 FOR UPDATE OF r SKIP LOCKED",
        )
        .bind(owner)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .map_err(map)?;
        let mut done = Drained {
            selected: rows.len(),
            ..Drained::default()
        };
        let mut held: HashSet<String> = HashSet::new();
        for row in rows {
            let message = RoutedMessage {
                queue_id: row.try_get("id").map_err(map)?,
                session_id: row.try_get("session_id").map_err(map)?,
                message_id: row.try_get("message_id").map_err(map)?,
                payload: row.try_get("message").map_err(map)?,
                enqueued_by: row.try_get("enqueued_by").map_err(map)?,
                attempts: row.try_get("attempts").map_err(map)?,
            };
            if held.contains(&message.session_id) {
                continue;
            }
            let (queue_id, session, attempts) = (
                message.queue_id,
                message.session_id.clone(),
                message.attempts,
            );
            match apply(message).await {
                Ok(()) => {
                    sqlx::query("DELETE FROM routed_messages WHERE id = $1")
                        .bind(queue_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(map)?;
                    done.applied += 1;
                }
                Err(e) => {
                    let failures = u32::try_from(attempts).unwrap_or(0).saturating_add(1);
                    let dead = failures >= retry.max_attempts.max(1);
                    tracing::warn!(owner, session = %session, queue_id, failures, dead, error = %e, "a routed message could not be applied");
                    sqlx::query(
                        "UPDATE routed_messages SET attempts = attempts + 1, last_error = $2, \
                         retry_at = now() + make_interval(secs => $3), \
                         dead_at = CASE WHEN $4 THEN now() END WHERE id = $1",
                    )
                    .bind(queue_id)
                    .bind(e.to_string().replace('\0', "\u{fffd}"))
                    .bind(retry.delay(failures).as_secs_f64())
                    .bind(dead)
                    .execute(&mut *tx)
                    .await
                    .map_err(map)?;
                    if dead {
                        done.dead_lettered += 1;
                    } else {
                        done.failed += 1;
                        held.insert(session);
                    }
                }
            }
        }
        tx.commit().await.map_err(map)?;
        claim.finish();
        Ok(done)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_up_to_the_cap() {
        let policy = RetryPolicy {
            max_attempts: 5,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
        };
        let delays: Vec<u64> = (1..=5).map(|n| policy.delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 5, 5]);
        assert_eq!(policy.delay(u32::MAX), Duration::from_secs(5));
    }
}
