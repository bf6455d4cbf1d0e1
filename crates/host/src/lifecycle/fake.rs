//! A [`ContainerRuntime`] for tests: guests are entries in a set, every
//! call is recorded, and a test can make a call fail or hang, make a guest
//! die, or run a scripted guest when one is woken.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use airlock_core::SessionId;

use super::runtime::{ContainerRuntime, RuntimeError};
use crate::GuestLaunch;

/// One call the runtime received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeCall {
    /// `is_running(session)`.
    IsRunning(SessionId),
    /// `wake(session)`.
    Wake(SessionId),
    /// `kill(session)`.
    Kill(SessionId),
}

type WakeHook = Arc<dyn Fn(&GuestLaunch) + Send + Sync>;

#[derive(Default)]
struct State {
    running: HashSet<SessionId>,
    calls: Vec<RuntimeCall>,
    failing: HashMap<&'static str, String>,
    hanging: HashSet<&'static str>,
    on_wake: Option<WakeHook>,
}

/// The fake runtime (feature `testing`).
#[derive(Default, Clone)]
pub struct FakeRuntime {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for FakeRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("FakeRuntime")
            .field("running", &s.running)
            .field("calls", &s.calls.len())
            .finish()
    }
}

impl FakeRuntime {
    /// No guest running, no call recorded.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock left plain data behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks a guest of `session` alive (`true`) or dead (`false`), as a
    /// crash or a host restart would, without a recorded call.
    pub fn set_running(&self, session: &SessionId, running: bool) {
        let mut s = self.lock();
        if running {
            s.running.insert(session.clone());
        } else {
            s.running.remove(session);
        }
    }

    /// Whether a guest of `session` is alive now.
    pub fn running(&self, session: &SessionId) -> bool {
        self.lock().running.contains(session)
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<RuntimeCall> {
        self.lock().calls.clone()
    }

    /// How many times a guest of `session` was woken.
    pub fn wakes(&self, session: &SessionId) -> usize {
        self.count(|c| *c == RuntimeCall::Wake(session.clone()))
    }

    /// How many times the guest of `session` was killed.
    pub fn kills(&self, session: &SessionId) -> usize {
        self.count(|c| *c == RuntimeCall::Kill(session.clone()))
    }

    fn count(&self, pred: impl Fn(&RuntimeCall) -> bool) -> usize {
        self.lock().calls.iter().filter(|c| pred(c)).count()
    }

    /// Makes every later `op` call (`is_running`, `wake`, `kill`) fail with `message`.
    pub fn fail(&self, op: &'static str, message: impl Into<String>) {
        self.lock().failing.insert(op, message.into());
    }

    /// Makes every later `op` call never answer.
    pub fn hang(&self, op: &'static str) {
        self.lock().hanging.insert(op);
    }

    /// Runs `hook` after each accepted wake: the scripted guest.
    pub fn on_wake(&self, hook: impl Fn(&GuestLaunch) + Send + Sync + 'static) {
        self.lock().on_wake = Some(Arc::new(hook));
    }

    async fn enter(
        &self,
        op: &'static str,
        session: &SessionId,
        call: RuntimeCall,
    ) -> Result<(), RuntimeError> {
        let hang = {
            let mut s = self.lock();
            s.calls.push(call);
            if let Some(message) = s.failing.get(op) {
                return Err(RuntimeError::failed(op, session, message));
            }
            s.hanging.contains(op)
        };
        if hang {
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl ContainerRuntime for FakeRuntime {
    async fn is_running(&self, session: &SessionId) -> Result<bool, RuntimeError> {
        self.enter(
            "is_running",
            session,
            RuntimeCall::IsRunning(session.clone()),
        )
        .await?;
        Ok(self.running(session))
    }

    async fn wake(&self, launch: &GuestLaunch) -> Result<(), RuntimeError> {
        let session = &launch.session.id;
        self.enter("wake", session, RuntimeCall::Wake(session.clone()))
            .await?;
        let hook = {
            let mut s = self.lock();
            s.running.insert(session.clone());
            s.on_wake.clone()
        };
        if let Some(hook) = hook {
            hook(launch);
        }
        Ok(())
    }

    async fn kill(&self, session: &SessionId) -> Result<(), RuntimeError> {
        self.enter("kill", session, RuntimeCall::Kill(session.clone()))
            .await?;
        self.set_running(session, false);
        Ok(())
    }

    /// Answers as `is_running` for each session, one recorded call each,
    /// failing or hanging as `is_running` is told to.
    async fn running_among(
        &self,
        sessions: &[SessionId],
    ) -> Result<Option<Vec<bool>>, RuntimeError> {
        let mut running = Vec::with_capacity(sessions.len());
        for session in sessions {
            running.push(self.is_running(session).await?);
        }
        Ok(Some(running))
    }
}
