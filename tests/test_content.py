"""Content model: known answers on a tiny topical corpus."""

import numpy as np
import pytest

from recommender.content import ContentModel, zscore
from recommender.text import TfidfText
from tests._corpus import corpus
from tests._reference import neighbour_floor, score_parts


@pytest.fixture
def fitted():
    texts, topics = corpus()
    vectors = TfidfText().fit(texts).transform(texts)
    return ContentModel(k=5).fit(vectors), texts, topics


def blended(model, liked, candidates, disliked=(), sim_query=None):
    """Both content signals for ``candidates``, z-scored and summed (what the ranking blends)."""
    parts = score_parts(
        model,
        model.similarity(candidates, liked),
        model.similarity(candidates, list(disliked)) if len(disliked) else None,
        floor=neighbour_floor(model, candidates) if len(liked) else None,
        sim_query=sim_query,
    )
    return zscore(parts["knn"]) + zscore(parts["centroid"])


def test_a_single_like_ranks_an_on_topic_paper_first(fitted):
    model, texts, topics = fitted
    candidates = [i for i in range(len(texts)) if i != 0]
    scores = blended(model, [0], candidates)
    assert topics[candidates[int(np.argmax(scores))]] == "astro"


def test_likes_of_one_topic_rank_that_topic_above_the_others(fitted):
    model, texts, topics = fitted
    liked = [6, 7, 8]  # biology
    candidates = [9, 10, 11, 0, 1, 12, 13]
    scores = blended(model, liked, candidates)
    top3 = [candidates[i] for i in np.argsort(-scores)[:3]]
    assert {topics[i] for i in top3} == {"bio"}


def test_keywords_alone_score_papers_for_onboarding(fitted):
    model, texts, topics = fitted
    text = TfidfText().fit(texts)
    q = text.transform(["neural network training"])
    sim_q = (model.item_vectors_ @ q.T).toarray().ravel()
    scores = blended(model, [], list(range(len(texts))), sim_query=sim_q)
    assert topics[int(np.argmax(scores))] == "ml"


def test_a_dislike_pushes_similar_papers_down(fitted):
    model, texts, topics = fitted
    liked, candidates = [0], [3, 6, 7, 12]  # 3 is astro, like the disliked paper 1
    without = blended(model, liked, candidates)
    with_dislike = blended(model, liked, candidates, disliked=[1])
    assert with_dislike[0] - with_dislike.mean() < without[0] - without.mean()
    parts_before = score_parts(model, model.similarity(candidates, liked))
    parts_after = score_parts(
        model, model.similarity(candidates, liked), model.similarity(candidates, [1])
    )
    assert parts_after["centroid"][0] < parts_before["centroid"][0]


def test_neighbour_floor_is_the_kth_best_other_similarity(fitted):
    model, texts, _ = fitted
    sims = model.similarity([0], None)[0]
    sims[0] = -np.inf
    assert neighbour_floor(model, [0])[0] == pytest.approx(np.sort(sims)[-5])


def test_zscore_of_constant_scores_is_zero():
    assert np.all(zscore(np.ones(4)) == 0)
    z = zscore(np.array([1.0, 2.0, 3.0]))
    assert z.mean() == pytest.approx(0) and z.std() == pytest.approx(1)


def _as_sets(index: np.ndarray, sims: np.ndarray) -> list[dict[int, float]]:
    return [
        {int(j): round(float(s), 5) for j, s in zip(row, srow, strict=True)}
        for row, srow in zip(index, sims, strict=True)
    ]


@pytest.mark.parametrize("dense", [False, True])
def test_merging_new_papers_into_old_neighbourhoods_equals_a_full_search(dense):
    rng = np.random.default_rng(3)
    if dense:
        X = rng.standard_normal((300, 16)).astype(np.float32)
        X /= np.linalg.norm(X, axis=1, keepdims=True)
    else:
        texts, _ = corpus()
        X = TfidfText().fit(texts).transform(texts)
    n_old = X.shape[0] * 2 // 3
    full = ContentModel(k=7, block_size=5).fit(X)
    old = ContentModel(k=7, block_size=5).fit(X[:n_old])
    rows = np.arange(0, n_old, 2)
    old_index, old_sims = old.neighbours(rows)
    index, sims = full.merge_neighbours(rows, old_index, old_sims, np.arange(n_old, X.shape[0]))
    expect_index, expect_sims = full.neighbours(rows)
    assert np.allclose(np.sort(sims, axis=1), np.sort(expect_sims, axis=1), atol=1e-6)
    if dense:  # no ties: the same papers
        assert _as_sets(index, sims) == _as_sets(expect_index, expect_sims)
    assert any(j >= n_old for j in index.ravel())  # new papers did enter some lists


