//! `airlock demo`: the whole loop end to end, with the guest as a separate
//! child process (this same binary), and a timeline of every hop.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlock_core::mailbox::NewInboundMessage;
use airlock_core::{
    AgentGroupId, Error, MessageId, NewMessagingGroup, ResolveRequest, Result, SessionId,
    SessionMode, SessionStoreExt, Timestamp,
};
use async_trait::async_trait;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

use super::guest::{poll_with, reply_with};
use super::resolve::absolute;
use crate::cli::context;
use crate::cli::output::print_line;
use crate::cli::settings::{OutputFormat, Settings};
use crate::delivery::{ChannelAdapter, Deliverer, Delivery, DeliveryError};

/// How long either side waits for the other before giving up.
const HOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Poll interval of both sides.
const POLL: Duration = Duration::from_millis(20);

/// The demo's channel: keeps the reply it is handed, as the demo prints it.
#[derive(Debug, Default)]
struct DemoChannel {
    reply: Mutex<Option<Value>>,
}

impl DemoChannel {
    fn take(&self) -> Option<Value> {
        self.reply.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

#[async_trait]
impl ChannelAdapter for DemoChannel {
    async fn deliver(&self, delivery: &Delivery) -> std::result::Result<String, DeliveryError> {
        let message = delivery.message();
        let value = json!({
            "id": message.id,
            "seq": message.seq,
            "kind": message.kind,
            "content": delivery.content(),
            "files": delivery.files().iter().map(|f| json!({"name": f.name, "size": f.data.len(), "text": String::from_utf8_lossy(&f.data)})).collect::<Vec<_>>(),
        });
        *self.reply.lock().unwrap_or_else(|p| p.into_inner()) = Some(value);
        Ok(format!("demo-{}", message.seq))
    }
}

/// What the demo's guest tells the host on stdout, one JSON object a line.
#[derive(Debug, Serialize, Deserialize)]
struct GuestEvent {
    event: String,
    detail: String,
    /// Wall-clock time of the event (both processes share the clock).
    at_ms: i64,
}

/// Events of both processes, ordered by wall-clock time when printed.
struct Timeline {
    rows: Vec<(i64, String)>,
}

impl Timeline {
    fn new() -> Self {
        Self { rows: Vec::new() }
    }

    fn mark(&mut self, what: impl Into<String>) {
        self.at(Timestamp::now().as_millis(), what);
    }

    fn at(&mut self, at_ms: i64, what: impl Into<String>) {
        self.rows.push((at_ms, what.into()));
    }

    /// `(event, ms since the first event, ms since the previous event)`.
    fn hops(&self) -> Vec<(String, i64, i64)> {
        let mut rows = self.rows.clone();
        rows.sort_by_key(|(at, _)| *at);
        let start = rows.first().map_or(0, |(at, _)| *at);
        let mut last = start;
        rows.into_iter()
            .map(|(at, what)| {
                let hop = at - last;
                last = at;
                (what, at - start, hop)
            })
            .collect()
    }
}

fn say(settings: &Settings, text: &str) {
    if settings.output == OutputFormat::Human {
        print_line(text);
    }
}

/// Runs `demo` (the host side); `created_data_dir` is the data dir when this run made it.
pub async fn run(settings: &Settings, created_data_dir: Option<&Path>) -> Result<()> {
    if let Some(dir) = created_data_dir {
        say(settings, &format!("created data dir {}", absolute(dir)));
    }
    let mut timeline = Timeline::new();
    let manager = context::manager(settings).await?;
    let chat = manager
        .store()
        .ensure_messaging_group(NewMessagingGroup::new("demo", "demo-chat"))
        .await?;
    let agent = AgentGroupId::new("demo-agent")?;
    let resolved = manager
        .resolve_session(ResolveRequest::new(
            agent,
            Some(chat.id),
            None,
            SessionMode::Shared,
        ))
        .await?;
    let session = resolved.session;
    let dir = manager.session_dir(&session);
    timeline.mark(format!(
        "host: session {} {}",
        session.id,
        if resolved.created { "created" } else { "found" }
    ));
    say(settings, &format!("session folder: {}", absolute(&dir)));

    let picture = b"a tiny attachment: pretend this is a photo\n";
    let content = json!({
        "text": "Hello agent, what is in this file?",
        "sender": "demo-user",
        "attachments": [{
            "name": "photo.txt",
            "mimeType": "text/plain",
            "data": base64::engine::general_purpose::STANDARD.encode(picture),
        }],
    });
    let message_id = MessageId::generate("demo")?;
    let mut inbound = NewInboundMessage::new(message_id.clone(), "chat", content.to_string());
    inbound.platform_id = Some("demo-chat".into());
    inbound.channel_type = Some("demo".into());
    let written = manager.write_message(&session.id, inbound).await?;
    timeline.mark(format!(
        "host: wrote inbound {} (seq {}) with 1 attachment",
        written.id, written.seq
    ));

    let launch = manager.prepare_guest(&session.id).await?;
    let mut child = tokio::process::Command::new(
        std::env::current_exe().map_err(|e| Error::io("current_exe", e))?,
    )
    .args(["guest", "demo-agent", "--session-dir"])
    .arg(&dir)
    .envs(launch.env())
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit())
    .kill_on_drop(true)
    .spawn()
    .map_err(|e| Error::io("airlock guest demo-agent", e))?;
    timeline.mark(format!(
        "host: started guest process (pid {})",
        child.id().unwrap_or(0)
    ));

    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::InvalidInput("guest has no stdout".into()))?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let channel = Arc::new(DemoChannel::default());
    let deliverer = Deliverer::builder(manager.clone(), channel.clone()).build()?;
    let deadline = Instant::now() + HOP_TIMEOUT;
    let delivery = loop {
        tokio::select! {
            line = lines.next_line() => {
                if let Some(line) = line.map_err(|e| Error::io("guest stdout", e))?
                    && let Ok(event) = serde_json::from_str::<GuestEvent>(&line)
                {
                    timeline.at(event.at_ms, format!("guest: {}", event.detail));
                }
            }
            _ = tokio::time::sleep(POLL) => {}
        }
        let report = deliverer.drain(&session.id).await?;
        if let Some(failure) = report.errors.first() {
            return Err(Error::Conflict(format!(
                "delivery failed: {}",
                failure.error
            )));
        }
        if let Some(reply) = channel.take() {
            break reply;
        }
        if Instant::now() > deadline {
            return Err(Error::Conflict(format!(
                "no reply from the guest within {HOP_TIMEOUT:?}"
            )));
        }
    };
    timeline.mark(format!(
        "host: saw reply {} (seq {})",
        delivery["id"].as_str().unwrap_or_default(),
        delivery["seq"]
    ));
    say(settings, &format!("delivered: {delivery}"));
    timeline.mark("host: delivered reply to stdout, cleared its outbox");

