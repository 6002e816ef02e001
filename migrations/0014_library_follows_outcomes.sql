-- Issue 18: a person's library as their profile, followed authors, the source's TL;DR and
-- thumbnail, and the recorded outcome of every digest period.
--
-- 1. Library papers. An imported reference that paperfeed has not stored becomes a row of
--    papers with library_of = the person and no dump (first_dump_id NULL): the text model
--    embeds it at the next refit like any paper, and the person's like of it feeds their
--    own model, but every candidate set (feed days, digest, trending, served papers) joins
--    papers to their dumps, so it is never shown to anyone. It is not in the search index.
--    Its norm_title is "library:<user id>:<normalised title>": a dump that later brings the
--    same paper stores its own row, and another person's import never matches it.
--    first_dump_id becomes nullable, so the table is rebuilt (the "12 steps" of
--    https://sqlite.org/lang_altertable.html; migrations run with foreign keys off).
-- 2. ai_summary and thumbnail: the Hugging Face Daily Papers fields (a one-line TL;DR by
--    the source, and the URL of its thumbnail image).

DROP TRIGGER papers_fts_delete;
DROP TRIGGER papers_fts_update;
DROP VIEW papers_search;

CREATE TABLE papers_new (
    id            INTEGER PRIMARY KEY,
    norm_title    TEXT NOT NULL UNIQUE,      -- identity: see recommender.dumps.normalise_title
    external_id   TEXT UNIQUE,               -- e.g. arxiv:2301.00001, when the source gives one
    title         TEXT NOT NULL,
    abstract      TEXT NOT NULL,
    url           TEXT,
    authors       TEXT NOT NULL DEFAULT '[]', -- JSON list of names
    published     TEXT,
    first_dump_id INTEGER REFERENCES dumps(id), -- NULL: a library paper (library_of)
    created_at    TEXT NOT NULL,
    arxiv_id      TEXT,                      -- bare id without version: 2511.01234
    pdf_url       TEXT,
    hf_url        TEXT,                      -- the paper's Hugging Face page
    upvotes       INTEGER,                   -- Hugging Face upvotes; NULL where unknown
    library_of    INTEGER REFERENCES users(id) ON DELETE CASCADE, -- the person it is private to
    ai_summary    TEXT,                      -- the source's one-line TL;DR (Hugging Face)
    thumbnail     TEXT,                      -- the source's thumbnail image URL
    CHECK ((first_dump_id IS NULL) = (library_of IS NOT NULL))
);

INSERT INTO papers_new (
    id, norm_title, external_id, title, abstract, url, authors, published, first_dump_id,
    created_at, arxiv_id, pdf_url, hf_url, upvotes
)
SELECT
    id, norm_title, external_id, title, abstract, url, authors, published, first_dump_id,
    created_at, arxiv_id, pdf_url, hf_url, upvotes
FROM papers;

DROP TABLE papers;
ALTER TABLE papers_new RENAME TO papers;

CREATE INDEX papers_first_dump ON papers(first_dump_id);
CREATE UNIQUE INDEX papers_arxiv_id ON papers(arxiv_id) WHERE arxiv_id IS NOT NULL;
CREATE INDEX papers_upvotes ON papers(upvotes) WHERE upvotes IS NOT NULL;
CREATE INDEX papers_library ON papers(library_of) WHERE library_of IS NOT NULL;

-- As in 0010; library papers are never in the index, so the triggers leave them alone.
CREATE VIEW papers_search AS
SELECT id, title, abstract,
       (SELECT group_concat(value, ', ') FROM json_each(papers.authors)) AS authors
FROM papers WHERE library_of IS NULL;

CREATE TRIGGER papers_fts_delete AFTER DELETE ON papers WHEN old.library_of IS NULL BEGIN
    INSERT INTO papers_fts(papers_fts, rowid, title, abstract, authors)
    VALUES ('delete', old.id, old.title, old.abstract,
            (SELECT group_concat(value, ', ') FROM json_each(old.authors)));
END;

CREATE TRIGGER papers_fts_update AFTER UPDATE OF title, abstract, authors ON papers
WHEN old.library_of IS NULL BEGIN
    INSERT INTO papers_fts(papers_fts, rowid, title, abstract, authors)
    VALUES ('delete', old.id, old.title, old.abstract,
            (SELECT group_concat(value, ', ') FROM json_each(old.authors)));
    INSERT INTO papers_fts(rowid, title, abstract, authors)
    SELECT id, title, abstract, authors FROM papers_search WHERE id = new.id;
END;

-- 3. Followed authors: a new paper by one is shown at the top of its day. Matched by the
--    name's key (recommender.authors.author_key: accents folded, case and spacing ignored).
CREATE TABLE follows (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    author_key TEXT NOT NULL,
    name       TEXT NOT NULL,                -- as the person followed it
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, author_key)
) WITHOUT ROWID;
CREATE INDEX follows_key ON follows(author_key);

-- 1 = a followed author's paper is shown even when it contains a muted word.
ALTER TABLE users ADD COLUMN follows_pass_muted INTEGER NOT NULL DEFAULT 0
    CHECK (follows_pass_muted IN (0, 1));

-- 4. Why a digest period sent nothing (JSON, recommender.digest.outcome_words turns it
--    into words): {"kind": "below_bar", "arrived": 54, "best": 0.4}, {"kind": "nothing_new"},
--    {"kind": "source_failed", "source": "hf-daily", "retry_at": "..."}. NULL for a sent one.
ALTER TABLE digests ADD COLUMN outcome TEXT;
