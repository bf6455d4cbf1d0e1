//! `airlock doctor`: check every invariant readable from disk.

use airlock_core::{Error, Result, SessionFilter, SessionId, SessionRef};
use airlock_sqlite_fs::doctor::{Finding, Severity, check_session};
use serde::Serialize;

use crate::cli::context;
use crate::cli::output::{clean, emit};
use crate::cli::settings::Settings;

#[derive(Serialize)]
struct SessionReport {
    session: String,
    findings: Vec<Finding>,
}

/// Runs `doctor`; fails (exit non-zero) when any finding is reported.
pub async fn run(settings: &Settings, only: Option<&SessionId>) -> Result<()> {
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
    for session in &sessions {
        let session_ref = SessionRef::from(session);
        let paths = manager.roots().sessions.session(&session_ref);
        let state = manager.roots().host_state.session(&session_ref);
        let findings = tokio::task::spawn_blocking(move || check_session(&paths, &state))
            .await
            .map_err(|e| Error::backend("sqlite", "checking a session", e))?;
        reports.push(SessionReport {
            session: session.id.to_string(),
            findings,
        });
    }
    let total: usize = reports.iter().map(|r| r.findings.len()).sum();
    emit(settings.output, &reports, |reports| {
        let mut lines = Vec::new();
        for r in reports {
            if r.findings.is_empty() {
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
        }
        lines.push(format!(
            "{} session(s) checked, {total} finding(s)",
            reports.len()
        ));
        lines.join("\n")
    });
    if total > 0 {
        return Err(Error::invariant(
            None,
            format!("doctor found {total} problem(s)"),
        ));
    }
    Ok(())
}
