//! `airlock resolve`: find or create the session for a chat.

use airlock_core::{
    AgentGroupId, NewMessagingGroup, ResolveRequest, Result, SessionMode, SessionStoreExt, ThreadId,
};
use serde::Serialize;

use crate::cli::context;
use crate::cli::output::{emit, or_dash};
use crate::cli::settings::{ChatSettings, Settings};

#[derive(Serialize)]
struct Resolved {
    id: String,
    created: bool,
    dir: String,
    agent_group: String,
    messaging_group: Option<String>,
    thread: Option<String>,
    mode: String,
}

/// Runs `resolve`.
pub async fn run(
    settings: &Settings,
    agent_group: &AgentGroupId,
    chat: Option<&ChatSettings>,
    thread: Option<&ThreadId>,
    mode: SessionMode,
) -> Result<()> {
    let manager = context::manager(settings).await?;
    let messaging_group = match chat {
        Some(chat) => Some(
            manager
                .store()
                .ensure_messaging_group(NewMessagingGroup::new(
                    &chat.channel_type,
                    &chat.platform_id,
                ))
                .await?
                .id,
        ),
        None => None,
    };
    let request = ResolveRequest::new(agent_group.clone(), messaging_group, thread.cloned(), mode);
    let resolved = manager.resolve_session(request).await?;
    let session = &resolved.session;
    let out = Resolved {
        id: session.id.to_string(),
        created: resolved.created,
        dir: absolute(&manager.session_dir(session)),
        agent_group: session.agent_group_id.to_string(),
        messaging_group: session.messaging_group_id.as_ref().map(|m| m.to_string()),
        thread: session.thread_id.as_ref().map(|t| t.to_string()),
        mode: session.mode.to_string(),
    };
    emit(settings.output, &out, |r| {
        format!(
            "{} {}\n  dir:     {}\n  agent:   {}\n  chat:    {}\n  thread:  {}\n  mode:    {}",
            if r.created { "created" } else { "found" },
            r.id,
            r.dir,
            r.agent_group,
            or_dash(r.messaging_group.as_ref()),
            or_dash(r.thread.as_ref()),
            r.mode
        )
    });
    Ok(())
}

/// `path` made absolute against the current directory, for scripts.
pub fn absolute(path: &std::path::Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}
