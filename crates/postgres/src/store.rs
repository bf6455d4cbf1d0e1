//! `PgSessionStore`: the `SessionStore` of airlock on PostgreSQL.

use std::fmt;
use std::time::Duration;

use airlock_core::{
    Error, MessagingGroup, MessagingGroupId, NewMessagingGroup, ResolveRequest, Resolved, Result,
    Session, SessionFilter, SessionId, SessionStore, SessionUpdate, Timestamp, escape_for_log,
};
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection, Postgres, QueryBuilder, Row};

use crate::error::{
    ErrorMapper, FOREIGN_KEY_VIOLATION, OpenError, SERIALIZATION_FAILURE, UNIQUE_VIOLATION,
    constraint, sqlstate,
};
use crate::options::{PgStoreOptions, validate_schema};
use crate::queries;
use crate::{migrate, rows};

/// How often `resolve_session` retries when the key's active session was
/// committed or archived between its snapshot and its insert. Each retry
/// means another process changed that very key meanwhile, so a handful is
/// plenty.
const MAX_RESOLVE_ATTEMPTS: usize = 16;

/// The session registry in a PostgreSQL schema, shared by any number of
/// host processes and machines.
///
/// Cloning is cheap and shares the connection pool.
#[derive(Clone)]
pub struct PgSessionStore {
    pool: PgPool,
    schema: String,
    errors: ErrorMapper,
}

impl fmt::Debug for PgSessionStore {
    // Not derived: the pool's options hold the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgSessionStore")
            .field("target", &self.errors.target)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl PgSessionStore {
    /// Connects to `url` with default options (schema `airlock`) and
    /// applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, OpenError> {
        Self::connect_with(PgStoreOptions::from_url(url).map_err(OpenError::InvalidOptions)?).await
    }

    /// Connects with `options`: checks them, reaches the server once (so
    /// a wrong URL or password fails here, with the server's own words),
    /// applies or checks migrations, and sets up the pool.
    pub async fn connect_with(options: PgStoreOptions) -> Result<Self, OpenError> {
        let (connect, target) = connect_options(&options)?;

        let mut conn = connect_once(&connect, &target, options.acquire_timeout).await?;
        let prepared = if options.run_migrations {
            migrate::run(&mut conn, &options.schema).await
        } else {
            check_migrated(&mut conn, &options.schema, &target).await
        };
        migrate::close(conn).await;
        prepared?;

        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .min_connections(0)
            .acquire_timeout(options.acquire_timeout)
            .test_before_acquire(options.test_before_acquire)
            .connect_lazy_with(connect);
        Ok(Self {
            pool,
            schema: options.schema,
            errors: ErrorMapper {
                target,
                acquire_timeout: options.acquire_timeout,
            },
        })
    }

    /// Creates the schema if missing and applies pending migrations; safe
    /// to run from several processes at once.
    pub async fn migrate(&self) -> Result<(), OpenError> {
        let connect = self.pool.connect_options();
        let mut conn =
            connect_once(&connect, &self.errors.target, self.errors.acquire_timeout).await?;
        let result = migrate::run(&mut conn, &self.schema).await;
        migrate::close(conn).await;
        result
    }

    /// The schema holding this registry.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The connection pool, for operators' queries and bulk loads; every
    /// connection's `search_path` is [`schema`](Self::schema).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) fn errors(&self) -> &ErrorMapper {
        &self.errors
    }

    /// Closes the pool, waiting for borrowed connections to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Checks `options` and turns them into sqlx's, with the `host:port/db`
