-- Cases, their messages (raw mail kept), attachments, the audit trail, the outbox,
-- IMAP checkpoints and the quarantine register. Times are Unix epoch milliseconds (UTC).
CREATE TABLE cases (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    subject            TEXT    NOT NULL,
    status             TEXT    NOT NULL,
    queue              TEXT,
    product            TEXT,
    language           TEXT,
    region             TEXT,
    severity           INTEGER,
    owner              TEXT,
    customer           TEXT    NOT NULL,
    customer_name      TEXT,
    account            TEXT,
    entitlement        TEXT,
    related_case       INTEGER,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    closed_at          INTEGER,
    first_response_due INTEGER,
    first_response_at  INTEGER,
    next_response_due  INTEGER,
    breached           INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX cases_status ON cases (status);

CREATE TABLE case_participants (
    case_id INTEGER NOT NULL REFERENCES cases (id),
    email   TEXT    NOT NULL,
    PRIMARY KEY (case_id, email)
);

CREATE TABLE messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id     INTEGER NOT NULL REFERENCES cases (id),
    direction   TEXT    NOT NULL,
    role        TEXT    NOT NULL,
    dedup_key   TEXT    NOT NULL UNIQUE,
    message_id  TEXT,
    from_addr   TEXT    NOT NULL,
    from_name   TEXT,
    to_addrs    TEXT    NOT NULL,
    cc_addrs    TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    text        TEXT    NOT NULL,
    html_only   INTEGER NOT NULL DEFAULT 0,
    size        INTEGER NOT NULL,
    raw         BLOB
);
CREATE INDEX messages_message_id ON messages (message_id);
CREATE INDEX messages_case ON messages (case_id);

CREATE TABLE attachments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    message_row  INTEGER NOT NULL REFERENCES messages (id),
    filename     TEXT,
    content_type TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    content      BLOB
);
CREATE INDEX attachments_message ON attachments (message_row);

CREATE TABLE events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id INTEGER REFERENCES cases (id),
    at      INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    kind    TEXT    NOT NULL,
    detail  TEXT    NOT NULL
);
CREATE INDEX events_case ON events (case_id);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id         INTEGER REFERENCES cases (id),
    kind            TEXT    NOT NULL,
    message_id      TEXT    NOT NULL UNIQUE,
    sender          TEXT    NOT NULL,
    recipients      TEXT    NOT NULL,
    raw             BLOB    NOT NULL,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

CREATE TABLE mailbox_state (
    mailbox      TEXT    PRIMARY KEY,
    uid_validity INTEGER NOT NULL,
    last_uid     INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE quarantine (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key      TEXT    NOT NULL UNIQUE,
    message_id     TEXT,
    from_addr      TEXT,
    subject        TEXT,
    reason         TEXT    NOT NULL,
    size           INTEGER NOT NULL,
    received_at    INTEGER NOT NULL,
    quarantined_at INTEGER NOT NULL,
    source         TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    released_case  INTEGER,
    raw            BLOB
);
