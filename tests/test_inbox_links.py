"""A hostile inbox (issue 20, item 3): symbolic links planted in the inbox or in its
``failed/`` folder never make paperfeed read or write anything outside the inbox."""

from __future__ import annotations

import json
import os

import pytest

from recommender import store
from recommender.config import load_settings
from recommender.dumps import MAX_DUMP_BYTES
from recommender.jobs import ingest_inbox

OLD = 1_600_000_000


def jsonl(title: str) -> str:
    return json.dumps({"title": title, "abstract": "An abstract long enough to be one."}) + "\n"


@pytest.fixture
def inbox(data_dir, monkeypatch):
    monkeypatch.delenv("PAPERFEED_INBOX_DIR", raising=False)
    folder = data_dir / "inbox"
    folder.mkdir()
    return folder


def age(*paths) -> None:
    for path in paths:
        os.utime(path, (OLD, OLD), follow_symlinks=False)


def titles(data_dir) -> list[str]:
    with store.connect(data_dir / "paperfeed.db") as db:
        return [row[0] for row in db.execute("SELECT title FROM papers ORDER BY title")]


def test_a_link_to_a_file_outside_the_inbox_is_not_ingested(data_dir, inbox, tmp_path):
    secret = tmp_path / "outside.jsonl"
    secret.write_text(jsonl("A private file outside the inbox"))
    (inbox / "link.jsonl").symlink_to(secret)
    (inbox / "real.jsonl").write_text(jsonl("A real paper in the inbox"))
    age(inbox / "link.jsonl", inbox / "real.jsonl", secret)
    report = ingest_inbox(load_settings(data_dir))
    assert report.ingested == ["real.jsonl"]
    assert "link.jsonl" in report.failed
    assert "symbolic link" in report.failed["link.jsonl"]
    assert titles(data_dir) == ["A real paper in the inbox"]
    # the link moved aside as a link; its target is untouched and still where it was
    moved = inbox / "failed" / "link.jsonl"
    assert moved.is_symlink() and secret.read_text() == jsonl("A private file outside the inbox")
    note = (inbox / "failed" / "link.jsonl.error.txt").read_text()
    assert "the inbox takes only regular files inside it" in note


def test_a_link_planted_as_an_error_note_is_replaced_not_written_through(data_dir, inbox, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (inbox / "failed").mkdir()
    (inbox / "failed" / "bad.txt.error.txt").symlink_to(victim)
    (inbox / "bad.txt").write_bytes(b"\xff\xfe not a dump")
    age(inbox / "bad.txt")
    report = ingest_inbox(load_settings(data_dir))
    assert list(report.failed) == ["bad.txt"]
    assert victim.read_text() == "precious\n"
    note = inbox / "failed" / "bad.txt.error.txt"
    assert not note.is_symlink() and "UTF-8" in note.read_text()


def test_a_failed_folder_that_is_a_link_is_never_written_into(data_dir, inbox, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (inbox / "failed").symlink_to(elsewhere)
    (inbox / "processed").symlink_to(elsewhere)
    (inbox / "bad.txt").write_bytes(b"\xff\xfe not a dump")
    (inbox / "good.jsonl").write_text(jsonl("A good paper"))
    age(inbox / "bad.txt", inbox / "good.jsonl")
    report = ingest_inbox(load_settings(data_dir))
    assert list(report.failed) == ["bad.txt"] and report.ingested == ["good.jsonl"]
    assert list(elsewhere.iterdir()) == []
    # what could not be moved stays in the inbox (the good one is stored: a rerun skips it)
    left = sorted(p.name for p in inbox.iterdir() if not p.is_symlink())
    assert left == ["bad.txt", "good.jsonl"]


def test_a_fifo_in_the_inbox_is_refused_without_blocking(data_dir, inbox):
    os.mkfifo(inbox / "pipe.jsonl")
    age(inbox / "pipe.jsonl")
    report = ingest_inbox(load_settings(data_dir))
    assert report.failed == {}  # not listed: only files and links are dump candidates
    assert (inbox / "pipe.jsonl").exists()


def test_a_dump_over_the_size_limit_is_refused_before_it_is_read(data_dir, inbox):
    path = inbox / "huge.jsonl"
    with open(path, "wb") as handle:
        handle.truncate(MAX_DUMP_BYTES + 1)  # sparse: no disk used, nothing to read
    age(path)
    report = ingest_inbox(load_settings(data_dir))
    assert "dumps are at most 256 MB" in report.failed["huge.jsonl"]
