//! `airlock resolve`: find or create the session for a chat.

use std::path::Path;

use airlock_core::{
    AgentGroupId, NewMessagingGroup, ResolveRequest, Result, Session, SessionMode, SessionStoreExt,
    ThreadId,
};
use serde::Serialize;

use crate::cli::context;
use crate::cli::output::{emit, or_dash};
use crate::cli::settings::{ChatSettings, Settings};

/// The session as `sessions --json` lists it, plus what this call did.
#[derive(Serialize)]
struct Resolved {
    #[serde(flatten)]
    session: Session,
    created: bool,
    dir: String,
    /// Set when this call created the data dir.
    #[serde(skip_serializing_if = "Option::is_none")]
    created_data_dir: Option<String>,
}

/// Runs `resolve`; `created_data_dir` is the data dir when this run made it.
pub async fn run(
    settings: &Settings,
    created_data_dir: Option<&Path>,
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
    let out = Resolved {
        dir: absolute(&manager.session_dir(&resolved.session)),
        session: resolved.session,
        created: resolved.created,
        created_data_dir: created_data_dir.map(absolute),
    };
    emit(settings.output, &out, |r| {
        let s = &r.session;
        format!(
            "{}{} {}\n  dir:     {}\n  agent:   {}\n  chat:    {}\n  thread:  {}\n  mode:    {}",
            r.created_data_dir
                .as_ref()
                .map_or_else(String::new, |d| format!("created data dir {d}\n")),
            if r.created { "created" } else { "found" },
            s.id,
            r.dir,
            s.agent_group_id,
            or_dash(s.messaging_group_id.as_ref()),
            or_dash(s.thread_id.as_ref()),
            s.mode
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
