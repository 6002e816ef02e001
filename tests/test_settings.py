"""Every setting the README documents has an effect: a non-default value reaches the one
Settings object (read once, at start), and for the key ones, the code path that uses it."""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from recommender import pipeline, store
from recommender.config import ConfigError, load_settings
from recommender.dumps import parse_dump

from .conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
DOCUMENTED = re.findall(r"^\| `(PAPERFEED_[A-Z_]+)` \|", README, flags=re.MULTILINE)

#: For each documented setting: a value other than its default, and where it must show.
EFFECTS = {
    "PAPERFEED_DATA_DIR": ("/srv/pf", lambda s: s.data_dir == Path("/srv/pf")),
    "PAPERFEED_INBOX_DIR": ("/srv/in", lambda s: s.inbox_dir == Path("/srv/in")),
    "PAPERFEED_ENV": ("production", lambda s: s.production),
    "PAPERFEED_SECRET_KEY": ("k" * 40, lambda s: s.secret_key() == "k" * 40),
    "PAPERFEED_TEXT_MODEL": ("embeddings:/m", lambda s: s.text_kind == "embeddings:/m"),
    "PAPERFEED_CACHE_DIR": ("/srv/cache", lambda s: s.cache_dir == Path("/srv/cache")),
    "PAPERFEED_FIT_THREADS": ("7", lambda s: s.fit_threads == 7),  # the default is at most 4
    "PAPERFEED_BASE_URL": ("https://pf.example/", lambda s: s.base_url == "https://pf.example"),
    "PAPERFEED_SMTP_URL": ("smtp://mx:25", lambda s: s.smtp_url == "smtp://mx:25"),
    "PAPERFEED_MAIL_FROM": ("pf <pf@x.org>", lambda s: s.mail_from == "pf <pf@x.org>"),
    "PAPERFEED_PROXY_HOPS": ("2", lambda s: s.proxy_hops == 2),
    "PAPERFEED_REMOTE_IMAGES": ("1", lambda s: s.remote_images is True),
    "PAPERFEED_HF_API_URL": ("http://hf/", lambda s: s.sources.hf_api_url == "http://hf"),
    "PAPERFEED_ARXIV_API_URL": ("http://ax", lambda s: s.sources.arxiv_api_url == "http://ax"),
    "PAPERFEED_ARXIV_CATEGORIES": (
        "math.CO, cs.DS",
        lambda s: s.sources.arxiv_categories == ("math.CO", "cs.DS"),
    ),
    "PAPERFEED_ARXIV_DELAY": ("0.5", lambda s: s.sources.arxiv_delay == 0.5),
    "PAPERFEED_ARXIV_PAGE_SIZE": ("50", lambda s: s.sources.arxiv_page_size == 50),
    "PAPERFEED_ARXIV_MAX_RESULTS": ("70", lambda s: s.sources.arxiv_max_results == 70),
    "PAPERFEED_FETCH_SOURCES": ("arxiv", lambda s: s.sources.fetch_sources == ("arxiv",)),
    "PAPERFEED_FETCH_HOUR": ("9", lambda s: s.sources.fetch_hour == 9),
    "PAPERFEED_FETCH_DAYS": ("5", lambda s: s.sources.fetch_days == 5),
    "PAPERFEED_FETCH_TIMEOUT": ("7", lambda s: s.sources.timeout == 7),
    "PAPERFEED_FETCH_MAX_MB": ("2", lambda s: s.sources.max_bytes == 2 * 2**20),
    "PAPERFEED_FETCH_RETRIES": ("1", lambda s: s.sources.retries == 1),
    "PAPERFEED_FETCH_BACKOFF": ("0.5", lambda s: s.sources.backoff == 0.5),
    "PAPERFEED_FETCH_MAX_WAIT": ("9", lambda s: s.sources.max_wait == 9),
    "PAPERFEED_MIN_FREE_MB": ("5", lambda s: s.min_free_bytes == 5 * 2**20),
    "PAPERFEED_DB_BUSY_TIMEOUT": ("3", lambda s: s.busy_timeout == 3),
    "PAPERFEED_UNSUBSCRIBE_MAILTO": ("u@x.org", lambda s: s.unsubscribe_mailto == "u@x.org"),
}


def test_every_documented_setting_is_known_here():
    assert len(DOCUMENTED) >= 20, "the README's settings table was not found"
    assert sorted(set(DOCUMENTED) - EFFECTS.keys()) == []  # a new setting needs an entry


