"""Collaborative model: checkerboard and bridge known answers, determinism, fast re-rank."""

import copy

import numpy as np
import pytest
import scipy.sparse as sp

from recommender import blocks, collab
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


def _exact_ridge(X, Y, alpha):
    """Ridge with an intercept in float64, closed form on dense arrays."""
    X = np.asarray(X.toarray() if sp.issparse(X) else X, np.float64)
    Y = np.asarray(Y, np.float64)
    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    coef = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(X.shape[1]), Xc.T @ Yc)
    return coef, Y.mean(axis=0) - X.mean(axis=0) @ coef


def _sparse_ridge_problem(n=300, dim=2000, targets=8):
    rng = np.random.default_rng(3)
    X = sp.random(n, dim, density=0.02, random_state=4, format="csr", dtype=np.float32)
    X.data = rng.random(X.nnz).astype(np.float32)
    common = sp.csr_matrix(np.asarray(rng.random((n, 40)) < 0.3, np.float32) * 0.2)
    X = sp.hstack([common, X], format="csr", dtype=np.float32)  # 40 terms in 30% of rows
    Y = rng.standard_normal((n, targets)).astype(np.float32)
    return X, Y


def test_a_sparse_bridge_is_the_exact_ridge_solution():
    """The TF-IDF ridge (rated papers x terms, fewer papers than terms) is solved in its
    dual by one Cholesky factorisation: the exact ridge, not a conjugate gradient stopped
    at a relative residual of 1e-4."""
    X, Y = _sparse_ridge_problem()
    model = CollabModel(factors=Y.shape[1], bridge_regularization=0.5)
    model.rated_ = np.ones(X.shape[0], bool)
    [(coef, intercept)] = collab._fit_ridges([model], X, [Y])
    want, want_intercept = _exact_ridge(X, Y, 0.5)
    assert coef.shape == (X.shape[1], Y.shape[1]) and coef.dtype == np.float32
    assert np.linalg.norm(coef - want) / np.linalg.norm(want) < 2e-6
    np.testing.assert_allclose(intercept, want_intercept, rtol=1e-5, atol=1e-6)


def test_a_sparse_bridge_too_large_for_its_kernel_still_fits(monkeypatch):
    """Above KERNEL_MAX_ELEMENTS the Gram matrix would not fit its bound: scikit-learn's
    conjugate gradients solve the same ridge, to their tolerance."""
    X, Y = _sparse_ridge_problem()
    monkeypatch.setattr(collab, "KERNEL_MAX_ELEMENTS", X.shape[0] ** 2 - 1)
    model = CollabModel(factors=Y.shape[1])
    model.rated_ = np.ones(X.shape[0], bool)
    [(coef, intercept)] = collab._fit_ridges([model], X, [Y])
    want, want_intercept = _exact_ridge(X, Y, 1.0)
    assert np.linalg.norm(coef - want) / np.linalg.norm(want) < 1e-3
    np.testing.assert_allclose(intercept, want_intercept, atol=1e-3)


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


def _nested_ratings():
    """A topical corpus's likes and the same likes with a quarter of the liked papers'
    ratings held out (as self-tuning's check does): the first one's rated papers are
    among the second's."""
    texts, topics = corpus()
    ui = topical_likes(topics, new={5, 11, 17})
    held = sp.lil_matrix(ui)
    held[:, [0, 6, 12, 13]] = 0
    held = sp.csr_matrix(held)
    held.eliminate_zeros()
    return texts, held, ui


