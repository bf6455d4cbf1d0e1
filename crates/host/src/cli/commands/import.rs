//! `airlock import`: adopt a reference (nanoclaw v2) install in place.

use std::path::Path;
use std::sync::Arc;

use airlock_core::{Error, Result, SessionStore};
use airlock_sqlite_fs::import::{
    Action, ImportOptions, ImportReport, import_reference_with_progress,
};
use airlock_sqlite_fs::{SessionsRoot, SqliteSessionStore};

use super::resolve::absolute;
use crate::cli::output::{emit, or_dash, print_line};
use crate::cli::settings::{OutputFormat, RegistryLocation, Settings};
use crate::cli::{context, progress};

fn action(a: Action) -> &'static str {
    match a {
        Action::Adopted => "adopted",
        Action::WouldAdopt => "would adopt",
        Action::Unchanged => "unchanged",
        Action::Conflict => "CONFLICT",
        Action::Skipped => "SKIPPED",
    }
}

fn human(report: &ImportReport) -> String {
    let mut lines = vec![format!(
        "{} {}{}",
        if report.dry_run {
            "dry run of"
        } else {
            "imported"
        },
        report.source.display(),
        if report.dry_run {
            " (nothing written)"
        } else {
            ""
        }
    )];
    for g in &report.messaging_groups {
        lines.push(format!(
            "  chat     {:<11} {}/{} {}",
            action(g.action),
            g.channel_type,
            g.platform_id,
            or_dash(g.id.as_ref())
        ));
    }
    for s in &report.sessions {
        let mut line = format!(
            "  session  {:<11} {} {} {}",
            action(s.action),
            s.id,
            s.agent_group,
            or_dash(s.mode.as_ref())
        );
        if let Some(detail) = &s.detail {
            line.push_str(&format!(": {detail}"));
        }
        lines.push(line);
    }
    lines.extend(report.notes.iter().map(|n| format!("  note: {n}")));
    lines.push(format!(
        "{} agent group(s), {} chat(s), {} session(s): {} change(s), {} not adopted",
        report.agent_groups,
        report.messaging_groups.len(),
        report.sessions.len(),
        report.changes(),
        report.problems()
    ));
    lines.join("\n")
}

/// Runs `import`; fails (after printing the report) when a session could
/// not be adopted.
pub async fn run(
    settings: &Settings,
    created_data_dir: Option<&Path>,
    from: &Path,
    dry_run: bool,
) -> Result<()> {
    if let (Some(dir), OutputFormat::Human) = (created_data_dir, settings.output) {
        print_line(&format!("created data dir {}", absolute(dir)));
    }
    // A dry run writes nothing, not even an empty registry: with none yet,
    // it plans against an empty one that is thrown away.
    let scratch = match &settings.registry {
        RegistryLocation::Sqlite(path) if dry_run && !path.is_file() => {
            Some(tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?)
        }
        _ => None,
    };
    let store: Arc<dyn SessionStore> = match &scratch {
        Some(dir) => Arc::new(
            SqliteSessionStore::open_in(dir.path())
                .map_err(|e| Error::backend("sqlite", "opening a scratch registry", e))?,
        ),
        None => context::open_registry(settings).await?,
    };
    let options = ImportOptions {
        from: from.to_path_buf(),
        sessions_root: SessionsRoot::in_data_dir(&settings.data_dir),
        dry_run,
    };
    let progress = progress::bar(settings, 0, "importing");
    let report = import_reference_with_progress(&*store, &options, &|done, total| {
        progress.set_length(total as u64);
        progress.set_position(done as u64);
    })
    .await;
    progress.finish_and_clear();
    let report = report?;
    emit(settings.output, &report, human);
    match report.problems() {
        0 => Ok(()),
        n => Err(Error::Conflict(format!(
            "{n} session(s) of the reference were not adopted (see the report)"
        ))),
    }
}
