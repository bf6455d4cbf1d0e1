//! Registry schema migrations, versioned with `PRAGMA user_version`.

use rusqlite::{Connection, TransactionBehavior};

/// The migrations in order; migration `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[include_str!("migrations/0001_init.sql")];

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
    /// SQLite failed while migrating.
    #[error("migrating the registry to version {version}: {source}")]
    Sqlite {
        /// The version being applied.
        version: i64,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
}

/// Applies the missing migrations, each once, even with several processes
/// opening the file at the same time (the check runs inside an immediate
/// transaction, so a second process waits and then finds nothing to do).
pub fn migrate(conn: &mut Connection) -> Result<(), MigrateError> {
    let version = |conn: &Connection| -> rusqlite::Result<i64> {
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
    };
    let current = version(conn).map_err(|source| MigrateError::Sqlite { version: 0, source })?;
    if current == SCHEMA_VERSION {
        return Ok(());
    }
    if current > SCHEMA_VERSION {
        return Err(MigrateError::TooNew { found: current });
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|source| MigrateError::Sqlite {
            version: current,
            source,
        })?;
    let current = version(&tx).map_err(|source| MigrateError::Sqlite {
        version: current,
        source,
    })?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        let target = index as i64 + 1;
        let wrap = |source| MigrateError::Sqlite {
            version: target,
            source,
        };
        tx.execute_batch(sql).map_err(wrap)?;
        tx.pragma_update(None, "user_version", target)
            .map_err(wrap)?;
    }
    tx.commit().map_err(|source| MigrateError::Sqlite {
        version: SCHEMA_VERSION,
        source,
    })
}
