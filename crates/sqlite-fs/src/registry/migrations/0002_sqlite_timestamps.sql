-- Timestamps move to SQLite's own form, `YYYY-MM-DD HH:MM:SS.sss` in UTC,
-- which sorts correctly against itself and against datetime('now'); rows in
-- the old `YYYY-MM-DDTHH:MM:SS.sssZ` form would sort after every new row
-- of the same day. Text SQLite cannot read is left as it was.
UPDATE messaging_groups
   SET created_at = COALESCE(strftime('%Y-%m-%d %H:%M:%f', created_at), created_at);
UPDATE sessions
   SET created_at = COALESCE(strftime('%Y-%m-%d %H:%M:%f', created_at), created_at),
       last_active = COALESCE(strftime('%Y-%m-%d %H:%M:%f', last_active), last_active);
