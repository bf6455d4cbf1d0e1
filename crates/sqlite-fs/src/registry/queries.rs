//! The `SessionStore` implementation: one closure per method.

use airlock_core::{
    Error, MessagingGroup, MessagingGroupId, NewMessagingGroup, ResolveRequest, Resolved, Result,
    Session, SessionFilter, SessionId, SessionStore, SessionUpdate, StorageFault, Timestamp,
};
use async_trait::async_trait;
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};

use super::SqliteSessionStore;
use super::rows::{GROUP_COLUMNS, SESSION_COLUMNS, group_from_row, session_from_row};

fn sqlite(context: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
    move |e| match e {
        // Opened read-only (a read-only data dir): say so instead of SQLite's words.
        rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ReadOnly => Error::storage(
            StorageFault::ReadOnly,
            None,
            format!(
                "the registry is read-only (its data dir is on a read-only filesystem); {context} needs to write"
            ),
        ),
        e => Error::backend("sqlite", context, e),
    }
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation)
}

fn query_session(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Option<Session>> {
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(sqlite("preparing a session query"))?;
    let mut rows = stmt.query(args).map_err(sqlite("querying sessions"))?;
    match rows.next().map_err(sqlite("reading sessions"))? {
        Some(row) => Ok(Some(session_from_row(row)?)),
        None => Ok(None),
    }
}

fn session_by_id(conn: &Connection, id: &SessionId) -> Result<Session> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1");
    query_session(conn, &sql, [id.as_str()])?.ok_or_else(|| Error::not_found("session", id))
}

fn active_by_key(conn: &Connection, key: &str) -> Result<Option<Session>> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE resolution_key = ?1 AND status = 'active'"
    );
    query_session(conn, &sql, [key])
}

fn insert_session(conn: &Connection, session: &Session, key: Option<&str>) -> Result<bool> {
    let changed = conn
        .prepare_cached(
            "INSERT INTO sessions (id, agent_group_id, messaging_group_id, thread_id, mode, \
             agent_provider, status, container_status, last_active, created_at, owner_host, resolution_key) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT DO NOTHING",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                session.id.as_str(),
                session.agent_group_id.as_str(),
                session.messaging_group_id.as_ref().map(|m| m.as_str()),
                session.thread_id.as_ref().map(|t| t.as_str()),
                session.mode.as_str(),
                session.agent_provider,
                session.status.as_str(),
                session.container_status.as_str(),
                session.last_active.map(|t| t.to_iso()),
                session.created_at.to_iso(),
                session.owner_host,
                key,
            ])
        })
        .map_err(sqlite("inserting a session"))?;
    Ok(changed == 1)
}

fn check_messaging_group(conn: &Connection, mg: Option<&MessagingGroupId>) -> Result<()> {
    let Some(mg) = mg else {
        return Ok(());
    };
    let exists: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM messaging_groups WHERE id = ?1")
        .and_then(|mut stmt| stmt.query_row([mg.as_str()], |r| r.get(0)).optional())
        .map_err(sqlite("checking the messaging group"))?;
    match exists {
        Some(_) => Ok(()),
        None => Err(Error::not_found("messaging group", mg)),
    }
}

fn resolve(conn: &mut Connection, request: &ResolveRequest) -> Result<Resolved> {
    check_messaging_group(conn, request.messaging_group.as_ref())?;
    let key = request.key();
    // Fast path: an existing session needs no write lock.
    if let Some(key) = &key
        && let Some(session) = active_by_key(conn, key)?
    {
        return Ok(Resolved {
            session,
            created: false,
        });
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite("starting a resolve transaction"))?;
    let session = request.new_session(SessionId::generate(), Timestamp::now());
    let resolved = if insert_session(&tx, &session, key.as_deref())? {
        Resolved {
            session,
            created: true,
        }
    } else {
        // Another process inserted the key between our read and our write.
        let key = key
            .as_deref()
            .ok_or_else(|| Error::invariant(None, format!("session id {} collided", session.id)))?;
        let session = active_by_key(&tx, key)?
            .ok_or_else(|| Error::invariant(None, format!("resolution key {key} vanished")))?;
        Resolved {
            session,
            created: false,
        }
    };
    tx.commit().map_err(sqlite("committing a resolve"))?;
    Ok(resolved)
}

