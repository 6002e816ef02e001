"""The one ranking path: exclusions, reasons, onboarding, diversity, learned weights."""

import json

import numpy as np
import pytest
import scipy.sparse as sp

from recommender import features
from recommender.features import CandidateIndex
from recommender.model import fit_recommender
from recommender.quantized import Int8Rows
from recommender.ranking import Profile, rank_for_user, rank_users
from recommender.weights import BANDS, WEIGHTS_PATH, BlendWeights, band_of
from tests._corpus import corpus, topical_likes


@pytest.fixture(scope="module")
def rec():
    texts, topics = corpus()
    return fit_recommender(texts, topical_likes(topics, new={5, 11, 17}))


def test_on_topic_new_paper_ranks_first_with_a_reason(rec):
    ranked = rank_for_user(rec, Profile(liked=[6, 7], uidx=None), candidates=[5, 11, 17], n=3)
    assert ranked[0].pidx == 11  # the new biology paper
    assert ranked[0].because_pidx in (6, 7)
    assert ranked[0].kind == "liked"


def test_rated_excluded_and_shown_papers_never_appear(rec):
    ranked = rank_for_user(rec, Profile(liked=[0, 1], disliked=[12], exclude={2, 3}), n=50)
    shown = {r.pidx for r in ranked}
    assert not shown & {0, 1, 2, 3, 12}
    assert len(shown) == 18 - 5


def test_keywords_alone_rank_matching_papers_with_shared_terms(rec):
    ranked = rank_for_user(rec, Profile(query="protein enzyme"), n=3)
    texts, topics = corpus()
    assert all(topics[r.pidx] == "bio" for r in ranked)
    assert ranked[0].kind == "topic" and ranked[0].topic == "protein enzyme"
    assert ranked[0].terms  # TF-IDF: the words it shares with the topic, too


def test_a_person_with_nothing_gets_an_empty_list(rec):
    assert rank_for_user(rec, Profile()) == []


def test_batch_and_single_rankings_agree(rec):
    profiles = [Profile(liked=[0]), Profile(liked=[13, 14], disliked=[1])]
    batch = rank_users(rec, profiles, n=5)
    for profile, ranked in zip(profiles, batch, strict=True):
        assert ranked == rank_for_user(rec, profile, n=5)


def test_diversity_returns_distinct_papers_and_keeps_the_best_first(rec):
    plain = rank_for_user(rec, Profile(liked=[0]), n=6)
    diverse = rank_for_user(rec, Profile(liked=[0]), n=6, diversity=0.99)
    assert len({r.pidx for r in diverse}) == 6
    assert diverse[0].pidx == plain[0].pidx

    def redundancy(ranked):
        idx = [r.pidx for r in ranked]
        sims = rec.content.similarity(idx, idx)
        return sims[np.triu_indices(len(idx), 1)].mean()

    assert redundancy(diverse) < redundancy(plain)


def test_bands_cover_every_rating_count():
    assert band_of(1) == "1-2" and band_of(2) == "1-2" and band_of(3) == "3-9"
    assert band_of(29) == "10-29" and band_of(30) == "30+" and band_of(1000) == "30+"


def test_learned_weights_file_records_its_command_and_covers_every_band():
    data = json.loads(WEIGHTS_PATH.read_text())
    entry = data["tfidf"]
    assert "cold-aldi-val" in entry["command"]
    for regime in ("cold", "warm"):
        assert set(entry["weights"][regime]) == set(BANDS)
        for w in entry["weights"][regime].values():
            assert sum(w.values()) == pytest.approx(1.0, abs=1e-6)
    assert BlendWeights.load("tfidf").for_person("cold", 5) == entry["weights"]["cold"]["3-9"]


def test_small_community_shrinks_collaborative_weight(rec):
    assert 0 < rec.community_strength() < 0.5  # 18 people liking ~5 papers each
    assert np.isfinite(rec.community_strength())


