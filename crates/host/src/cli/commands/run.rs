//! `airlock run`: the whole host loop in one command. The delivery engine
//! (stdout JSON lines) and the lifecycle sweep run over every active
//! session; each guest is a child process running `--guest-cmd`. Ctrl-C
//! stops it cleanly: guests are killed, their sessions marked stopped and
//! their claims requeued, and what was already answered is delivered.

use std::sync::Arc;
use std::time::Duration;

use airlock_core::{Result, Timestamp};

use crate::cli::context;
use crate::cli::settings::Settings;
use crate::delivery::{Scope, StdoutAdapter};
use crate::lifecycle::{ProcessRuntime, Runtime, RuntimeTimeouts, SweepConfig, Sweeper};
use crate::runner::JobOutcome;

/// Runs `run`.
pub async fn run(settings: &Settings, guest_cmd: &str, interval: Duration) -> Result<()> {
    let manager = context::manager(settings).await?;
    let deliverer =
        crate::Deliverer::builder(manager.clone(), Arc::new(StdoutAdapter::new())).build()?;
    let processes = Arc::new(ProcessRuntime::new(guest_cmd));
    let runtime = Runtime::new(processes.clone(), RuntimeTimeouts::default());
    let sweeper = Sweeper::new(manager, runtime.clone(), SweepConfig::default());
    report("reconcile", sweeper.reconcile(Timestamp::now()).await?);
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        report("sweep", sweeper.tick(Timestamp::now()).await?);
        deliver(&deliverer).await;
        tokio::select! {
            _ = &mut stop => break,
            () = tokio::time::sleep(interval) => {}
        }
    }
    tracing::info!("stopping: killing guests");
    for session in processes.running() {
        if let Err(e) = runtime.kill(&session).await {
            tracing::warn!(session = %session, error = %e, "could not kill a guest");
        }
    }
    // The killed guests' sessions end stopped and their claims requeued.
    report("shutdown", sweeper.reconcile(Timestamp::now()).await?);
    deliver(&deliverer).await;
    Ok(())
}

async fn deliver(deliverer: &crate::Deliverer) {
    match deliverer.poll(Scope::Active).await {
        Ok(r) => {
            for f in &r.errors {
                tracing::warn!(session = %f.session, error = %f.error, "delivery failed for a session");
            }
        }
        Err(e) => tracing::error!(error = %e, "delivery pass failed"),
    }
}

fn report<T: std::fmt::Debug>(
    what: &str,
    outcomes: Vec<(airlock_core::SessionId, JobOutcome<T, airlock_core::Error>)>,
) {
    for (session, outcome) in outcomes {
        match outcome.problem() {
            Some(p) => tracing::warn!(session = %session, "{what}: {p}"),
            None => tracing::debug!(session = %session, outcome = ?outcome.ok(), "{what}"),
        }
    }
}
