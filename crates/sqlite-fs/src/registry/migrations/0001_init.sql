-- The session registry: messaging groups and sessions.
CREATE TABLE messaging_groups (
  id TEXT PRIMARY KEY,
  channel_type TEXT NOT NULL,
  platform_id TEXT NOT NULL,
  name TEXT,
  created_at TEXT NOT NULL,
  UNIQUE (channel_type, platform_id)
);

CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  agent_group_id TEXT NOT NULL,
  messaging_group_id TEXT REFERENCES messaging_groups(id),
  thread_id TEXT,
  mode TEXT NOT NULL CHECK (mode IN ('shared', 'per-thread', 'agent-shared')),
  agent_provider TEXT,
  status TEXT NOT NULL DEFAULT 'active',
  container_status TEXT NOT NULL DEFAULT 'stopped',
  last_active TEXT,
  created_at TEXT NOT NULL,
  owner_host TEXT,
  -- ResolveRequest::key(); NULL for sessions that are never looked up again.
  resolution_key TEXT
);

-- One active session per resolution key: what makes resolve_session atomic
-- across tasks and processes.
CREATE UNIQUE INDEX sessions_active_key ON sessions (resolution_key)
  WHERE status = 'active' AND resolution_key IS NOT NULL;
CREATE INDEX sessions_agent_group ON sessions (agent_group_id, created_at);
CREATE INDEX sessions_created ON sessions (created_at, id);
