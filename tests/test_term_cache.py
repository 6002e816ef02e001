"""The term-count cache: a TF-IDF fit that counts only the texts it has not seen gives the
same model as one that counts them all, and a damaged or unwritable cache costs time only."""

import logging
import random

import numpy as np
import pytest

from recommender import term_cache
from recommender.text import TfidfText, paper_text
from tests._corpus import corpus

from .conftest import REPO, SAMPLE_DUMPS


def _texts(n: int, tag: str = "") -> list[str]:
    """Distinct texts from the shipped sample dumps, long enough to prune and to share terms."""
    lines = []
    for path in sorted((REPO / "samples" / "dumps").iterdir()):
        lines += [line for line in path.read_text("utf-8").splitlines() if len(line) > 200]
    return [f"{line} {tag}{i}" for i, line in enumerate(lines[:n])]


def _same_fit(a: TfidfText, A, b: TfidfText, B) -> None:
    assert list(a.terms_) == list(b.terms_)
    np.testing.assert_array_equal(a.vectorizer_.idf_, b.vectorizer_.idf_)
    for part in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(A, part), getattr(B, part))


def _cache_file(folder):
    files = sorted(folder.glob("terms-*.npz"))
    assert len(files) == 1, files
    return files[0]


def test_a_fit_from_cached_counts_is_the_fit_from_counting(tmp_path, caplog):
    """A corpus fitted once (all counted), then grown by new texts, reordered and with a
    text repeated: each cached fit counts only the texts the cache lacks and equals the fit
    of the same texts without a cache."""
    caplog.set_level(logging.INFO, logger="recommender.text")
    old, new = _texts(300), _texts(60, "new")[:60]
    assert len(set(old)) == 300

    def both(texts):
        cached, plain = TfidfText(cache_dir=tmp_path), TfidfText()
        A, B = cached.fit_transform(texts), plain.fit_transform(texts)
        _same_fit(cached, A, plain, B)
        return A

    caplog.clear()
    both(old)
    assert "300 of 300 texts counted" in caplog.text
    first = _cache_file(tmp_path)
    assert len(term_cache.load(first).keys) == 300

    caplog.clear()
    grown = old + new
    both(grown)
    assert "60 of 360 texts counted" in caplog.text
    assert len(term_cache.load(first).keys) == 360

    caplog.clear()
    mixed = grown[::-1] + grown[:5]  # another order, a text twice
    random.Random(0).shuffle(mixed)
    stamp = first.stat().st_mtime_ns
    both(mixed)
    assert "texts counted" not in caplog.text  # all cached: nothing counted, nothing written
    assert first.stat().st_mtime_ns == stamp
    both(old[:40])  # a subset: pruned by its own document frequencies


def test_another_tokenising_setting_has_its_own_file(tmp_path):
    texts = _texts(120)
    TfidfText(cache_dir=tmp_path).fit(texts)
    TfidfText(cache_dir=tmp_path, ngram_range=(1, 3)).fit(texts)
    assert len(list(tmp_path.glob("terms-*.npz"))) == 2
    cached = TfidfText(cache_dir=tmp_path, ngram_range=(1, 3))
    plain = TfidfText(ngram_range=(1, 3))
    _same_fit(cached, cached.fit_transform(texts), plain, plain.fit_transform(texts))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "ids past the vocabulary"])
def test_a_damaged_cache_is_counted_again_and_replaced(tmp_path, caplog, damage):
    texts = _texts(150)
    TfidfText(cache_dir=tmp_path).fit(texts)
    path = _cache_file(tmp_path)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a cache" * 100)
    else:  # a whole, readable file whose rows point past its terms
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
        arrays["ids"] = arrays["ids"] + 10**6
        np.savez(path, **arrays)
    caplog.set_level(logging.INFO)
    cached, plain = TfidfText(cache_dir=tmp_path), TfidfText()
    _same_fit(cached, cached.fit_transform(texts), plain, plain.fit_transform(texts))
    assert "unreadable" in caplog.text and "150 of 150 texts counted" in caplog.text
    assert len(term_cache.load(path).keys) == 150  # replaced by a whole file


def test_a_cache_that_cannot_be_written_costs_the_counting_only(tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    texts, _ = corpus()
    texts = texts * 3
    caplog.set_level(logging.WARNING)
    cached, plain = TfidfText(cache_dir=blocker / "cache"), TfidfText()
    _same_fit(cached, cached.fit_transform(texts), plain, plain.fit_transform(texts))
    assert "not written" in caplog.text


def test_a_refit_keeps_the_term_counts_in_the_cache_dir(tmp_path, monkeypatch):
    """The refit's TF-IDF (the text model here; with embeddings, the bridge's) counts
    through PAPERFEED_CACHE_DIR, a day's publish counts its new papers into it, and the
    refit after counts nothing again."""
    from recommender import pipeline, store
    from recommender.bundles import load_bundle
    from recommender.config import load_settings
    from recommender.ingest import ingest_paths
    from recommender.refit import publish
    from tests._web import NEW_DAY, NEW_DUMP, OLD_DAY, OLD_DUMP

    data, cache = tmp_path / "data", tmp_path / "cache"
    data.mkdir()
    monkeypatch.setenv("PAPERFEED_CACHE_DIR", str(cache))
    db = store.open_db(data / "paperfeed.db")
    ingest_paths(db, [SAMPLE_DUMPS / OLD_DUMP], dump_date=OLD_DAY)
    first = pipeline.refit(db, load_settings(data))
    assert len(term_cache.load(_cache_file(cache)).keys) == first["papers"]
    # a day's publish counts its papers into the cache, for the nightly refit
    ingest_paths(db, [SAMPLE_DUMPS / NEW_DUMP], dump_date=NEW_DAY)
    day = publish(db, load_settings(data))
    assert day["published"] and day["new_papers"] and "refit_because" not in day
    assert len(term_cache.load(_cache_file(cache)).keys) == day["papers"]
    stamp = _cache_file(cache).stat().st_mtime_ns
    second = pipeline.refit(db, load_settings(data))
    assert _cache_file(cache).stat().st_mtime_ns == stamp  # nothing counted, nothing written
    assert second["papers"] == day["papers"]
    fitted = load_bundle(load_settings(data).models_dir, second["version"]).rec.text
    counted = TfidfText().fit([paper_text(t, a) for _, t, a in store.all_papers(db)])
    assert list(fitted.terms_) == list(counted.terms_)
    np.testing.assert_array_equal(fitted.vectorizer_.idf_, counted.vectorizer_.idf_)


def test_a_term_the_cache_cannot_store_is_logged_not_raised(tmp_path, caplog):
    rows = term_cache.TermRows.empty().appended(
        [term_cache.text_key("a")], np.array([0, 1]), np.array([0]), np.array([1.0]), ["a\nb"]
    )
    path = tmp_path / "terms.npz"
    term_cache.save(path, rows)
    assert not path.exists() and "holds a newline" in caplog.text
