-- Accounts that cannot be taken over by id reuse (issue 11).
--
-- 1. users.id becomes AUTOINCREMENT: an id is never given to a second account, so a
--    token or cookie naming a deleted account's id can never name someone else.
-- 2. users.auth_secret (random, per account) replaces auth_version: sessions and reset
--    links carry a fingerprint of it and are checked against it on every use. It is
--    replaced on logout, password change and reset, which ends every session and spends
--    every reset link made before; a restored backup that re-issues an id cannot
--    re-issue the secret.
-- SQLite cannot add AUTOINCREMENT to a table, so the table is rebuilt (the "12 steps"
-- of https://sqlite.org/lang_altertable.html; recommender.store.db runs migrations with
-- foreign keys off and checks them before each commits).

CREATE TABLE users_new (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    email              TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash      TEXT,                    -- NULL: must set one through a reset link
    email_confirmed_at TEXT,                    -- digests go only to confirmed addresses
    created_at         TEXT NOT NULL,
    auth_secret        TEXT NOT NULL DEFAULT (lower(hex(randomblob(32)))), -- replaced on logout, password change, reset
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

-- Every session and reset link made before this migration ends: they carry no secret.
INSERT INTO users_new (
    id, email, password_hash, email_confirmed_at, created_at, auth_secret, keywords,
    muted_keywords, feed_token, digest_enabled, digest_cadence, digest_weekday, digest_hour,
    timezone, digest_size, min_score
)
SELECT
    id, email, password_hash, email_confirmed_at, created_at, lower(hex(randomblob(32))),
    keywords, muted_keywords, feed_token, digest_enabled, digest_cadence, digest_weekday,
    digest_hour, timezone, digest_size, min_score
FROM users;

DROP TABLE users;
ALTER TABLE users_new RENAME TO users;

-- Failed logins remember the browser they came from (its device cookie's nonce, '' for
-- none): a browser that logged in to the account before is limited on its own, so a
-- stranger's guesses cannot lock the owner out (recommender.accounts explains).
ALTER TABLE login_attempts ADD COLUMN device TEXT NOT NULL DEFAULT '';
CREATE INDEX login_attempts_device ON login_attempts(device, attempted_at);
