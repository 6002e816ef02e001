-- Papers from the sources (Hugging Face Daily Papers, arXiv): their arXiv id, links and
-- upvotes; where each dump came from; the fetch ledger; the arXiv title-lookup cache;
-- and author names in full-text search.

ALTER TABLE papers ADD COLUMN arxiv_id TEXT;    -- bare id without version: 2511.01234
ALTER TABLE papers ADD COLUMN pdf_url TEXT;
ALTER TABLE papers ADD COLUMN hf_url TEXT;      -- the paper's Hugging Face page
ALTER TABLE papers ADD COLUMN upvotes INTEGER;  -- Hugging Face upvotes; NULL where unknown

-- Atom dumps stored external ids as arxiv:ID (version already stripped).
UPDATE papers SET arxiv_id = substr(external_id, 7) WHERE external_id LIKE 'arxiv:%';
UPDATE papers SET pdf_url = 'https://arxiv.org/pdf/' || arxiv_id WHERE arxiv_id IS NOT NULL;
CREATE UNIQUE INDEX papers_arxiv_id ON papers(arxiv_id) WHERE arxiv_id IS NOT NULL;
CREATE INDEX papers_upvotes ON papers(upvotes) WHERE upvotes IS NOT NULL;

-- 'file' (ingest, inbox), 'hf-daily' or 'arxiv' (paperfeed fetch, the fetch job).
ALTER TABLE dumps ADD COLUMN source TEXT NOT NULL DEFAULT 'file';
CREATE INDEX dumps_date ON dumps(dump_date);

-- One row per source and day: what the last fetch of that day did, so the job retries
-- a failed day and leaves a done one alone.
CREATE TABLE fetches (
    source          TEXT NOT NULL,             -- hf-daily, arxiv
    day             TEXT NOT NULL,             -- YYYY-MM-DD
    state           TEXT NOT NULL CHECK (state IN ('done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0, -- failed runs since the last success
    last_error      TEXT,
    dump_id         INTEGER REFERENCES dumps(id) ON DELETE SET NULL,
    papers          INTEGER NOT NULL DEFAULT 0,
    new_papers      INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,                      -- UTC ISO-8601: a failed day is not retried before
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (source, day)
) WITHOUT ROWID;

-- arXiv API title searches done by `paperfeed enrich`: asked once per title.
CREATE TABLE arxiv_lookups (
    norm_title   TEXT PRIMARY KEY,
    arxiv_id     TEXT,                         -- NULL: arXiv has no paper with this title
    looked_up_at TEXT NOT NULL
) WITHOUT ROWID;

-- Search matches author names too: the index gets a third column.
DROP TRIGGER papers_fts_delete;
DROP TRIGGER papers_fts_update;
DROP TABLE papers_fts;
CREATE VIRTUAL TABLE papers_fts USING fts5(
    title, abstract, authors,
    content='papers', content_rowid='id',
    tokenize='porter unicode61 remove_diacritics 2'
);
INSERT INTO papers_fts(papers_fts) VALUES ('rebuild');

CREATE TRIGGER papers_fts_delete AFTER DELETE ON papers BEGIN
    INSERT INTO papers_fts(papers_fts, rowid, title, abstract, authors)
    VALUES ('delete', old.id, old.title, old.abstract, old.authors);
END;

CREATE TRIGGER papers_fts_update AFTER UPDATE OF title, abstract, authors ON papers BEGIN
    INSERT INTO papers_fts(papers_fts, rowid, title, abstract, authors)
    VALUES ('delete', old.id, old.title, old.abstract, old.authors);
    INSERT INTO papers_fts(rowid, title, abstract, authors)
    VALUES (new.id, new.title, new.abstract, new.authors);
END;
