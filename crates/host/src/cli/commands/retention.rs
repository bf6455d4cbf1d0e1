//! `airlock archive`, `airlock prune` and `airlock usage`: retention of
//! session folders (see `lifecycle::retention`).

use std::time::Duration;

use airlock_core::{Result, SessionId, Timestamp};
use serde::Serialize;

use crate::cli::output::emit;
use crate::cli::settings::Settings;
use crate::cli::{context, progress};
use crate::lifecycle::{PruneItem, Retention};

/// Parses an age such as `30d`, `12h`, `90m`, `45s` or `2w`.
pub fn parse_age(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let refused = || format!("expected an age such as 30d, 12h, 90m, 45s or 2w, got {text:?}");
    let unit_at = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(refused)?;
    let (number, unit) = text.split_at(unit_at);
    let n: u64 = number.parse().map_err(|_| refused())?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(refused()),
    };
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or_else(refused)
}

/// Runs `archive`.
pub async fn archive(settings: &Settings, id: &SessionId) -> Result<()> {
    let manager = context::manager(settings).await?;
    let session = Retention::new(manager).archive(id).await?;
    emit(settings.output, &session, |s| format!("archived {}", s.id));
    Ok(())
}

#[derive(Serialize)]
struct Pruned {
    dry_run: bool,
    sessions: Vec<PruneItem>,
    bytes: u64,
}

/// Runs `prune`.
pub async fn prune(settings: &Settings, older_than: Duration, dry_run: bool) -> Result<()> {
    let manager = context::manager(settings).await?;
    let retention = Retention::new(manager);
    let age = i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
    let cutoff = Timestamp::now().plus_millis(age.saturating_neg());
    let sessions = if dry_run {
        retention.plan(cutoff).await?
    } else {
        let progress = progress::bar(settings, 0, "pruning sessions");
        let pruned = retention
            .prune_with_progress(cutoff, &|done, total| {
                progress.set_length(total as u64);
                progress.set_position(done as u64);
            })
            .await;
        progress.finish_and_clear();
        pruned?
    };
    let bytes = sessions
        .iter()
        .map(|i| i.bytes)
        .fold(0u64, u64::saturating_add);
    let report = Pruned {
        dry_run,
        sessions,
        bytes,
    };
    emit(settings.output, &report, |r| {
        let verb = if r.dry_run { "would remove" } else { "removed" };
        let mut text = format!("{verb} {} sessions, {} bytes", r.sessions.len(), r.bytes);
        for i in &r.sessions {
            let resumed = if i.resumed { " (unfinished prune)" } else { "" };
            text.push_str(&format!(
                "\n{:<40} {:<16} {:>12}{resumed}",
                i.session, i.agent_group, i.bytes
            ));
        }
        text
    });
    Ok(())
}

/// Runs `usage`.
pub async fn usage(settings: &Settings) -> Result<()> {
    let manager = context::manager(settings).await?;
    let usage = Retention::new(manager).usage().await?;
    emit(settings.output, &usage, |u| {
        let mut text = format!("{:<16} {:>12}", "AGENT GROUP", "BYTES");
        for (group, bytes) in &u.agent_groups {
            text.push_str(&format!("\n{group:<16} {bytes:>12}"));
        }
        text.push_str(&format!(
            "\n\n{:<40} {:<8} {:>12} {:>12}",
            "SESSION", "STATUS", "FOLDER", "HOST STATE"
        ));
        for s in &u.sessions {
            text.push_str(&format!(
                "\n{:<40} {:<8} {:>12} {:>12}",
                s.session, s.status, s.folder_bytes, s.host_state_bytes
            ));
        }
        text
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(parse_age("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_age("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_age("45s"), Ok(Duration::from_secs(45)));
        for bad in ["", "d", "30", "30x", "-1d", "1.5d", "99999999999999999999d"] {
            assert!(parse_age(bad).is_err(), "{bad:?}");
        }
    }
}
