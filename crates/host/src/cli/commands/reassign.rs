//! `airlock reassign`: move sessions to this host from a host that stopped
//! (only those whose folder this host can reach), then apply their queued
//! messages here.

use airlock_core::{Error, Result};
use airlock_postgres::Drained;
use serde::Serialize;

use crate::cli::context;
use crate::cli::output::{clean, emit};
use crate::cli::settings::{ReassignScope, RegistryLocation, Settings};
use crate::routing::reassign::{ReassignOutcome, Reassigner, Reassignment};

#[derive(Serialize)]
struct Report {
    host: String,
    dry_run: bool,
    sessions: Vec<Reassignment>,
    /// What draining the moved messages did (`None`: nothing was moved).
    applied: Option<DrainSummary>,
}

#[derive(Serialize)]
struct DrainSummary {
    applied: usize,
    failed: usize,
    dead_lettered: usize,
}

impl From<Drained> for DrainSummary {
    fn from(d: Drained) -> Self {
        Self {
            applied: d.applied,
            failed: d.failed,
            dead_lettered: d.dead_lettered,
        }
    }
}

/// Runs `reassign`; fails (exit non-zero) when any session was refused.
pub async fn run(settings: &Settings, scope: &ReassignScope, dry_run: bool) -> Result<()> {
    if matches!(settings.registry, RegistryLocation::Sqlite(_)) {
        return Err(Error::InvalidInput(
            "reassign needs a PostgreSQL registry (--registry postgres://…): a SQLite registry \
             has one host"
                .into(),
        ));
    }
    let Some((manager, pg)) = context::routing_manager(settings).await? else {
        return Err(Error::InvalidInput(
            "reassign needs --host-id (or AIRLOCK_HOST_ID): the host that runs it becomes the \
             new owner"
                .into(),
        ));
    };
    let reassigner = Reassigner::new(manager.clone(), pg.route_queue())?;
    let ids = match scope {
        ReassignScope::Sessions(ids) => ids.clone(),
        ReassignScope::From(host) => reassigner.sessions_of(host).await?,
    };
    let done = reassigner.take_over(&ids, dry_run).await?;
    let report = Report {
        host: manager.host_id().unwrap_or_default().to_owned(),
        dry_run,
        sessions: done.sessions,
        applied: done.drained.map(DrainSummary::from),
    };
    emit(settings.output, &report, |r| render(r, scope));
    let refused = report.sessions.iter().filter(|r| r.is_refused()).count();
    if refused > 0 {
        return Err(Error::Conflict(format!(
            "{refused} of {} session(s) not reassigned (see above)",
            report.sessions.len()
        )));
    }
    Ok(())
}

fn render(report: &Report, scope: &ReassignScope) -> String {
    if report.sessions.is_empty() {
        return match scope {
            ReassignScope::From(host) => format!("host {} owns no sessions", clean(host)),
            ReassignScope::Sessions(_) => "no sessions".to_owned(),
        };
    }
    let me = clean(&report.host);
    let mut lines = Vec::new();
    for r in &report.sessions {
        let from = r
            .from
            .as_deref()
            .map_or_else(|| "no owner".to_owned(), |h| format!("host {}", clean(h)));
        lines.push(match &r.outcome {
            ReassignOutcome::Moved { queued } => format!(
                "moved       {}  from {from} to host {me}; {queued} queued message(s) moved with it",
                r.session
            ),
            ReassignOutcome::WouldMove { queued } => format!(
                "would move  {}  from {from} to host {me}; {queued} queued message(s) would move with it",
                r.session
            ),
            ReassignOutcome::AlreadyOwned => {
                format!("owned       {}  by host {me} already", r.session)
            }
            ReassignOutcome::Refused { reason } => {
                format!("REFUSED     {}  ({from}): {}", r.session, clean(reason))
            }
        });
    }
    if let Some(d) = &report.applied {
        let mut line = format!("applied {} routed message(s) here", d.applied);
        if d.failed + d.dead_lettered > 0 {
            line.push_str(&format!(
                "; {} failed (retried later), {} became dead letters (`airlock doctor` lists them)",
                d.failed, d.dead_lettered
            ));
        }
        lines.push(line);
    }
    if report.dry_run {
        lines.push("dry run: nothing was changed".to_owned());
    }
    lines.join("\n")
}
