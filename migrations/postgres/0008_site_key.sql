-- Secrets the gateway makes for itself, once per database: `message_id` is the key of
-- the HMAC in our Message-IDs and signed return paths (see src/domain/signed.rs), so
-- that every instance sharing the database makes and checks the same ones.
CREATE TABLE site_keys (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
