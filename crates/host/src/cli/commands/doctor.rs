//! `airlock doctor`: check every invariant readable from disk, and report
//! the tamper events host state recorded.

use airlock_core::{Error, Result, SessionFilter, SessionId, SessionRef};
use airlock_sqlite_fs::TamperEvent;
use airlock_sqlite_fs::doctor::{Finding, Severity, check_session};
use serde::Serialize;

use crate::cli::context;
use crate::cli::output::{clean, emit};
use crate::cli::settings::{RegistryLocation, Settings};

#[derive(Serialize)]
struct SessionReport {
    session: String,
    findings: Vec<Finding>,
    tamper_events: Vec<TamperEvent>,
}

/// Runs `doctor`; fails (exit non-zero) when any finding or unacknowledged
/// tamper event is reported. `ack` acknowledges the events shown.
pub async fn run(settings: &Settings, only: Option<&SessionId>, ack: bool) -> Result<()> {
    let manager = context::manager(settings).await?;
    let sessions = match only {
        Some(id) => vec![manager.session(id).await?],
        None => {
            manager
                .store()
                .list_sessions(SessionFilter::default())
                .await?
        }
    };
    let mut reports = Vec::new();
    let progress = crate::cli::progress::bar(settings, sessions.len(), "checking sessions");
    let mut elsewhere = Vec::new();
    for session in &sessions {
        progress.inc(1);
        // Another host's folder is that host's to check (never touched here).
        if let Some(owner) = crate::routing::foreign_owner(session, manager.host_id()) {
            elsewhere.push(format!("{} (host {})", session.id, clean(owner)));
            continue;
        }
        let session_ref = SessionRef::from(session);
        let paths = manager.roots().sessions().session(&session_ref);
        let state = manager.roots().host_state().session(&session_ref);
        let mailbox = manager.mailbox(session);
        let (findings, tamper_events) = tokio::task::spawn_blocking(move || {
            // The folder as found, then the full comparison with host
            // state, which repairs what differs and records it (a
            // read-only data dir is compared with nothing repaired).
            let mut findings = check_session(&paths, &state);
            let events = if airlock_sqlite_fs::is_read_only(state.dir()) {
                mailbox.tamper_events()
            } else {
                mailbox.audit().and_then(|_| mailbox.tamper_events())
            };
            let mut events = events.unwrap_or_else(|e| {
                findings.push(Finding {
                    severity: Severity::Error,
                    check: "host_state",
                    path: paths.dir().to_path_buf(),
                    detail: format!("cannot compare with host state: {e}"),
                });
                Vec::new()
            });
            if ack
                && events.iter().any(|e| !e.acknowledged)
                && mailbox.acknowledge_tamper_events().is_ok()
            {
                events.iter_mut().for_each(|e| e.acknowledged = true);
            }
            (findings, events)
        })
        .await
        .map_err(|e| Error::backend("sqlite", "checking a session", e))?;
        reports.push(SessionReport {
            session: session.id.to_string(),
            findings,
            tamper_events,
        });
    }
    progress.finish_and_clear();
    let total: usize = reports.iter().map(|r| r.findings.len()).sum();
    let open: usize = reports
        .iter()
        .map(|r| r.tamper_events.iter().filter(|e| !e.acknowledged).count())
        .sum();
    let stranded = stranded(settings).await?;
    emit(settings.output, &reports, |reports| {
        let mut text = render(reports, total, open);
        for s in &elsewhere {
            text.push_str(&format!("\nelsewhere {s}: checked by its owner"));
        }
        for s in &stranded {
            text.push_str(&format!(
                "\nSTRANDED {}  {} routed message(s) wait for host {}, whose lease ran out; oldest {} s old",
                s.session_id,
                s.messages,
                clean(&s.owner_host),
                s.oldest_age.as_secs()
            ));
        }
        text
    });
    if total + open + stranded.len() > 0 {
        return Err(Error::invariant(
            None,
            format!(
                "doctor found {total} problem(s) and {open} unacknowledged tamper event(s){}",
                match stranded.len() {
                    0 => String::new(),
                    n => format!("; {n} session(s) have stranded routed messages"),
                }
            ),
        ));
    }
    Ok(())
}

/// Messages queued in a PostgreSQL registry for hosts that stopped
/// heartbeating (none on SQLite, which has one host).
async fn stranded(settings: &Settings) -> Result<Vec<airlock_postgres::StrandedQueue>> {
    match &settings.registry {
        RegistryLocation::Postgres(url) => {
            context::open_postgres(url)
                .await?
                .route_queue()
                .stranded()
                .await
        }
        RegistryLocation::Sqlite(_) => Ok(Vec::new()),
    }
}

fn render(reports: &[SessionReport], total: usize, open: usize) -> String {
    let mut lines = Vec::new();
    for r in reports {
        if r.findings.is_empty() && r.tamper_events.iter().all(|e| e.acknowledged) {
            lines.push(format!("ok       {}", r.session));
        }
        for f in &r.findings {
            let level = match f.severity {
                Severity::Error => "ERROR  ",
                Severity::Warning => "WARNING",
            };
            lines.push(format!(
                "{level}  {}  {}: {} ({})",
                r.session,
                f.check,
                clean(&f.detail),
                clean(&f.path.display().to_string())
            ));
        }
        for e in r.tamper_events.iter().filter(|e| !e.acknowledged) {
            let moved = e
                .moved_to
                .as_ref()
                .map_or_else(|| "-".to_owned(), |p| clean(&p.display().to_string()));
            lines.push(format!(
                "TAMPER   {}  {} {}: {}; {} (moved to {moved})",
                r.session,
                e.at,
                clean(&e.file),
                clean(&e.reason),
                e.repair
            ));
        }
    }
    lines.push(format!(
        "{} session(s) checked, {total} finding(s), {open} unacknowledged tamper event(s)",
        reports.len()
    ));
    if open > 0 {
        lines.push("acknowledge them with `airlock doctor --ack`".to_owned());
    }
    lines.join("\n")
}
