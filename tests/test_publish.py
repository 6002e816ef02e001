"""A day's publish reuses the fitted models; a full refit is a separate, rarer job."""

from __future__ import annotations

import copy
import json
import os

import numpy as np
import pytest
import scipy.sparse as sp

from recommender import bundles, jobs, pipeline, store
from recommender.artifacts import load_recommender, save_recommender
from recommender.collab import CollabModel
from recommender.config import load_settings
from recommender.dumps import parse_dump
from recommender.model import default_collab
from recommender.quantized import Int8Rows
from recommender.ranking import CandidateIndex
from recommender.refit import publish
from recommender.taste import TasteModel
from recommender.text import TfidfText, paper_text
from tests._corpus import corpus
from tests._reference import assert_same_neighbourhoods

NEW_DAY = "2026-11-21"
QUANTUM = [
    (
        "Surface Codes for Quantum Error Correction",
        "Quantum error correction with surface codes protects logical qubits; "
        "we decode syndromes of the surface code with matching.",
    ),
    (
        "Decoding Quantum Surface Codes Faster",
        "A faster decoder for quantum error correction on surface codes and "
        "logical qubits under circuit noise.",
    ),
    (
        "Logical Qubits with Low Overhead",
        "Quantum error correction codes beyond the surface code reduce the "
        "overhead of logical qubits.",
    ),
]


def _dump(papers) -> bytes:
    return "\n".join(json.dumps({"title": t, "abstract": a}) for t, a in papers).encode()


@pytest.fixture
def world(tmp_path):
    """The sample corpus, four people who rated papers, a full refit, then a new day."""
    from tests._web import copy_corpus

    data = copy_corpus(tmp_path / "data")
    settings = load_settings(data)
    db = store.open_db(settings.db_path)
    ids = store.paper_ids(db)
    for n in range(4):
        db["users"].insert({"email": f"p{n}@example.org", "created_at": "2026-11-01T00:00:00"})
    people = [r[0] for r in db.execute("SELECT id FROM users ORDER BY id")]
    for n, uid in enumerate(people):
        for pid in ids[n * 3 : n * 3 + 12]:
            pipeline.record_feedback(db, uid, pid, 1)
        pipeline.record_feedback(db, uid, ids[-1 - n], -1)
    fitted = pipeline.refit(db, settings)
    store.record_dump(
        db, parse_dump(_dump(QUANTUM), fmt="jsonl", source="q.jsonl"), dump_date=NEW_DAY
    )
    yield settings, db, people, fitted["version"]
    db.close()


def _columns(index) -> list[dict[int, float]]:
    M = index.neighbours_t.tocsc()
    out = []
    for c in range(M.shape[1]):
        lo, hi = M.indptr[c], M.indptr[c + 1]
        out.append(
            {
                int(j): round(float(v), 5)
                for j, v in zip(M.indices[lo:hi], M.data[lo:hi], strict=True)
            }
        )
    return out


def test_a_publish_adds_the_new_papers_with_the_fitted_models_and_fits_nothing(world):
    settings, db, people, fitted = world
    old = bundles.load_bundle(settings.models_dir, fitted)
    report = publish(db, settings)
    assert report["published"] and "refit_because" not in report
    assert report["new_papers"] == 3 and report["fit_of"] == fitted
    assert "fit" not in report["parts"]
    new = bundles.load_current(settings.models_dir)
    assert new.name == report["version"] != fitted
    assert new.info["fit_of"] == fitted and new.info["fitted_at"] == old.info["fitted_at"]
    n = len(old.paper_ids)
    rows = new.rows_of([r[0] for r in store.papers_after(db, old.max_paper_id)])
    assert list(rows) == [n, n + 1, n + 2]
    # The text model is the fitted one: same vocabulary and idf, new rows transformed by it.
    assert list(new.rec.text.terms_) == list(old.rec.text.terms_)
    expected = old.rec.text.transform([paper_text(t, a) for t, a in QUANTUM])
    assert abs(new.rec.item_vectors[n:] - expected).max() == 0
    assert abs(new.rec.item_vectors[:n] - old.rec.item_vectors).max() == 0
    # The collaborative model is reused: people's factors as fitted, the new papers bridged.
    assert np.array_equal(new.rec.collab.user_factors_, old.rec.collab.user_factors_)
    assert np.array_equal(new.rec.collab.item_factors_[:n], old.rec.collab.item_factors_)
    bridged = old.rec.collab.bridge(expected)  # stored as int8 rows, as a fit stores them
    assert np.array_equal(new.rec.collab.item_factors_[n:], Int8Rows.quantize(bridged)[:])
    assert not new.rec.collab.rated_[n:].any()
    assert new.rec.weights.weights == old.rec.weights.weights
    assert new.info["tuning"] == old.info["tuning"]
    assert np.array_equal(new.onboarding, old.onboarding)  # the fit's topic clusters
    # The served papers' neighbourhoods are a full search's over the extended vectors.
    assert new.info["neighbourhoods"]["kept"] > 0
    full = CandidateIndex.build(new.rec, new.index.candidates)
    assert_same_neighbourhoods(_columns(new.index), _columns(full))
    # The new papers are ranked (not shown unranked as "new since the model was fitted").
    feeds = pipeline.FeedService(settings)
    items = feeds.feed(db, pipeline.FeedQuery(people[0], window="today")).items
    assert sorted(i.title for i in items) == sorted(t for t, _ in QUANTUM)
    assert not {i.reason for i in items} & {"new in this dump", "new since the model was fitted"}


