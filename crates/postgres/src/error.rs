//! Errors of opening the registry, and the mapping of sqlx errors into
//! `airlock_core::Error` for every store operation.

use std::time::Duration;

use airlock_core::Error;

/// Why [`PgSessionStore::connect_with`](crate::PgSessionStore::connect_with)
/// or [`migrate`](crate::PgSessionStore::migrate) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The options are unusable (bad URL, bad schema name, zero connections).
    #[error("invalid PostgreSQL registry options: {0}")]
    InvalidOptions(String),

    /// PostgreSQL could not be reached or refused the connection.
    #[error("cannot connect to PostgreSQL at {target}: {}", DbError::show(source))]
    Connect {
        /// `host:port/database` (never the password).
        target: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// PostgreSQL did not answer within the acquire timeout.
    #[error("cannot connect to PostgreSQL at {target}: no answer within {timeout:?}")]
    ConnectTimeout {
        /// `host:port/database`.
        target: String,
        /// How long we waited.
        timeout: Duration,
    },

    /// Creating the schema or applying a migration failed.
    #[error("migrating the registry schema {schema:?} failed: {source}")]
    Migrate {
        /// The schema being migrated.
        schema: String,
        /// The migrator's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// `run_migrations` was off and the schema is not at this build's version.
    #[error(
        "the registry schema {schema:?} is not migrated (at version {found:?}, this build needs {needed}); run PgSessionStore::migrate"
    )]
    NotMigrated {
        /// The schema checked.
        schema: String,
        /// The newest applied migration, if any.
        found: Option<i64>,
        /// The newest migration of this build.
        needed: i64,
    },
}

impl From<OpenError> for Error {
    fn from(error: OpenError) -> Self {
        Error::backend(crate::BACKEND, "opening the PostgreSQL registry", error)
    }
}

/// Turns sqlx errors into `airlock_core::Error` with what was being done.
#[derive(Debug, Clone)]
pub(crate) struct ErrorMapper {
    /// `host:port/database`, named when the server cannot be reached.
    pub(crate) target: String,
    /// How long acquiring a connection may take.
    pub(crate) acquire_timeout: Duration,
}

impl ErrorMapper {
    /// A backend error for `context` ("resolving a session …").
    pub(crate) fn map(&self, context: impl Into<String>, error: sqlx::Error) -> Error {
        let mut context = context.into();
        if matches!(error, sqlx::Error::PoolTimedOut) {
            // sqlx reports only the timeout; say what it means for an operator.
            context.push_str(&format!(
                " (no connection to PostgreSQL at {} within {:?}: is the server running and reachable?)",
                self.target, self.acquire_timeout
            ));
        } else if is_connection_loss(&error) {
            context.push_str(&format!(
                " (lost the connection to PostgreSQL at {})",
                self.target
            ));
        }
        Error::backend(crate::BACKEND, context, DbError(error))
    }
}

/// A sqlx error shown without the server's source line. PostgreSQL reports
/// which line of its own C source raised an error and sqlx appends it
/// ("… at line 948"), which tells a user nothing; the SQLSTATE, detail and
/// hint do.
#[derive(Debug)]
pub(crate) struct DbError(pub(crate) sqlx::Error);

impl DbError {
    /// The text of `error` as [`DbError`] shows it.
    pub(crate) fn show(error: &sqlx::Error) -> String {
        let sqlx::Error::Database(db) = error else {
            return error.to_string();
        };
        let mut text = format!("error returned from database: {}", db.message());
        if let Some(code) = db.code() {
            text.push_str(&format!(" (SQLSTATE {code})"));
        }
        if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
            for (label, value) in [("detail", pg.detail()), ("hint", pg.hint())] {
                if let Some(value) = value {
                    text.push_str(&format!("; {label}: {value}"));
                }
            }
        }
        text
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&Self::show(&self.0))
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.0)
    }
}

/// Whether `error` means the server went away rather than refused a query.
fn is_connection_loss(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::PoolClosed => true,
        // Class 57 is "operator intervention" (shutdown, admin kill, crash);
        // 08 is "connection exception".
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("57") || code.starts_with("08")),
        _ => false,
    }
}

/// The SQLSTATE of a database error, if it is one.
pub(crate) fn sqlstate(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// The constraint a database error names, if any.
pub(crate) fn constraint(error: &sqlx::Error) -> Option<&str> {
    match error {
        sqlx::Error::Database(db) => db.constraint(),
        _ => None,
    }
}

/// SQLSTATE of unique violations.
pub(crate) const UNIQUE_VIOLATION: &str = "23505";
/// SQLSTATE of foreign-key violations.
pub(crate) const FOREIGN_KEY_VIOLATION: &str = "23503";
/// SQLSTATE of serialization failures (under a stricter default isolation).
pub(crate) const SERIALIZATION_FAILURE: &str = "40001";
