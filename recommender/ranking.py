"""The one ranking path: candidates in, ordered papers with reasons out.

Every consumer (web feed, JSON, Atom, email digest, CLI, benchmark) calls :func:`rank_for_user`
or its batch form :func:`rank_users`; both share the same code, so they cannot drift apart.
The signals and their blend weights are described in :mod:`recommender.weights`; the fitted
model is :class:`recommender.model.Recommender`; reasons come from :mod:`recommender.reasons`.

The signals themselves are computed in :mod:`recommender.features` (shared with fit-time
tuning); this module blends them, demotes what is closer to a dislike than to a like, and
selects and explains each person's top.

Everything works on matrix rows (``pidx`` for papers, ``uidx`` for people), never database ids.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from recommender.content import zscore
from recommender.features import (
    CandidateIndex,
    Profile,
    _Context,
    block_features,
    context,
    rankable_mask,
    zscore_rows,
)
from recommender.model import Recommender
from recommender.neighbourhoods import NeighbourRows
from recommender.reasons import Ranked, explain
from recommender.text import TfidfText
from recommender.weights import FEATURES

__all__ = [
    "CandidateIndex",
    "Profile",
    "Ranked",
    "block_features",
    "context",
    "best_sections",
    "rankable_mask",
    "rank_for_user",
    "rank_users",
    "zscore_rows",
]


# -- the ranking path -------------------------------------------------------------------------


def _mmr(scores: np.ndarray, order: np.ndarray, sims: np.ndarray, n: int, diversity: float):
    """Maximal marginal relevance over the top of ``order`` (``sims``: candidate x candidate)."""
    chosen: list[int] = []
    pool = list(order)
    rel = zscore(scores[order])
    rel_of = dict(zip(order.tolist(), rel.tolist(), strict=True))
    max_sim = np.full(len(pool), -np.inf)
    pos = {c: i for i, c in enumerate(pool)}
    while pool and len(chosen) < n:
        vals = [
            (1 - diversity) * rel_of[c] - diversity * (max_sim[pos[c]] if chosen else 0.0)
            for c in pool
        ]
        best = pool[int(np.argmax(vals))]
        chosen.append(best)
        pool.remove(best)
        max_sim = np.maximum(max_sim, sims[:, pos[best]])
    return np.asarray(chosen, dtype=np.int64)


#: Person x candidate cells per block of the batch path (bounds memory: ~16 MB per feature).
BLOCK_CELLS = 4_000_000


def rank_users(
    rec: Recommender,
    profiles: Sequence[Profile],
    *,
    candidates: Sequence[int] | np.ndarray | None = None,
    n: int = 50,
    diversity: float = 0.0,
    reasons: bool = True,
    progress: bool = False,
    index: CandidateIndex | None = None,
) -> list[list[Ranked]]:
    """Rank ``candidates`` (default: every paper) for each profile; best first, ``n`` each.

    Excluded papers (``profile.exclude``) and the person's own rated papers never appear.
    ``diversity`` in [0, 1) re-orders the top with maximal marginal relevance (0 = off).
    ``index``: the candidates' neighbourhoods, precomputed when the bundle was published
    (:class:`CandidateIndex`); used when it covers ``candidates``, else one is built. It
    changes nothing in the result, only what the call costs.

    People are ranked in blocks: every signal of a block is a matrix product over
    (people x candidates), so one person and 100,000 people go through the same code.
    """
    cand = np.arange(rec.n_items) if candidates is None else np.asarray(candidates, dtype=np.int64)
    ctx = context(rec, profiles, cand, index)
    results: list[list[Ranked]] = [[] for _ in profiles]
    # nothing to go on yet: the caller shows recent papers instead
    active = [i for i, p in enumerate(profiles) if len(p.liked) or p.query or p.uidx is not None]
    block = max(1, BLOCK_CELLS // max(len(cand), len(ctx.index.candidates), 1))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(active), desc="ranking", unit="person")
    terms_list = (
        rec.terms_list()
        if reasons and isinstance(rec.text, TfidfText) and sp.issparse(rec.item_vectors)
        else None
    )
    for start in range(0, len(active), block):
        who = active[start : start + block]
        block_profiles = [profiles[i] for i in who]
        for i, ranked in zip(
            who,
            _rank_block(rec, block_profiles, ctx, n, diversity, reasons, terms_list),
            strict=True,
        ):
            results[i] = ranked
        if bar is not None:
            bar.update(len(who))
    if bar is not None:
        bar.close()
    return results


def _block_weights(rec: Recommender, profiles: Sequence[Profile], warm_share: float) -> np.ndarray:
    """(people x FEATURES) blend weights for a block of people (:meth:`Recommender.
    blend_for`): the person's own taste first, colleagues in proportion to the evidence."""
    W = np.zeros((len(profiles), len(FEATURES)), np.float32)
    likes = rec.collab.likes_ if rec.collab is not None else None
    seen: dict[tuple, list[float]] = {}  # people in a block share a few keys (this call only)
    for i, p in enumerate(profiles):
        liked = np.asarray(p.liked, dtype=np.int64).ravel()
        has_collab = rec.collab is not None and (len(liked) > 0 or p.uidx is not None)
        co_likes = float(np.maximum(likes[liked] - 1, 0).sum()) if has_collab else 0.0
        key = (len(liked) + len(p.disliked), has_collab, co_likes)
        if key not in seen:
            w = rec.blend_for(warm_share, *key)
            seen[key] = [w.get(name, 0.0) or 0.0 for name in FEATURES]
        W[i] = seen[key]
    return W


