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
    /// A `postgres://` URL (libpq style). TLS follows `sslmode`
    /// (`disable`, `prefer` (the default), `require`, `verify-ca`,
    /// `verify-full`) with the CA file `sslrootcert=PATH` (else the
    /// system's roots) and optional `sslcert`/`sslkey` client certificates.
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
    /// PostgreSQL's `statement_timeout` for every pooled connection: a
    /// statement running longer is cancelled (`None`: the server's default).
    pub statement_timeout: Option<Duration>,
}

/// Query parameters of a registry URL that airlock reads itself (sqlx
/// would ignore them); every other parameter goes to sqlx (`sslmode`,
/// `sslrootcert`, `sslcert`, `sslkey`, `application_name`, `options`, …).
pub const URL_SETTINGS: [&str; 4] = [
    "max_connections",
    "connect_timeout",
    "statement_timeout",
    "schema",
];

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
            statement_timeout: None,
        }
    }

    /// Defaults, overridden by the settings in `url`'s query (see
    /// [`URL_SETTINGS`]): `max_connections=N`, `connect_timeout=SECONDS`
    /// (libpq's name; also how long a call waits for a pooled
    /// connection), `statement_timeout=MILLISECONDS` and `schema=NAME`.
    /// They are removed from [`url`](Self::url); the rest is kept.
    ///
    /// ```
    /// use std::time::Duration;
    /// use airlock_postgres::PgStoreOptions;
    ///
    /// let o = PgStoreOptions::from_url(
    ///     "postgres://db/airlock?sslmode=verify-full&max_connections=32&statement_timeout=5000",
    /// )
    /// .unwrap();
    /// assert_eq!(o.max_connections, 32);
    /// assert_eq!(o.statement_timeout, Some(Duration::from_millis(5000)));
    /// assert_eq!(o.url, "postgres://db/airlock?sslmode=verify-full");
    /// ```
    pub fn from_url(url: &str) -> Result<Self, String> {
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, query),
            None => (url, ""),
        };
        let mut options = Self::new(base);
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let number = |unit: &str| {
                value.parse::<u64>().map_err(|_| {
                    format!(
                        "registry URL setting {key}={} is not a whole number of {unit}",
                        airlock_core::escape_for_log(value)
                    )
                })
            };
            match key {
                "max_connections" => {
                    options.max_connections = u32::try_from(number("connections")?)
                        .map_err(|_| format!("registry URL setting {key} is too large"))?;
                }
                "connect_timeout" => {
                    options.acquire_timeout = Duration::from_secs(number("seconds")?.max(1));
                }
                "statement_timeout" => {
                    let ms = number("milliseconds")?;
                    options.statement_timeout = (ms > 0).then(|| Duration::from_millis(ms));
                }
                "schema" => options.schema = value.to_owned(),
                _ => kept.push(pair),
            }
        }
        if !kept.is_empty() {
            options.url = format!("{base}?{}", kept.join("&"));
        }
        Ok(options)
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

    /// Sets [`statement_timeout`](Self::statement_timeout).
    pub fn statement_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.statement_timeout = timeout;
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
    fn url_settings_are_read_and_removed() {
        let o = PgStoreOptions::from_url(
            "postgres://u@h/db?connect_timeout=3&sslmode=require&schema=team_b&max_connections=4",
        )
        .unwrap();
        assert_eq!(o.url, "postgres://u@h/db?sslmode=require");
        assert_eq!(o.acquire_timeout, Duration::from_secs(3));
        assert_eq!(o.max_connections, 4);
        assert_eq!(o.schema, "team_b");
        assert_eq!(o.statement_timeout, None);
        let plain = PgStoreOptions::from_url("postgres://u@h/db").unwrap();
        assert_eq!(plain, PgStoreOptions::new("postgres://u@h/db"));
        let err = PgStoreOptions::from_url("postgres://h/db?statement_timeout=5s").unwrap_err();
        assert!(
            err.contains("statement_timeout") && err.contains("milliseconds"),
            "{err}"
        );
    }

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
