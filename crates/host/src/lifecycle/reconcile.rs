//! Start-up reconcile: after a host restart the registry may still say
//! `running` or `idle` for guests that died with the old host (the
//! reference left `container_status` stuck at `running`). Each such session
//! whose guest the runtime does not know is marked stopped and its
//! leftovers are recovered exactly as the sweep does for a guest that died.

use airlock_core::{ContainerStatus, Error, Result, SessionFilter, SessionId, Timestamp};

use super::sweep::{Sweeper, TickReport};
use crate::runner::{JobOutcome, run_each};

impl Sweeper {
    /// Reconciles the registry with the runtime at `now`; returns each
    /// session that was said to run, with what was done.
    pub async fn reconcile(
        &self,
        now: Timestamp,
    ) -> Result<Vec<(SessionId, JobOutcome<TickReport, Error>)>> {
        let sessions = self
            .manager()
            .store()
            .list_sessions(SessionFilter::active())
            .await?;
        let said_running: Vec<SessionId> = sessions
            .into_iter()
            .filter(|s| s.container_status != ContainerStatus::Stopped)
            .map(|s| s.id)
            .collect();
        let this = self.clone();
        Ok(run_each(said_running, self.config().runner, move |id| {
            let this = this.clone();
            async move {
                let mut report = TickReport::default();
                if !this
                    .runtime()
                    .is_running(&id)
                    .await
                    .map_err(super::sweep::runtime_error)?
                {
                    this.guest_gone(&id, now, &mut report).await?;
                }
                Ok(report)
            }
        })
        .await)
    }
}
