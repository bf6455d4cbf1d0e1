//! Helpers for tests against a real server (feature `testing`): finding it
//! through `AIRLOCK_TEST_PG_URL`, and a fresh schema per test that is
//! dropped when the test ends (even when it panics).

use std::time::Duration;

use sqlx::{Connection, PgConnection};

use crate::{PgSessionStore, PgStoreOptions};

/// The variable naming the test server.
pub const URL_VAR: &str = "AIRLOCK_TEST_PG_URL";

/// Set by `cargo xtask ci` under CI: a PostgreSQL test that cannot find its
/// server fails instead of skipping.
pub const REQUIRE_VAR: &str = "AIRLOCK_REQUIRE_PG";

/// The test server's URL, or `None` after printing why the test is skipped
/// (a panic instead when [`REQUIRE_VAR`] is set).
pub fn pg_url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var_os(REQUIRE_VAR).is_some() => {
            panic!("{test} must run here ({REQUIRE_VAR} is set) but {URL_VAR} is not set")
        }
        _ => {
            eprintln!(
                "SKIPPED {test}: PostgreSQL tests need {URL_VAR} \
                 (e.g. postgres://postgres@127.0.0.1:5432/test), which is not set"
            );
            None
        }
    }
}

/// A schema name no other test uses: `<prefix>_<16 hex>`.
pub fn random_schema(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("OS random source");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}_{hex}")
}

/// Drops its schema (CASCADE) on drop.
pub struct SchemaGuard {
    url: String,
    schema: String,
}

impl SchemaGuard {
    /// Guards `schema` in the database of `url`.
    pub fn new(url: &str, schema: &str) -> Self {
        Self {
            url: url.to_owned(),
            schema: schema.to_owned(),
        }
    }

    /// The guarded schema.
    pub fn schema(&self) -> &str {
        &self.schema
    }
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // Drop may run on a runtime worker, where block_on is forbidden:
        // use a thread with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime for dropping a test schema");
            rt.block_on(async move {
                let mut conn = PgConnection::connect(&url).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE"
                )))
                .execute(&mut conn)
                .await?;
                conn.close().await
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop test schema {}: {e}", self.schema),
            Err(_) => eprintln!("warning: dropping test schema {} panicked", self.schema),
        }
    }
}

/// Options for a test store in `schema`: few connections, short timeout.
pub fn test_options(url: &str, schema: &str) -> PgStoreOptions {
    PgStoreOptions::new(url)
        .schema(schema)
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
}

/// A migrated store in a fresh schema, with the guard that drops it; `None`
/// (after printing why) when no test server is configured. Panics if the
/// server is configured but unusable: that is a failure, not a skip.
pub async fn fresh_store(test: &str) -> Option<(PgSessionStore, SchemaGuard)> {
    let url = pg_url(test)?;
    let schema = random_schema("airlock_test");
    let guard = SchemaGuard::new(&url, &schema);
    let store = PgSessionStore::connect_with(test_options(&url, &schema))
        .await
        .unwrap_or_else(|e| panic!("{URL_VAR} is set but the store cannot open: {e}"));
    Some((store, guard))
}

/// Brings `schema` in the database of `url` to migration `version` only,
/// as a registry deployed by an older build would be.
pub async fn migrate_up_to(url: &str, schema: &str, version: i64) {
    // The migrations' names are unqualified: they land in `search_path`.
    let options: sqlx::postgres::PgConnectOptions = url.parse().expect("a postgres:// URL");
    let mut conn = PgConnection::connect_with(&options.options([("search_path", schema)]))
        .await
        .expect("connecting to the test server");
    crate::migrate::run_up_to(&mut conn, schema, version)
        .await
        .unwrap_or_else(|e| panic!("migrating {schema} to {version}: {e}"));
    conn.close().await.expect("closing");
}