/// naming the server in messages.
pub(crate) fn connect_options(
    options: &PgStoreOptions,
) -> Result<(PgConnectOptions, String), OpenError> {
    validate_schema(&options.schema).map_err(OpenError::InvalidOptions)?;
    if options.max_connections == 0 {
        return Err(OpenError::InvalidOptions(
            "max_connections must be at least 1".into(),
        ));
    }
    if !(options.url.starts_with("postgres://") || options.url.starts_with("postgresql://")) {
        return Err(OpenError::InvalidOptions(
            "the registry URL must start with postgres:// or postgresql://".into(),
        ));
    }
    let connect: PgConnectOptions = options
        .url
        .parse()
        .map_err(|e| OpenError::InvalidOptions(format!("not a usable postgres:// URL: {e}")))?;
    // A startup parameter rather than a `SET` after connecting: it holds
    // for the whole session and survives `RESET ALL`/`DISCARD ALL`.
    let mut connect = connect
        .application_name(&options.application_name)
        .options([("search_path", options.schema.as_str())]);
    if let Some(timeout) = options.statement_timeout {
        connect = connect.options([("statement_timeout", timeout.as_millis().to_string())]);
    }
    let target = describe(&connect);

    Ok((connect, target))
}

/// One connection outside the pool, for opening and migrating; bounded by
/// `timeout` so an unreachable host (packets dropped) fails instead of
/// waiting for TCP to give up.
pub(crate) async fn connect_once(
    options: &PgConnectOptions,
    target: &str,
    timeout: Duration,
) -> Result<PgConnection, OpenError> {
    match tokio::time::timeout(timeout, PgConnection::connect_with(options)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(source)) => Err(OpenError::Connect {
            target: target.to_owned(),
            source,
        }),
        Err(_) => Err(OpenError::ConnectTimeout {
            target: target.to_owned(),
            timeout,
        }),
    }
}

/// `host:port/database` of `options`, for messages (never the password).
fn describe(options: &PgConnectOptions) -> String {
    let host = match options.get_socket() {
        Some(dir) => dir.display().to_string(),
        None => options.get_host().to_owned(),
    };
    let database = options.get_database().unwrap_or(options.get_username());
    format!("{host}:{}/{database}", options.get_port())
}

async fn check_migrated(
    conn: &mut PgConnection,
    schema: &str,
    target: &str,
) -> Result<(), OpenError> {
    let found = migrate::applied_version(conn, schema)
        .await
        .map_err(|source| OpenError::Connect {
            target: target.to_owned(),
            source,
        })?;
    let needed = migrate::latest_version();
    if found.is_some_and(|v| v >= needed) {
        Ok(())
    } else {
        Err(OpenError::NotMigrated {
            schema: schema.to_owned(),
            found,
            needed,
        })
    }
}

/// PostgreSQL text cannot hold NUL; say so instead of a driver error.
fn check_text(what: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::InvalidInput(format!(
            "{what} {} contains a NUL byte, which PostgreSQL text cannot store",
            escape_for_log(value)
        )));
    }
    Ok(())
}

#[async_trait]
impl SessionStore for PgSessionStore {
    async fn create_messaging_group(&self, new: NewMessagingGroup) -> Result<MessagingGroup> {
        check_text("channel type", &new.channel_type)?;
        check_text("platform id", &new.platform_id)?;
        if let Some(name) = &new.name {
            check_text("messaging group name", name)?;
        }
        let row = sqlx::query(queries::INSERT_GROUP)
            .bind(MessagingGroupId::generate().as_str())
            .bind(&new.channel_type)
            .bind(&new.platform_id)
            .bind(new.name.as_deref())
            .bind(Timestamp::now().as_datetime())
            .fetch_one(&self.pool)
            .await;
        match row {
            Ok(row) => rows::messaging_group(&row),
            Err(e)
                if sqlstate(&e).as_deref() == Some(UNIQUE_VIOLATION)
                    && constraint(&e) == Some(queries::PLATFORM_KEY) =>
            {
                Err(Error::AlreadyExists {
                    kind: "messaging group",
                    id: format!("{}/{}", new.channel_type, new.platform_id),
                })
            }
            Err(e) => Err(self.errors.map(
                format!(
                    "registering messaging group {}/{}",
                    escape_for_log(&new.channel_type),
                    escape_for_log(&new.platform_id)
                ),
                e,
            )),
        }
    }

