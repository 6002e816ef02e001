from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from recommender import store

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DUMPS = REPO / "samples" / "dumps"
# Distinct papers per sample dump, counted by hand from the files' alternation.
SAMPLE_COUNTS = {
    "2026-11-16_000_7b2f11b90d39ad34.txt": 225,
    # 233 title/abstract pairs, one of them "TRP: Trained Rank Pruning ...", a near-duplicate
    "2026-11-18_002_928061713d22a60e.txt": 232,
    "2026-11-19_003_b22038616ce28914.txt": 219,
    "2026-11-20_004_993749e1571ba9fe.txt": 145,
}

# Tests must never touch a developer's ./var.
os.environ.pop("PAPERFEED_DATA_DIR", None)
# The product default is sentence embeddings; tests that refit through the pipeline use
# TF-IDF (fast, no model load). Embeddings have their own tests (test_text.py), and
# test_text.py checks the default itself.
os.environ.setdefault("PAPERFEED_TEXT_MODEL", "tfidf")
# Refits keep caches (sentence embeddings, term counts) under PAPERFEED_CACHE_DIR: the
# suite's own folder, never the developer's ~/.cache, so a run starts as on a fresh machine.
if "PAPERFEED_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="paperfeed-test-cache-")
    atexit.register(shutil.rmtree, _cache, True)
    os.environ["PAPERFEED_CACHE_DIR"] = _cache


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def db(data_dir: Path):
    database = store.open_db(data_dir / "paperfeed.db")
    yield database
    database.close()


def snapshot(db) -> dict[str, list]:
    """Every row of every table, to compare a database before and after."""
    tables = [
        row[0]
        for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'papers_fts%'"
        ).fetchall()
    ]
    return {t: db.execute(f"SELECT * FROM [{t}] ORDER BY 1").fetchall() for t in sorted(tables)}


@pytest.fixture
def app(data_dir: Path):
    """The web app on a fresh data dir, CSRF on (tests post the page's token)."""
    from web import create_app

    return create_app({"DATA_DIR": str(data_dir), "TESTING": True, "SECRET_KEY": "test-secret"})


@pytest.fixture
def client(app):
    return app.test_client()
