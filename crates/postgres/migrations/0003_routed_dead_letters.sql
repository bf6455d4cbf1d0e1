-- Poison routed messages: a message the owner's drain cannot apply is
-- retried a bounded number of times (with a growing delay, during which the
-- session's later messages wait behind it), then kept as a dead letter,
-- which no longer blocks its session and is shown by `airlock sessions` and
-- `airlock doctor` until an operator re-queues or purges it.
ALTER TABLE routed_messages
    ADD COLUMN attempts   integer     NOT NULL DEFAULT 0,
    ADD COLUMN retry_at   timestamptz,
    ADD COLUMN last_error text,
    ADD COLUMN dead_at    timestamptz;

CREATE INDEX routed_messages_dead ON routed_messages (owner_host, id) WHERE dead_at IS NOT NULL;
