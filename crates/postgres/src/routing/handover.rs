//! Hosts' leases (who is alive) and the explicit handover of a session to
//! another host.

use std::time::Duration;

use airlock_core::{Error, Result, SessionId};

use super::{DRAIN_LOCK, DRAIN_LOCK_WAIT, ENQUEUE_LOCK, PgRouteQueue};

/// What [`PgRouteQueue::reassign`] moved (or, in a dry run, would move).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    /// The owner before.
    pub from: Option<String>,
    /// Queued messages (dead letters included) now waiting for the new owner.
    pub queued: u64,
}

impl PgRouteQueue {
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

    /// Moves `session` from `from` (its owner as the caller checked it;
    /// `None` for a session without one) to `to`: the registry's
    /// `owner_host` and every message queued for it, in one transaction,
    /// and wakes `to`'s drainer. With `dry_run` every check runs and the
    /// transaction is rolled back.
    ///
    /// Refused with [`Error::Conflict`] while `from` holds a live lease (a
    /// running owner is never moved under it: stop it, or wait for its
    /// lease to run out) or when the session's owner is no longer `from`;
    /// [`Error::NotFound`] for an unknown session. It waits for `from`'s
    /// running drain (up to 30 s) and holds the session's enqueues meanwhile,
    /// so no message is applied by the old owner after the move nor left
    /// queued for it. The caller checks that `to` can reach the folder.
    pub async fn reassign(
        &self,
        session: &SessionId,
        from: Option<&str>,
        to: &str,
        dry_run: bool,
    ) -> Result<Handover> {
        let context = || format!("reassigning session {session} to host {to}");
        let map = |e| self.errors().map(context(), e);
        let mut tx = self.store.pool().begin().await.map_err(map)?;
        // Rolled back explicitly on every refusal: a dropped transaction's
        // rollback waits in the pooled connection (with its locks) until
        // the connection's next use.
        macro_rules! refuse {
            ($err:expr) => {{
                let err = $err;
                tx.rollback().await.map_err(map)?;
                return Err(err);
            }};
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SET LOCAL lock_timeout = {}",
            DRAIN_LOCK_WAIT.as_millis()
        )))
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        if let Some(old) = from {
            sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                .bind(DRAIN_LOCK)
                .bind(old)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
        }
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(ENQUEUE_LOCK)
            .bind(session.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        let current: Option<Option<String>> =
            sqlx::query_scalar("SELECT owner_host FROM sessions WHERE id = $1 FOR UPDATE")
                .bind(session.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(map)?;
        let Some(current) = current else {
            refuse!(Error::not_found("session", session))
        };
        if current.as_deref() != from {
            refuse!(Error::Conflict(format!(
                "session {session} is owned by {} now, not by {}: check again",
                current
                    .as_deref()
                    .map_or("no host".into(), |h| format!("host {h}")),
                from.map_or("no host".into(), |h| format!("host {h}")),
            )))
        }
        if let Some(old) = from {
            let live: Option<String> = sqlx::query_scalar(
                "SELECT to_char(lease_until AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') \
                 FROM hosts WHERE host_id = $1 AND lease_until >= now()",
            )
            .bind(old)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map)?;
            if let Some(until) = live {
                refuse!(Error::Conflict(format!(
                    "host {old} still holds a live lease (until {until} UTC): a running owner \
                     is never moved; stop it (its drainer releases the lease) or wait for the \
                     lease to run out"
                )))
            }
        }
        let moved = sqlx::query("UPDATE routed_messages SET owner_host = $2 WHERE session_id = $1")
            .bind(session.as_str())
            .bind(to)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        sqlx::query("UPDATE sessions SET owner_host = $2 WHERE id = $1")
            .bind(session.as_str())
            .bind(to)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        let handover = Handover {
            from: current,
            queued: moved.rows_affected(),
        };
        if dry_run {
            tx.rollback().await.map_err(map)?;
        } else {
            self.notify(&mut tx, to).await.map_err(map)?;
            tx.commit().await.map_err(map)?;
        }
        Ok(handover)
    }
}
