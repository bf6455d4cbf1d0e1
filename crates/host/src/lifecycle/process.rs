//! A [`ContainerRuntime`] that runs each guest as a child process of the
//! host (`sh -c <command>`), for `airlock run` and for trying the
//! lifecycle without a container engine. No sandbox: the command runs with
//! the host's rights, in its own process group so a kill reaches its children.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::process::Stdio;
use std::sync::Mutex;

use airlock_core::SessionId;
use tokio::process::{Child, Command};

use super::runtime::{ContainerRuntime, RuntimeError};
use crate::GuestLaunch;

/// Environment variable holding the session folder, for the guest command.
pub const SESSION_DIR_ENV: &str = "AIRLOCK_SESSION_DIR";
/// Environment variable holding the session id, for the guest command.
pub const SESSION_ID_ENV: &str = "AIRLOCK_SESSION_ID";

/// Guests as child processes.
#[derive(Debug)]
pub struct ProcessRuntime {
    command: String,
    children: Mutex<HashMap<SessionId, Child>>,
}

impl ProcessRuntime {
    /// Runs `command` with `sh -c` for each guest.
    pub fn new(command: impl Into<String>) -> Self {
        Self {
            command: command.into(),
            children: Mutex::default(),
        }
    }

    fn children(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Child>> {
        self.children.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `session`'s guest process is alive; a dead one is reaped.
    fn alive(&self, session: &SessionId) -> bool {
        let mut children = self.children();
        let alive = match children.get_mut(session) {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        };
        if !alive && let Some(child) = children.remove(session) {
            // Its children may outlive it; they belong to a dead guest.
            signal_group(&child);
        }
        alive
    }

    /// Sessions whose guest process is alive.
    pub fn running(&self) -> Vec<SessionId> {
        let mut children = self.children();
        children.retain(|_, c| matches!(c.try_wait(), Ok(None)));
        children.keys().cloned().collect()
    }
}

fn signal_group(child: &Child) {
    let group = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw);
    if let Some(group) = group {
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
}

#[async_trait::async_trait]
impl ContainerRuntime for ProcessRuntime {
    async fn is_running(&self, session: &SessionId) -> Result<bool, RuntimeError> {
        Ok(self.alive(session))
    }

    async fn running_among(
        &self,
        sessions: &[SessionId],
    ) -> Result<Option<Vec<bool>>, RuntimeError> {
        Ok(Some(sessions.iter().map(|s| self.alive(s)).collect()))
    }

    async fn wake(&self, launch: &GuestLaunch) -> Result<(), RuntimeError> {
        let session = &launch.session.id;
        let fail = |e: std::io::Error| RuntimeError::failed("wake", session, e);
        let Some(dir) = &launch.session_dir else {
            return Err(RuntimeError::failed(
                "wake",
                session,
                "the session's mailbox has no folder to run a guest process in",
            ));
        };
        // The guest's stdout goes to the host's stderr: stdout carries deliveries.
        let stdout = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map_err(fail)?;
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(&self.command)
            .envs(launch.env())
            .env(SESSION_DIR_ENV, dir)
            .env(SESSION_ID_ENV, session.as_str())
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .process_group(0)
            .kill_on_drop(true);
        let child = command.spawn().map_err(fail)?;
        self.children().insert(session.clone(), child);
        Ok(())
    }

    async fn kill(&self, session: &SessionId) -> Result<(), RuntimeError> {
        let child = self.children().remove(session);
        if let Some(mut child) = child {
            signal_group(&child);
            let _ = child.start_kill();
            child
                .wait()
                .await
                .map_err(|e| RuntimeError::failed("kill", session, e))?;
        }
        Ok(())
    }
}
