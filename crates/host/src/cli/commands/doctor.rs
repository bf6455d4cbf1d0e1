//! `airlock doctor`: check every invariant readable from disk, and report
//! the tamper events host state recorded.

use std::collections::HashMap;

use airlock_core::{Error, Result, SessionFilter, SessionId, SessionRef};
use airlock_postgres::{DeadLetter, QueuedSession};
use airlock_sqlite_fs::TamperEvent;
use airlock_sqlite_fs::doctor::{Finding, Severity, check_session};
use serde::Serialize;

use super::queued;
use crate::cli::context;
use crate::cli::output::{clean, emit};
use crate::cli::settings::Settings;

#[derive(Serialize)]
struct SessionReport {
    session: String,
    /// The host that owns and checks the folder, when it is not this one
    /// (nothing here was checked).
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_elsewhere: Option<String>,
    findings: Vec<Finding>,
    tamper_events: Vec<TamperEvent>,
    /// Its routing queue (PostgreSQL registry only): stranded messages and
    /// dead letters count as problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    routed: Option<QueuedSession>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dead_letters: Vec<DeadLetter>,
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
    let queue = queued::queue(settings).await?;
    let mut routed = queued::by_session(queue.as_ref()).await?;
    let mut dead: HashMap<String, Vec<DeadLetter>> = HashMap::new();
    if let Some(queue) = &queue {
        for d in queue.dead_letters().await? {
            dead.entry(d.session_id.clone()).or_default().push(d);
        }
    }
    let mut reports = Vec::new();
    let progress = crate::cli::progress::bar(settings, sessions.len(), "checking sessions");
    for session in &sessions {
        progress.inc(1);
        let routed = routed.remove(session.id.as_str());
        let dead_letters = dead.remove(session.id.as_str()).unwrap_or_default();
        // Another host's folder is that host's to check (never touched here).
        if let Some(owner) = crate::routing::foreign_owner(session, manager.host_id()) {
            reports.push(SessionReport {
                session: session.id.to_string(),
                owner_elsewhere: Some(owner.to_owned()),
                findings: Vec::new(),
                tamper_events: Vec::new(),
                routed,
                dead_letters,
            });
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
            owner_elsewhere: None,
            findings,
            tamper_events,
            routed,
            dead_letters,
        });
    }
    progress.finish_and_clear();
    let total: usize = reports.iter().map(|r| r.findings.len()).sum();
    let open: usize = reports
        .iter()
        .map(|r| r.tamper_events.iter().filter(|e| !e.acknowledged).count())
        .sum();
    let stranded = reports
        .iter()
        .filter(|r| r.routed.as_ref().is_some_and(|q| q.stranded))
        .count();
    let dead: usize = reports.iter().map(|r| r.dead_letters.len()).sum();
    emit(settings.output, &reports, |reports| {
        render(reports, total, open)
    });
    if total + open + stranded + dead > 0 {
        let mut what =
            format!("doctor found {total} problem(s) and {open} unacknowledged tamper event(s)");
        if stranded > 0 {
            what.push_str(&format!(
                "; {stranded} session(s) have stranded routed messages"
            ));
        }
        if dead > 0 {
            what.push_str(&format!("; {dead} routed message(s) are dead letters"));
        }
        return Err(Error::invariant(None, what));
    }
    Ok(())
}

fn render(reports: &[SessionReport], total: usize, open: usize) -> String {
    let mut lines = Vec::new();
    for r in reports.iter().filter(|r| r.owner_elsewhere.is_none()) {
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
    for r in reports {
        if let Some(owner) = &r.owner_elsewhere {
            lines.push(format!(
                "elsewhere {} (host {}): checked by its owner",
                r.session,
                clean(owner)
            ));
        }
        if let Some(q) = r.routed.as_ref().filter(|q| q.stranded) {
            lines.push(format!(
                "STRANDED {}  {} routed message(s) wait for host {}, whose lease ran out; oldest {} s old",
                r.session,
                q.queued,
                clean(&q.owner_host),
                q.oldest_age_secs.unwrap_or(0)
            ));
        }
        for d in &r.dead_letters {
            lines.push(format!(
                "DEAD     {}  routed message {} (queue id {}) failed {} time(s) on host {}: {}",
                r.session,
                clean(&airlock_core::escape_for_log(&d.message_id)),
                d.queue_id,
                d.attempts,
                clean(&d.owner_host),
                clean(d.last_error.as_deref().unwrap_or("-"))
            ));
        }
    }
    let checked = reports
        .iter()
        .filter(|r| r.owner_elsewhere.is_none())
        .count();
    lines.push(format!(
        "{checked} session(s) checked, {total} finding(s), {open} unacknowledged tamper event(s)"
    ));
    if open > 0 {
        lines.push("acknowledge them with `airlock doctor --ack`".to_owned());
    }
    if reports.iter().any(|r| !r.dead_letters.is_empty()) {
        lines.push(
            "re-queue a dead letter with `airlock failures --routed retry ID`, or drop it with \
             `airlock failures --routed purge ID`"
                .to_owned(),
        );
    }
    lines.join("\n")
}
