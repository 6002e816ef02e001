"""Collaborative model: checkerboard and bridge known answers, determinism, fast re-rank."""

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.collab import CollabModel
from recommender.text import TfidfText
from tests._corpus import checkerboard, corpus, topical_likes


def fit(user_items, vectors=None, **kw):
    vectors = vectors if vectors is not None else np.eye(user_items.shape[1], dtype=np.float32)
    params = dict(factors=8, regularization=0.1, iterations=20, random_state=0, num_threads=1)
    params.update(kw)
    return CollabModel(**params).fit(user_items, vectors)


def test_checkerboard_withheld_item_ranks_first_among_unrated():
    ui = checkerboard(withheld=(0, 4))
    model = fit(ui)
    scores = model.score(model.user_factors_[0])
    rated = ui[0].indices
    scores[rated] = -np.inf
    assert int(np.argmax(scores)) == 4


def test_recomputed_person_matches_the_fitted_preference():
    ui = checkerboard(withheld=(0, 4))
    model = fit(ui)
    u = model.user_factors_for(liked=ui[0].indices)
    scores = model.score(u)
    scores[ui[0].indices] = -np.inf
    assert int(np.argmax(scores)) == 4
    # a new person (not in the table) gets factors from their likes alone
    new = model.score(model.user_factors_for(liked=[1, 3, 5]))
    assert new[[7, 9]].min() > new[[0, 2]].max()


def test_same_seed_gives_same_factors():
    ui = checkerboard()
    a, b = fit(ui), fit(ui)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)


def test_dislikes_push_similar_items_down():
    ui = checkerboard()
    model = fit(ui)
    liked_only = model.score(model.user_factors_for(liked=[0, 2]))
    with_dislike = model.score(model.user_factors_for(liked=[0, 2], disliked=[4, 6]))
    assert with_dislike[8] < liked_only[8]  # 8 is co-liked with the disliked 4 and 6


def test_bridge_gives_a_new_on_topic_paper_a_collaborative_score():
    texts, topics = corpus()
    new = {5, 11, 17}  # the last paper of each topic: nobody has rated it
    ui = topical_likes(topics, new=new)
    vectors = TfidfText().fit(texts).transform(texts)
    model = fit(ui, vectors, factors=6, bridge_regularization=0.1)
    assert not model.rated_[list(new)].any()
    for person, expected in ((0, 5), (6, 11), (12, 17)):  # one person per topic
        scores = model.score(model.user_factors_[person], items=sorted(new))
        assert sorted(new)[int(np.argmax(scores))] == expected


def test_state_round_trip_scores_identically():
    ui = checkerboard()
    model = fit(ui)
    params, arrays = model.state()
    again = CollabModel.from_state(params, arrays)
    np.testing.assert_allclose(
        again.score(again.user_factors_for([0, 2])), model.score(model.user_factors_for([0, 2]))
    )


def test_no_ratings_at_all_gives_zero_scores():
    model = fit(sp.csr_matrix((3, 5), dtype=np.float32))
    assert np.all(model.score(model.user_factors_for([1])) == pytest.approx(0))


def test_batched_user_factors_solve_the_same_normal_equations():
    model = fit(checkerboard(withheld=(0, 4)))
    rng = np.random.default_rng(0)
    n_items = model.item_factors_.shape[0]
    liked = [rng.choice(n_items, size=k, replace=False) for k in (0, 1, 3, 3, 5)]
    disliked = [[], [2], [], [0, 1], [n_items - 1]]
    batch = model.user_factors_batch(liked, disliked)
    for li, di, got in zip(liked, disliked, batch, strict=True):
        idx = np.concatenate([li, di]).astype(int)
        conf = np.r_[np.full(len(li), model.alpha), np.full(len(di), model.alpha)]
        pref = np.r_[np.ones(len(li)), np.zeros(len(di))]
        Y = model.item_factors_[idx].astype(np.float64)
        A = model.YtY_ + (Y.T * (conf - 1)) @ Y + model.regularization * np.eye(model.factors)
        want = np.linalg.solve(A, Y.T @ (conf * pref)) if len(idx) else np.zeros(model.factors)
        np.testing.assert_allclose(got, want, atol=1e-5)
        assert np.array_equal(got, model.user_factors_for(li, di))