def test_block_batch_path_gives_the_single_person_rankings(rec, monkeypatch):
    """Blocks of people (vectorised) rank exactly as one person at a time, reasons included."""
    import recommender.ranking as ranking

    profiles = [
        Profile(liked=[0]),
        Profile(liked=[13, 14], disliked=[1]),
        Profile(query="protein enzyme"),
        Profile(liked=[6, 7], query="gene expression"),
        Profile(uidx=2),
        Profile(uidx=3, liked=[4], exclude={5, 11}),
        Profile(disliked=[3]),
        Profile(),
        Profile(liked=[0, 1, 1], disliked=[12], exclude={2, 3}),
        Profile(liked=list(range(1, 17))),  # fewer valid candidates than n
    ]
    monkeypatch.setattr(ranking, "BLOCK_CELLS", 3 * 18)  # several blocks of 3 people
    for candidates in (None, [5, 11, 17, 0, 6, 12]):
        for n in (3, 50):
            batch = rank_users(rec, profiles, candidates=candidates, n=n)
            single = [rank_for_user(rec, p, candidates=candidates, n=n) for p in profiles]
            assert batch == single
    assert batch[7] == [] and len(batch[9]) == 2 and batch[2][0].terms


def test_shrunk_collab_weight_goes_to_the_content_only_weights():
    all_collab = {b: {"knn": 0.0, "centroid": 0.0, "collab": 1.0, "popularity": 0.0} for b in BANDS}
    content = {b: {"knn": 0.2, "centroid": 0.8, "popularity": 0.0} for b in BANDS}
    w = BlendWeights({"cold": all_collab, "warm": all_collab}, {}, {"cold": content})
    assert w.mixed("cold", 1, 1.0)["collab"] == 1.0
    none = w.mixed("cold", 1, 0.0)
    assert none["collab"] == 0.0 and none["centroid"] == pytest.approx(0.8)
    half = w.for_pool(0.5, 1, 0.5)
    assert sum(half.values()) == pytest.approx(1.0)
    # without a learned content table the content shares of the full weights are used
    assert BlendWeights({"cold": all_collab}).content_for_person("cold", 1)["centroid"] == 1.0


def test_popularity_keeps_its_warm_weight_in_a_mixed_pool():
    cold = {b: {"knn": 0.2, "centroid": 0.8, "collab": 0.0, "popularity": 0.0} for b in BANDS}
    warm = {b: {"knn": 0.1, "centroid": 0.5, "collab": 0.0, "popularity": 0.4} for b in BANDS}
    w = BlendWeights({"cold": cold, "warm": warm})
    mixed = w.for_pool(0.25, 1, 1.0)
    assert mixed["popularity"] == pytest.approx(0.4)
    assert mixed["centroid"] == pytest.approx(0.75 * 0.8 + 0.25 * 0.5)
    assert w.for_pool(0.0, 1, 1.0)["popularity"] == 0.0
    assert w.for_pool(1.0, 1, 1.0) == pytest.approx({"taste": 0.0, **warm["1-2"]})


def test_popularity_ranks_the_most_liked_candidates_first_for_a_keyword_only_person():
    texts, topics = corpus()
    rec = fit_recommender(texts, topical_likes(topics, new={5, 11, 17}))
    only_pop = {b: {"knn": 0.0, "centroid": 0.0, "collab": 0.0, "popularity": 1.0} for b in BANDS}
    rec.weights = BlendWeights({"cold": only_pop, "warm": only_pop})
    likes = rec.collab.likes_
    ranked = rank_for_user(rec, Profile(query="protein enzyme"), n=3, reasons=False)
    assert likes[ranked[0].pidx] == likes.max()


def test_neighbourhoods_are_each_candidates_k_nearest_other_papers():
    """The top-k search equals the definition: the k largest similarities in the paper's
    full row, itself excluded (the kNN signal counts a liked paper only among these)."""
    from recommender.content import ContentModel
    from tests._reference import neighbour_floor

    texts, topics = corpus()
    rec = fit_recommender(texts, topical_likes(topics, new={5, 11, 17}))
    model = ContentModel(k=4).fit(rec.item_vectors)
    rows = np.array([5, 11, 17, 3])
    index, sims = model.neighbours(rows, block_rows=3)  # blocks do not change the answer
    full = model.similarity(rows, None)
    for i, row in enumerate(rows):
        full[i, row] = -np.inf
        want = np.sort(full[i])[-4:]
        np.testing.assert_allclose(np.sort(sims[i]), want, rtol=1e-6)
        np.testing.assert_allclose(full[i, index[i]], sims[i], rtol=1e-6)
        assert row not in index[i]
        assert neighbour_floor(model, [row])[0] == pytest.approx(want[0])