def test_a_like_on_a_paper_published_since_the_refit_counts_for_the_person(world):
    settings, db, people, fitted = world
    publish(db, settings)
    feeds = pipeline.FeedService(settings)
    quantum = [r[0] for r in store.papers_after(db, 0)[-3:]]
    others = store.paper_ids(db)[200:206]
    db["users"].insert({"email": "new@example.org", "created_at": "2026-11-21T00:00:00"})
    newcomer = store.get_user_by_email(db, "new@example.org")["id"]
    query = pipeline.FeedQuery(
        newcomer, window="papers", papers=(*others, *quantum[:2]), page_size=8
    )
    before = [i.paper_id for i in feeds.feed(db, query).items]
    assert set(before[:2]) != set(quantum[:2])
    # The person's models are built from their ratings at request time: a like on a paper
    # no fit has seen pulls its topic up at once, with the published (not refitted) model.
    pipeline.record_feedback(db, newcomer, quantum[2], 1)
    after = feeds.feed(db, query).items
    assert {i.paper_id for i in after[:2]} == set(quantum[:2])
    assert "new since the model was fitted" not in {i.reason for i in after}
    similar = {s["id"] for s in feeds.similar_papers(db, quantum[2], k=2)}
    assert similar == set(quantum[:2])
    assert bundles.load_current(settings.models_dir).info["fit_of"] == fitted


def test_a_publish_without_new_papers_writes_nothing(world):
    settings, db, _, fitted = world
    first = publish(db, settings)
    names = bundles.bundle_names(settings.models_dir)
    again = publish(db, settings)
    assert again["published"] is False and again["version"] == first["version"]
    assert again["new_papers"] == 0
    assert bundles.bundle_names(settings.models_dir) == names


def test_a_publish_refits_in_full_when_the_ratings_changed_enough(world):
    settings, db, people, _ = world
    ids = store.paper_ids(db)
    fitted = bundles.load_current(settings.models_dir).info["ratings"]
    for pid in ids[100 : 100 + int(0.2 * fitted) + 1]:
        pipeline.record_feedback(db, people[3], pid, 1)
    report = publish(db, settings)
    assert report["refit_because"].startswith(f"{store.count_ratings(db)} ratings")
    assert (
        "fit" in report["parts"] and "fit_of" not in bundles.load_current(settings.models_dir).info
    )


def test_a_publish_refits_when_there_is_no_bundle_or_it_is_damaged(world):
    settings, db, _, fitted = world
    folder = settings.models_dir / "bundles" / fitted
    (folder / "bundle.json").write_text("{}")
    report = publish(db, settings)
    assert "cannot be read" in report["refit_because"] and "fit" in report["parts"]


def test_the_ingest_job_publishes_and_the_nightly_job_refits(world):
    settings, db, _, fitted = world
    report = jobs.publish_models(settings)
    assert report["fit_of"] == fitted and report["published"]
    nightly = jobs.refit_models(settings)
    assert "fit" in nightly["parts"]
    assert "fit_of" not in bundles.load_current(settings.models_dir).info


