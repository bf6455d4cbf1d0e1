//! `airlock sessions` and `airlock show`: the registry's view of sessions.

use airlock_core::{Result, Session, SessionFilter, SessionId, SessionStatus, Timestamp};
use serde::Serialize;

use airlock_postgres::QueuedSession;

use super::queued;
use super::resolve::absolute;
use crate::cli::context;
use crate::cli::output::{emit, or_dash};
use crate::cli::settings::Settings;

/// A session as `sessions` lists it: with its routing queue, if any.
#[derive(Serialize)]
struct Listed {
    #[serde(flatten)]
    session: Session,
    /// Messages queued for its owner (PostgreSQL registry only).
    #[serde(skip_serializing_if = "Option::is_none")]
    routed: Option<QueuedSession>,
}

/// Runs `sessions`.
pub async fn list(settings: &Settings, status: Option<SessionStatus>) -> Result<()> {
    let manager = context::manager(settings).await?;
    let filter = SessionFilter {
        status,
        ..SessionFilter::default()
    };
    let sessions = manager.store().list_sessions(filter).await?;
    let mut routed = queued::by_session(queued::queue(settings).await?.as_ref()).await?;
    let sessions: Vec<Listed> = sessions
        .into_iter()
        .map(|session| Listed {
            routed: routed.remove(session.id.as_str()),
            session,
        })
        .collect();
    emit(settings.output, &sessions, |sessions| {
        if sessions.is_empty() {
            return "no sessions".to_owned();
        }
        // The column appears only when some message is routed.
        let any_routed = sessions.iter().any(|s| s.routed.is_some());
        let mut text = format!(
            "{:<40} {:<16} {:<12} {:<8} {:<9} {}",
            "ID", "AGENT GROUP", "MODE", "STATUS", "CONTAINER", "CREATED"
        );
        if any_routed {
            let width = sessions
                .iter()
                .map(|s| s.session.created_at.to_string().len())
                .max()
                .unwrap_or(0);
            text.push_str(&format!(
                "{:<pad$}  ROUTED",
                "",
                pad = width.saturating_sub(7)
            ));
        }
        for Listed { session: s, routed } in sessions {
            text.push_str(&format!(
                "\n{:<40} {:<16} {:<12} {:<8} {:<9} {}",
                s.id, s.agent_group_id, s.mode, s.status, s.container_status, s.created_at
            ));
            if let Some(q) = routed {
                text.push_str(&format!("  {}", queued::describe(q)));
            }
        }
        text
    });
    Ok(())
}

#[derive(Serialize)]
struct Shown {
    #[serde(flatten)]
    session: Session,
    dir: String,
    messages: airlock_core::mailbox::MailboxCounts,
    heartbeat_age_ms: Option<u128>,
    /// Tamper events not yet acknowledged (`airlock doctor` lists them).
    tamper_events: usize,
}

/// Runs `show`.
pub async fn show(settings: &Settings, id: &SessionId) -> Result<()> {
    let manager = context::manager(settings).await?;
    let session = manager.session(id).await?;
    let messages = manager.counts(id).await?;
    let heartbeat = manager.heartbeat_age(id, Timestamp::now()).await?;
    let mailbox = manager.mailbox(&session);
    let tamper_events = tokio::task::spawn_blocking(move || mailbox.tamper_events())
        .await
        .map_err(|e| airlock_core::Error::backend("sqlite", "reading tamper events", e))??
        .iter()
        .filter(|e| !e.acknowledged)
        .count();
    let shown = Shown {
        tamper_events,
        dir: absolute(&manager.session_dir(&session)),
        session,
        messages,
        heartbeat_age_ms: heartbeat.map(|d| d.as_millis()),
    };
    emit(settings.output, &shown, |s| {
        let m = &s.messages;
        format!(
            "session {}\n  agent group:  {}\n  chat:         {}\n  thread:       {}\n  mode:         {}\n  status:       {}\n  container:    {}\n  last active:  {}\n  created:      {}\n  dir:          {}\n  inbound:      {} ({} pending)\n  outbound:     {} ({} delivered)\n  heartbeat:    {}\n  tamper:       {} unacknowledged event(s)",
            s.session.id,
            s.session.agent_group_id,
            or_dash(s.session.messaging_group_id.as_ref()),
            or_dash(s.session.thread_id.as_ref()),
            s.session.mode,
            s.session.status,
            s.session.container_status,
            or_dash(s.session.last_active),
            s.session.created_at,
            s.dir,
            m.inbound,
            m.inbound_pending,
            m.outbound,
            m.delivered,
            s.heartbeat_age_ms.map_or_else(
                || "none".to_owned(),
                |ms| format!("{:.1} s ago", ms as f64 / 1000.0)
            ),
            s.tamper_events,
        )
    });
    Ok(())
}