def test_knn_signal_from_neighbourhoods_equals_the_floor_definition():
    """kNN score of a candidate = sum of similarities to the liked papers at least as similar
    as its k-th nearest paper, minus the dislike penalty: computed by hand, it matches."""
    from recommender.features import block_features, context
    from tests._reference import neighbour_floor, score_parts

    texts, topics = corpus()
    rec = fit_recommender(texts, topical_likes(topics, new={5, 11, 17}))
    cands = np.array([5, 11, 17, 3, 9])
    profile = Profile(liked=[6, 7, 2, 0], disliked=[13])
    parts = score_parts(
        rec.content,
        rec.content.similarity(cands, profile.liked),
        rec.content.similarity(cands, profile.disliked),
        floor=neighbour_floor(rec.content, cands),
    )
    ctx = context(rec, [profile], cands)
    got = block_features(rec, [profile], ctx)
    from recommender.content import zscore

    # the published neighbourhoods hold float16 similarities (3 significant digits)
    np.testing.assert_allclose(got["knn"][0], zscore(parts["knn"]), atol=5e-4)
    np.testing.assert_allclose(got["centroid"][0], zscore(parts["centroid"]), atol=1e-5)


def test_an_index_over_a_superset_ranks_like_one_built_for_the_candidates():
    """The published index covers a week of papers; ranking one day's papers with it gives
    what an index built for that day alone gives."""
    from recommender.ranking import CandidateIndex

    texts, topics = corpus()
    rec = fit_recommender(texts, topical_likes(topics, new={5, 11, 17}))
    week = CandidateIndex.build(rec, [5, 11, 17, 3, 9, 14])
    profile = Profile(liked=[6, 7, 2], disliked=[0])
    for pool in ([11, 17, 9], [14, 5], [5, 11, 17, 3, 9, 14]):
        assert rank_users(rec, [profile], candidates=pool, n=3, index=week) == rank_users(
            rec, [profile], candidates=pool, n=3
        )
    assert week.covers(np.array([14, 5])) and not week.covers(np.array([1, 5]))
    # an index that does not cover the candidates is not used: the answer is still right
    outside = rank_users(rec, [profile], candidates=[1, 2], n=2, index=week)
    assert outside == rank_users(rec, [profile], candidates=[1, 2], n=2)


def _terms_by_hand(rec, liked, query, shown, n_terms=3):
    """Top terms of each shown paper: x[t] * (sum of liked vectors + query vector)[t]."""
    X = rec.item_vectors.toarray().astype(np.float64)
    profile = X[list(liked)].sum(axis=0)
    if query:
        profile = profile + rec.text.transform([query]).toarray()[0]
    words = rec.terms_list()
    out = []
    for p in shown:
        prod = X[p] * profile
        order = sorted(np.flatnonzero(prod), key=lambda t: (-prod[t], t))[:n_terms]
        out.append(tuple(words[t] for t in order))
    return out


def test_shared_terms_of_a_batch_equal_the_definition(rec):
    from recommender.ranking import context
    from recommender.reasons import _block_terms

    profiles = [
        Profile(liked=[6, 7]),
        Profile(liked=[0, 1, 2], query="neural networks"),
        Profile(liked=[], query="protein folding"),
        Profile(liked=[13, 12, 3, 9, 10]),
    ]
    cands = np.arange(rec.n_items)
    ctx = context(rec, profiles, cands)
    rng = np.random.default_rng(1)
    tops = [rng.choice(len(cands), size=5, replace=False) for _ in profiles]
    got = _block_terms(rec, profiles, ctx, tops, rec.terms_list())
    for profile, top, terms in zip(profiles, tops, got, strict=True):
        want = _terms_by_hand(rec, profile.liked, profile.query, cands[top])
        assert terms == want
    assert any(any(t) for t in got)