    async fn messaging_group(&self, id: &MessagingGroupId) -> Result<MessagingGroup> {
        let row = sqlx::query(queries::GROUP_BY_ID)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.errors.map(format!("fetching messaging group {id}"), e))?;
        match row {
            Some(row) => rows::messaging_group(&row),
            None => Err(Error::not_found("messaging group", id)),
        }
    }

    async fn find_messaging_group(
        &self,
        channel_type: &str,
        platform_id: &str,
    ) -> Result<Option<MessagingGroup>> {
        if channel_type.contains('\0') || platform_id.contains('\0') {
            // Such a group can never have been registered.
            return Ok(None);
        }
        let row = sqlx::query(queries::GROUP_BY_PLATFORM)
            .bind(channel_type)
            .bind(platform_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| {
                self.errors.map(
                    format!(
                        "looking up messaging group {}/{}",
                        escape_for_log(channel_type),
                        escape_for_log(platform_id)
                    ),
                    e,
                )
            })?;
        row.as_ref().map(rows::messaging_group).transpose()
    }

    async fn resolve_session(&self, request: ResolveRequest) -> Result<Resolved> {
        if let Some(host) = &request.owner_host {
            check_text("owner host", host)?;
        }
        let key = request.key();
        for _ in 0..MAX_RESOLVE_ATTEMPTS {
            let new = request.new_session(SessionId::generate(), Timestamp::now());
            let outcome = sqlx::query(queries::RESOLVE)
                .bind(new.id.as_str())
                .bind(new.agent_group_id.as_str())
                .bind(new.messaging_group_id.as_ref().map(|m| m.as_str()))
                .bind(new.thread_id.as_ref().map(|t| t.as_str()))
                .bind(new.mode.as_str())
                .bind(new.owner_host.as_deref())
                .bind(new.created_at.as_datetime())
                .bind(key.as_deref())
                .fetch_optional(&self.pool)
                .await;
            match outcome {
                Ok(Some(row)) => {
                    let created: bool = row.try_get("created").map_err(|e| {
                        self.errors.map("reading the outcome of resolve_session", e)
                    })?;
                    let session = rows::session(&row)?;
                    return Ok(Resolved { session, created });
                }
                Ok(None) => {
                    // `found` is also empty when the messaging group is
                    // unknown and the key (agent-shared) is taken.
                    if let Some(mg) = &request.messaging_group {
                        self.messaging_group(mg).await?;
                    }
                    tracing::debug!(key = ?key, "a concurrent resolve committed the key after our snapshot; retrying");
                    continue;
                }
                Err(e) if sqlstate(&e).as_deref() == Some(SERIALIZATION_FAILURE) => {
                    tracing::debug!(key = ?key, "serialization failure; retrying");
                    continue;
                }
                Err(e) if sqlstate(&e).as_deref() == Some(FOREIGN_KEY_VIOLATION) => {
                    let mg = request.messaging_group.as_ref().map(|m| m.as_str());
                    return Err(Error::not_found("messaging group", mg.unwrap_or("?")));
                }
                Err(e) => {
                    return Err(self.errors.map(
                        format!(
                            "resolving a session of agent group {} (key {})",
                            request.agent_group,
                            key.as_deref().unwrap_or("none: always new")
                        ),
                        e,
                    ));
                }
            }
        }
        Err(Error::Conflict(format!(
            "resolving key {} kept racing with concurrent archives or deletes ({MAX_RESOLVE_ATTEMPTS} attempts); retry",
            key.as_deref().unwrap_or("-")
        )))
    }

    async fn session(&self, id: &SessionId) -> Result<Session> {
        let row = sqlx::query(queries::SESSION_BY_ID)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.errors.map(format!("fetching session {id}"), e))?;
        match row {
            Some(row) => rows::session(&row),
            None => Err(Error::not_found("session", id)),
        }
    }

    async fn list_sessions(&self, filter: SessionFilter) -> Result<Vec<Session>> {
        // Destructured so a new filter field cannot be silently ignored.
        let SessionFilter {
            status,
            container_status,
            agent_group,
            owner_host,
        } = filter;
        if owner_host.as_deref().is_some_and(|h| h.contains('\0')) {
            return Ok(Vec::new());
        }
        let mut sql = QueryBuilder::<Postgres>::new(queries::LIST_SESSIONS);
        if let Some(status) = status {
            sql.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(container_status) = container_status {
            sql.push(" AND container_status = ")
                .push_bind(container_status.as_str());
        }
        if let Some(agent_group) = agent_group {
            sql.push(" AND agent_group_id = ")
                .push_bind(agent_group.into_string());
        }
        if let Some(owner_host) = owner_host {
            sql.push(" AND owner_host = ").push_bind(owner_host);
        }
        sql.push(" ORDER BY created_at, id");
        let found = sql
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.errors.map("listing sessions", e))?;
        found.iter().map(rows::session).collect()
    }

    async fn update_session(&self, id: &SessionId, update: SessionUpdate) -> Result<Session> {
        let SessionUpdate {
            status,
            container_status,
            last_active,
            agent_provider,
        } = update;
        if let Some(Some(provider)) = &agent_provider {
            check_text("agent provider", provider)?;
        }
        let row = sqlx::query(queries::UPDATE_SESSION)
            .bind(id.as_str())
            .bind(status.map(|s| s.as_str()))
            .bind(container_status.map(|c| c.as_str()))
            .bind(last_active.map(|t| t.as_datetime()))
            .bind(agent_provider.is_some())
            .bind(agent_provider.flatten())
            .fetch_optional(&self.pool)
            .await;
        match row {
            Ok(Some(row)) => rows::session(&row),
            Ok(None) => Err(Error::not_found("session", id)),
            Err(e)
                if sqlstate(&e).as_deref() == Some(UNIQUE_VIOLATION)
                    && constraint(&e) == Some(queries::ACTIVE_KEY_INDEX) =>
            {
                Err(Error::Conflict(format!(
                    "cannot reactivate session {id}: another active session holds its key"
                )))
            }
            Err(e) => Err(self.errors.map(format!("updating session {id}"), e)),
        }
    }

    async fn adopt_session(&self, session: Session) -> Result<()> {
        for text in [&session.agent_provider, &session.owner_host]
            .into_iter()
            .flatten()
        {
            check_text("session field", text)?;
        }
        let id = session.id.clone();
        let inserted = sqlx::query(queries::ADOPT_SESSION)
            .bind(session.id.as_str())
            .bind(session.agent_group_id.as_str())
            .bind(session.messaging_group_id.as_ref().map(|m| m.as_str()))
            .bind(session.thread_id.as_ref().map(|t| t.as_str()))
            .bind(session.mode.as_str())
            .bind(session.agent_provider.as_deref())
            .bind(session.status.as_str())
            .bind(session.container_status.as_str())
            .bind(session.last_active.map(|t| t.as_datetime()))
            .bind(session.created_at.as_datetime())
            .bind(session.owner_host.as_deref())
            .bind(session.resolution_key())
            .fetch_optional(&self.pool)
            .await;
        match inserted {
            Ok(Some(_)) => Ok(()),
            Ok(None) => match self.session(&id).await {
                Ok(_) => Err(Error::AlreadyExists {
                    kind: "session",
                    id: id.to_string(),
                }),
                Err(e) if e.is_not_found() => Err(Error::Conflict(format!(
                    "cannot adopt session {id}: another active session holds its key"
                ))),
                Err(e) => Err(e),
            },
            Err(e) if sqlstate(&e).as_deref() == Some(FOREIGN_KEY_VIOLATION) => {
                let mg = session.messaging_group_id.as_ref().map(|m| m.as_str());
                Err(Error::not_found("messaging group", mg.unwrap_or("?")))
            }
            Err(e) => Err(self.errors.map(format!("adopting session {id}"), e)),
        }
    }

    async fn delete_session(&self, id: &SessionId) -> Result<()> {
        let done = sqlx::query(queries::DELETE_SESSION)
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(|e| self.errors.map(format!("deleting session {id}"), e))?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("session", id));
        }
        Ok(())
    }
}