def test_a_large_corpus_searches_in_smaller_blocks_with_the_same_neighbours(monkeypatch):
    """Rows per block shrink so a block stays under BLOCK_ELEMENTS similarities (at 500,000
    papers 512 rows held 3 GB); the neighbours are those of a brute-force search."""
    from recommender import content

    rng = np.random.default_rng(5)
    X = rng.standard_normal((500, 16)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    model = ContentModel(k=9).fit(X)
    sizes = []
    real = np.argpartition

    def recording(a, kth, axis=-1, **kw):
        sizes.append(a.shape[0])
        return real(a, kth, axis=axis, **kw)

    monkeypatch.setattr(content, "BLOCK_ELEMENTS", 40 * 500)
    monkeypatch.setattr(content.np, "argpartition", recording)
    index, sims = model.neighbours(np.arange(0, 500, 3))
    monkeypatch.undo()
    assert max(sizes) == 40 and len(sizes) == -(-167 // 40)
    S = X[::3] @ X.T
    S[np.arange(167), np.arange(0, 500, 3)] = -np.inf
    expect = np.argsort(-S, axis=1)[:, :9]
    assert _as_sets(index, sims) == _as_sets(expect, np.take_along_axis(S, expect, axis=1))


@pytest.mark.parametrize("split_min", [0, 10**9])
def test_tfidf_search_with_common_terms_split_off_finds_the_same_neighbours(monkeypatch, split_min):
    """The most common terms' part of the TF-IDF product goes through a dense product; the
    similarities (and so the neighbours) are those of the plain sparse product."""
    from recommender import content

    texts, _ = corpus()
    texts = [f"{t} shared words everywhere" if i % 2 else t for i, t in enumerate(texts)]
    X = TfidfText().fit(texts).transform(texts)
    model = ContentModel(k=7).fit(X)
    monkeypatch.setattr(content, "SPLIT_MIN_PAPERS", split_min)
    index, sims = model.neighbours(np.arange(0, X.shape[0], 2))
    S = (X[::2] @ X.T).toarray()
    S[np.arange(S.shape[0]), np.arange(0, X.shape[0], 2)] = -np.inf
    expect = np.sort(S, axis=1)[:, -7:]
    np.testing.assert_allclose(np.sort(sims, axis=1), expect, atol=1e-6)
    if split_min == 0:
        rest, _, common = content._split_common_terms(X)
        assert common.shape[1] > 0 and rest.shape[1] + common.shape[1] == X.shape[1]


def _unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    X = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["dense", "tfidf split", "tfidf"])
def test_a_search_on_threads_is_the_one_thread_search_bit_for_bit(kind, monkeypatch):
    """Blocks searched by 2 or 3 threads give the same arrays, bit for bit, as one thread,
    and those are a brute-force search's neighbours (so no block went to other rows)."""
    from recommender import content

    if kind == "dense":
        X = _unit_rows(700, 24, seed=7)
    else:
        texts, _ = corpus()
        texts = [f"{t} w{i % 13} v{i % 29} z{i % 7}" for i, t in enumerate((texts * 20)[:300])]
        X = TfidfText().fit(texts).transform(texts)
        monkeypatch.setattr(content, "SPLIT_MIN_PAPERS", 0 if kind == "tfidf split" else 10**9)
    model = ContentModel(k=6).fit(X)
    rows = np.random.default_rng(1).permutation(X.shape[0])[: X.shape[0] * 3 // 4]
    one = model.neighbours(rows, block_rows=16, threads=1)
    assert len(rows) > 4 * 16  # many blocks for each thread
    for threads in (2, 3):
        index, sims = model.neighbours(rows, block_rows=16, threads=threads)
        assert index.dtype == one[0].dtype and sims.dtype == one[1].dtype
        assert np.array_equal(index, one[0]) and np.array_equal(sims, one[1])
    S = X[rows] @ X.T
    S = np.asarray(S.toarray() if hasattr(S, "toarray") else S, np.float32)
    S[np.arange(len(rows)), rows] = -np.inf
    np.testing.assert_allclose(np.sort(one[1], axis=1), np.sort(S, axis=1)[:, -6:], atol=1e-6)
    np.testing.assert_allclose(one[1], np.take_along_axis(S, one[0], axis=1), atol=1e-6)


def test_a_papers_similarities_do_not_depend_on_where_the_blocks_fall():
    """BLAS multiplies a single row in another order than several (a matrix-vector product):
    a last block of one row joins the block before, so every row's floats are those of
    one search in a single block."""
    from recommender.blocks import row_blocks

    X = _unit_rows(300, 384, seed=2)
    model = ContentModel(k=10).fit(X)
    rows = np.arange(33)  # blocks of 16: 16, 16 and a last row alone
    whole = model.neighbours(rows, block_rows=64)
    for block_rows in (16, 32):
        index, sims = model.neighbours(rows, block_rows=block_rows, threads=2)
        assert np.array_equal(index, whole[0]) and np.array_equal(sims, whole[1])
    assert row_blocks(33, 16) == [(0, 16), (16, 33)]
    assert row_blocks(32, 16) == [(0, 16), (16, 32)] and row_blocks(1, 16) == [(0, 1)]
    assert row_blocks(0, 16) == []


def test_an_error_in_a_block_reaches_the_caller():
    from recommender.blocks import map_blocks

    done = []

    def work(start, stop, scratch):
        if start == 32:
            raise ValueError("block 32 failed")
        done.append(start)

    with pytest.raises(ValueError, match="block 32"):
        map_blocks(work, [(s, s + 16) for s in range(0, 160, 16)], threads=2)
    assert 0 in done