def test_an_index_finds_each_papers_column_whether_its_rows_are_consecutive_or_not():
    """Consecutive candidates (the served papers) are found by arithmetic, others by search:
    the same columns either way, -1 for papers outside, below and above."""
    asked = np.array([-1, 0, 4, 5, 7, 9, 10, 12, 30], dtype=np.int64)
    for rows in ([5, 6, 7, 8, 9], [5, 7, 9, 12], [7]):
        index = CandidateIndex(np.array(rows), sp.csr_matrix((40, len(rows))))
        column = {r: i for i, r in enumerate(rows)}
        assert index.positions(asked).tolist() == [column.get(p, -1) for p in asked.tolist()]
        assert index.covers(np.array(rows)) and not index.covers(np.array([rows[0], 4]))


def test_the_nearest_rated_paper_per_candidate_is_scipys_column_max_where_it_matters():
    """near_dislike asks whether a similarity is above 0 and above another: where scipy's
    max(axis=0) of the rated rows is positive the answers are equal, elsewhere it is 0
    (scipy keeps a negative maximum where every rated row has an entry)."""
    from recommender.neighbourhoods import NeighbourRows
    from recommender.ranking import _nearest

    rng = np.random.default_rng(3)
    dense = rng.standard_normal((30, 12)).astype(np.float32)
    dense[rng.random(dense.shape) < 0.6] = 0
    dense[[2, 5], 11] = [-0.5, -0.25]  # every rated row has a negative entry here
    M = sp.csr_matrix(dense.astype(np.float16).astype(np.float32))  # as the index holds them
    for rows in ([2, 5], [0, 3, 3, 7, 2], list(range(30)), []):
        rows = np.array(rows, dtype=np.int64)
        ours = _nearest(NeighbourRows.of(M), rows)
        scipys = np.asarray(M[rows].max(axis=0).todense()).ravel() if len(rows) else np.zeros(12)
        positive = scipys > 0
        assert np.array_equal(ours[positive], scipys[positive])
        assert (ours[~positive] == 0).all()
    assert (
        _nearest(NeighbourRows.of(M), np.array([2, 5]))[11] == 0
        and M[[2, 5]].max(axis=0).toarray()[0, 11] < 0
    )


@pytest.mark.parametrize("n_rows", [1, 3, features.SKINNY_ROWS + 2])
def test_tfidf_products_one_row_at_a_time_are_the_same_bits_as_one_product(rec, n_rows):
    """A view's few rows go through scipy's one-vector kernel, one at a time; many rows go
    in one product. Each candidate's sum adds its stored entries in the same order either
    way: the same float32 bits, so a person ranks the same alone and in a block."""
    X = sp.csr_matrix(rec.item_vectors, dtype=np.float32)
    rows = np.random.default_rng(n_rows).random((n_rows, X.shape[1]), dtype=np.float32)
    rows[:, ::3] = 0  # as a person's summed likes: most terms absent
    got = features._sparse_products(X, rows)
    assert got.shape == (n_rows, X.shape[0]) and got.dtype == np.float32
    assert np.array_equal(got, np.asarray(X @ rows.T).T)


@pytest.mark.parametrize("stored", ["float32", "int8"])
def test_collaborative_scores_are_the_same_bits_alone_in_a_block_and_over_any_candidates(stored):
    """A person's collaborative scores do not depend on who else is ranked in the call or on
    which candidates it covers (a week's index or a day's rows): the same float32 bits, and
    the float64 product to float32 rounding. The same for int8 rows (a bundle's factors),
    over their rows as stored, a slice of them or a gathered few (still int8)."""
    rng = np.random.default_rng(3)
    factors = rng.normal(0, 0.1, (5003, 200)).astype(np.float32)
    if stored == "int8":
        factors = Int8Rows.quantize(factors)
    values = np.asarray(factors)
    people = rng.normal(0, 1, (features.SKINNY_ROWS + 5, 200)).astype(np.float32)
    block = features.factor_scores(people, factors)
    want = people.astype(np.float64) @ values.astype(np.float64).T
    np.testing.assert_allclose(block, want, rtol=1e-5, atol=1e-5)
    for i in (0, 7, len(people) - 1):
        assert np.array_equal(features.factor_scores(people[[i]], factors)[0], block[i])
        for rows in (np.sort(rng.choice(len(values), 777, replace=False)), slice(1, 4000)):
            part = values[rows]
            if stored == "int8":
                part = factors.take(rows) if isinstance(rows, np.ndarray) else factors.rows(1, 4000)
            alone = features.factor_scores(people[[i]], part)[0]
            assert np.array_equal(alone, block[i][rows])