    // Drain the guest's last events, then wait for it to exit.
    while let Ok(Some(line)) = lines.next_line().await {
        if let Ok(event) = serde_json::from_str::<GuestEvent>(&line) {
            timeline.at(event.at_ms, format!("guest: {}", event.detail));
        }
    }
    let status = child
        .wait()
        .await
        .map_err(|e| Error::io("guest process", e))?;
    if !status.success() {
        return Err(Error::Conflict(format!(
            "the guest process exited with {status}"
        )));
    }
    // The guest exited: drain what it wrote last (delivery also copies its acks).
    deliverer.drain(&session.id).await?;
    let counts = manager.counts(&session.id).await?;
    timeline.mark(format!(
        "host: synced acks, {} inbound message(s) completed",
        counts.inbound - counts.inbound_pending
    ));
    manager.mark_container_stopped(&session.id).await?;
    timeline.mark("host: container marked stopped");

    print_timeline(settings, &timeline, &dir, &session.id, delivery);
    Ok(())
}

fn print_timeline(
    settings: &Settings,
    timeline: &Timeline,
    dir: &Path,
    session: &SessionId,
    delivery: Value,
) {
    if settings.output == OutputFormat::Json {
        let rows: Vec<Value> = timeline
            .hops()
            .iter()
            .map(|(what, at, hop)| json!({"event": what, "at_ms": at, "hop_ms": hop}))
            .collect();
        // One JSON document only, so `--json` output parses as a whole.
        print_line(
            &json!({"dir": absolute(dir), "delivered": delivery, "timeline": rows}).to_string(),
        );
        return;
    }
    print_line("\ntimeline (ms since start, ms since previous step):");
    for (what, at, hop) in &timeline.hops() {
        print_line(&format!("  {at:>6} {hop:>+6}  {what}"));
    }
    print_line(&format!(
        "\ninspect it: airlock --data-dir {} messages {session}",
        settings.data_dir.display()
    ));
}

