"""int8 rows: a bundle's paper vectors and collaborative factors at a quarter of float32's
bytes, fitted with the rounded values and read without widening the corpus."""

from __future__ import annotations

import dataclasses
import mmap

import numpy as np
import pytest
import scipy.sparse as sp

from recommender import bundles
from recommender.bundles import model_writer
from recommender.content import ContentModel
from recommender.model import fit_recommender
from recommender.quantized import CODE_MAX, Int8Rows, rows_times
from recommender.ranking import Profile, rank_users
from tests._corpus import corpus, topical_likes


def _mapped(array) -> bool:
    """Whether ``array``'s memory is a file mapping (not a private copy)."""
    while array is not None and not isinstance(array, mmap.mmap):
        array = getattr(array, "base", None) if isinstance(array, np.ndarray) else array._mmap
    return array is not None


def unit_rows(n: int, dim: int, seed: int = 0) -> np.ndarray:
    X = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def test_each_row_is_within_half_a_step_of_its_value_and_uses_the_whole_range():
    X = unit_rows(300, 64)
    X[7] = 0.0  # a row of zeros stays zeros
    X[8] *= 1e-6  # a tiny row keeps its relative precision (its own scale)
    Q = Int8Rows.quantize(X)
    assert Q.codes.dtype == np.int8 and Q.scales.dtype == np.float32 and Q.shape == X.shape
    assert np.abs(Q.codes).max() == CODE_MAX and Q.codes.min() >= -CODE_MAX
    err = np.abs(Q[:] - X)
    assert (err <= Q.scales[:, None] * 0.5001).all()
    assert not Q[7].any() and Q.scales[7] == 1.0
    assert np.abs(Q[8] - X[8]).max() <= 1e-6 / CODE_MAX
    assert np.abs(Q.codes[np.arange(300) != 7]).max(axis=1).min() == CODE_MAX
    # cosine similarities move by far less than they differ between papers
    assert np.abs(Q[:] @ Q[:].T - X @ X.T).max() < 0.01


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_value_is_refused_not_stored_as_an_arbitrary_code(bad):
    X = unit_rows(20, 8)
    X[13, 2] = bad
    with pytest.raises(ValueError, match="non-finite values as int8 rows: 1 row.*13"):
        Int8Rows.quantize(X)


def test_rows_read_as_float32_in_any_selection_and_views_stay_int8():
    X = unit_rows(50, 8, seed=1)
    Q = Int8Rows.quantize(X)
    dense = Q.dense()
    assert np.array_equal(np.asarray(Q), dense) and np.array_equal(Q.astype(np.float64), dense)
    assert np.array_equal(Q[3], dense[3]) and np.array_equal(Q[5:9], dense[5:9])
    pick = np.array([[1, 4], [9, 2]])
    assert Q[pick].shape == (2, 2, 8) and np.array_equal(Q[pick], dense[pick])
    view = Q.rows(10, 20)
    assert isinstance(view, Int8Rows) and np.shares_memory(view.codes, Q.codes)
    assert np.array_equal(view[:], dense[10:20])
    assert np.array_equal(Q.take(np.array([4, 1]))[:], dense[[4, 1]])
    both = Int8Rows.concat([Q.rows(0, 10), Q.rows(10, 50)])
    assert np.array_equal(both.codes, Q.codes) and np.array_equal(both.scales, Q.scales)
    other = np.random.default_rng(2).standard_normal((8, 3)).astype(np.float32)
    np.testing.assert_allclose(Q @ other, dense @ other, rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError):
        Q[:, 1]
    with pytest.raises(ValueError, match="int8 rows"):
        Int8Rows(Q.codes, Q.scales[:3])


def test_a_selection_of_papers_times_int8_rows_widens_only_those_rows():
    X = unit_rows(40, 6, seed=3)
    Q = Int8Rows.quantize(X)
    M = sp.csr_matrix((np.ones(5, np.float32), ([0, 0, 1, 2, 2], [3, 17, 3, 39, 0])), shape=(3, 40))
    assert np.array_equal(rows_times(M, Q), np.asarray(M @ Q.dense()))
    assert np.array_equal(rows_times(M, X), np.asarray(M @ X))


def test_a_fitted_embeddings_model_holds_int8_rows_and_serves_them_from_the_mapped_files(
    tmp_path,
):
    """The vectors and the factors are int8 rows from the fit on (every model fitted and
    tuned with the rounded values); a bundle stores them as such (a quarter of float32's
    bytes), a worker maps them, and the served ranking equals the fitted model's."""
    texts, topics = corpus()
    rec = fit_recommender(texts, topical_likes(topics, new={5, 11, 17}))
    X = unit_rows(rec.n_items, 32, seed=4)
    Q = Int8Rows.quantize(X)
    dense = dataclasses.replace(
        rec, item_vectors=Q, content=ContentModel(k=5).fit(Q), text_kind="embeddings"
    )
    assert isinstance(rec.collab.item_factors_, Int8Rows)
    ids = np.arange(rec.n_items, dtype=np.int64) + 1
    with model_writer(tmp_path) as writer:
        writer.publish(dense, ids, served=np.arange(10, rec.n_items), info={})
    folder = tmp_path / "bundles" / "b0001"
    codes = np.load(folder / "arrays.vectors.codes.npy", mmap_mode="r")
    assert codes.dtype == np.int8 and not (folder / "arrays.vectors.dense.npy").exists()
    assert np.load(folder / "arrays.collab.bridge_coef.npy", mmap_mode="r").dtype == np.float16
    loaded = bundles.load_current(tmp_path)
    vectors, factors = loaded.index.vectors, loaded.index.factors
    assert isinstance(vectors, Int8Rows) and isinstance(factors, Int8Rows)
    assert _mapped(vectors.codes) and _mapped(factors.codes) and _mapped(factors.scales)
    assert not vectors.codes.flags.writeable
    assert np.shares_memory(vectors.codes, loaded.rec.item_vectors.codes)  # a view, no copy
    assert np.array_equal(vectors[:], X[10:] * 0 + Q[10:])
    profile = Profile(liked=[0, 7], disliked=[13])
    cand = np.arange(10, rec.n_items)
    served = rank_users(loaded.rec, [profile], candidates=cand, index=loaded.index)
    assert served == rank_users(dense, [profile], candidates=cand)
    content = loaded.rec.content
    for rows, cols in ((np.array([3]), None), (None, np.array([5, 3])), (None, None)):
        want = Q[:] if rows is None else Q[rows]
        want = want @ (Q[:] if cols is None else Q[cols]).T
        got = content.similarity(rows, cols)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
