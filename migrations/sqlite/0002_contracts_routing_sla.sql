-- Contracts (imported from CSV), the routing and entitlement facts on each case, and
-- SLA clocks with a due-time index for the timer worker.
CREATE TABLE contracts (
    contract_id TEXT    PRIMARY KEY,
    account     TEXT    NOT NULL,
    tier        TEXT    NOT NULL,
    products    TEXT    NOT NULL,
    domains     TEXT    NOT NULL,
    contacts    TEXT    NOT NULL,
    country     TEXT    NOT NULL,
    start_date  TEXT    NOT NULL,
    end_date    TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Lookup keys: 'c:' || contact address, 'd:' || domain.
CREATE TABLE contract_keys (
    key         TEXT NOT NULL,
    contract_id TEXT NOT NULL REFERENCES contracts (contract_id) ON DELETE CASCADE,
    PRIMARY KEY (key, contract_id)
);

ALTER TABLE cases ADD COLUMN tier TEXT;
ALTER TABLE cases ADD COLUMN country TEXT;
ALTER TABLE cases ADD COLUMN contract_id TEXT;
ALTER TABLE cases ADD COLUMN language_confidence REAL;
ALTER TABLE cases ADD COLUMN time_zone TEXT;

CREATE TABLE sla_clocks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id       INTEGER NOT NULL REFERENCES cases (id),
    kind          TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    due_at        INTEGER NOT NULL,
    warn_at       INTEGER NOT NULL,
    state         TEXT    NOT NULL,
    met_at        INTEGER,
    warned_at     INTEGER,
    breached_at   INTEGER,
    next_check_at INTEGER
);
CREATE INDEX sla_clocks_next_check ON sla_clocks (next_check_at);
CREATE INDEX sla_clocks_case ON sla_clocks (case_id);
