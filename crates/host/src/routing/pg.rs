//! Routing through PostgreSQL: [`PgRouter`] queues messages for another
//! host's sessions in the registry's `routed_messages` table, and
//! [`Drainer`] is the owner's side, storing them in its mailboxes.

use std::future::Future;
use std::time::Duration;

use airlock_core::mailbox::NewInboundMessage;
use airlock_core::{Error, Result, SessionId};
use airlock_postgres::{Drained, PgRouteQueue, RetryPolicy, RoutedMessage};
use async_trait::async_trait;

use super::MessageRouter;
use crate::SessionManager;

/// Largest routed message by default (its JSON, base64 attachments
/// included): the queue is a database table, not a file store.
pub const DEFAULT_MAX_ROUTED_BYTES: usize = 64 * 1024 * 1024;

/// How soon a drainer whose `LISTEN` connection failed tries again.
const LISTEN_RETRY: Duration = Duration::from_secs(5);

/// A [`MessageRouter`] over the registry's PostgreSQL routing queue.
#[derive(Debug, Clone)]
pub struct PgRouter {
    queue: PgRouteQueue,
    me: String,
    max_bytes: usize,
}

impl PgRouter {
    /// Routes through `queue`, recording `me` as the accepting host.
    pub fn new(queue: PgRouteQueue, me: impl Into<String>) -> Self {
        Self {
            queue,
            me: me.into(),
            max_bytes: DEFAULT_MAX_ROUTED_BYTES,
        }
    }

    /// Sets the largest routed message (serialised, in bytes).
    pub fn max_message_bytes(mut self, max: usize) -> Self {
        self.max_bytes = max;
        self
    }
}

#[async_trait]
impl MessageRouter for PgRouter {
    async fn route(
        &self,
        owner: &str,
        session: &SessionId,
        message: &NewInboundMessage,
    ) -> Result<String> {
        let payload = serde_json::to_string(message).map_err(|e| {
            Error::InvalidInput(format!("message {} cannot be queued: {e}", message.id))
        })?;
        if payload.len() > self.max_bytes {
            return Err(Error::InvalidInput(format!(
                "message {} for session {session} is {} bytes with its attachments, over the \
                 {} bytes a message routed to host {owner} may have",
                message.id,
                payload.len(),
                self.max_bytes
            )));
        }
        self.queue
            .enqueue(owner, session, message.id.as_str(), &payload, &self.me)
            .await
            .map(|queued| queued.owner)
    }
}

/// The owner's side: stores the messages queued for this host in their
/// sessions' mailboxes, exactly once and in arrival order per session. A
/// message that keeps failing is retried per its [`RetryPolicy`], then
/// kept as a dead letter (see [`PgRouteQueue::dead_letters`]).
#[derive(Debug, Clone)]
pub struct Drainer {
    manager: SessionManager,
    queue: PgRouteQueue,
    host: String,
    batch: i64,
    retry: RetryPolicy,
}

impl Drainer {
    /// Drains `queue` into `manager`'s mailboxes; the manager needs a host
    /// id (it names the queue).
    pub fn new(manager: SessionManager, queue: PgRouteQueue) -> Result<Self> {
        let host = manager.host_id().map(str::to_owned).ok_or_else(|| {
            Error::InvalidInput("draining routed messages needs a manager with a host id".into())
        })?;
        Ok(Self {
            manager,
            queue,
            host,
            batch: 64,
            retry: RetryPolicy::default(),
        })
    }

    /// Sets how failed messages are retried before they become dead letters.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets how many messages one transaction applies.
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = i64::try_from(batch.max(1)).unwrap_or(i64::MAX);
        self
    }

    /// Applies everything due now (a message waiting for its retry, and
    /// its session's later ones, wait for a later call); returns what it did.
    pub async fn drain_once(&self) -> Result<Drained> {
        let mut total = Drained::default();
        loop {
            let drained = self
                .queue
                .drain(&self.host, self.batch, self.retry, |m| self.apply(m))
                .await?;
            total += drained;
            // A full batch may have more behind it. Each further batch either
            // applies rows or spends attempts of the failing ones, so this
            // ends even when every retry is due at once.
            if drained.selected < usize::try_from(self.batch).unwrap_or(usize::MAX) {
                return Ok(total);
            }
        }
    }

    async fn apply(&self, routed: RoutedMessage) -> Result<()> {
        let message: NewInboundMessage = serde_json::from_str(&routed.payload).map_err(|e| {
            Error::InvalidInput(format!(
                "routed message {} (queue id {}, from host {}) is not a message: {e}",
                airlock_core::escape_for_log(&routed.message_id),
                routed.queue_id,
                airlock_core::escape_for_log(&routed.enqueued_by)
            ))
        })?;
        let session = SessionId::new(routed.session_id)?;
        self.manager.ensure_folder(&session).await?;
        // A retry after a crash between this write and the queue's delete
        // is a duplicate the mailbox recognises: nothing is stored twice.
        self.manager.write_message(&session, message).await?;
        Ok(())
    }

    /// Serves this host's queue until `stop` completes: renews the host's
    /// lease (`lease` long) and drains on every `NOTIFY`, and at least every
    /// `poll` (the fallback when a notification is missed). Errors are
    /// logged and retried; the lease is released on the way out.
    pub async fn run(&self, poll: Duration, lease: Duration, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut listener = None;
        loop {
            // Listening before draining: a message queued during the drain
            // still wakes the next wait.
            if listener.is_none() {
                listener = match self.queue.listen(&self.host).await {
                    Ok(l) => Some(l),
                    Err(e) => {
                        tracing::warn!(host = %self.host, error = %e, "cannot LISTEN for routed messages; polling");
                        None
                    }
                };
            }
            if let Err(e) = self.queue.heartbeat(&self.host, lease).await {
                tracing::warn!(host = %self.host, error = %e, "could not renew the host lease");
            }
            if let Err(e) = self.drain_once().await {
                tracing::warn!(host = %self.host, error = %e, "draining routed messages failed; retrying");
            }
            let wait = async {
                match listener.as_mut() {
                    Some(l) => l.wait(poll).await.map(|_| ()),
                    // Without a listener, retry it soon rather than
                    // waiting a whole poll for every message.
                    None => {
                        tokio::time::sleep(poll.min(LISTEN_RETRY)).await;
                        Ok(())
                    }
                }
            };
            tokio::select! {
                () = &mut stop => break,
                waited = wait => if waited.is_err() { listener = None },
            }
        }
        if let Err(e) = self.queue.release(&self.host).await {
            tracing::warn!(host = %self.host, error = %e, "could not release the host lease");
        }
    }
}
