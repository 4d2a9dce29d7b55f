-- Several instances on one database (issue 15). Times are Unix epoch milliseconds.
-- Each running `casegate run` keeps a row here alive with its heartbeat; the alive
-- ones share the mailboxes between them (at most ceil(mailboxes / alive) each).
CREATE TABLE instances (
    name         TEXT    PRIMARY KEY,
    host         TEXT    NOT NULL,
    pid          BIGINT  NOT NULL,
    started_at   BIGINT  NOT NULL,
    heartbeat_at BIGINT  NOT NULL
);

-- One reader per mailbox: the holder renews expires_at; another instance may take an
-- expired lease, and each takeover increments token (the fencing token). Every intake
-- commit updates its lease row by (mailbox, holder, token) inside its transaction and
-- rolls back when no row matches: a former holder cannot commit after losing the lease.
CREATE TABLE mailbox_leases (
    mailbox        TEXT    PRIMARY KEY,
    holder         TEXT,
    token          BIGINT  NOT NULL,
    acquired_at    BIGINT  NOT NULL,
    expires_at     BIGINT  NOT NULL,
    last_commit_at BIGINT
);
