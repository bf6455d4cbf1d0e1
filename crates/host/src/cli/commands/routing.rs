//! `airlock routing`: write a session's `session_routing` from the registry.

use airlock_core::{Result, SessionId};

use crate::cli::context;
use crate::cli::output::{emit, or_dash};
use crate::cli::settings::Settings;

/// Runs `routing`.
pub async fn run(settings: &Settings, session: &SessionId) -> Result<()> {
    let manager = context::manager(settings).await?;
    let routing = manager.write_routing(session).await?;
    emit(settings.output, &routing, |r| {
        format!(
            "session_routing of {session}: channel {} chat {} thread {}",
            or_dash(r.channel_type.as_ref()),
            or_dash(r.platform_id.as_ref()),
            or_dash(r.thread_id.as_ref())
        )
    });
    Ok(())
}
