-- A large raw mail (SQLite only) is kept as a file beside the database instead of in
-- `raw`: written once, instead of once to the write-ahead log and again to the
-- database. `raw_file` names it, relative to the folder `<database file>-mail/`.
ALTER TABLE messages ADD COLUMN raw_file TEXT;