def test_knn_bridge_copies_the_factors_of_the_nearest_rated_papers():
    ui = checkerboard(withheld=(0, 4))
    ui = sp.lil_matrix(ui)
    ui[:, 18] = 0  # paper 18 (even) is new: nobody has rated it
    ui = sp.csr_matrix(ui)
    ui.eliminate_zeros()
    vectors = np.zeros((20, 2), np.float32)
    vectors[0::2, 0] = 1.0  # even papers share one text direction, odd papers the other
    vectors[1::2, 1] = 1.0
    model = fit(ui, vectors, bridge_neighbours=3, bridge_power=1.0, bridge_knn_share=1.0)
    assert not model.rated_[18]
    rated = np.flatnonzero(model.rated_)
    even = rated[rated % 2 == 0]
    # every even rated paper is equally near: the bridged factors lie in their span and
    # score like an even paper for an even person
    scores = model.score(model.user_factors_[2])
    assert scores[18] > scores[rated[rated % 2 == 1]].max()
    assert np.isfinite(model.item_factors_[18]).all()
    assert len(even) > 3


def test_stacked_ridge_bridge_round_trips():
    texts, topics = corpus()
    new = {5, 11, 17}
    ui = topical_likes(topics, new=new)
    vectors = TfidfText().fit(texts).transform(texts)
    dense = np.asarray(vectors[:, :8].toarray(), np.float32)
    dense /= np.maximum(np.linalg.norm(dense, axis=1, keepdims=True), 1e-9)
    model = CollabModel(
        factors=6, bridge_regularization=0.1, bridge_neighbours=2, num_threads=1
    ).fit(ui, dense, vectors)
    for person, expected in ((0, 5), (6, 11), (12, 17)):
        scores = model.score(model.user_factors_[person], items=sorted(new))
        assert sorted(new)[int(np.argmax(scores))] == expected
    again = CollabModel.from_state(*model.state())
    np.testing.assert_allclose(again.item_factors_, model.item_factors_)
    np.testing.assert_allclose(again.bridge(dense, vectors), model.bridge(dense, vectors))


def test_batch_solves_equal_the_normal_equations_with_few_and_many_ratings():
    """Fewer ratings than factors go through Woodbury, more through the f x f system;
    both must give ALS's user step ``(YtY + Yt(C-I)Y + reg I) x = Yt C p``."""
    ui = checkerboard(n_people=30, n_items=40)
    model = fit(ui, factors=8, alpha=40.0)
    rng = np.random.default_rng(0)
    liked = [rng.choice(40, size=n, replace=False) for n in (3, 7, 20, 30, 30)]
    disliked = [np.setdiff1d(rng.choice(40, size=4, replace=False), li) for li in liked]
    got = model.user_factors_batch(liked, disliked)
    Y = model.item_factors_.astype(np.float64)
    for i, (li, di) in enumerate(zip(liked, disliked, strict=True)):
        idx = np.concatenate([li, di])
        conf = np.concatenate(
            [np.full(len(li), model.alpha), np.full(len(di), model.alpha * model.dislike_weight)]
        )
        pref = np.concatenate([np.ones(len(li)), np.zeros(len(di))])
        Yi = Y[idx]
        A = Y.T @ Y + (Yi.T * (conf - 1.0)) @ Yi + model.regularization * np.eye(8)
        want = np.linalg.solve(A, Yi.T @ (conf * pref))
        np.testing.assert_allclose(got[i], want, rtol=1e-4, atol=1e-5)
    assert len(liked[0]) + len(disliked[0]) < 8 < len(liked[2]) + len(disliked[2])


def test_papers_nobody_rated_do_not_move_the_learned_factors():
    """ALS learns from the rated papers' columns: papers nobody rated (a day's arrivals)
    change neither the people's factors nor the rated papers' ones, only get bridged."""
    ui = checkerboard(withheld=(0, 4))
    n = ui.shape[1]
    grown = sp.hstack([ui, sp.csr_matrix((ui.shape[0], 30), dtype=ui.dtype)], format="csr")
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n + 30, 4)).astype(np.float32)
    a = fit(ui, vectors[:n])
    b = fit(grown, vectors)
    np.testing.assert_array_equal(b.user_factors_, a.user_factors_)
    np.testing.assert_array_equal(b.item_factors_[:n][a.rated_], a.item_factors_[a.rated_])
    assert not b.rated_[n:].any() and np.isfinite(b.item_factors_[n:]).all()
