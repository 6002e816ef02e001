"""Every ranking signal through the real ranking path, and the small-install blend.

The known answer (a checkerboard): people of one parity like the papers of the same parity,
and papers of one parity are close in text. Person 0 has not rated paper 4 yet: whatever
signal ranks alone, paper 4 must come first among person 0's unrated papers.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender import features
from recommender.collab import CollabModel
from recommender.content import ContentModel
from recommender.model import Recommender
from recommender.quantized import Int8Rows
from recommender.ranking import Profile, rank_for_user, rank_users
from recommender.taste import TasteModel
from recommender.text import TfidfText
from recommender.weights import BANDS, FEATURES, BlendWeights, SmallInstall
from tests._corpus import checkerboard as _checkerboard

N_PEOPLE, N_ITEMS, WITHHELD = 20, 20, (0, 4)


def checkerboard() -> sp.csr_matrix:
    return _checkerboard(N_PEOPLE, N_ITEMS, WITHHELD)


def parity_vectors(seed: int = 0) -> np.ndarray:
    """Unit vectors: even papers around one direction, odd ones around another, plus noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 0.3, (N_ITEMS, 8)).astype(np.float32)
    X[0::2, 0] += 1.0
    X[1::2, 1] += 1.0
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def only(signal: str, *, small: SmallInstall | None = None, self_tuned=True) -> BlendWeights:
    table = {b: {f: float(f == signal) for f in FEATURES} for b in BANDS}
    return BlendWeights({"cold": table, "warm": table}, {"self_tuned": self_tuned}, None, small)


def model(weights: BlendWeights, user_items=None) -> Recommender:
    X = parity_vectors()
    ui = checkerboard() if user_items is None else user_items
    collab = CollabModel(factors=8, regularization=0.1, iterations=20, random_state=0)
    return Recommender(
        text=TfidfText().fit(["even", "odd"]),
        item_vectors=X,
        content=ContentModel(k=5).fit(X),
        collab=collab.fit(ui, X),
        weights=weights,
        text_kind="dense",
        co_ratings=int(ui.nnz),
        n_people=int((np.diff(ui.indptr) > 0).sum()),
        taste=TasteModel().fit(X),
    )


def person_zero() -> Profile:
    liked = [i for i in range(0, N_ITEMS, 2) if i != WITHHELD[1]]
    return Profile(liked=liked, uidx=0)


@pytest.mark.parametrize("signal", [f for f in FEATURES if f != "popularity"])
def test_every_personal_signal_ranks_the_withheld_paper_first(signal):
    ranked = rank_for_user(model(only(signal)), person_zero(), n=5)
    assert ranked[0].pidx == WITHHELD[1]
    assert not {r.pidx for r in ranked} & set(person_zero().liked)


def test_popularity_ranks_the_most_liked_papers_first():
    ranked = rank_for_user(model(only("popularity")), person_zero(), n=10)
    likes = np.asarray(checkerboard().sum(axis=0)).ravel()
    assert [likes[r.pidx] for r in ranked] == sorted((likes[r.pidx] for r in ranked), reverse=True)


def test_taste_prefers_what_sets_the_likes_apart_over_what_every_paper_shares():
    """A paper close to the corpus mean has a high cosine to anyone's centroid; the whitened
    taste model ranks the paper that is distinctive in the liked direction above it."""
    rng = np.random.default_rng(1)
    X = rng.normal(0, 0.05, (200, 6)).astype(np.float32)
    X[:, 0] += 1.0  # what every paper shares
    X[:5, 1] += 0.3  # the person's liked papers: a distinctive direction
    X[5, 1] += 0.3  # candidate: as distinctive, far from what every paper shares
    X[5, 0] -= 0.7
    X[6] = X[6:].mean(axis=0)  # candidate: the most generic paper
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    rec = Recommender(
        text=TfidfText().fit(["common papers", "distinct papers"]),
        item_vectors=X,
        content=ContentModel(k=5).fit(X),
        collab=None,
        weights=only("taste"),
        taste=TasteModel().fit(X),
    )
    profile = Profile(liked=[0, 1, 2, 3, 4])
    by_taste = rank_for_user(rec, profile, candidates=[5, 6], n=2)
    rec.weights = only("centroid")
    by_centroid = rank_for_user(rec, profile, candidates=[5, 6], n=2)
    assert [r.pidx for r in by_centroid] == [6, 5]  # the centroid falls for the generic one
    assert [r.pidx for r in by_taste] == [5, 6]


SMALL = SmallInstall(content={"taste": 0.7, "knn": 0.1, "centroid": 0.2})


