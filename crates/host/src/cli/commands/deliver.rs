//! `airlock deliver`: a stdout channel. Each due outbound message is printed
//! as one JSON line, then marked delivered and its outbox cleared.

use std::time::Duration;

use airlock_core::mailbox::{Origin, OutboundMessage};
use airlock_core::{Result, Session, SessionFilter, SessionId, Timestamp};
use serde::Serialize;
use serde_json::Value;

use crate::SessionManager;
use crate::cli::context;
use crate::cli::output::emit_line;
use crate::cli::settings::Settings;

/// How long `deliver` waits between passes when it keeps polling.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

#[derive(Serialize)]
struct FileLine {
    name: String,
    size: usize,
}

#[derive(Serialize)]
struct DeliveryLine {
    session: String,
    id: String,
    seq: i64,
    kind: String,
    origin: Origin,
    in_reply_to: Option<String>,
    content: Value,
    files: Vec<FileLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    files_error: Option<String>,
}

/// The names a message declares in its content's `"files"` array.
pub(crate) fn declared_files(content: &Value) -> Vec<String> {
    content
        .get("files")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn deliver_one(
    manager: &SessionManager,
    session: &Session,
    message: OutboundMessage,
) -> Result<()> {
    let content: Value = serde_json::from_str(&message.content)
        .unwrap_or_else(|_| Value::String(message.content.clone()));
    let names = declared_files(&content);
    let (files, files_error) = if names.is_empty() || message.origin == Origin::Host {
        (Vec::new(), None)
    } else {
        match manager
            .read_outbox_files(&session.id, message.id.clone(), names)
            .await
        {
            Ok(files) => (
                files
                    .into_iter()
                    .map(|f| FileLine {
                        size: f.data.len(),
                        name: f.name,
                    })
                    .collect(),
                None,
            ),
            // An unsafe message id from the guest: deliver the text, not the files.
            Err(e) => (Vec::new(), Some(e.to_string())),
        }
    };
    emit_line(&DeliveryLine {
        session: session.id.to_string(),
        id: message.id.clone(),
        seq: message.seq,
        kind: message.kind.clone(),
        origin: message.origin,
        in_reply_to: message.in_reply_to.clone(),
        content,
        files,
        files_error,
    });
    manager
        .mark_delivered(&session.id, message.id.clone(), None)
        .await?;
    if message.origin == Origin::Guest {
        manager.clear_outbox(&session.id, message.id).await;
    }
    Ok(())
}

/// One pass over `sessions`; returns how many messages were delivered.
async fn pass(manager: &SessionManager, only: Option<&SessionId>) -> Result<usize> {
    let sessions = match only {
        Some(id) => vec![manager.session(id).await?],
        None => {
            manager
                .store()
                .list_sessions(SessionFilter::active())
                .await?
        }
    };
    let mut delivered = 0;
    for session in &sessions {
        manager.sync_acks(&session.id).await?;
        for message in manager.due_outbound(&session.id, Timestamp::now()).await? {
            deliver_one(manager, session, message).await?;
            delivered += 1;
        }
    }
    Ok(delivered)
}

/// Runs `deliver`.
pub async fn run(settings: &Settings, only: Option<&SessionId>, once: bool) -> Result<()> {
    let manager = context::manager(settings).await?;
    if once {
        pass(&manager, only).await?;
        return Ok(());
    }
    loop {
        pass(&manager, only).await?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
}