@pytest.mark.parametrize("name", sorted(EFFECTS))
def test_a_documented_setting_reaches_the_settings(name, tmp_path):
    value, effect = EFFECTS[name]
    base = {"PAPERFEED_DATA_DIR": str(tmp_path)}
    default = load_settings(environ=base)
    chosen = load_settings(environ={**base, name: value})
    assert effect(chosen), f"{name}={value!r} did not reach the settings"
    if name != "PAPERFEED_SECRET_KEY":  # the default key is a random one made on demand
        assert not effect(default), f"{name}: the test value is the default"


def test_settings_are_read_once_and_cannot_change(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERFEED_BASE_URL", "https://first.example")
    settings = load_settings(tmp_path)
    monkeypatch.setenv("PAPERFEED_BASE_URL", "https://later.example")
    assert settings.base_url == "https://first.example"
    with pytest.raises(FrozenInstanceError):
        settings.base_url = "https://other.example"  # type: ignore[misc]


def test_a_bad_value_names_its_setting_at_start(tmp_path):
    with pytest.raises(ConfigError, match="PAPERFEED_FETCH_HOUR must be a number from 0 to 23"):
        load_settings(tmp_path, {"PAPERFEED_FETCH_HOUR": "25"})


def test_refits_keep_the_embedding_cache_in_the_cache_dir(tmp_path):
    """PAPERFEED_CACHE_DIR is documented for refits: the sentence embeddings a refit
    computes are kept there (they were kept in <data dir>/cache whatever it said)."""
    pytest.importorskip("sentence_transformers")
    cache = tmp_path / "elsewhere"
    settings = load_settings(
        tmp_path / "data",
        {"PAPERFEED_CACHE_DIR": str(cache), "PAPERFEED_TEXT_MODEL": "embeddings"},
    )
    db = store.open_db(settings.db_path)
    rows = [
        {"title": "Speech recognition with transformers", "abstract": "Spoken words to text."},
        {"title": "Protein folding with graphs", "abstract": "Residues and contacts."},
        {"title": "Automatic transcription of talks", "abstract": "Audio of lectures to text."},
    ]
    dump = "\n".join(json.dumps(r) for r in rows).encode()
    store.record_dump(db, parse_dump(dump, fmt="jsonl"), dump_date="2026-12-01")
    pipeline.refit(db, settings)
    db.close()
    assert list(cache.glob("embeddings-*.npz"))
    assert not (settings.data_dir / "cache").exists()


def test_the_inbox_dir_is_where_the_scheduler_looks(tmp_path):
    from recommender.jobs import ingest_inbox

    inbox = tmp_path / "drop"
    inbox.mkdir()
    dropped = inbox / "2026-12-01_000_a.jsonl"
    dropped.write_text(json.dumps({"title": "A paper in the inbox", "abstract": "Dropped."}))
    os.utime(dropped, (time.time() - 60, time.time() - 60))  # written in full a minute ago
    settings = load_settings(tmp_path / "data", {"PAPERFEED_INBOX_DIR": str(inbox)})
    report = ingest_inbox(settings)
    assert report.ingested == ["2026-12-01_000_a.jsonl"] and report.new_papers == 1


def test_the_fit_threads_reach_the_refit_and_change_nothing_in_the_bundle(tmp_path, monkeypatch):
    """PAPERFEED_FIT_THREADS: the refit's neighbour search runs its blocks on that many
    threads, and the bundle's arrays are those of a refit on one thread, bit for bit."""
    import numpy as np

    from recommender import blocks
    from recommender.bundles import current_name
    from tests._corpus import corpus

    asked = []
    real = blocks.map_blocks

    def spy(work, parts, threads):
        asked.append(threads)
        return real(work, parts, threads)

    monkeypatch.setattr(blocks, "map_blocks", spy)
    monkeypatch.setattr("recommender.content.map_blocks", spy)
    texts, _ = corpus()
    rows = [{"title": t.split(".")[0], "abstract": t} for t in texts]
    dump = parse_dump("\n".join(json.dumps(r) for r in rows).encode(), fmt="jsonl")
    arrays = {}
    for threads in ("1", "3"):
        settings = load_settings(tmp_path / threads, {"PAPERFEED_FIT_THREADS": threads})
        db = store.open_db(settings.db_path)
        store.record_dump(db, dump, dump_date="2026-12-01")
        pipeline.refit(db, settings)
        db.close()
        folder = settings.models_dir / "bundles" / current_name(settings.models_dir)
        arrays[threads] = {p.name: np.load(p) for p in sorted(folder.glob("*.npy"))}
    assert asked == [1, 3]
    assert arrays["1"].keys() == arrays["3"].keys() and "serving.nbr_indices.npy" in arrays["1"]
    for name, values in arrays["1"].items():
        assert np.array_equal(values, arrays["3"][name]), name
