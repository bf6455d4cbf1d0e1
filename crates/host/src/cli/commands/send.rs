//! `airlock send`: write an inbound message as a chat bridge would.

use std::path::{Path, PathBuf};

use airlock_core::mailbox::{NewInboundMessage, WriteOutcome};
use airlock_core::{AttachmentOutcome, Error, MessageId, Result, SessionId};
use base64::Engine;
use serde::Serialize;
use serde_json::json;

use crate::cli::context;
use crate::cli::output::emit;
use crate::cli::settings::{SendContent, SendRouting, Settings};

#[derive(Serialize)]
struct Sent {
    id: String,
    seq: i64,
    #[serde(flatten)]
    outcome: WriteOutcome,
    attachments: Vec<AttachmentOutcome>,
}

/// A MIME type for a file name, so the guest sees what a bridge would send.
fn mime_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "ogg" => "audio/ogg",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "m4a" => "audio/mp4",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "json" => "application/json",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    crate::cli::context::read_input(path, what)
}

/// The content a bridge would deliver: text plus base64 attachments.
fn bridge_content(text: Option<&str>, attach: &[PathBuf]) -> Result<String> {
    let mut attachments = Vec::new();
    for path in attach {
        let bytes = read(path, "attachment")?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        attachments.push(json!({
            "name": name,
            "mimeType": mime_type(path),
            "size": bytes.len(),
            "data": base64::engine::general_purpose::STANDARD.encode(&bytes),
        }));
    }
    let mut content = json!({});
    if let Some(text) = text {
        content["text"] = json!(text);
    }
    if !attachments.is_empty() {
        content["attachments"] = serde_json::Value::Array(attachments);
    }
    Ok(content.to_string())
}

/// Runs `send`.
pub async fn run(
    settings: &Settings,
    session: &SessionId,
    content: &SendContent,
    kind: &str,
    id: &MessageId,
    routing: &SendRouting,
) -> Result<()> {
    let content = match content {
        SendContent::Text { text, attach } => bridge_content(text.as_deref(), attach)?,
        SendContent::File(path) => {
            String::from_utf8(read(path, "content file")?).map_err(|_| {
                Error::InvalidInput(format!("content file {} is not UTF-8 text", path.display()))
            })?
        }
    };
    let manager = context::manager(settings).await?;
    let mut message = NewInboundMessage::new(id.clone(), kind, content);
    // A reference guest answers "No destinations configured" to a message
    // without routing; default to the session's chat and thread.
    let default = manager.routing_of(&manager.session(session).await?).await?;
    let (channel_type, platform_id) = match &routing.chat {
        Some(chat) => (
            Some(chat.channel_type.clone()),
            Some(chat.platform_id.clone()),
        ),
        None => (default.channel_type, default.platform_id),
    };
    message.channel_type = channel_type;
    message.platform_id = platform_id;
    message.thread_id = routing.thread.clone().or(default.thread_id);
    let written = manager.write_message(session, message).await?;
    let sent = Sent {
        id: written.id.to_string(),
        seq: written.seq,
        outcome: written.outcome,
        attachments: written.attachments,
    };
    emit(settings.output, &sent, |s| {
        let what = match &s.outcome {
            WriteOutcome::Inserted => "stored".to_owned(),
            WriteOutcome::Duplicate => "already stored (retry)".to_owned(),
            WriteOutcome::Renamed { original } => {
                format!("stored under a new id ({original} was taken)")
            }
            WriteOutcome::Routed { owner } => format!("queued for its owner, host {owner}"),
        };
        let mut text = format!("message {} seq {}: {what}", s.id, s.seq);
        for a in &s.attachments {
            match (&a.local_path, &a.error) {
                (_, Some(error)) => {
                    text.push_str(&format!("\n  attachment {}: error: {error}", a.index))
                }
                (Some(path), None) => text.push_str(&format!("\n  attachment {}: {path}", a.index)),
                (None, None) => {}
            }
        }
        text
    });
    Ok(())
}
