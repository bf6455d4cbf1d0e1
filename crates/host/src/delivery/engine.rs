//! What every part of one deliverer shares: the session manager, the
//! durable state, the adapter, the system handlers and the settings.

use std::sync::Arc;
use std::time::Duration;

use airlock_core::{Error, PageLimits, Result};

use super::adapter::DynChannelAdapter;
use super::policy::RetryPolicy;
use super::state::DeliveryState;
use super::system::SystemHandlers;
use crate::SessionManager;

/// How a [`super::Deliverer`] polls, bounds and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DelivererConfig {
    /// Poll interval of sessions whose guest is running.
    pub running_interval: Duration,
    /// Poll interval of every active session (a guest that stopped may have
    /// left replies; scheduled replies fall due).
    pub active_interval: Duration,
    /// Sessions worked on at once.
    pub concurrency: usize,
    /// Longest adapter (or system handler) call; past it the call is a
    /// transient failure.
    pub call_timeout: Duration,
    /// Longest one session's pass may take before it is cancelled and
    /// reported (the rest of its backlog waits for the next pass).
    pub session_timeout: Duration,
    /// Backoff and the retry window.
    pub retry: RetryPolicy,
    /// Rows and bytes read from a mailbox at once: the engine's memory bound.
    pub page: PageLimits,
    /// Deliveries recorded in `inbound.db` (and their outboxes cleared) in
    /// one commit at most, once `delivery.db` holds them.
    pub settle_batch: usize,
    /// Longest a recorded delivery waits for its batch: how far the guest's
    /// view of `delivered` and its outbox may lag the platform.
    pub settle_wait: Duration,
}

impl Default for DelivererConfig {
    fn default() -> Self {
        Self {
            running_interval: Duration::from_millis(500),
            active_interval: Duration::from_secs(30),
            concurrency: 8,
            call_timeout: Duration::from_secs(30),
            session_timeout: Duration::from_secs(600),
            retry: RetryPolicy::default(),
            page: PageLimits::default(),
            settle_batch: 64,
            settle_wait: Duration::from_millis(250),
        }
    }
}

/// The shared inside of a deliverer.
#[derive(Debug)]
pub(crate) struct Engine {
    pub(crate) manager: SessionManager,
    pub(crate) state: Arc<DeliveryState>,
    pub(crate) adapter: Arc<DynChannelAdapter>,
    pub(crate) handlers: SystemHandlers,
    pub(crate) config: DelivererConfig,
}

impl Engine {
    /// Runs blocking file or database work off the async runtime.
    pub(crate) async fn blocking<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(job))
            .await
            .map_err(|e| Error::backend("sqlite", "running a delivery operation", e))?
    }
}
