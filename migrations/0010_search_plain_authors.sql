-- Search finds authors as they are written: the index reads plain names ("Jörg Müller,
-- José García"), not the JSON list with its \u00fc escapes, so unicode61 folds "Müller"
-- and "Muller" to one token. The index reads its text through the view papers_search;
-- FTS5's 'rebuild' cannot read a view, so the rows are inserted once here (and by
-- recommender.store.record_dump for each new dump), and the triggers below keep them in
-- step with edits. Hyphens stay separators: "sim-to-real" is indexed as the words
-- sim, to, real in a row, which the search asks for as one phrase.
DROP TRIGGER papers_fts_delete;
DROP TRIGGER papers_fts_update;
DROP TABLE papers_fts;

CREATE VIEW papers_search AS
SELECT id, title, abstract,
       (SELECT group_concat(value, ', ') FROM json_each(papers.authors)) AS authors
FROM papers;

CREATE VIRTUAL TABLE papers_fts USING fts5(
    title, abstract, authors,
    content='papers_search', content_rowid='id',
    tokenize='porter unicode61 remove_diacritics 2'
);
INSERT INTO papers_fts(rowid, title, abstract, authors)
SELECT id, title, abstract, authors FROM papers_search;

CREATE TRIGGER papers_fts_delete AFTER DELETE ON papers BEGIN
    INSERT INTO papers_fts(papers_fts, rowid, title, abstract, authors)
    VALUES ('delete', old.id, old.title, old.abstract,
            (SELECT group_concat(value, ', ') FROM json_each(old.authors)));
END;

CREATE TRIGGER papers_fts_update AFTER UPDATE OF title, abstract, authors ON papers BEGIN
    INSERT INTO papers_fts(papers_fts, rowid, title, abstract, authors)
    VALUES ('delete', old.id, old.title, old.abstract,
            (SELECT group_concat(value, ', ') FROM json_each(old.authors)));
    INSERT INTO papers_fts(rowid, title, abstract, authors)
    SELECT id, title, abstract, authors FROM papers_search WHERE id = new.id;
END;
