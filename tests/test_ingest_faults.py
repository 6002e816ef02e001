"""Dumps that crashed or jammed ingest (issue 11, items 7, 8, 9 and 14), on real files,
the real ``paperfeed`` command and a real SQLite file."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3

import pytest

from recommender import store
from recommender.config import load_settings
from recommender.dumps import DumpError, parse_dump
from recommender.ingest import ingest_paths
from recommender.jobs import ingest_inbox

from .conftest import SAMPLE_DUMPS, snapshot
from .test_cli import run

GOOD = SAMPLE_DUMPS / "2026-11-20_004_993749e1571ba9fe.txt"
ABSTRACT = "We study a thing carefully. Our method improves on every earlier method we tried."

# Each of these crashed the command with a traceback (RecursionError, ValueError,
# UnicodeEncodeError while storing) instead of naming the line.
BAD_JSONL = {
    "deep-nesting": b"[" * 100_000 + b"]" * 100_000 + b"\n",
    "5000-digit-id": b'{"title": "A", "abstract": "B", "id": ' + b"7" * 5000 + b"}\n",
    "lone-surrogate": b'{"title": "Broken \\ud800 title", "abstract": "text"}\n',
    "surrogate-in-authors": b'{"title": "T", "abstract": "x", "authors": ["\\udfff"]}\n',
    "id-is-an-object": b'{"title": "T", "abstract": "x", "id": {"a": 1}}\n',
}


def jsonl_line(**fields) -> str:
    return json.dumps({"abstract": ABSTRACT, **fields})


@pytest.mark.parametrize("content", BAD_JSONL.values(), ids=BAD_JSONL.keys())
def test_a_folder_with_one_bad_jsonl_ingests_nothing_and_names_the_line(data_dir, content):
    folder = data_dir / "dumps"
    folder.mkdir()
    shutil.copy(GOOD, folder / "a.txt")
    (folder / "b.jsonl").write_bytes(b'{"title": "Fine", "abstract": "ok"}\n' + content)
    assert run(data_dir, "migrate").returncode == 0
    with store.connect(data_dir / "paperfeed.db") as db:
        before = snapshot(db)
    result = run(data_dir, "ingest", str(folder))
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: b.jsonl:2: "), result.stderr
    assert "nothing was ingested" in result.stderr
    with store.connect(data_dir / "paperfeed.db") as db:
        assert snapshot(db) == before


def test_a_store_failure_on_the_second_dump_leaves_the_first_unstored_too(db, tmp_path):
    (tmp_path / "a.txt").write_bytes(GOOD.read_bytes())
    (tmp_path / "b.jsonl").write_text(jsonl_line(title="Poison paper") + "\n")
    # A real SQLite failure in the middle of the command (as a full disk would be).
    db.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON papers WHEN NEW.title LIKE 'Poison%'"
        " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
    )
    before = snapshot(db)
    with pytest.raises(sqlite3.IntegrityError, match="refused by the test"):
        ingest_paths(db, [tmp_path])
    assert snapshot(db) == before  # a.txt was not committed on its own


def test_control_characters_in_json_strings_are_stripped_at_ingest(db, tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(
        jsonl_line(title="Null\u0000 and bell\u0007 title\ufffe", abstract="Ab\u001bstract\u0090.")
        + "\n"
    )
    ingest_paths(db, [path])
    assert db.execute("SELECT title, abstract FROM papers").fetchall() == [
        ("Null and bell title", "Abstract.")
    ]


def test_a_title_made_only_of_control_characters_is_refused():
    with pytest.raises(DumpError, match='x.jsonl:1: missing or empty "title"'):
        parse_dump(jsonl_line(title="\u0000\u0001").encode(), source="x.jsonl")


# -- the inbox (item 8) -------------------------------------------------------------------------


def test_the_inbox_moves_every_failing_file_aside_and_ingests_the_rest(data_dir, monkeypatch):
    monkeypatch.setenv("PAPERFEED_DATA_DIR", str(data_dir))
    monkeypatch.delenv("PAPERFEED_INBOX_DIR", raising=False)
    inbox = data_dir / "inbox"
    inbox.mkdir()
    shutil.copy(GOOD, inbox / "a.txt")
    (inbox / "b.jsonl").write_bytes(BAD_JSONL["lone-surrogate"])
    (inbox / "c.jsonl").write_bytes(BAD_JSONL["deep-nesting"])
    (inbox / "d.jsonl").write_text(jsonl_line(title="Poison paper") + "\n")
    (inbox / "e.jsonl").write_text(jsonl_line(title="A good last paper") + "\n")
    old = 1_600_000_000
    for path in inbox.iterdir():
        os.utime(path, (old, old))
    with store.open_db(data_dir / "paperfeed.db") as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON papers WHEN NEW.title LIKE 'Poison%'"
            " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )
    report = ingest_inbox(load_settings(data_dir))
    assert report.ingested == ["a.txt", "e.jsonl"]
    assert sorted(report.failed) == ["b.jsonl", "c.jsonl", "d.jsonl"]
    failed = inbox / "failed"
    assert sorted(p.name for p in failed.iterdir()) == [
        "b.jsonl",
        "b.jsonl.error.txt",
        "c.jsonl",
        "c.jsonl.error.txt",
        "d.jsonl",
        "d.jsonl.error.txt",
    ]
    assert "surrogate" in (failed / "b.jsonl.error.txt").read_text()
    assert "nested too deeply" in (failed / "c.jsonl.error.txt").read_text()
    assert "refused by the test" in (failed / "d.jsonl.error.txt").read_text()
    assert sorted(p.name for p in (inbox / "processed").iterdir()) == ["a.txt", "e.jsonl"]
    assert [p for p in inbox.iterdir() if p.is_file()] == []
    with store.connect(data_dir / "paperfeed.db") as db:
        assert db.execute("SELECT count(*) FROM dumps").fetchone()[0] == 2
        assert db.execute("SELECT count(*) FROM papers WHERE title LIKE 'Poison%'").fetchone() == (
            0,
        )


# -- a title with no abstract (item 14) ---------------------------------------------------------


def text_dump(*lines: str) -> bytes:
    return "\n".join(lines).encode()


def test_a_title_without_an_abstract_is_reported_with_its_line():
    dump = parse_dump(
        text_dump(
            "First Paper", ABSTRACT, "A Lonely Title Without Its Abstract", "Last Paper", ABSTRACT
        ),
        source="d.txt",
        fmt="text",
    )
    assert [p.title for p in dump.papers] == ["First Paper", "Last Paper"]
    assert dump.warnings == (
        "d.txt:3: skipped 'A Lonely Title Without Its Abstract': a title with no abstract "
        "after it (or unknown page chrome)",
    )


@pytest.mark.parametrize("chrome", ["42", "Published on Mar 10", "Mar 10, 2025", "1.2k upvotes"])
def test_known_page_chrome_between_papers_is_skipped_without_a_warning(chrome):
    dump = parse_dump(
        text_dump("First Paper", ABSTRACT, chrome, "Last Paper", ABSTRACT), fmt="text"
    )
    assert [p.title for p in dump.papers] == ["First Paper", "Last Paper"]
    assert dump.warnings == ()


def test_the_cli_prints_the_warning(data_dir, tmp_path):
    path = tmp_path / "w.txt"
    path.write_bytes(text_dump("First Paper", ABSTRACT, "Orphan Title", "Last Paper", ABSTRACT))
    result = run(data_dir, "ingest", str(path))
    assert result.returncode == 0, result.stderr
    assert "warning: w.txt:3: skipped 'Orphan Title'" in result.stderr
    assert "w.txt: 2 papers, 2 new" in result.stdout
