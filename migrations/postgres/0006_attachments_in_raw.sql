-- Attachments are stored once, inside the raw mail: new rows keep name, type and size,
-- and `in_raw` = 1 says the content can be decoded from the message's raw mail (it was
-- within gateway.max_attachment_bytes). Older rows keep their decoded `content`.
ALTER TABLE attachments ADD COLUMN in_raw BIGINT NOT NULL DEFAULT 0;