fn adopt(conn: &mut Connection, session: &Session) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite("starting an adoption"))?;
    let exists: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM sessions WHERE id = ?1",
            [session.id.as_str()],
            |r| r.get(0),
        )
        .optional()
        .map_err(sqlite("checking the session id"))?;
    if exists.is_some() {
        return Err(Error::AlreadyExists {
            kind: "session",
            id: session.id.to_string(),
        });
    }
    check_messaging_group(&tx, session.messaging_group_id.as_ref())?;
    // ON CONFLICT DO NOTHING: with the id checked, only the active key can collide.
    if !insert_session(&tx, session, session.resolution_key().as_deref())? {
        return Err(Error::Conflict(format!(
            "cannot adopt session {}: another active session holds its key",
            session.id
        )));
    }
    tx.commit().map_err(sqlite("committing an adoption"))
}

/// Runs `job` with `synchronous=NORMAL`, then puts the connection back to
/// `FULL` (also when `job` failed).
fn relaxed<T>(conn: &mut Connection, job: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
    let set = |conn: &Connection, level: &str| {
        conn.pragma_update(None, "synchronous", level)
            .map_err(sqlite("setting synchronous"))
    };
    set(conn, "NORMAL")?;
    let result = job(conn);
    set(conn, "FULL")?;
    result
}

fn update(conn: &mut Connection, id: &SessionId, update: &SessionUpdate) -> Result<Session> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite("starting an update"))?;
    let mut session = session_by_id(&tx, id)?;
    update.apply(&mut session);
    let result = tx.execute(
        "UPDATE sessions SET status = ?2, container_status = ?3, last_active = ?4, agent_provider = ?5 \
         WHERE id = ?1",
        params![
            id.as_str(),
            session.status.as_str(),
            session.container_status.as_str(),
            session.last_active.map(|t| t.to_iso()),
            session.agent_provider,
        ],
    );
    match result {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(Error::Conflict(format!(
                "cannot reactivate session {id}: another active session holds its key"
            )));
        }
        Err(e) => return Err(Error::backend("sqlite", "updating a session", e)),
    }
    tx.commit().map_err(sqlite("committing an update"))?;
    Ok(session)
}

fn list(conn: &Connection, filter: &SessionFilter) -> Result<Vec<Session>> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE (?1 IS NULL OR status = ?1) \
         AND (?2 IS NULL OR container_status = ?2) AND (?3 IS NULL OR agent_group_id = ?3) \
         AND (?4 IS NULL OR owner_host = ?4) ORDER BY created_at, id"
    );
    let mut stmt = conn
        .prepare_cached(&sql)
        .map_err(sqlite("preparing a session list"))?;
    let mut rows = stmt
        .query(params![
            filter.status.map(|s| s.as_str()),
            filter.container_status.map(|c| c.as_str()),
            filter.agent_group.as_ref().map(|a| a.as_str()),
            filter.owner_host,
        ])
        .map_err(sqlite("listing sessions"))?;
    let mut sessions = Vec::new();
    while let Some(row) = rows.next().map_err(sqlite("reading sessions"))? {
        sessions.push(session_from_row(row)?);
    }
    Ok(sessions)
}

