-- When an admin last queued the row again (`casegate outbox retry`), in ms: its give-up
-- age (outbox.max_age_hours) counts from here instead of from created_at, which the
-- rate limit keeps using.
ALTER TABLE outbox ADD COLUMN retried_at BIGINT;
