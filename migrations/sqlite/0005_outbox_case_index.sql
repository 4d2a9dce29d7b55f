-- Each commit numbers the case's outbound mail (COUNT per case) and the case view lists
-- them: without this index both scan the whole outbox, and intake slows as it grows.
CREATE INDEX outbox_case ON outbox (case_id);
