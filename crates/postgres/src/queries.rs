//! The SQL of the store, one constant per statement.
//!
//! Names are unqualified: every connection's `search_path` is the store's
//! schema, so one build serves any schema.

/// The columns every session query selects (see `rows::session`).
macro_rules! session_columns {
    () => {
        "id, agent_group_id, messaging_group_id, thread_id, mode, agent_provider, status, \
         container_status, last_active, created_at, owner_host"
    };
}

/// The columns every messaging-group query selects (see `rows::messaging_group`).
macro_rules! group_columns {
    () => {
        "id, channel_type, platform_id, name, created_at"
    };
}

pub(crate) const INSERT_GROUP: &str = concat!(
    "INSERT INTO messaging_groups (id, channel_type, platform_id, name, created_at) \
     VALUES ($1, $2, $3, $4, $5) RETURNING ",
    group_columns!()
);

pub(crate) const GROUP_BY_ID: &str = concat!(
    "SELECT ",
    group_columns!(),
    " FROM messaging_groups WHERE id = $1"
);

pub(crate) const GROUP_BY_PLATFORM: &str = concat!(
    "SELECT ",
    group_columns!(),
    " FROM messaging_groups WHERE channel_type = $1 AND platform_id = $2"
);

/// Finds the active session of a key or inserts the new one, in one round
/// trip. `$1` id, `$2` agent group, `$3` messaging group, `$4` thread,
/// `$5` mode, `$6` owner host, `$7` created_at, `$8` key (NULL: always
/// insert).
///
/// No row comes back when a concurrent transaction committed the key after
/// this statement's snapshot was taken: `ON CONFLICT DO NOTHING` saw it,
/// `found` did not. The caller then runs it again (a new snapshot finds it).
/// An unknown messaging group hides `found`; the insert then fails its
/// foreign key (`NotFound`), or, when an agent-shared key is taken, returns
/// no row and the caller's check of the group says `NotFound`.
pub(crate) const RESOLVE: &str = concat!(
    "WITH found AS (\
        SELECT ",
    session_columns!(),
    " FROM sessions \
        WHERE resolution_key = $8 AND status = 'active' \
          AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM messaging_groups WHERE id = $3))\
     ), inserted AS (\
        INSERT INTO sessions (id, agent_group_id, messaging_group_id, thread_id, mode, \
                              status, container_status, created_at, owner_host, resolution_key) \
        SELECT $1, $2, $3, $4, $5, 'active', 'stopped', $7, $6, $8 \
        WHERE NOT EXISTS (SELECT 1 FROM found) \
        ON CONFLICT (resolution_key) WHERE status = 'active' DO NOTHING \
        RETURNING ",
    session_columns!(),
    ") SELECT ",
    session_columns!(),
    ", false AS created FROM found \
     UNION ALL SELECT ",
    session_columns!(),
    ", true AS created FROM inserted"
);

pub(crate) const SESSION_BY_ID: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE id = $1"
);

/// `$2` status, `$3` container status, `$4` last active (NULL: unchanged),
/// `$5` whether to set the provider, `$6` the provider.
pub(crate) const UPDATE_SESSION: &str = concat!(
    "UPDATE sessions SET \
        status = COALESCE($2, status), \
        container_status = COALESCE($3, container_status), \
        last_active = COALESCE($4, last_active), \
        agent_provider = CASE WHEN $5 THEN $6 ELSE agent_provider END \
     WHERE id = $1 RETURNING ",
    session_columns!()
);

/// Inserts a session exactly as given (adoption). `$1`…`$11` the session's
/// columns in `session_columns!` order, `$12` its key. No row comes back
/// when the id or the active key is taken; the caller tells which.
pub(crate) const ADOPT_SESSION: &str = "INSERT INTO sessions (id, agent_group_id, messaging_group_id, \
     thread_id, mode, agent_provider, status, container_status, last_active, created_at, owner_host, \
     resolution_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
     ON CONFLICT DO NOTHING RETURNING id";

pub(crate) const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id = $1";

/// The start of `list_sessions`; filters and the order are appended.
pub(crate) const LIST_SESSIONS: &str =
    concat!("SELECT ", session_columns!(), " FROM sessions WHERE true");

/// Index behind the active-key rule; a unique violation on it while
/// updating is a reactivation conflict.
pub(crate) const ACTIVE_KEY_INDEX: &str = "sessions_active_key";

/// Constraint behind `(channel_type, platform_id)` uniqueness.
pub(crate) const PLATFORM_KEY: &str = "messaging_groups_platform_key";
