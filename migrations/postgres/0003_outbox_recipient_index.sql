-- The per-sender rate limit looks up recent mail to one recipient for every inbound
-- mail: index it so that its cost does not grow with the outbox.
CREATE INDEX outbox_recipient_created ON outbox (LOWER(recipients), created_at);
