-- Account mails (confirm the address, reset the password, "someone tried to sign up with
-- your address") wait here until the scheduler sends them: a web request only inserts a
-- row, so it answers in the same time whatever the address and whatever the mail server
-- does. A row goes queued -> sending (claimed by one sender) -> sent, or back to queued
-- with a later next_try_at after a temporary failure, or failed for good (a 5xx reply, or
-- too many tries): failed rows are shown to the person and queued again when the mail
-- server setting changes (server_key). The link inside is made when the mail is sent.
CREATE TABLE account_mails (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE ON UPDATE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('confirm', 'reset', 'signup_exists')),
    address     TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'dropped')),
    tries       INTEGER NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL,                   -- unix time
    next_try_at REAL NOT NULL,
    claimed_at  REAL,
    sent_at     REAL,
    last_error  TEXT,
    server_key  TEXT                             -- the mail server it failed on (no password)
);
CREATE INDEX account_mails_due ON account_mails(status, next_try_at);
CREATE INDEX account_mails_user ON account_mails(user_id, id);
