-- Attachments are stored once, inside the raw mail: new rows keep name, type and size,
-- and where the part lies in its message's raw mail (`raw_start`..`raw_end`, bytes), to
-- decode it from there. NULL: over gateway.max_attachment_bytes when it arrived, or a
-- row from before this migration, which keeps its decoded `content`.
ALTER TABLE attachments ADD COLUMN raw_start BIGINT;
ALTER TABLE attachments ADD COLUMN raw_end BIGINT;
