-- Several hosts on one registry: each host's lease, and the queue of
-- messages a host accepted for a session another host owns.

-- A host renews its lease by heartbeating; a host whose lease ran out is
-- "stopped" and the messages queued for it are shown as stranded.
CREATE TABLE hosts (
    host_id      text        PRIMARY KEY,
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    lease_until  timestamptz NOT NULL
);

-- Messages waiting for their session's owner to store them in the
-- session's mailbox. The owner applies a row and deletes it in one
-- transaction; applying is idempotent on the message id, so a crash in
-- between never stores a message twice. `id` gives arrival order (enqueues
-- of one session are serialised by an advisory lock, so ids commit in order).
CREATE TABLE routed_messages (
    id          bigserial   PRIMARY KEY,
    owner_host  text        NOT NULL,
    session_id  text        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    message_id  text        NOT NULL,
    -- The NewInboundMessage as JSON, inline attachments (base64) included.
    message     text        NOT NULL,
    bytes       integer     NOT NULL,
    enqueued_by text        NOT NULL,
    enqueued_at timestamptz NOT NULL
);

CREATE INDEX routed_messages_owner ON routed_messages (owner_host, id);
CREATE INDEX routed_messages_session ON routed_messages (session_id, id);
