"""The real ``paperfeed`` command on real files; the database is reopened to check."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from recommender import pipeline, store

from .conftest import SAMPLE_COUNTS, SAMPLE_DUMPS, snapshot

PAPERFEED = Path(sys.executable).with_name("paperfeed")


def run(data_dir: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(PAPERFEED), "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_the_shipped_samples_make_the_windows_differ_on_a_first_run(data_dir):
    # What `make run` ingests: four dumps dated by their file names, so "today", "3 days"
    # and "week" show a newcomer different papers (they end at the newest dump date).
    assert run(data_dir, "ingest", str(SAMPLE_DUMPS)).returncode == 0
    db = store.open_db(data_dir / "paperfeed.db")
    assert [d["day"] for d in store.list_days(db)] == [
        "2026-11-20",
        "2026-11-19",
        "2026-11-18",
        "2026-11-16",
    ]
    sizes = [
        len(pipeline.window_papers(db, pipeline.window_bounds(db, 0, window)))
        for window in ("today", "3d", "week")
    ]
    assert sizes[0] == store.list_days(db)[0]["new_papers"] == 119  # 26 came on earlier days
    assert sizes[0] < sizes[1] < sizes[2]
    db.close()


def test_ingest_then_reingest_reports_nothing_new(data_dir):
    first = run(data_dir, "ingest", str(SAMPLE_DUMPS))
    assert first.returncode == 0, first.stderr
    lines = first.stdout.strip().splitlines()
    assert len(lines) == 4
    assert lines[0].startswith(
        "2026-11-16_000_7b2f11b90d39ad34.txt: 225 papers, 225 new, 0 repeats"
    )
    second = run(data_dir, "ingest", str(SAMPLE_DUMPS))
    assert second.returncode == 0
    assert all(
        "already ingested" in line and "nothing new" in line
        for line in second.stdout.strip().splitlines()
    )
    with store.connect(data_dir / "paperfeed.db") as db:
        assert db.execute("SELECT count(*) FROM dumps").fetchone()[0] == 4
        assert (
            db.execute("SELECT count(*) FROM papers").fetchone()[0]
            == db.execute("SELECT count(DISTINCT norm_title) FROM papers").fetchone()[0]
        )


def test_ingest_json_output(data_dir):
    result = run(
        data_dir, "ingest", "--json", str(SAMPLE_DUMPS / "2026-11-20_004_993749e1571ba9fe.txt")
    )
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["papers"] == SAMPLE_COUNTS["2026-11-20_004_993749e1571ba9fe.txt"] == row["new"]
    assert row["already_ingested"] is False


def test_data_dir_from_the_environment(tmp_path):
    target = tmp_path / "elsewhere"
    result = subprocess.run(
        [str(PAPERFEED), "migrate"],
        capture_output=True,
        text=True,
        env={**os.environ, "PAPERFEED_DATA_DIR": str(target)},
    )
    assert result.returncode == 0, result.stderr
    assert (target / "paperfeed.db").is_file()


def test_malformed_file_is_rejected_with_its_name_and_line_and_no_change(data_dir, tmp_path):
    assert (
        run(
            data_dir, "ingest", str(SAMPLE_DUMPS / "2026-11-16_000_7b2f11b90d39ad34.txt")
        ).returncode
        == 0
    )
    with store.connect(data_dir / "paperfeed.db") as db:
        before = snapshot(db)
    truncated = tmp_path / "truncated.txt"
    lines = (SAMPLE_DUMPS / "2026-11-18_002_928061713d22a60e.txt").read_text().splitlines()
    truncated.write_text("\n".join(lines[:-1]))  # the last abstract is missing
    result = run(data_dir, "ingest", str(truncated))
    assert result.returncode == 1
    assert f"truncated.txt:{len(lines) - 1}:" in result.stderr
    assert "no abstract" in result.stderr and "nothing was ingested" in result.stderr
    binary = tmp_path / "image.txt"
    binary.write_bytes(bytes(range(256)) * 4)
    result = run(data_dir, "ingest", str(binary))
    assert result.returncode == 1 and "image.txt:1: binary data" in result.stderr
    with store.connect(data_dir / "paperfeed.db") as db:
        assert snapshot(db) == before


def test_missing_path_is_a_usage_error(data_dir):
    result = run(data_dir, "ingest", str(data_dir / "nope.txt"))
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_inbox_moves_good_files_to_processed_and_bad_ones_to_failed(data_dir):
    inbox = data_dir / "inbox"
    inbox.mkdir()
    shutil.copy(SAMPLE_DUMPS / "2026-11-20_004_993749e1571ba9fe.txt", inbox / "today.txt")
    (inbox / "broken.txt").write_bytes(b"\xff\xfe garbage")
    old = 1_600_000_000
    for path in inbox.iterdir():
        os.utime(path, (old, old))
    result = run(data_dir, "inbox")
    assert result.returncode == 0, result.stderr
    assert "1 ingested (145 new papers)" in result.stdout and "1 failed" in result.stdout
    assert (inbox / "processed" / "today.txt").is_file()
    assert (inbox / "failed" / "broken.txt").is_file()
    assert "UTF-8" in (inbox / "failed" / "broken.txt.error.txt").read_text()
    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == []


def test_digest_now_in_the_future_is_refused_unless_it_is_a_dry_run(data_dir, db):
    """Found by a user trial: `paperfeed digest --now <tomorrow>` sent tomorrow's digests
    at once, and tomorrow's run found them sent (a period's digest goes out once)."""
    before = snapshot(db)
    refused = run(data_dir, "digest", "--now", "2099-01-05T07:30:00+00:00")
    assert refused.returncode == 2
    assert "in the future" in refused.stderr and "--dry-run" in refused.stderr
    assert snapshot(db) == before
    dry = run(data_dir, "digest", "--now", "2099-01-05T07:30:00", "--dry-run")
    assert dry.returncode == 0 and "dry run: nothing sent" in dry.stdout
    past = run(data_dir, "digest", "--now", "2025-03-10T07:05:00+01:00")
    assert past.returncode == 0, past.stderr