def test_alone_the_ranking_is_exactly_the_content_ranking():
    one = checkerboard()[:1]
    alone = model(only("collab", small=SMALL, self_tuned=False), one)
    weights = alone.blend_for(0.0, 9, True, 0.0)
    assert weights == pytest.approx(
        {"taste": 0.7, "knn": 0.1, "centroid": 0.2, "collab": 0.0, "popularity": 0.0}
    )
    content = model(
        BlendWeights(
            {r: {b: {"taste": 0.7, "knn": 0.1, "centroid": 0.2} for b in BANDS} for r in ("cold",)},
            {"self_tuned": True},
        ),
        one,
    )
    got = rank_for_user(alone, person_zero(), n=10)
    want = rank_for_user(content, person_zero(), n=10)
    assert [(r.pidx, round(r.score, 5)) for r in got] == [(r.pidx, round(r.score, 5)) for r in want]


def test_colleagues_count_in_proportion_to_the_evidence_for_this_person():
    assert SMALL.collab_share(0, n_people=5) == 0.0
    assert SMALL.collab_share(100, n_people=1) == 0.0  # nobody else rated
    shares = [SMALL.collab_share(e, n_people=5) for e in (1, 5, 20, 200)]
    assert shares == sorted(shares) and shares[1] == pytest.approx(SMALL.collab_max / 2)
    assert shares[-1] < SMALL.collab_max
    weights = SMALL.for_person(5, n_people=5)
    assert weights["popularity"] == 0.0  # a colleague's like is never a verdict
    assert sum(weights.values()) == pytest.approx(1.0)


def test_match_is_the_share_of_the_persons_likes_scored_at_most_as_high():
    rec = model(only("taste"))
    ranked = rank_for_user(rec, person_zero(), n=N_ITEMS)
    matches = {r.pidx: r.match for r in ranked}
    # the unrated paper of the liked kind falls among the likes; the other kind below them all
    assert 0 < matches[WITHHELD[1]] <= 1
    assert {matches[i] for i in range(1, N_ITEMS, 2)} == {0.0}
    assert rank_for_user(rec, Profile(liked=[0]), n=3)[0].match is None  # one like: no scale


@pytest.mark.parametrize("stored", ["float32", "int8"])
@pytest.mark.parametrize("n_rows", [1, 3, features.SKINNY_ROWS, features.SKINNY_ROWS + 3])
def test_dense_products_row_by_row_equal_one_matrix_product(monkeypatch, n_rows, stored):
    """A view's few rows are multiplied one at a time over cache-sized blocks of candidates
    (blocks of 3 here, so the 20 papers cross block edges); many rows go through one matrix
    product. Both give the product of the rows and the candidates' vectors, whether the
    candidates are the whole index (its rows read in place) or a few of them (gathered),
    and whether the vectors are float32 or int8 rows (a bundle's: widened a block at a
    time, blocks of 5 here)."""
    monkeypatch.setattr(features, "SKINNY_BLOCK", 3)
    monkeypatch.setattr(features, "WIDEN_ROWS", 5)
    rec = model(only("taste"))
    if stored == "int8":
        rec.item_vectors = Int8Rows.quantize(rec.item_vectors)
    X = np.asarray(rec.item_vectors)
    assert stored == "int8" or np.array_equal(X, parity_vectors())
    rows = np.random.default_rng(n_rows).normal(size=(n_rows, X.shape[1])).astype(np.float32)
    index = features.CandidateIndex.build(rec, np.arange(N_ITEMS))
    for candidates in (np.arange(N_ITEMS), np.array([19, 3, 7]), np.arange(2, 17)):
        ctx = features.context(rec, [Profile()], candidates, index)
        got = features._dense_products(ctx, rows)
        assert got.shape == (n_rows, len(candidates)) and got.dtype == np.float32
        np.testing.assert_allclose(got, rows @ X[candidates].T, rtol=1e-5, atol=1e-6)


def test_a_block_where_only_some_people_disliked_anything_ranks_each_as_alone():
    """Digests and the fit's weight tuning rank people in blocks, each with their own taste
    direction: people with dislikes beside people without rank as they do alone. (Such a
    block crashed the taste directions, so an install with embeddings where one person of
    several had disliked a paper could not refit.)"""
    rec = model(only("taste"))
    profiles = [
        Profile(liked=[0, 2]),
        Profile(liked=[1, 3], disliked=[5]),
        Profile(liked=[4]),
        Profile(liked=[6, 8], disliked=[9, 11]),
    ]
    together = rank_users(rec, profiles, n=6)
    for profile, got in zip(profiles, together, strict=True):
        alone = rank_users(rec, [profile], n=6)[0]
        assert [(r.pidx, round(r.score, 4)) for r in got] == [
            (r.pidx, round(r.score, 4)) for r in alone
        ]
