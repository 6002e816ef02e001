"""A full disk (issue 20, item 5), on a real small tmpfs: reading never depends on a write
succeeding, ``/healthz`` says ``degraded``, a rating is a clear 503, and ``refit`` fails
with one line and publishes nothing. Everything recovers once space is freed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from recommender import bundles, store

from .._web import copy_corpus, csrf_token, rate_by_fetch


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    # Settings are read once, when the app starts: the threshold is set before it does.
    monkeypatch.setenv("PAPERFEED_MIN_FREE_MB", "1")
    disk = tmp_path / "small-disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield copy_corpus(disk / "data")
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(folder: Path) -> Path:
    """Write a file until the disk is full; returns it (delete it to free the space)."""
    filler = folder / "filler"
    # Unbuffered: a buffered file keeps the bytes a full disk refused and raises again when
    # it is closed (whether it does depends on how much space the data dir left).
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
        except OSError:
            pass
    return filler


def impressions(data_dir: Path) -> int:
    with store.connect(data_dir / "paperfeed.db") as db:
        return db.execute("SELECT count(*) FROM impressions").fetchone()[0]


def test_a_full_disk_leaves_reading_up_and_says_degraded(ada, data_dir):
    assert ada.get("/healthz").get_json()["status"] == "ok"
    token = csrf_token(ada)
    filler = fill(data_dir)

    feed = ada.get("/feed.json")
    assert feed.status_code == 200 and feed.get_json()["papers"]
    assert ada.get("/").status_code == 200
    assert impressions(data_dir) == 0  # skipped (and logged), not a 500

    health = ada.get("/healthz").get_json()
    assert health["status"] == "degraded" and health["disk_free_mb"] < 1
    assert "below the 1 MB of PAPERFEED_MIN_FREE_MB" in health["disk_problem"]

    paper = feed.get_json()["papers"][0]["paper_id"]
    rated = ada.post(
        f"/papers/{paper}/rate",
        data={"value": "like"},
        headers={"X-CSRFToken": token, "Accept": "application/json"},
    )
    assert rated.status_code == 503 and "disk is full" in rated.get_json()["error"]

    before = bundles.bundle_names(data_dir / "models")
    refit = subprocess.run(
        [
            str(Path(sys.executable).with_name("paperfeed")),
            "--data-dir",
            str(data_dir),
            "refit",
            "--json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PAPERFEED_TEXT_MODEL": "tfidf"},
        timeout=120,
    )
    assert refit.returncode == 1
    lines = refit.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: the disk is full"), refit.stderr
    assert "free some space under" in lines[0]
    assert bundles.bundle_names(data_dir / "models") == before  # nothing half-published
    assert not [p for p in (data_dir / "models/bundles").iterdir() if p.name.startswith(".")]

    filler.unlink()
    assert ada.get("/healthz").get_json()["status"] == "ok"
    assert rate_by_fetch(ada, paper, "like").status_code == 200
    ada.get("/")
    assert impressions(data_dir) > 0
