//! Creating the schema and applying the versioned migrations in
//! `migrations/`, one migrator per schema at a time across processes.

use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection};

use crate::error::OpenError;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The table recording applied migrations, inside the store's schema (a
/// name of our own, so it never meets another application's `_sqlx_migrations`).
pub(crate) const MIGRATIONS_TABLE: &str = "_airlock_migrations";

/// First key of the advisory lock that serialises migrators of one schema
/// (`'airl'` in ASCII); the second key is a hash of the schema name.
const LOCK_CLASS: i32 = 0x6169_726c;

/// The newest migration this build knows.
pub(crate) fn latest_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Which of this build's migrations a registry schema has, and which not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// The schema checked.
    pub schema: String,
    /// Versions applied (successfully), ascending.
    pub applied: Vec<i64>,
    /// This build's migrations not applied yet: version and description.
    pub pending: Vec<(i64, String)>,
}

impl MigrationStatus {
    /// Whether nothing is pending.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty()
    }
}

/// Reads the migration state of the registry `options` names, changing
/// nothing (the schema need not exist): what `airlock migrate --check` shows.
pub async fn migration_status(
    options: &crate::PgStoreOptions,
) -> Result<MigrationStatus, OpenError> {
    let (connect, target) = crate::store::connect_options(options)?;
    let mut conn = crate::store::connect_once(&connect, &target, options.acquire_timeout).await?;
    let applied = applied_versions(&mut conn, &options.schema).await;
    close(conn).await;
    let applied = applied.map_err(|source| OpenError::Connect { target, source })?;
    let pending = MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
        .map(|m| (m.version, m.description.to_string()))
        .collect();
    Ok(MigrationStatus {
        schema: options.schema.clone(),
        applied,
        pending,
    })
}

/// Applies this build's migrations up to `version` only (tests of a
/// registry that is behind).
#[cfg(feature = "testing")]
pub(crate) async fn run_up_to(
    conn: &mut PgConnection,
    schema: &str,
    version: i64,
) -> Result<(), OpenError> {
    let fail = |source: Box<dyn std::error::Error + Send + Sync>| OpenError::Migrate {
        schema: schema.to_owned(),
        source,
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS {schema}"
    )))
    .execute(&mut *conn)
    .await
    .map_err(|e| fail(e.into()))?;
    let mut migrator = Migrator::with_migrations(
        MIGRATOR
            .iter()
            .filter(|m| m.version <= version)
            .cloned()
            .collect(),
    );
    migrator.dangerous_set_table_name(format!("{schema}.{MIGRATIONS_TABLE}"));
    migrator.set_locking(false);
    migrator.run(&mut *conn).await.map_err(|e| fail(e.into()))
}

/// Creates `schema` if missing and applies pending migrations.
///
/// Runs on a connection of its own that the caller closes afterwards, so
/// the session-level advisory lock can never leak into a pool even when a
/// step fails half-way.
pub(crate) async fn run(conn: &mut PgConnection, schema: &str) -> Result<(), OpenError> {
    let fail = |source: Box<dyn std::error::Error + Send + Sync>| OpenError::Migrate {
        schema: schema.to_owned(),
        source,
    };
    sqlx::query("SELECT pg_advisory_lock($1, hashtext($2))")
        .bind(LOCK_CLASS)
        .bind(schema)
        .execute(&mut *conn)
        .await
        .map_err(|e| fail(Box::new(crate::error::DbError(e))))?;
    let result = migrate_locked(conn, schema).await.map_err(fail);
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1, hashtext($2))")
        .bind(LOCK_CLASS)
        .bind(schema)
        .execute(&mut *conn)
        .await;
    result?;
    unlocked.map_err(|e| fail(Box::new(crate::error::DbError(e))))?;
    Ok(())
}

async fn migrate_locked(
    conn: &mut PgConnection,
    schema: &str,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // Checked first because CREATE SCHEMA IF NOT EXISTS needs the CREATE
    // privilege on the database even when the schema exists.
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(schema)
            .fetch_one(&mut *conn)
            .await
            .map_err(crate::error::DbError)?;
    if !exists {
        // `schema` passed validate_schema: plain lower-case identifier.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}"
        )))
        .execute(&mut *conn)
        .await
        .map_err(crate::error::DbError)?;
    }
    let mut migrator = Migrator::with_migrations(MIGRATOR.iter().cloned().collect());
    migrator.dangerous_set_table_name(format!("{schema}.{MIGRATIONS_TABLE}"));
    // Our own lock above is per schema; sqlx's is per database.
    migrator.set_locking(false);
    migrator.run(&mut *conn).await?;
    Ok(())
}

async fn migrations_table_exists(
    conn: &mut PgConnection,
    schema: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.tables \
         WHERE table_schema = $1 AND table_name = $2)",
    )
    .bind(schema)
    .bind(MIGRATIONS_TABLE)
    .fetch_one(&mut *conn)
    .await
}

/// Every migration applied in `schema`, ascending (none if the schema or
/// its migration table is missing).
async fn applied_versions(conn: &mut PgConnection, schema: &str) -> Result<Vec<i64>, sqlx::Error> {
    if !migrations_table_exists(conn, schema).await? {
        return Ok(Vec::new());
    }
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM {schema}.{MIGRATIONS_TABLE} WHERE success ORDER BY version"
    )))
    .fetch_all(&mut *conn)
    .await
}

/// The newest migration applied in `schema`, or `None` if none is.
pub(crate) async fn applied_version(
    conn: &mut PgConnection,
    schema: &str,
) -> Result<Option<i64>, sqlx::Error> {
    if !migrations_table_exists(conn, schema).await? {
        return Ok(None);
    }
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT max(version) FROM {schema}.{MIGRATIONS_TABLE} WHERE success"
    )))
    .fetch_one(&mut *conn)
    .await
}

/// Closes a connection used for migrating; a failure to say goodbye is
/// not worth reporting (the server ends the session either way).
pub(crate) async fn close(conn: PgConnection) {
    let _ = conn.close().await;
}
