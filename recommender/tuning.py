"""Self-tuning at fit time: blend weights learned on a slice of the ratings being fitted.

Every refit (and ``paperfeed evaluate``, which does exactly what a refit does) calls
:func:`tune_weights` before the final fit:

1. **Hold out** (:func:`holdout_split`): a random ``COLD_SHARE`` of the liked papers loses all
   its ratings (the *cold* check: papers nobody has rated, like a new dump), and every person
   with at least three remaining likes loses one random like (the *warm* check: a paper others
   rated). Nothing else is read; the caller's ratings are all there is.
2. **Fit** the collaborative model on what is left (text vectors and the content model are
   shared with the final fit: they do not depend on ratings).
3. **Score through the serving path**: each validation person, with their likes subsampled
   into each band of :data:`recommender.weights.BANDS`, goes through the very
   ``context``/``block_features`` code that ranks feeds (:mod:`recommender.features`), over
   the held-out candidates.
4. **Search** the weight simplex (step 0.1) for the best mean of ndcg@20 and recall@100, with
   and without the collaborative signal (the content-only weights).
5. **Shrink towards the shipped defaults**: a band learned from ``n`` validation people gets
   ``n / (n + PRIOR_PEOPLE)`` of its learned weights, the rest from the shipped weights
   (which include their community-size shrinkage of ``collab``); fewer than ``MIN_PEOPLE``
   people, or a regime with no validation at all, keeps the shipped weights. So a new
   install starts from the shipped weights and moves towards its own as ratings grow.

The caller refits on everything with the returned weights and keeps the returned report
(chosen weights, validation people, default and learned objectives, seconds) as
``Recommender.tuning_``.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recommender.features import CandidateIndex, Profile, block_features, context, rankable_mask

#: Share of the liked papers whose ratings are all held out for the cold check.
COLD_SHARE = 0.15
#: Validation people per band and regime (bounds the refit time).
MAX_PEOPLE = 200
#: Warm check: candidates sampled from the rated papers (plus every held-out one).
MAX_WARM_CANDIDATES = 2000
#: Fewer validation people in a band than this: that band keeps the shipped weights.
MIN_PEOPLE = 30
#: Learned share of a band's weights is n / (n + PRIOR_PEOPLE).
PRIOR_PEOPLE = 150.0
#: Weight grid step on the simplex.
STEP = 0.1


@dataclass
class Holdout:
    """A validation split of one ratings matrix (rows = people, columns = papers)."""

    train: sp.csr_matrix
    cold_items: np.ndarray
    cold_truth: dict[int, np.ndarray]  # person -> their likes among cold_items
    warm_truth: dict[int, int]  # person -> one held-out like of a paper still rated in train


def holdout_split(user_items: sp.spmatrix, *, cold_share: float = COLD_SHARE, seed: int = 0):
    """Split ``user_items`` (+1 like, -1 dislike) into training ratings and two checks.

    Cold: ``cold_share`` of the liked papers lose every rating; the people who liked them
    (and keep at least one like) must find them among those papers. Warm: each person with
    at least 3 remaining likes loses one, which must still be liked by someone else.
    """
    rng = np.random.default_rng(seed)
    ui = sp.csr_matrix(user_items, dtype=np.float32, copy=True)
    ui.eliminate_zeros()
    likes_per_item = np.asarray((ui > 0).sum(axis=0)).ravel()
    liked_items = np.flatnonzero(likes_per_item > 0)
    n_cold = int(round(cold_share * len(liked_items)))
    cold = np.sort(rng.choice(liked_items, size=n_cold, replace=False))
    is_cold = np.zeros(ui.shape[1], dtype=bool)
    is_cold[cold] = True
    coo = ui.tocoo()
    cold_cell = is_cold[coo.col]
    cold_truth: dict[int, list[int]] = {}
    for u, i, v in zip(coo.row[cold_cell], coo.col[cold_cell], coo.data[cold_cell], strict=True):
        if v > 0:
            cold_truth.setdefault(int(u), []).append(int(i))
    rows, cols, vals = coo.row[~cold_cell], coo.col[~cold_cell], coo.data[~cold_cell]
    # warm: one random like per person with >= 3 likes left
    order = np.lexsort((rng.random(len(rows)), rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    likes_left = np.bincount(rows[vals > 0], minlength=ui.shape[0])
    drop = np.zeros(len(rows), dtype=bool)
    seen: set[int] = set()
    warm_truth: dict[int, int] = {}
    item_likes = np.bincount(cols[vals > 0], minlength=ui.shape[1])
    for n, (u, i, v) in enumerate(zip(rows.tolist(), cols.tolist(), vals.tolist(), strict=True)):
        if v > 0 and u not in seen and likes_left[u] >= 3 and item_likes[i] >= 2:
            seen.add(u)
            drop[n] = True
            item_likes[i] -= 1
            warm_truth[u] = i
    train = sp.csr_matrix(
        (vals[~drop], (rows[~drop], cols[~drop])), shape=ui.shape, dtype=np.float32
    )
    train_likes = np.asarray((train > 0).sum(axis=1)).ravel()
    truth = {u: np.asarray(sorted(g)) for u, g in cold_truth.items() if train_likes[u] > 0}
    return Holdout(train, cold, truth, warm_truth)


def simplex(step: float, dims: int) -> np.ndarray:
    """Every weight vector of ``dims`` multiples of ``step`` summing to 1, as rows."""
    m = round(1 / step)
    out = [
        (*head, m - sum(head))
        for head in itertools.product(range(m + 1), repeat=dims - 1)
        if sum(head) <= m
    ]
    return np.asarray(out, dtype=np.float32) / m


def objective(
    F: np.ndarray, keep: np.ndarray, hit: np.ndarray, W: np.ndarray, k: int = 100
) -> np.ndarray:
    """Mean of ndcg@20 and recall@``k`` (as the benchmark README defines them) per weight row.

    ``F``: (people, features, candidates) signals; ``keep``: (people, candidates) rankable;
    ``hit``: (people, candidates) held-out likes; ``W``: (grids, features). Returns (grids,).
    """
    P, _, C = F.shape
    k = max(1, min(k, C - 1))
    n_rel = hit.sum(axis=1)
    disc = 1.0 / np.log2(np.arange(2, 22))
    idcg = np.array([disc[: min(20, int(x))].sum() for x in n_rel])
    ok = n_rel > 0
    out = np.zeros(len(W))
    for g, w in enumerate(W):
        s = np.einsum("f,pfc->pc", w, F)
        s[~keep] = -np.inf
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(s, top, 1), axis=1), 1)
        h = np.take_along_axis(hit, top, 1)
        ndcg = (h[:, :20] * disc[: min(20, k)]).sum(1)[ok] / idcg[ok]
        recall = h.sum(1)[ok] / n_rel[ok]
        out[g] = (ndcg.mean() + recall.mean()) / 2 if ok.any() else 0.0
    return out


def best_weights(
    F: np.ndarray, keep: np.ndarray, hit: np.ndarray, features: tuple[str, ...], *, off=()
) -> tuple[dict[str, float], float]:
    """Best simplex weights for mean(ndcg@20, recall@100): a coarse grid (step 2 x ``STEP``),
    then hill-climbing by moves of ``STEP`` from one feature to another until none helps.

    ``off``: features held at 0; a feature constant for every person gets 0 too.
    Returns the weights and their objective.
    """
    off = set(off)
    for j, name in enumerate(features):
        v = np.where(keep, F[:, j, :], 0.0)
        if np.ptp(v, axis=1).max(initial=0.0) < 1e-6:
            off.add(name)
    on = [j for j, name in enumerate(features) if name not in off]
    if not on:
        return dict.fromkeys(features, 0.0), 0.0
    F = F[:, on, :]
    seen: dict[tuple[int, ...], float] = {}
    m = round(1 / STEP)

    def score(cells: list[tuple[int, ...]]) -> None:
        new = [c for c in dict.fromkeys(cells) if c not in seen]
        if new:
            vals = objective(F, keep, hit, np.asarray(new, np.float32) / m)
            seen.update(zip(new, vals.tolist(), strict=True))

    coarse = (simplex(2 * STEP, len(on)) * m).round().astype(int) if len(on) > 1 else [[m]]
    score([tuple(int(x) for x in c) for c in coarse])
    best = max(seen, key=lambda c: (seen[c], c))
    while True:
        moves = []
        for a, b in itertools.permutations(range(len(on)), 2):
            if best[a] > 0:
                c = list(best)
                c[a] -= 1
                c[b] += 1
                moves.append(tuple(c))
        score(moves)
        top = max([best, *moves], key=lambda c: (seen[c], c == best))
        if top == best:
            break
        best = top
    weights = dict.fromkeys(features, 0.0)
    for j, x in zip(on, best, strict=True):
        weights[features[j]] = round(x / m, 3)
    return weights, float(seen[best])


def _band_range(band: str) -> tuple[int, int | None]:
    lo = int(band.split("-")[0].rstrip("+"))
    return lo, (int(band.split("-")[1]) if "-" in band else None)


def tune_weights(
    rec,
    holdout: Holdout,
    *,
    seed: int = 0,
    max_people: int = MAX_PEOPLE,
    min_people: int = MIN_PEOPLE,
    prior_people: float = PRIOR_PEOPLE,
    learn_warm: bool = False,
    progress: bool = False,
):
    """Learn blend weights for ``rec`` (fitted on ``holdout.train``, carrying the shipped
    weights) on the two checks of ``holdout``, through the serving feature path.

    Returns ``(BlendWeights, report)``; see the module docstring for the shrinkage. The
    report's ``status`` is ``"tuned"``, or ``"defaults"`` when no band had ``min_people``
    validation people (the shipped weights are then returned unchanged).

    ``learn_warm`` (off by default): also learn the warm weights. The warm check ranks a
    sample of 2,000 rated papers, and the weights it chose ranked the full warm pool worse on
    the second validation (val2-warm, docs/benchmarks.md): until it ranks the full pool,
    warm candidates keep the shipped weights.
    """
    from recommender.weights import BANDS, FEATURES, BlendWeights

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    defaults = rec.weights
    train = holdout.train.tocsr()
    rated = np.flatnonzero(np.asarray((abs(train) > 0).sum(axis=0)).ravel() > 0)
    # Warm people are sampled first: their held-out papers join the candidates, and each
    # candidate costs a neighbourhood search (a similarity row against every paper).
    warm_people = sorted(holdout.warm_truth)
    if len(warm_people) > 2 * max_people:
        warm_people = sorted(rng.choice(warm_people, size=2 * max_people, replace=False).tolist())
    warm_truth = {u: holdout.warm_truth[u] for u in warm_people}
    warm_items = np.asarray(sorted(set(warm_truth.values())), dtype=np.int64)
    pool = np.setdiff1d(rated, warm_items)
    if len(pool) > MAX_WARM_CANDIDATES:
        pool = rng.choice(pool, size=MAX_WARM_CANDIDATES, replace=False)
    checks = {
        "cold": (holdout.cold_items, {u: set(g.tolist()) for u, g in holdout.cold_truth.items()}),
        "warm": (np.union1d(pool, warm_items), {u: {i} for u, i in warm_truth.items()}),
    }
    weights: dict = {}
    content: dict = {}
    report: dict = {"regimes": {}}
    steps = [(r, b) for r in checks for b in BANDS]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(steps), desc="tuning blend weights", unit="band")
    learned_any = False
    if not learn_warm:
        checks["warm"] = (checks["warm"][0][:0], {})
    for regime, (cands, truth) in checks.items():
        weights[regime], content[regime], report["regimes"][regime] = {}, {}, {}
        warm_share = 1.0 if regime == "warm" else 0.0
        cands = np.asarray(cands, dtype=np.int64)
        # one neighbourhood search per regime, shared by its bands (the per-corpus part)
        index = CandidateIndex.build(rec, cands) if len(cands) > 1 and truth else None
        for band in BANDS:
            lo, hi = _band_range(band)
            # the prior (shipped large-community weights mixed with the small-install ones
            # by community size), for a person whose likes others share
            default_full = rec.blend_for(warm_share, lo, True, float("inf"))
            default_content = rec.blend_for(warm_share, lo, False, 0.0)
            people = []
            for u in sorted(truth):
                row = slice(train.indptr[u], train.indptr[u + 1])
                liked = train.indices[row][train.data[row] > 0]
                if len(liked) >= lo:
                    people.append((u, liked, train.indices[row][train.data[row] < 0]))
            if len(people) > max_people:
                pick = np.sort(rng.choice(len(people), size=max_people, replace=False))
                people = [people[i] for i in pick]
            entry: dict = {"people": len(people)}
            share = 0.0
            if len(people) >= min_people and len(cands) > 1:
                profiles = []
                for _u, liked, disliked in people:
                    size = len(liked)
                    if hi is not None:
                        size = min(size, int(rng.integers(lo, hi + 1)))
                    keep_likes = rng.choice(liked, size=size, replace=False)
                    profiles.append(Profile(liked=keep_likes, disliked=disliked))
                ctx = context(rec, profiles, cands, index)
                keep = rankable_mask(profiles, ctx)
                feats = block_features(rec, profiles, ctx, keep)
                F = np.stack([feats[f] for f in FEATURES], axis=1)
                hit = np.zeros(keep.shape, dtype=bool)
                for r, (u, _, _) in enumerate(people):
                    pos = ctx.pos_lookup[np.fromiter(truth[u], np.int64)]
                    hit[r, pos[pos >= 0]] = True
                hit &= keep
                learned, learned_obj = best_weights(F, keep, hit, FEATURES)
                alone, alone_obj = best_weights(F, keep, hit, FEATURES, off={"collab"})
                vec = np.asarray([[default_full.get(f, 0.0) for f in FEATURES]], np.float32)
                entry["default_objective"] = round(float(objective(F, keep, hit, vec)[0]), 4)
                entry["learned"] = learned
                entry["learned_objective"] = round(learned_obj, 4)
                entry["content_objective"] = round(alone_obj, 4)
                share = len(people) / (len(people) + prior_people)
                learned_any = True
            else:
                learned, alone = default_full, default_content
            entry["learned_share"] = round(share, 3)
            full = {
                f: round(share * learned.get(f, 0.0) + (1 - share) * default_full.get(f, 0.0), 4)
                for f in FEATURES
            }
            solo = {
                f: round(share * alone.get(f, 0.0) + (1 - share) * default_content.get(f, 0.0), 4)
                for f in FEATURES
                if f != "collab"
            }
            weights[regime][band], content[regime][band] = full, solo
            entry["weights"], entry["content_weights"] = full, solo
            report["regimes"][regime][band] = entry
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    report.update(
        status="tuned" if learned_any else "defaults",
        cold_candidates=len(checks["cold"][0]),
        warm_candidates=len(checks["warm"][0]),
        prior_people=prior_people,
        min_people=min_people,
        search_seconds=round(time.perf_counter() - started, 2),
    )
    if not learned_any:
        return defaults, report
    meta = {"source": "self-tuned at fit time", "self_tuned": True}
    return BlendWeights(weights, meta, content, defaults.small), report
