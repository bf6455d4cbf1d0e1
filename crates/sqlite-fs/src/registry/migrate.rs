//! Registry schema migrations, versioned with `PRAGMA user_version`.

use rusqlite::{Connection, TransactionBehavior};

/// The migrations in order; migration `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_sqlite_timestamps.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Why the registry could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The file was written by a newer airlock.
    #[error("registry schema version {found} is newer than this build's {SCHEMA_VERSION}")]
    TooNew {
        /// The version found in the file.
        found: i64,
    },
    /// The file needs migrating but is read-only.
    #[error(
        "registry schema version {found} differs from this build's {SCHEMA_VERSION}, and the registry is read-only"
    )]
    ReadOnly {
        /// The version found in the file.
        found: i64,
    },
    /// The file holds tables airlock did not create: it is not a registry
    /// of airlock's, and migrating it would fail half-way or mix two schemas.
    #[error("{0}")]
    Foreign(ForeignRegistry),
    /// SQLite failed while migrating.
    #[error("migrating the registry to version {version}: {}", sqlite_message(.cause))]
    Sqlite {
        /// The version being applied.
        version: i64,
        /// SQLite's error. Not a `#[source]`: the error of a failed batch
        /// carries the migration's whole SQL, which no message may print.
        cause: rusqlite::Error,
    },
}

/// What a foreign registry file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForeignRegistry {
    /// The reference host's (nanoclaw v2) central registry, `v2.db`.
    Reference,
    /// Some other SQLite file; the names of (up to five of) its tables.
    Other(Vec<String>),
}

impl std::fmt::Display for ForeignRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ForeignRegistry::Reference => f.write_str(
                "this is a reference (nanoclaw v2) registry, not airlock's; \
                 adopt that install with `airlock import --from <its data dir>` (it is read, never changed)",
            ),
            ForeignRegistry::Other(tables) => write!(
                f,
                "this SQLite file holds tables airlock did not create ({}), so it is not an airlock registry; \
                 point --registry at an airlock registry or a new file, or adopt a reference install with \
                 `airlock import --from <its data dir>`",
                tables.join(", ")
            ),
        }
    }
}

/// SQLite's own words, without the SQL text a failed batch carries.
fn sqlite_message(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        rusqlite::Error::SqliteFailure(code, Some(msg)) => format!("{msg} ({:?})", code.code),
        other => other.to_string(),
    }
}

/// Refuses a file at version 0 that already has tables: a fresh airlock
/// registry is empty before its first migration. Runs before anything
/// writes the file (the switch to WAL included), so a refused file is left
/// exactly as it was.
pub fn refuse_foreign(conn: &Connection) -> Result<(), MigrateError> {
    let wrap = |cause| MigrateError::Sqlite { version: 0, cause };
    // One statement, so one snapshot: another process may commit migration
    // 1 (its tables and version together) between two separate reads.
    let mut stmt = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND (SELECT user_version FROM pragma_user_version) = 0 ORDER BY name",
        )
        .map_err(wrap)?;
    let tables = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
        .map_err(wrap)?;
    if tables.is_empty() {
        return Ok(());
    }
    let has = |name: &str| tables.iter().any(|t| t == name);
    if has("agent_groups") && has("messaging_group_agents") && has("sessions") {
        return Err(MigrateError::Foreign(ForeignRegistry::Reference));
    }
    let shown = tables
        .iter()
        .take(5)
        .map(|t| t.chars().take(64).flat_map(char::escape_debug).collect())
        .collect();
    Err(MigrateError::Foreign(ForeignRegistry::Other(shown)))
}

/// Applies the missing migrations, each once, even with several processes
/// opening the file at the same time (the check runs inside an immediate
/// transaction, so a second process waits and then finds nothing to do).
pub fn migrate(conn: &mut Connection) -> Result<(), MigrateError> {
    let version = |conn: &Connection| -> rusqlite::Result<i64> {
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
    };
    let current = version(conn).map_err(|cause| MigrateError::Sqlite { version: 0, cause })?;
    if current == SCHEMA_VERSION {
        return Ok(());
    }
    if current > SCHEMA_VERSION {
        return Err(MigrateError::TooNew { found: current });
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|cause| MigrateError::Sqlite {
            version: current,
            cause,
        })?;
    let current = version(&tx).map_err(|cause| MigrateError::Sqlite {
        version: current,
        cause,
    })?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        let target = index as i64 + 1;
        let wrap = |cause| MigrateError::Sqlite {
            version: target,
            cause,
        };
        tx.execute_batch(sql).map_err(wrap)?;
        tx.pragma_update(None, "user_version", target)
            .map_err(wrap)?;
    }
    tx.commit().map_err(|cause| MigrateError::Sqlite {
        version: SCHEMA_VERSION,
        cause,
    })
}