fn query_group(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Option<MessagingGroup>> {
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(sqlite("preparing a messaging group query"))?;
    let mut rows = stmt
        .query(args)
        .map_err(sqlite("querying messaging groups"))?;
    match rows.next().map_err(sqlite("reading messaging groups"))? {
        Some(row) => Ok(Some(group_from_row(row)?)),
        None => Ok(None),
    }
}

#[async_trait]
impl SessionStore for SqliteSessionStore {
    async fn create_messaging_group(&self, new: NewMessagingGroup) -> Result<MessagingGroup> {
        self.run(move |conn| {
            let group = MessagingGroup {
                id: MessagingGroupId::generate(),
                channel_type: new.channel_type,
                platform_id: new.platform_id,
                name: new.name,
                created_at: Timestamp::now(),
            };
            let inserted = conn.execute(
                "INSERT INTO messaging_groups (id, channel_type, platform_id, name, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    group.id.as_str(),
                    group.channel_type,
                    group.platform_id,
                    group.name,
                    group.created_at.to_iso()
                ],
            );
            match inserted {
                Ok(_) => Ok(group),
                Err(e) if is_unique_violation(&e) => Err(Error::AlreadyExists {
                    kind: "messaging group",
                    id: format!("{}/{}", group.channel_type, group.platform_id),
                }),
                Err(e) => Err(Error::backend("sqlite", "inserting a messaging group", e)),
            }
        })
        .await
    }

    async fn messaging_group(&self, id: &MessagingGroupId) -> Result<MessagingGroup> {
        let id = id.clone();
        self.run(move |conn| {
            let sql = format!("SELECT {GROUP_COLUMNS} FROM messaging_groups WHERE id = ?1");
            query_group(conn, &sql, [id.as_str()])?
                .ok_or_else(|| Error::not_found("messaging group", &id))
        })
        .await
    }

    async fn find_messaging_group(
        &self,
        channel_type: &str,
        platform_id: &str,
    ) -> Result<Option<MessagingGroup>> {
        let (channel_type, platform_id) = (channel_type.to_owned(), platform_id.to_owned());
        self.run(move |conn| {
            let sql = format!(
                "SELECT {GROUP_COLUMNS} FROM messaging_groups WHERE channel_type = ?1 AND platform_id = ?2"
            );
            query_group(conn, &sql, [channel_type, platform_id])
        })
        .await
    }

    async fn resolve_session(&self, request: ResolveRequest) -> Result<Resolved> {
        self.run(move |conn| resolve(conn, &request)).await
    }

    async fn session(&self, id: &SessionId) -> Result<Session> {
        let id = id.clone();
        self.run(move |conn| session_by_id(conn, &id)).await
    }

    async fn list_sessions(&self, filter: SessionFilter) -> Result<Vec<Session>> {
        self.run(move |conn| list(conn, &filter)).await
    }

    async fn update_session(&self, id: &SessionId, changes: SessionUpdate) -> Result<Session> {
        let id = id.clone();
        // A touch alone is advisory (when the session was last used): it
        // may be lost to a power cut, and need not cost an fsync per message.
        let advisory = changes.status.is_none()
            && changes.container_status.is_none()
            && changes.agent_provider.is_none();
        self.run(move |conn| {
            if advisory {
                relaxed(conn, |conn| update(conn, &id, &changes))
            } else {
                update(conn, &id, &changes)
            }
        })
        .await
    }

    async fn adopt_session(&self, session: Session) -> Result<()> {
        self.run(move |conn| adopt(conn, &session)).await
    }

    async fn delete_session(&self, id: &SessionId) -> Result<()> {
        let id = id.clone();
        self.run(move |conn| {
            let removed = conn
                .execute("DELETE FROM sessions WHERE id = ?1", [id.as_str()])
                .map_err(sqlite("deleting a session"))?;
            if removed == 0 {
                return Err(Error::not_found("session", &id));
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use airlock_core::{AgentGroupId, SessionStoreExt};

    use super::*;

    fn synchronous(store: &SqliteSessionStore) -> i64 {
        let conn = store.conn.lock().unwrap();
        conn.pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap()
    }

    #[tokio::test]
    async fn power_loss_structural_writes_commit_with_synchronous_full() {
        // 2 = FULL, 1 = NORMAL: every write but a touch syncs its WAL commit.
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteSessionStore::open_in(dir.path()).unwrap();
        assert_eq!(synchronous(&store), 2, "after open");
        let request = ResolveRequest::new(
            AgentGroupId::new("a").unwrap(),
            None,
            None,
            airlock_core::SessionMode::Shared,
        );
        let session = store.resolve_session(request).await.unwrap().session;
        store
            .touch_session(&session.id, Timestamp::now())
            .await
            .unwrap();
        assert_eq!(synchronous(&store), 2, "after a touch");
        let mut conn = store.conn.lock().unwrap();
        let during = relaxed(&mut conn, |c| {
            c.pragma_query_value(None, "synchronous", |r| r.get::<_, i64>(0))
                .map_err(sqlite("reading synchronous"))
        })
        .unwrap();
        assert_eq!(during, 1, "a touch commits under NORMAL");
    }
}
