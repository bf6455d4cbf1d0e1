//! `airlock destinations`: replace a session's `destinations` from a JSON file.

use std::path::Path;

use airlock_core::mailbox::Destination;
use airlock_core::{Error, Result, SessionId, escape_for_log};
use serde::Serialize;

use crate::cli::context;
use crate::cli::output::emit;
use crate::cli::settings::Settings;

/// Largest rows file read (a destinations table is a handful of rows).
const MAX_FILE_BYTES: u64 = 1 << 20;

#[derive(Serialize)]
struct Replaced {
    session: String,
    destinations: Vec<Destination>,
}

/// Reads and checks the rows: names unique and non-empty, `type` `channel`
/// (with a chat) or `agent` (with an agent group).
fn read_rows(file: &Path) -> Result<Vec<Destination>> {
    let bad = |what: String| Error::InvalidInput(format!("--file {}: {what}", file.display()));
    let meta = std::fs::metadata(file).map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
        return Err(bad(format!(
            "not a regular file of at most {MAX_FILE_BYTES} bytes"
        )));
    }
    let text = std::fs::read_to_string(file).map_err(|e| bad(e.to_string()))?;
    let rows: Vec<Destination> = serde_json::from_str(&text)
        .map_err(|e| bad(format!("not a JSON array of destinations: {e}")))?;
    let mut seen = std::collections::HashSet::new();
    for row in &rows {
        let name = escape_for_log(&row.name);
        if row.name.trim().is_empty() || !seen.insert(row.name.as_str()) {
            return Err(bad(format!("destination name {name} is empty or repeated")));
        }
        let complete = match row.kind.as_str() {
            "channel" => row.channel_type.is_some() && row.platform_id.is_some(),
            "agent" => row.agent_group_id.is_some(),
            _ => {
                return Err(bad(format!(
                    "destination {name}: type must be channel or agent"
                )));
            }
        };
        if !complete {
            return Err(bad(format!(
                "destination {name}: a channel needs channel_type and platform_id, an agent needs agent_group_id"
            )));
        }
    }
    Ok(rows)
}

/// Runs `destinations`.
pub async fn run(settings: &Settings, session: &SessionId, file: &Path) -> Result<()> {
    let rows = read_rows(file)?;
    let manager = context::manager(settings).await?;
    manager.replace_destinations(session, rows.clone()).await?;
    let out = Replaced {
        session: session.to_string(),
        destinations: rows,
    };
    emit(settings.output, &out, |r| {
        let names: Vec<&str> = r.destinations.iter().map(|d| d.name.as_str()).collect();
        format!(
            "destinations of {}: {} row(s){}{}",
            r.session,
            names.len(),
            if names.is_empty() { "" } else { ": " },
            names.join(", ")
        )
    });
    Ok(())
}
