//! `airlock migrate [--check]`: apply the registry's pending migrations
//! explicitly (so operators migrate before rolling out a new build), or
//! only report them and fail when some are pending.

use airlock_core::{Error, Result};
use airlock_postgres::{MigrationStatus, PgSessionStore, PgStoreOptions, migration_status};
use serde::Serialize;

use crate::cli::output::emit;
use crate::cli::settings::{RegistryLocation, Settings};

#[derive(Serialize)]
struct Report {
    schema: String,
    applied: Vec<i64>,
    pending: Vec<Pending>,
    migrated_now: bool,
}

#[derive(Serialize)]
struct Pending {
    version: i64,
    description: String,
}

impl Report {
    fn new(status: MigrationStatus, migrated_now: bool) -> Self {
        Self {
            schema: status.schema,
            applied: status.applied,
            pending: status
                .pending
                .into_iter()
                .map(|(version, description)| Pending {
                    version,
                    description,
                })
                .collect(),
            migrated_now,
        }
    }
}

/// Runs `migrate`.
pub async fn run(settings: &Settings, check: bool) -> Result<()> {
    let RegistryLocation::Postgres(url) = &settings.registry else {
        println!("the SQLite registry brings its schema up to date when it opens: nothing to do");
        return Ok(());
    };
    let options = PgStoreOptions::from_url(url).map_err(Error::InvalidInput)?;
    let open = |e| Error::backend("postgres", "reading the registry's migrations", e);
    let before = migration_status(&options).await.map_err(open)?;
    let migrated_now = !check && !before.is_current();
    if migrated_now {
        let store = PgSessionStore::connect_with(options.clone().run_migrations(true))
            .await
            .map_err(|e| Error::backend("postgres", "migrating the registry", e))?;
        store.close().await;
    }
    let status = if migrated_now {
        migration_status(&options).await.map_err(open)?
    } else {
        before
    };
    let pending = status.pending.len();
    let report = Report::new(status, migrated_now);
    emit(settings.output, &report, |r| {
        let latest = r.applied.last().map_or("none".to_owned(), i64::to_string);
        let mut text = format!("registry schema {}: at migration {latest}", r.schema);
        if r.migrated_now {
            text.push_str(" (migrated now)");
        }
        for p in &r.pending {
            text.push_str(&format!("\n  pending: {} {}", p.version, p.description));
        }
        if r.pending.is_empty() {
            text.push_str(", up to date");
        }
        text
    });
    if check && pending > 0 {
        return Err(Error::Conflict(format!(
            "{pending} registry migration(s) pending; run `airlock migrate` before this build serves"
        )));
    }
    Ok(())
}
