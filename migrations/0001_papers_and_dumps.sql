-- Papers, the dumps they arrived in, and full-text search over them.

CREATE TABLE dumps (
    id            INTEGER PRIMARY KEY,
    file_name     TEXT NOT NULL,
    content_hash  TEXT NOT NULL UNIQUE,      -- sha256 of the file's bytes
    format        TEXT NOT NULL CHECK (format IN ('text', 'jsonl', 'atom')),
    dump_date     TEXT NOT NULL,             -- the day the dump is for (YYYY-MM-DD)
    ingested_at   TEXT NOT NULL,             -- UTC ISO-8601
    papers        INTEGER NOT NULL,          -- distinct papers in the dump
    new_papers    INTEGER NOT NULL,          -- first seen in this dump
    repeats       INTEGER NOT NULL           -- seen in an earlier dump
);

CREATE TABLE papers (
    id            INTEGER PRIMARY KEY,
    norm_title    TEXT NOT NULL UNIQUE,      -- identity: see recommender.dumps.normalise_title
    external_id   TEXT UNIQUE,               -- e.g. arxiv:2301.00001, when the source gives one
    title         TEXT NOT NULL,
    abstract      TEXT NOT NULL,
    url           TEXT,
    authors       TEXT NOT NULL DEFAULT '[]', -- JSON list of names
    published     TEXT,
    first_dump_id INTEGER NOT NULL REFERENCES dumps(id),
    created_at    TEXT NOT NULL
);
CREATE INDEX papers_first_dump ON papers(first_dump_id);

-- Every dump a paper appeared in, in page order.
CREATE TABLE dump_papers (
    dump_id   INTEGER NOT NULL REFERENCES dumps(id) ON DELETE CASCADE,
    paper_id  INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    PRIMARY KEY (dump_id, paper_id)
) WITHOUT ROWID;
CREATE INDEX dump_papers_paper ON dump_papers(paper_id);

CREATE VIRTUAL TABLE papers_fts USING fts5(
    title, abstract,
    content='papers', content_rowid='id',
    tokenize='porter unicode61 remove_diacritics 2'
);

-- New papers are indexed in bulk by recommender.store.record_dump (one
-- INSERT ... SELECT per dump is about 3x faster than a per-row trigger);
-- deletes and edits keep the index in step through these triggers.
CREATE TRIGGER papers_fts_delete AFTER DELETE ON papers BEGIN
    INSERT INTO papers_fts(papers_fts, rowid, title, abstract)
    VALUES ('delete', old.id, old.title, old.abstract);
END;

CREATE TRIGGER papers_fts_update AFTER UPDATE OF title, abstract ON papers BEGIN
    INSERT INTO papers_fts(papers_fts, rowid, title, abstract)
    VALUES ('delete', old.id, old.title, old.abstract);
    INSERT INTO papers_fts(rowid, title, abstract) VALUES (new.id, new.title, new.abstract);
END;
