-- Engineers' work on a case: customer feedback after closing, and links to bugs and
-- knowledge-base articles.
ALTER TABLE cases ADD COLUMN feedback_rating INTEGER;
ALTER TABLE cases ADD COLUMN feedback_at INTEGER;

CREATE TABLE case_links (
    case_id INTEGER NOT NULL REFERENCES cases (id),
    kind    TEXT    NOT NULL,
    target  TEXT    NOT NULL,
    PRIMARY KEY (case_id, kind, target)
);
