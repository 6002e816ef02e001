"""Fit-time self-tuning: blend weights learned on a held-out slice of the ratings."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.model import fit_recommender
from recommender.tuning import holdout_split, simplex
from recommender.weights import BANDS, FEATURES, BlendWeights

EVEN = {b: dict.fromkeys(FEATURES, 1 / len(FEATURES)) for b in BANDS}
SHIPPED = BlendWeights({"cold": EVEN, "warm": EVEN}, {"source": "test"})


def _likes(pairs, shape) -> sp.csr_matrix:
    rows, cols = zip(*pairs, strict=True)
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=shape)


def collab_only_corpus(seed: int = 0):
    """Texts are random words (no topics); 10 groups of 15 people each like 12 of their
    group's 20 papers: only who liked what says anything about a held-out like."""
    rng = np.random.default_rng(seed)
    vocab = [f"word{i}" for i in range(400)]
    texts = [" ".join(rng.choice(vocab, size=25)) for _ in range(200)]
    pairs = []
    for person in range(150):
        group = person % 10
        for j in rng.choice(20, size=12, replace=False):
            pairs.append((person, group * 20 + int(j)))
    return texts, _likes(pairs, (150, 200))


def text_only_corpus(seed: int = 0):
    """Ten topics with their own words; every person likes papers of one topic, and no paper
    is liked by two people: only the text links a held-out like to the others."""
    rng = np.random.default_rng(seed)
    texts, topic_of = [], []
    for t in range(10):
        words = [f"topic{t}term{i}" for i in range(15)]
        noise = [f"noise{i}" for i in range(200)]
        for _ in range(60):
            texts.append(" ".join([*rng.choice(words, 8), *rng.choice(noise, 8)]))
            topic_of.append(t)
    pairs = []
    for t in range(10):
        papers = rng.permutation(np.flatnonzero(np.asarray(topic_of) == t))
        for k in range(30):  # 30 people per topic, 2 papers each: every paper liked once
            pairs += [(t * 30 + k, int(p)) for p in papers[k * 2 : (k + 1) * 2]]
    return texts, _likes(pairs, (300, len(texts)))


def _learned(rec, regime: str) -> list[dict[str, float]]:
    bands = rec.tuning_["regimes"][regime].values()
    return [e["learned"] for e in bands if "learned" in e]


def test_only_collaborative_signal_informative_gives_it_the_weight():
    texts, likes = collab_only_corpus()
    rec = fit_recommender(
        texts, likes, weights=SHIPPED, tuning_options={"min_people": 20, "learn_warm": True}
    )
    assert rec.tuning_["status"] == "tuned"
    learned = _learned(rec, "warm")
    assert learned, rec.tuning_
    for w in learned:
        assert w["collab"] >= 0.7, w
    # and the weights the model ranks with moved from the shipped ones towards those
    assert rec.weights.meta["self_tuned"]
    assert rec.weights.for_person("warm", 5)["collab"] > 0.25


def test_only_text_informative_gives_the_content_signals_the_weight():
    texts, likes = text_only_corpus()
    rec = fit_recommender(texts, likes, weights=SHIPPED, tuning_options={"min_people": 20})
    learned = _learned(rec, "cold")
    assert learned, rec.tuning_
    for w in learned:
        assert w["knn"] + w["centroid"] >= 0.7, w
    assert rec.tuning_["regimes"]["warm"]["1-2"]["people"] == 0  # no paper has two likes


def test_too_few_ratings_keep_the_shipped_weights():
    texts, likes = collab_only_corpus()
    small = likes[:12]  # 12 people: below the minimum in every band
    rec = fit_recommender(texts, small, weights=SHIPPED)
    assert rec.tuning_["status"] == "defaults"
    assert rec.weights is SHIPPED
    assert all(e["learned_share"] == 0 for r in rec.tuning_["regimes"].values() for e in r.values())


def test_learned_share_grows_with_validation_people():
    texts, likes = collab_only_corpus()
    rec = fit_recommender(texts, likes, weights=SHIPPED, tuning_options={"min_people": 20})
    for regime in rec.tuning_["regimes"].values():
        for entry in regime.values():
            n = entry["people"]
            expected = n / (n + rec.tuning_["prior_people"]) if "learned" in entry else 0.0
            assert entry["learned_share"] == pytest.approx(expected, abs=1e-3)
            mixed = entry["weights"]
            assert sum(mixed.values()) == pytest.approx(1.0, abs=1e-3)


def test_tuning_report_is_plain_json_and_off_when_asked():
    texts, likes = collab_only_corpus()
    rec = fit_recommender(texts, likes, tuning_options={"min_people": 20})
    again = json.loads(json.dumps(rec.tuning_))
    assert again == rec.tuning_ and again["seconds"] >= 0 and again["fit_seconds"] >= 0
    off = fit_recommender(texts, likes, weights=SHIPPED, tune=False)
    assert off.tuning_["status"] == "off" and off.weights is SHIPPED
    assert fit_recommender(texts).tuning_["status"] == "off"  # no ratings at all


def test_holdout_split_hides_cold_papers_entirely_and_one_warm_like_per_person():
    pairs = [(u, i) for u in range(6) for i in range(10) if (u + i) % 3 != 0]
    likes = _likes([*pairs, (0, 11)], shape=(6, 12))
    likes[0, 11] = -1  # a dislike stays in training
    h = holdout_split(likes, cold_share=0.2, seed=3)
    train = h.train.toarray()
    full = likes.toarray()
    assert len(h.cold_items) == 2
    assert not train[:, h.cold_items].any()  # no rating of a cold paper is left
    for u in range(6):
        liked_cold = {int(i) for i in h.cold_items if full[u, i] > 0}
        assert set(h.cold_truth.get(u, []).tolist() if u in h.cold_truth else []) == liked_cold
    for u, i in h.warm_truth.items():
        assert full[u, i] > 0 and train[u, i] == 0  # held out for this person...
        assert (train[:, i] > 0).any()  # ...and still liked by someone else
    assert train[0, 11] == -1
    # every other rating is kept exactly
    hidden = {(u, i) for u, i in h.warm_truth.items()}
    for u, i in zip(*np.nonzero(full), strict=True):
        if i not in h.cold_items and (u, i) not in hidden:
            assert train[u, i] == full[u, i]


def test_simplex_rows_sum_to_one():
    grid = simplex(0.25, 3)
    assert len(grid) == 15
    assert np.allclose(grid.sum(axis=1), 1)
