//! W7: a host's idle tick over many sessions: one delivery pass over every
//! active session (`Deliverer::poll(Scope::Active)`) and one lifecycle
//! sweep (`Sweeper::tick`), when no session has anything to deliver, wake
//! or repair (issue 14: ≤ 100 ms at 10,000 sessions).
//!
//! Every session has its folder and a guest-created `outbound.db`; the
//! first pass and tick record their cursors and observations, so the
//! measured ones are the steady idle state a long-running host is in.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use airlock_core::Timestamp;
use airlock_host::Deliverer;
use airlock_host::delivery::{Scope, StdoutAdapter};
use airlock_host::lifecycle::{FakeRuntime, Runtime, RuntimeTimeouts, SweepConfig, Sweeper};
use airlock_sqlite_fs::GuestMailbox;

use crate::report::{Latencies, fail, figure};
use crate::setup::Host;

/// Sessions created at once while setting up (creation is fsync-bound).
const CREATORS: usize = 8;

/// Creates `count` sessions, each with both mailboxes, `CREATORS` at a time.
async fn populate(host: &Arc<Host>, count: usize) -> Result<(), String> {
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CREATORS {
        let host = host.clone();
        let share = count / CREATORS + usize::from(c < count % CREATORS);
        tasks.spawn(async move {
            for _ in 0..share {
                let session = host.new_session("bench").await?;
                let dir = host.manager.session_dir(&session);
                tokio::task::spawn_blocking(move || GuestMailbox::open(&dir).map(drop))
                    .await
                    .map_err(fail("a guest set-up task"))?
                    .map_err(fail("opening the guest side"))?;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(fail("a session creator"))??;
    }
    Ok(())
}

/// Runs the workload.
pub async fn run(dir: &Path, quick: bool) -> Result<(), String> {
    let (count, ticks) = if quick { (100, 3) } else { (10_000, 5) };
    let host = Arc::new(Host::open(dir)?);
    populate(&host, count).await?;
    let deliverer = Deliverer::builder((*host.manager).clone(), Arc::new(StdoutAdapter::new()))
        .build()
        .map_err(fail("building the deliverer"))?;
    let runtime = Runtime::new(Arc::new(FakeRuntime::new()), RuntimeTimeouts::default());
    let sweeper = Sweeper::new((*host.manager).clone(), runtime, SweepConfig::default());
    let (mut passes, mut sweeps, mut both) = (Vec::new(), Vec::new(), Vec::new());
    // The first round records cursors and observations; it is not idle.
    for round in 0..=ticks {
        let started = Instant::now();
        let report = deliverer
            .poll(Scope::Active)
            .await
            .map_err(fail("a delivery pass"))?;
        let passed = started.elapsed();
        if report.sessions != count || !report.errors.is_empty() || report.delivered != 0 {
            return Err(format!(
                "an idle pass over {count} sessions: {} sessions, {} delivered, {} errors",
                report.sessions,
                report.delivered,
                report.errors.len()
            ));
        }
        let swept_at = Instant::now();
        let outcomes = sweeper
            .tick(Timestamp::now())
            .await
            .map_err(fail("a sweep tick"))?;
        let swept = swept_at.elapsed();
        if outcomes.len() != count {
            return Err(format!(
                "a sweep over {count} sessions ticked {}",
                outcomes.len()
            ));
        }
        if let Some((id, outcome)) = outcomes.iter().find(|(_, o)| o.problem().is_some()) {
            return Err(format!(
                "the sweep failed for session {id}: {:?}",
                outcome.problem()
            ));
        }
        if round > 0 {
            passes.push(passed);
            sweeps.push(swept);
            both.push(passed + swept);
        }
    }
    let ms = |samples: Vec<std::time::Duration>| -> Result<f64, String> {
        Ok(Latencies::new(samples)?.p50_us() / 1000.0)
    };
    let suffix = format!("n{count}");
    figure(&format!("w7.delivery_pass_ms.{suffix}"), ms(passes)?);
    figure(&format!("w7.sweep_tick_ms.{suffix}"), ms(sweeps)?);
    figure(&format!("w7.idle_tick_ms.{suffix}"), ms(both)?);
    Ok(())
}
