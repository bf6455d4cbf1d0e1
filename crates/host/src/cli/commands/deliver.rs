//! `airlock deliver`: runs the delivery engine with the stdout channel (one
//! JSON line per message, files inline in base64), once or until Ctrl-C.

use std::sync::Arc;

use airlock_core::{Error, Result, SessionId};

use crate::cli::context;
use crate::cli::settings::Settings;
use crate::delivery::{PassReport, Scope, StdoutAdapter};

/// Runs `deliver`.
pub async fn run(settings: &Settings, only: Option<&SessionId>, once: bool) -> Result<()> {
    let deliverer = context::deliverer(settings, Arc::new(StdoutAdapter::new())).await?;
    if let Some(id) = only {
        // An unknown session is an error now, not a silent empty loop.
        deliverer_session_exists(settings, id).await?;
    }
    if once {
        let scope = only.map_or(Scope::Active, |id| Scope::Session(id.clone()));
        // A backlog larger than one pass's time budget takes several passes.
        loop {
            let report = deliverer.deliver_now(scope.clone()).await?;
            if report.unfinished == 0 || !report.is_clean() {
                return summarise(&report);
            }
        }
    }
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    deliverer.run_on(only.cloned(), shutdown).await;
    Ok(())
}

async fn deliverer_session_exists(settings: &Settings, id: &SessionId) -> Result<()> {
    context::open_registry(settings)
        .await?
        .session(id)
        .await
        .map(drop)
}

/// `Ok` when everything due was delivered; otherwise one line saying what
/// is left (the messages stay due, or are listed by `airlock failures`).
fn summarise(report: &PassReport) -> Result<()> {
    if report.is_clean() {
        return Ok(());
    }
    let mut parts = Vec::new();
    if report.retrying > 0 {
        parts.push(format!(
            "{} message(s) not delivered and still due",
            report.retrying
        ));
    }
    if report.dead_lettered > 0 {
        parts.push(format!(
            "{} message(s) dead-lettered (see `airlock failures`)",
            report.dead_lettered
        ));
    }
    if let Some(first) = report.errors.first() {
        parts.push(format!(
            "{} session(s) failed, first {}: {}",
            report.errors.len(),
            first.session,
            first.error
        ));
    }
    Err(Error::Conflict(parts.join("; ")))
}
