-- Interests: named profiles ("RL for robotics"). A person files likes under an interest and
-- each interest is ranked on its own. A like with no interest (interest_id NULL) belongs to
-- the person's default interest, so a person who never names one sees what they saw before.
CREATE TABLE interests (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name       TEXT NOT NULL COLLATE NOCASE CHECK (length(trim(name)) BETWEEN 1 AND 80),
    created_at TEXT NOT NULL,
    UNIQUE (user_id, name)
);

-- Deleting an interest returns its likes to the default interest.
ALTER TABLE ratings ADD COLUMN interest_id INTEGER REFERENCES interests(id) ON DELETE SET NULL;
CREATE INDEX ratings_interest ON ratings(interest_id) WHERE interest_id IS NOT NULL;

-- The section (interest name) a digest paper was listed under, frozen with the digest.
ALTER TABLE digest_items ADD COLUMN section TEXT;
