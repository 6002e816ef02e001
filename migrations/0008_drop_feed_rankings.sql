-- Precomputed feeds go: every feed, the Atom feed and the digest rank one person on the
-- spot over the published model (a few milliseconds, and it must happen anyway after each
-- of their ratings), while storing everyone's ranking after each ingest cost 48 s at
-- 100,000 people and nothing read it. See docs/benchmarks.md, "Precomputed feeds".
DROP TABLE IF EXISTS feed_rankings;
