-- How the feed and search list papers: 'cards' (title, authors, reason, abstract) or
-- 'compact' (one line a paper with its score, for triaging a hundred papers a day).
-- Chosen in settings and kept with the account, so every device shows the same.
ALTER TABLE users ADD COLUMN feed_layout TEXT NOT NULL DEFAULT 'cards'
    CHECK (feed_layout IN ('cards', 'compact'));