fn event(event: &str, detail: String) {
    let at_ms = Timestamp::now().as_millis();
    print_line(
        &serde_json::to_string(&GuestEvent {
            event: event.into(),
            detail,
            at_ms,
        })
        .unwrap_or_default(),
    );
}

/// Runs the demo's guest: wait for one message, read its attachment, reply
/// with text and an outbox file, exit.
pub fn agent(session_dir: &Path) -> Result<()> {
    let mailbox = super::guest::open(session_dir)?;
    mailbox.touch_heartbeat()?;
    event(
        "started",
        "mount self-test passed, mailbox opened, heartbeat touched".into(),
    );
    let deadline = Instant::now() + HOP_TIMEOUT;
    let message = loop {
        if let Some(message) = poll_with(&mailbox)?.into_iter().next() {
            break message;
        }
        if Instant::now() > deadline {
            return Err(Error::Conflict("no inbound message arrived".into()));
        }
        std::thread::sleep(POLL);
    };
    event(
        "seen",
        format!("polled inbound {} (seq {})", message.id, message.seq),
    );

    let content: Value = serde_json::from_str(&message.content).unwrap_or(Value::Null);
    let local = content["attachments"][0]["localPath"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let bytes = read_inbox_file(session_dir, &local)?;
    event(
        "read",
        format!("read attachment {local} ({} bytes)", bytes.len()),
    );

    let scratch = tempfile_path(session_dir);
    std::fs::write(
        &scratch,
        format!(
            "summary: the file said {:?}\n",
            String::from_utf8_lossy(&bytes).trim()
        ),
    )
    .map_err(|e| Error::io(&scratch, e))?;
    let text = format!(
        "I read {} ({} bytes); my summary is attached.",
        content["attachments"][0]["name"],
        bytes.len()
    );
    let in_reply_to = MessageId::new(message.id.clone())?;
    let result = reply_with(
        &mailbox,
        &in_reply_to,
        &text,
        std::slice::from_ref(&scratch),
    );
    let _ = std::fs::remove_file(&scratch);
    if let Some(parent) = scratch.parent() {
        let _ = std::fs::remove_dir(parent);
    }
    let (id, seq, _) = result?;
    mailbox.touch_heartbeat()?;
    event(
        "replied",
        format!("wrote reply {id} (seq {seq}) with outbox file summary.txt, acked completed"),
    );
    Ok(())
}

/// `<session_dir>/<local>` after checking `local` is `inbox/<id>/<name>`.
fn read_inbox_file(session_dir: &Path, local: &str) -> Result<Vec<u8>> {
    let parts: Vec<&str> = local.split('/').collect();
    let [inbox, id, name] = parts.as_slice() else {
        return Err(Error::InvalidInput(format!(
            "unexpected localPath {local:?}"
        )));
    };
    if *inbox != "inbox" {
        return Err(Error::InvalidInput(format!(
            "unexpected localPath {local:?}"
        )));
    }
    let id = MessageId::new(*id)?;
    airlock_core::validate_component("attachment name", name)?;
    let path = session_dir.join("inbox").join(id.as_str()).join(name);
    std::fs::read(&path).map_err(|e| Error::io(path, e))
}

/// A scratch file beside the session folder named like the outbox file.
fn tempfile_path(session_dir: &Path) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("airlock-demo-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let _ = session_dir;
    dir.join("summary.txt")
}
