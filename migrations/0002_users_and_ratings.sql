-- People, their ratings, what they were shown, and their precomputed feeds.

CREATE TABLE users (
    id                 INTEGER PRIMARY KEY,
    email              TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash      TEXT,                    -- NULL: must set one through a reset link
    email_confirmed_at TEXT,                    -- digests go only to confirmed addresses
    created_at         TEXT NOT NULL,
    auth_version       INTEGER NOT NULL DEFAULT 0, -- bumped on password change: old sessions end
    keywords           TEXT NOT NULL DEFAULT '',   -- onboarding topics, free text
    muted_keywords     TEXT NOT NULL DEFAULT '[]', -- JSON list; papers containing one are never shown
    feed_token         TEXT UNIQUE,                -- secret of the private Atom feed URL; NULL = off
    digest_enabled     INTEGER NOT NULL DEFAULT 1 CHECK (digest_enabled IN (0, 1)),
    digest_cadence     TEXT NOT NULL DEFAULT 'daily' CHECK (digest_cadence IN ('daily', 'weekly')),
    digest_weekday     INTEGER NOT NULL DEFAULT 0 CHECK (digest_weekday BETWEEN 0 AND 6), -- 0 = Monday
    digest_hour        INTEGER NOT NULL DEFAULT 7 CHECK (digest_hour BETWEEN 0 AND 23),
    timezone           TEXT NOT NULL DEFAULT 'UTC',  -- IANA name
    digest_size        INTEGER NOT NULL DEFAULT 10 CHECK (digest_size BETWEEN 1 AND 100),
    min_score          REAL                          -- NULL: no minimum
);

-- One rating per person and paper: +1 like, -1 dislike. Undo deletes the row.
CREATE TABLE ratings (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    paper_id   INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
    value      INTEGER NOT NULL CHECK (value IN (-1, 1)),
    source     TEXT NOT NULL DEFAULT 'web',     -- web, email, import, onboarding
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (user_id, paper_id)
) WITHOUT ROWID;
CREATE INDEX ratings_paper ON ratings(paper_id);

-- Papers a person has been shown (feed page or digest), so a later day does not repeat them.
CREATE TABLE impressions (
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    paper_id    INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
    channel     TEXT NOT NULL CHECK (channel IN ('feed', 'digest', 'atom')),
    shown_on    TEXT NOT NULL,                  -- YYYY-MM-DD, the person's local day
    PRIMARY KEY (user_id, paper_id)
) WITHOUT ROWID;

-- Each person's ranking of a dump, built by the scheduler after a refit (top N only).
CREATE TABLE feed_rankings (
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    dump_id   INTEGER NOT NULL REFERENCES dumps(id) ON DELETE CASCADE,
    paper_id  INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
    rank      INTEGER NOT NULL,
    score     REAL NOT NULL,
    reason    TEXT NOT NULL,
    model_version TEXT NOT NULL,
    PRIMARY KEY (user_id, dump_id, paper_id)
) WITHOUT ROWID;

-- Failed logins, for rate limiting (pruned as they age).
CREATE TABLE login_attempts (
    id           INTEGER PRIMARY KEY,
    email        TEXT NOT NULL COLLATE NOCASE,
    remote_addr  TEXT NOT NULL,
    attempted_at REAL NOT NULL                  -- unix time
);
CREATE INDEX login_attempts_email ON login_attempts(email, attempted_at);
CREATE INDEX login_attempts_addr ON login_attempts(remote_addr, attempted_at);
