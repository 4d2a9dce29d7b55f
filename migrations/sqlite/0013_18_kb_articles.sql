-- Knowledge-base articles (issue 18b): drafts made by `#kb draft` and the articles
-- engineers publish from them. `author` is who asked for the draft, then who published
-- it; times are milliseconds since the epoch, as everywhere.
CREATE TABLE kb_articles (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id      INTEGER NOT NULL REFERENCES cases (id),
    language     TEXT    NOT NULL,
    title        TEXT    NOT NULL,
    markdown     TEXT    NOT NULL,
    author       TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('draft', 'published')),
    url          TEXT,
    created_at   INTEGER NOT NULL,
    published_at INTEGER
);
CREATE INDEX kb_articles_case ON kb_articles (case_id);
CREATE INDEX kb_articles_published ON kb_articles (published_at);