@pytest.mark.parametrize("dense", [True, False])
def test_fitting_each_of_two_ratings_equals_fitting_them_one_by_one(dense):
    """A refit's check fit and final fit are fitted together (one Gram factorisation for
    the sparse ridges): each model is the one its own fit gives."""
    texts, held, ui = _nested_ratings()
    tfidf = TfidfText().fit(texts).transform(texts)
    if dense:  # embeddings: dense vectors, TF-IDF stacked on the residuals
        rng = np.random.default_rng(0)
        vectors = rng.standard_normal((len(texts), 12)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        extra = tfidf
    else:
        vectors, extra = tfidf, None
    blank = CollabModel(factors=6, bridge_regularization=0.1, bridge_neighbours=3, num_threads=1)
    together = blank.fit_each([held, ui], vectors, extra)
    for model, ratings in zip(together, [held, ui], strict=True):
        alone = copy.deepcopy(blank).fit(ratings, vectors, extra)
        np.testing.assert_array_equal(model.rated_, alone.rated_)
        np.testing.assert_array_equal(model.user_factors_, alone.user_factors_)
        np.testing.assert_allclose(model.bridge_coef_, alone.bridge_coef_, atol=1e-5)
        np.testing.assert_allclose(model.item_factors_, alone.item_factors_, atol=1e-5)
    assert not np.allclose(together[0].item_factors_, together[1].item_factors_)


def test_fitting_each_of_ratings_that_are_not_nested_fits_each_on_its_own():
    texts, held, ui = _nested_ratings()
    other = sp.lil_matrix(ui)
    other[:, [1, 7]] = 0
    other = sp.csr_matrix(other)
    other.eliminate_zeros()
    vectors = TfidfText().fit(texts).transform(texts)
    blank = CollabModel(factors=6, bridge_regularization=0.1, num_threads=1)
    together = blank.fit_each([held, other], vectors)
    for model, ratings in zip(together, [held, other], strict=True):
        alone = copy.deepcopy(blank).fit(ratings, vectors)
        np.testing.assert_allclose(model.item_factors_, alone.item_factors_, atol=1e-5)


@pytest.mark.parametrize("dense", [True, False])
def test_the_knn_bridge_on_threads_is_the_one_thread_bridge_bit_for_bit(dense):
    """The kNN bridge's blocks in 2 or 3 threads give the one-thread factors bit for bit,
    and those are each paper's weighted mean of its nearest rated papers' factors (so no
    block went to other rows)."""
    rng = np.random.default_rng(4)
    n = 400
    ui = sp.random(40, n, density=0.03, random_state=2, format="csr")
    ui.data[:] = 1.0
    if dense:
        vectors = rng.standard_normal((n, 12)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    else:  # random sparse rows (text corpora repeat words: ties at the 5th neighbour)
        vectors = sp.random(n, 60, density=0.2, random_state=3, format="csr", dtype=np.float32)
        vectors = sp.csr_matrix(vectors.multiply(1 / sp.linalg.norm(vectors, axis=1)[:, None]))
    model = fit(ui, vectors, bridge_neighbours=5, bridge_power=2.0, bridge_knn_share=1.0)
    items = np.flatnonzero(~model.rated_)[::-1].copy()
    assert len(items) > 10 * 7
    factors = model.item_factors_
    runs = {}
    for threads in (1, 2, 3):
        model.num_threads = threads
        runs[threads] = model.knn_bridge(vectors, factors, items, block=7)
    assert np.array_equal(runs[1], runs[2]) and np.array_equal(runs[1], runs[3])
    rated = np.flatnonzero(model.rated_)
    S = vectors[items] @ vectors[rated].T
    S = np.asarray(S.toarray() if sp.issparse(S) else S)
    for row, sims in zip(runs[1], S, strict=True):
        near = np.argsort(-sims, kind="stable")[:5]
        w = np.maximum(sims[near], 0) ** 2.0
        np.testing.assert_allclose(row, w @ factors[rated[near]] / max(w.sum(), 1e-12), atol=1e-5)


def test_a_fit_on_threads_is_the_one_thread_fit_bit_for_bit():
    texts, topics = corpus()
    vectors = TfidfText().fit(texts).transform(texts).toarray()
    ui = topical_likes(topics)
    fits = [fit(ui, vectors, bridge_neighbours=3, num_threads=threads) for threads in (1, 2)]
    for name in ("user_factors_", "item_factors_", "bridge_coef_"):
        assert np.array_equal(getattr(fits[0], name), getattr(fits[1], name)), name


def test_a_sparse_bridge_on_threads_is_the_one_thread_bridge_bit_for_bit(monkeypatch):
    """The Gram matrix's sparse blocks in 2 threads give the one-thread coefficients bit for
    bit, in blocks of 7 rows as in one block (so no block went to other rows), and so does
    its factorisation by blocks of 5 rows in 2 and 3 threads."""
    X, Y = _sparse_ridge_problem()
    assert X.shape[0] > 3 * 7
    monkeypatch.setattr(blocks, "CHOLESKY_BLOCK", 5)
    solved = {}
    for threads, block in ((1, 10**6), (1, 7), (2, 7), (3, 7)):
        monkeypatch.setattr(collab, "_GRAM_BLOCK", block)
        model = CollabModel(factors=Y.shape[1], bridge_regularization=0.5, num_threads=threads)
        model.rated_ = np.ones(X.shape[0], bool)
        [solved[threads, block]] = collab._fit_ridges([model], X, [Y])
    want, _ = _exact_ridge(X, Y, 0.5)
    for coef, intercept in solved.values():
        assert np.array_equal(coef, solved[1, 10**6][0])
        assert np.array_equal(intercept, solved[1, 10**6][1])
    assert np.linalg.norm(coef - want) / np.linalg.norm(want) < 2e-6  # the kernel's solve


@pytest.mark.parametrize("n", [1, 2, 5, 6, 11, 40])
def test_the_factorisation_by_blocks_is_exact_and_the_same_on_any_thread_count(n):
    """blocks.cholesky by blocks of 5 rows (a lone last row joins the block before): the
    Cholesky factor within float32 rounding, bit for bit the same on 1, 2 and 3 threads,
    and it solves the system as a LAPACK factor does."""
    from scipy.linalg import cho_solve

    rng = np.random.default_rng(n)
    X = rng.standard_normal((n, n + 3)).astype(np.float32)
    A = X @ X.T + np.eye(n, dtype=np.float32)
    factors = [blocks.cholesky(A.copy(), threads, block=5) for threads in (1, 2, 3)]
    lower = [np.tril(f) for f in factors]
    want = np.linalg.cholesky(A.astype(np.float64))
    np.testing.assert_allclose(lower[0], want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
    assert all(np.array_equal(lower[0], f) for f in lower[1:])
    rhs = rng.standard_normal((n, 9)).astype(np.float32)
    solved = cho_solve((factors[0].T, False), rhs)  # as collab._kernel_ridges reads it
    np.testing.assert_allclose(
        solved, np.linalg.solve(A.astype(np.float64), rhs), rtol=1e-3, atol=1e-4
    )


def test_the_factorisation_by_blocks_refuses_a_matrix_that_is_not_positive_definite():
    A = np.eye(12, dtype=np.float32)
    A[9, 9] = -1.0  # in the second block of 5: found after the first was factored
    with pytest.raises(np.linalg.LinAlgError):
        blocks.cholesky(A, 2, block=5)
