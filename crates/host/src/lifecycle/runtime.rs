//! What the host implements so airlock can start, check and stop guests:
//! airlock decides, the runtime acts. Every call is bounded by a timeout
//! ([`Runtime`]), because a container engine that hangs must not stall the
//! sweep of every other session.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use airlock_core::SessionId;

use crate::GuestLaunch;

/// Why a runtime call did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    /// The call took longer than its timeout and was abandoned.
    #[error("runtime {op} for session {session} did not answer within {timeout:?}")]
    TimedOut {
        /// `is_running`, `wake` or `kill`.
        op: &'static str,
        /// The session it was about.
        session: String,
        /// The bound that ran out.
        timeout: Duration,
    },
    /// The runtime answered with an error.
    #[error("runtime {op} for session {session} failed: {message}")]
    Failed {
        /// `is_running`, `wake` or `kill`.
        op: &'static str,
        /// The session it was about.
        session: String,
        /// What the runtime said.
        message: String,
    },
}

impl RuntimeError {
    /// A failure of `op` for `session`, for runtime implementations.
    pub fn failed(op: &'static str, session: &SessionId, message: impl fmt::Display) -> Self {
        RuntimeError::Failed {
            op,
            session: session.to_string(),
            message: message.to_string(),
        }
    }
}

/// A host's container (or VM, or process) engine.
///
/// # Contract
/// - `is_running` answers for the guest of one session; `false` means the
///   runtime knows no live guest for it (after a host restart too).
/// - `wake` starts a guest for `launch.session` with `launch.session_dir`
///   mounted and `launch.env()` in its environment; it returns once the
///   start was accepted, not when the guest has polled.
/// - `kill` stops the guest and returns once it is stopped: afterwards
///   `is_running` is `false`, so the host may recover `outbound.db`.
///   Killing a session with no guest is not an error.
#[async_trait::async_trait]
pub trait ContainerRuntime: fmt::Debug + Send + Sync + 'static {
    /// Whether a guest of `session` is alive.
    async fn is_running(&self, session: &SessionId) -> Result<bool, RuntimeError>;
    /// Starts a guest for `launch`.
    async fn wake(&self, launch: &GuestLaunch) -> Result<(), RuntimeError>;
    /// Stops the guest of `session`.
    async fn kill(&self, session: &SessionId) -> Result<(), RuntimeError>;

    /// Whether a guest of each of `sessions` is alive, in their order, when
    /// the runtime can tell in one call (a container engine lists its
    /// containers at once); `None`, the default, makes the caller ask
    /// `is_running` per session. A sweep asks this for every active session
    /// on every tick.
    async fn running_among(
        &self,
        sessions: &[SessionId],
    ) -> Result<Option<Vec<bool>>, RuntimeError> {
        let _ = sessions;
        Ok(None)
    }
}

#[async_trait::async_trait]
impl<R: ContainerRuntime + ?Sized> ContainerRuntime for Arc<R> {
    async fn is_running(&self, session: &SessionId) -> Result<bool, RuntimeError> {
        (**self).is_running(session).await
    }
    async fn wake(&self, launch: &GuestLaunch) -> Result<(), RuntimeError> {
        (**self).wake(launch).await
    }
    async fn kill(&self, session: &SessionId) -> Result<(), RuntimeError> {
        (**self).kill(session).await
    }
    async fn running_among(
        &self,
        sessions: &[SessionId],
    ) -> Result<Option<Vec<bool>>, RuntimeError> {
        (**self).running_among(sessions).await
    }
}

/// The longest each runtime call may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeTimeouts {
    /// Bound of `is_running`.
    pub is_running: Duration,
    /// Bound of `wake` (pulling an image can be slow).
    pub wake: Duration,
    /// Bound of `kill`.
    pub kill: Duration,
}

impl Default for RuntimeTimeouts {
    fn default() -> Self {
        Self {
            is_running: Duration::from_secs(10),
            wake: Duration::from_secs(120),
            kill: Duration::from_secs(30),
        }
    }
}

/// A [`ContainerRuntime`] whose every call is bounded by [`RuntimeTimeouts`].
#[derive(Debug, Clone)]
pub struct Runtime {
    inner: Arc<dyn ContainerRuntime>,
    timeouts: RuntimeTimeouts,
}

impl Runtime {
    /// `inner` with `timeouts`.
    pub fn new(inner: Arc<dyn ContainerRuntime>, timeouts: RuntimeTimeouts) -> Self {
        Self { inner, timeouts }
    }

    /// The timeouts in force.
    pub fn timeouts(&self) -> RuntimeTimeouts {
        self.timeouts
    }

    /// [`ContainerRuntime::is_running`], bounded.
    pub async fn is_running(&self, session: &SessionId) -> Result<bool, RuntimeError> {
        bounded(
            "is_running",
            session,
            self.timeouts.is_running,
            self.inner.is_running(session),
        )
        .await
    }

    /// [`ContainerRuntime::running_among`], bounded by the `is_running`
    /// timeout; `None` when the runtime cannot tell in one call, or when
    /// that call failed (the caller then asks per session, which reports
    /// the failure where it belongs).
    pub async fn running_among(&self, sessions: &[SessionId]) -> Option<Vec<bool>> {
        let call =
            tokio::time::timeout(self.timeouts.is_running, self.inner.running_among(sessions));
        match call.await {
            Ok(Ok(Some(running))) if running.len() == sessions.len() => Some(running),
            Ok(Ok(_)) => None,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the runtime could not list its guests");
                None
            }
            Err(_) => {
                tracing::warn!(timeout = ?self.timeouts.is_running, "the runtime did not list its guests in time");
                None
            }
        }
    }

    /// [`ContainerRuntime::wake`], bounded.
    pub async fn wake(&self, launch: &GuestLaunch) -> Result<(), RuntimeError> {
        let session = &launch.session.id;
        bounded("wake", session, self.timeouts.wake, self.inner.wake(launch)).await
    }

    /// [`ContainerRuntime::kill`], bounded.
    pub async fn kill(&self, session: &SessionId) -> Result<(), RuntimeError> {
        bounded(
            "kill",
            session,
            self.timeouts.kill,
            self.inner.kill(session),
        )
        .await
    }
}

async fn bounded<T>(
    op: &'static str,
    session: &SessionId,
    timeout: Duration,
    call: impl Future<Output = Result<T, RuntimeError>>,
) -> Result<T, RuntimeError> {
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| {
            Err(RuntimeError::TimedOut {
                op,
                session: session.to_string(),
                timeout,
            })
        })
}
