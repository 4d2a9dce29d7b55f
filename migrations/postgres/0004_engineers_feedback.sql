-- Engineers' work on a case: customer feedback after closing, and links to bugs and
-- knowledge-base articles.
ALTER TABLE cases ADD COLUMN feedback_rating BIGINT;
ALTER TABLE cases ADD COLUMN feedback_at BIGINT;

CREATE TABLE case_links (
    case_id BIGINT  NOT NULL REFERENCES cases (id),
    kind    TEXT    NOT NULL,
    target  TEXT    NOT NULL,
    PRIMARY KEY (case_id, kind, target)
);
