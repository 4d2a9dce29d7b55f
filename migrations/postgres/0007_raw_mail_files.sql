-- A large raw mail (SQLite only) is kept as a file beside the database instead of in
-- `raw`. PostgreSQL keeps every raw mail in `raw`; the column stays NULL here and
-- exists so that both engines have the same schema.
ALTER TABLE messages ADD COLUMN raw_file TEXT;
