//! How to reach the registry: URL, schema and pool settings, validated.

use std::time::Duration;

/// The schema used when none is given: airlock's tables never land in
/// `public`, where another application's migrations may live.
pub const DEFAULT_SCHEMA: &str = "airlock";

/// Settings of a [`PgSessionStore`](crate::PgSessionStore).
///
/// ```
/// use airlock_postgres::PgStoreOptions;
///
/// let options = PgStoreOptions::new("postgres://airlock@db.internal/airlock")
///     .schema("team_a")
///     .max_connections(20);
/// assert_eq!(options.schema, "team_a");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgStoreOptions {
    /// A `postgres://` URL (libpq style; `?sslmode=disable` or `prefer`,
    /// since this build has no TLS).
    pub url: String,
    /// The schema holding the tables and the migration table; created if
    /// missing. Two deployments sharing a database use two schemas.
    /// Lower-case ASCII letters, digits and `_`, starting with a letter or
    /// `_`, at most 63 bytes.
    pub schema: String,
    /// Largest number of pooled connections.
    pub max_connections: u32,
    /// How long a call waits for a connection before failing; this is also
    /// how long a call takes to fail while PostgreSQL is unreachable.
    pub acquire_timeout: Duration,
    /// Ping idle connections before handing them out, so a pool outlives a
    /// server restart without a failed call (costs one round trip).
    pub test_before_acquire: bool,
    /// Apply pending migrations when connecting (else [`migrate`] must
    /// have been run, and connecting checks that it was).
    ///
    /// [`migrate`]: crate::PgSessionStore::migrate
    pub run_migrations: bool,
    /// `application_name` shown in `pg_stat_activity`.
    pub application_name: String,
}

impl PgStoreOptions {
    /// Defaults for `url`: schema `airlock`, 10 connections, 5 s acquire
    /// timeout, idle connections tested, migrations applied.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: DEFAULT_SCHEMA.to_owned(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            test_before_acquire: true,
            run_migrations: true,
            application_name: "airlock".to_owned(),
        }
    }

    /// Sets [`schema`](Self::schema).
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Sets [`max_connections`](Self::max_connections).
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max;
        self
    }

    /// Sets [`acquire_timeout`](Self::acquire_timeout).
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Sets [`run_migrations`](Self::run_migrations).
    pub fn run_migrations(mut self, run: bool) -> Self {
        self.run_migrations = run;
        self
    }
}

/// Checks a schema name; see [`PgStoreOptions::schema`] for the rules.
///
/// The rules keep the name usable unquoted in `search_path` and in SQL
/// identifiers, so it can never inject SQL.
pub fn validate_schema(schema: &str) -> Result<(), String> {
    let problem = if schema.is_empty() {
        Some("it is empty")
    } else if schema.len() > 63 {
        Some("it is longer than 63 bytes (PostgreSQL's identifier limit)")
    } else if schema.starts_with("pg_") {
        Some("names starting with `pg_` are reserved by PostgreSQL")
    } else if schema.starts_with(|c: char| c.is_ascii_digit()) {
        Some("it starts with a digit")
    } else if !schema
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Some("only lower-case ASCII letters, digits and `_` are allowed")
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(format!(
            "invalid PostgreSQL schema name {}: {problem}",
            airlock_core::escape_for_log(schema)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_checked() {
        for ok in ["airlock", "team_a", "_x", "a1", &"s".repeat(63)] {
            validate_schema(ok).unwrap();
        }
        let cases = [
            ("", "empty"),
            ("Airlock", "lower-case"),
            ("a-b", "lower-case"),
            ("a\"; drop table x; --", "lower-case"),
            ("1abc", "digit"),
            ("pg_temp", "reserved"),
            (&"s".repeat(64), "63 bytes"),
        ];
        for (bad, words) in cases {
            let err = validate_schema(bad).unwrap_err();
            assert!(err.contains(words), "{bad:?}: {err}");
            assert!(err.contains("schema"), "{err}");
        }
    }
}