def test_bridged_factors_of_new_papers_equal_what_a_fit_gives_them():
    """Embeddings' bridge (ridge + TF-IDF stacked ridge + kNN): a model fitted with the
    last papers unrated, cut to the papers before them and extended, gives those papers
    the factors the fit gave them."""
    texts, _ = corpus()
    rng = np.random.default_rng(0)
    n, m = len(texts), 7
    X = rng.standard_normal((n, 16)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    tfidf = TfidfText().fit(texts)
    extra = tfidf.transform(texts)
    ratings = sp.random(12, n - m, density=0.2, random_state=1, format="csr")
    ratings.data[:] = 1.0
    user_items = sp.hstack([ratings, sp.csr_matrix((12, m))], format="csr")
    full = default_collab("embeddings").fit(user_items, X, extra)
    params, arrays = full.state()
    cut = {
        k: (v[: n - m] if k in {"item_factors", "item_scales", "rated", "likes"} else v)
        for k, v in arrays.items()
    }
    head = CollabModel.from_state(params, cut)
    grown = head.extended(X, np.arange(n - m, n), extra[n - m :])
    # equal up to float32 rounding before the int8 rounding: at most one step of a row
    step = np.maximum(grown.item_factors_.scales, full.item_factors_.scales)[:, None]
    assert (np.abs(grown.item_factors_[:] - full.item_factors_[:]) <= step * 1.001).all()
    assert np.mean(grown.item_factors_.codes == full.item_factors_.codes) > 0.99
    assert np.allclose(grown.YtY_, full.YtY_, rtol=1e-5, atol=1e-5)
    taste = TasteModel().fit(X)
    cut_taste = copy.copy(taste)
    cut_taste.quad_ = taste.quad_[: n - m]
    assert np.allclose(cut_taste.extended(X[n - m :]).quad_, taste.quad_, rtol=1e-5)


def test_the_stacked_ridge_is_saved_as_the_rows_of_terms_in_rated_papers():
    """A term no rated paper has gets zero coefficients from the fit: the saved ridge keeps
    only the other rows (and which they are), and bridges every paper to the same factors,
    to the bit."""
    texts, _ = corpus()
    rng = np.random.default_rng(0)
    n, m = len(texts), 7
    X = rng.standard_normal((n, 16)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    extra = TfidfText().fit(texts).transform(texts)
    ratings = sp.random(12, n - m, density=0.2, random_state=1, format="csr")
    ratings.data[:] = 1.0
    user_items = sp.hstack([ratings, sp.csr_matrix((12, m))], format="csr")
    full = default_collab("embeddings").fit(user_items, X, extra)
    in_rated = np.unique(extra[np.flatnonzero(full.rated_)].indices)
    zero = np.ones(extra.shape[1], bool)
    zero[in_rated] = False
    assert zero.any() and not full.extra_coef_[zero].any()  # what sparse_cg gives them
    params, arrays = full.state()
    assert np.array_equal(arrays["extra_rows"], in_rated)
    assert np.array_equal(arrays["extra_coef"], full.extra_coef_[in_rated])
    loaded = CollabModel.from_state(params, arrays)
    assert np.array_equal(loaded.bridge(X, extra), full.bridge(X, extra))
    again_params, again = loaded.state()  # a publish saves a loaded model as it was saved
    assert np.array_equal(again["extra_rows"], arrays["extra_rows"])
    assert again["extra_coef"] is loaded.extra_coef_


def test_the_bridge_vocabulary_is_saved_with_the_model(tmp_path):
    from recommender.model import fit_recommender

    texts, _ = corpus()
    rec = fit_recommender(texts, None)
    rec.bridge_text = TfidfText().fit(texts[:10])
    save_recommender(rec, tmp_path)
    loaded = load_recommender(tmp_path)
    got = loaded.bridge_text.transform(texts[10:])
    assert abs(got - rec.bridge_text.transform(texts[10:])).max() == 0


def test_paperfeed_publish_from_the_shell(world):
    """The real command: publishes the day once, then has nothing to do."""
    from tests.test_cli import run

    settings, _, _, fitted = world
    first = run(settings.data_dir, "publish")
    assert first.returncode == 0, first.stderr
    assert f"(3 new, models of {fitted})" in first.stdout
    again = run(settings.data_dir, "publish", "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["published"] is False and report["fit_of"] == fitted


def test_a_publish_runs_with_this_runs_fit_threads_not_the_fits(world):
    """PAPERFEED_FIT_THREADS of the publishing process runs the new papers' kNN bridge (and
    is what the bundle records), not the setting the reused fit was made with."""
    settings, db, _, fitted = world
    fitted_threads = json.loads(
        (settings.models_dir / "bundles" / fitted / "manifest.json").read_text()
    )["collab"]["num_threads"]
    threads = 3 if fitted_threads != 3 else 2
    now = load_settings(settings.data_dir, {**os.environ, "PAPERFEED_FIT_THREADS": str(threads)})
    report = publish(db, now)
    assert report["published"] and not report.get("refit_because")
    manifest = json.loads(
        (settings.models_dir / "bundles" / report["version"] / "manifest.json").read_text()
    )
    assert manifest["collab"]["num_threads"] == threads
