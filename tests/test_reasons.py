"""Reasons name what moved the score: not a liked paper that shares one common word, not a
liked paper when the candidate is closer to a disliked one."""

from __future__ import annotations

from recommender.model import fit_recommender
from recommender.ranking import Profile, rank_for_user

TEXTS = [
    # 0: the liked paper
    "normalizing flows for density estimation with invertible neural networks",
    # 1: shares several specific terms with 0
    "invertible neural networks and normalizing flows for density estimation of images",
    # 2: shares only the common word "flows"
    "traffic flows in urban road networks during rush hour",
    # 3: the disliked paper
    "protein folding pathways simulated with molecular dynamics",
    # 4: close to the disliked paper, and also a little to the liked one
    "protein folding molecular dynamics with invertible neural networks",
    # 5-9: unrelated filler
    "galaxy cluster survey of dark matter haloes",
    "a history of medieval trade routes in europe",
    "bayesian inference for election polling",
    "soil erosion under heavy rainfall in river basins",
    "compiler optimisation for vector instructions",
]


def _reasons(profile, candidates):
    rec = fit_recommender(TEXTS)
    ranked = rank_for_user(rec, profile, candidates=candidates, n=len(candidates))
    return {r.pidx: r for r in ranked}


def test_a_liked_paper_sharing_several_terms_is_named():
    got = _reasons(Profile(liked=[0]), [1, 2, 5, 6, 7, 8, 9])
    assert got[1].because_pidx == 0
    assert got[1].kind == "liked"


def test_one_shared_common_word_is_not_a_reason_to_name_the_liked_paper():
    got = _reasons(Profile(liked=[0]), [1, 2, 5, 6, 7, 8, 9])
    assert got[2].because_pidx is None
    assert got[2].kind != "liked"
    assert got[2].terms == ()  # "matches flows" would mislead the same way


def test_a_paper_closer_to_a_dislike_says_so_and_names_no_like():
    got = _reasons(Profile(liked=[0], disliked=[3]), [4, 2, 5, 6, 7, 8, 9])
    assert got[4].because_pidx is None
    assert got[4].kind == "disliked"
    assert got[4].terms == ()
    # without the dislike, the same paper is explained by the liked one
    plain = _reasons(Profile(liked=[0]), [4, 2, 5, 6, 7, 8, 9])
    assert plain[4].because_pidx == 0


def test_liked_by_colleagues_is_said_only_of_papers_someone_liked():
    """Found by a user trial: "liked by colleagues" showed on papers nobody had rated (their
    collaborative score is bridged from their text). Every paper a third of which nobody
    liked, ranked for each person: the colleagues' reasons name only papers with a like."""
    import numpy as np

    from tests._corpus import corpus, topical_likes

    texts, topics = corpus()
    new = {i for i in range(len(topics)) if i % 3 == 0}
    ratings = topical_likes(topics, new=new)
    rec = fit_recommender(texts, ratings, tune=False)
    kinds = []
    for person in range(ratings.shape[0]):
        liked = ratings[person].indices[:2].tolist()
        ranked = rank_for_user(
            rec, Profile(liked=liked), candidates=np.arange(len(texts)), n=len(texts)
        )
        kinds += [(r.kind, r.pidx) for r in ranked]
    colleagues = [p for k, p in kinds if k.startswith("colleagues")]
    assert colleagues  # the signal still speaks where it is true
    assert all(rec.collab.likes_[p] >= 1 for p in colleagues)
    assert {k for k, p in kinds if p in new} - {"ranked", "liked", "terms", "disliked"} == set()
