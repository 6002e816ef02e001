-- The digest ledger: one row per person and period, so a digest is never sent twice.
--
-- A row is created ("claimed") with its papers in one transaction, then moves
-- pending -> sending -> sent, or back to pending after a transient error
-- (attempts, next_attempt_at), or to failed after a permanent one or too many
-- attempts. 'empty' records that nothing cleared the person's bar this period;
-- 'cancelled' that they unsubscribed between claim and delivery.
-- recommender/digest.py explains the recovery of rows left in 'sending'.

CREATE TABLE digests (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    period          TEXT NOT NULL,             -- the person's local send day, YYYY-MM-DD
    cadence         TEXT NOT NULL CHECK (cadence IN ('daily', 'weekly')),
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'empty', 'cancelled')),
    recipient       TEXT NOT NULL,             -- the address when the row was claimed
    message_id      TEXT UNIQUE,               -- stable per row: a resend reuses it; NULL if empty
    subject         TEXT,
    papers          INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0, -- delivery attempts started
    last_error      TEXT,
    due_at          TEXT NOT NULL,             -- UTC ISO-8601: the person's local send hour
    created_at      TEXT NOT NULL,             -- UTC ISO-8601: claimed; the message's Date
    next_attempt_at TEXT NOT NULL,             -- UTC ISO-8601: not retried before this
    sending_at      TEXT,
    sent_at         TEXT,
    updated_at      TEXT NOT NULL,
    UNIQUE (user_id, period)
);
CREATE INDEX digests_open ON digests(state, next_attempt_at)
    WHERE state IN ('pending', 'sending');
CREATE INDEX digests_user_sent ON digests(user_id, state, created_at);

-- The papers of each digest, frozen at claim time so a retry sends the same email.
CREATE TABLE digest_items (
    digest_id  INTEGER NOT NULL REFERENCES digests(id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    paper_id   INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
    score      REAL NOT NULL,
    reason     TEXT NOT NULL,
    PRIMARY KEY (digest_id, position)
) WITHOUT ROWID;
CREATE INDEX digest_items_paper ON digest_items(paper_id, digest_id);
