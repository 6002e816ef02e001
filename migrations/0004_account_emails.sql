-- Password-reset emails asked for, per address and client, to rate-limit them
-- (a stranger must not be able to flood someone's inbox). Pruned as they age.
CREATE TABLE reset_requests (
    id           INTEGER PRIMARY KEY,
    email        TEXT NOT NULL COLLATE NOCASE,
    remote_addr  TEXT NOT NULL,
    requested_at REAL NOT NULL                  -- unix time
);
CREATE INDEX reset_requests_email ON reset_requests(email, requested_at);
CREATE INDEX reset_requests_addr ON reset_requests(remote_addr, requested_at);