#: How far (in blended z-units) a candidate falls when a paper the person disliked is among
#: its nearest papers and closer to it than any paper they liked: a dislike is a hard
#: negative, so such a paper never leads the feed on the strength of its likeness to a like.
DISLIKE_DEMOTION = 2.0


def near_dislike(profiles: Sequence[Profile], ctx: _Context) -> np.ndarray:
    """(people x candidates) 1 where the candidate's nearest disliked paper is closer than its
    nearest liked one, both looked up in the candidate's neighbourhood (the published
    ``k`` nearest papers), so the cost grows with the person's ratings, not the corpus."""
    out = np.zeros((len(profiles), len(ctx.candidates)), np.float32)
    M = ctx.index.neighbours_t
    for i, p in enumerate(profiles):
        disliked = np.asarray(p.disliked, dtype=np.int64).ravel()
        if not len(disliked):
            continue
        worst = _nearest(M, disliked)
        best = _nearest(M, np.asarray(p.liked, dtype=np.int64).ravel())
        out[i] = ((worst > 0) & (worst > best))[ctx.at]
    return out


def _nearest(M: NeighbourRows, rows: np.ndarray) -> np.ndarray:
    """Per column of ``M``, the largest of ``rows``' entries, or 0 when that is larger
    (or the column has none): for :func:`near_dislike`, which only asks whether a
    similarity is above 0 and above another, the answer of scipy's ``max(axis=0)`` (which
    keeps a negative maximum where every row has an entry) without its copies."""
    out = np.zeros(M.shape[1], np.float32)
    if len(rows):
        part = M.rows(rows)
        np.maximum.at(out, part.indices, part.data.astype(np.float32, copy=False))
    return out


def _rank_block(rec, profiles, ctx, n, diversity, reasons, terms_list) -> list[list[Ranked]]:
    B, n_cand = len(profiles), len(ctx.candidates)
    keep = rankable_mask(profiles, ctx)
    feats = block_features(rec, profiles, ctx, keep)
    W = _block_weights(rec, profiles, ctx.warm_share)
    scores = np.zeros((B, n_cand), np.float32)
    for j, name in enumerate(FEATURES):
        if W[:, j].any():  # e.g. popularity: weight 0 for new papers
            scores += W[:, j : j + 1] * feats[name]
    scores -= DISLIKE_DEMOTION * near_dislike(profiles, ctx)
    scores[~keep] = -np.inf
    tops: list[np.ndarray] = [None] * B  # type: ignore[list-item]
    valid = np.isfinite(scores).sum(axis=1)
    easy = (valid >= n) & (n < n_cand) & (diversity <= 0) & (n > 0)
    if easy.any():
        rows = np.flatnonzero(easy)
        part = np.argpartition(-scores[rows], n - 1, axis=1)[:, :n]
        vals = np.take_along_axis(scores[rows], part, axis=1)
        part = np.take_along_axis(part, np.argsort(-vals, axis=1, kind="stable"), axis=1)
        for r, top in zip(rows, part, strict=True):
            tops[r] = top
    for i in np.flatnonzero(~easy):
        tops[i] = _select(rec, ctx, scores[i], int(valid[i]), n, diversity)
    return explain(rec, profiles, ctx, feats, W, scores, tops, reasons, terms_list)


def _select(rec, ctx, scores, valid, n, diversity) -> np.ndarray:
    """Positions of one person's best candidates (general case: diversity, few valid)."""
    take = min(n, valid)
    if take <= 0:
        return np.zeros(0, np.int64)
    depth = min(valid, take * 4) if diversity > 0 else take
    top = (
        np.argpartition(-scores, depth - 1)[:depth]
        if depth < len(scores)
        else np.arange(len(scores))
    )
    top = top[np.argsort(-scores[top], kind="stable")][:depth]
    top = top[np.isfinite(scores[top])]
    if diversity > 0 and len(top) > 1:
        pair = rec.content.similarity(ctx.candidates[top], ctx.candidates[top])
        top = _mmr(scores, top, pair, take, diversity)
    return top[:take]


def rank_for_user(
    rec: Recommender,
    profile: Profile,
    *,
    candidates: Sequence[int] | np.ndarray | None = None,
    n: int = 50,
    diversity: float = 0.0,
    reasons: bool = True,
) -> list[Ranked]:
    """Rank ``candidates`` for one person: the path every feed uses (see :func:`rank_users`)."""
    return rank_users(
        rec, [profile], candidates=candidates, n=n, diversity=diversity, reasons=reasons
    )[0]


def best_sections(sections: Sequence[Sequence], key=lambda x: x.pidx) -> list[list]:
    """Each paper once, in the section where it scores highest (a person's interests).

    ``sections`` are rankings of the same candidates, each best first, whose items have a
    ``score`` (blended z-units over the same candidates, so comparable across sections) and
    an identity ``key``; a tie goes to the earlier section. Each section keeps its order.
    """
    best: dict = {}
    for s, ranked in enumerate(sections):
        for item in ranked:
            k = key(item)
            if k not in best or item.score > best[k][1]:
                best[k] = (s, item.score)
    return [
        [item for item in ranked if best[key(item)][0] == s] for s, ranked in enumerate(sections)
    ]
