-- The session registry: messaging groups and sessions.
-- Runs with search_path set to the store's schema, so every name below
-- lands in that schema (never in public).

CREATE TABLE messaging_groups (
    id           text        PRIMARY KEY,
    channel_type text        NOT NULL,
    platform_id  text        NOT NULL,
    name         text,
    created_at   timestamptz NOT NULL,
    CONSTRAINT messaging_groups_platform_key UNIQUE (channel_type, platform_id)
);

CREATE TABLE sessions (
    id                 text        PRIMARY KEY,
    agent_group_id     text        NOT NULL,
    messaging_group_id text        REFERENCES messaging_groups (id),
    thread_id          text,
    mode               text        NOT NULL
        CHECK (mode IN ('shared', 'per-thread', 'agent-shared')),
    agent_provider     text,
    status             text        NOT NULL CHECK (status IN ('active', 'archived')),
    container_status   text        NOT NULL
        CHECK (container_status IN ('running', 'idle', 'stopped')),
    last_active        timestamptz,
    created_at         timestamptz NOT NULL,
    owner_host         text,
    -- ResolveRequest::key(); NULL for sessions that every call creates anew.
    resolution_key     text
);

-- What makes resolve_session atomic across tasks, processes and hosts:
-- at most one active session per key. Archiving frees the key.
CREATE UNIQUE INDEX sessions_active_key ON sessions (resolution_key)
    WHERE status = 'active';

-- Lists are ordered by (created_at, id), optionally per agent group or host.
CREATE INDEX sessions_created ON sessions (created_at, id);
CREATE INDEX sessions_agent_group ON sessions (agent_group_id, created_at, id);
CREATE INDEX sessions_owner_host ON sessions (owner_host, created_at, id);
