"""The one ranking path: candidates in, ordered papers with reasons out.

Every consumer (web feed, JSON, Atom, email digest, CLI, benchmark) calls :func:`rank_for_user`
or its batch form :func:`rank_users`; both share the same code, so they cannot drift apart.

Scores are blended from per-person z-scored signals:

- ``knn`` and ``centroid`` from :class:`recommender.content.ContentModel`,
- ``collab`` from :class:`recommender.collab.CollabModel` (bridged factors for new papers).

The blend weights are *learned* on the cold-aldi-val benchmark task (see
``python -m recommender.evaluate --learn-weights``) and stored in ``weights.json`` beside this
module: one weight set per band of "how many ratings the person has", per regime (``cold``:
candidates nobody has rated; ``warm``: candidates with ratings). The collaborative weight is
further shrunk when the community is small (few people who rated more than one paper), where
ALS factors carry little signal.

Everything works on matrix rows (``pidx`` for papers, ``uidx`` for people), never database ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recommender.collab import CollabModel
from recommender.content import ContentModel, zscore
from recommender.text import EmbeddingText, TfidfText, make_text_model

FEATURES = ("knn", "centroid", "collab")
WEIGHTS_PATH = Path(__file__).with_name("weights.json")
#: Lower edges of the "ratings the person has" bands used by the learned weights.
BAND_EDGES = (1, 3, 10, 30)
#: Number of co-ratings (ratings beyond each person's first) at which collaborative weight
#: reaches half its learned value. A prior, not tuned: benchmarks have large communities.
COMMUNITY_HALF = 2000.0


def band_of(n_ratings: int) -> str:
    """Name of the ratings band ``n_ratings`` falls into, e.g. ``"3-9"`` or ``"30+"``."""
    edges = list(BAND_EDGES)
    for lo, hi in zip(edges, [*edges[1:], None], strict=True):
        if (hi is None or n_ratings < hi) and (n_ratings >= lo or lo == edges[0]):
            return f"{lo}+" if hi is None else f"{lo}-{hi - 1}"
    return f"{edges[-1]}+"


BANDS = tuple(band_of(e) for e in BAND_EDGES)


@dataclass
class Profile:
    """What the ranker knows about one person (all indices are ``pidx``).

    ``exclude`` holds papers never to show again: rated, already shown, muted.
    ``uidx`` selects stored collaborative factors; without it they are solved from ``liked``.
    ``query`` is a keyword query (onboarding) used alongside or instead of likes.
    """

    liked: Sequence[int] | np.ndarray = ()
    disliked: Sequence[int] | np.ndarray = ()
    exclude: Iterable[int] = ()
    uidx: int | None = None
    query: str | None = None


@dataclass(frozen=True)
class Ranked:
    """One ranked paper: its row, blended score and a short human-readable reason.

    ``because_pidx`` is the liked paper it is closest to (or ``None``); ``terms`` are key terms
    it shares with the person's likes or query (TF-IDF only).
    """

    pidx: int
    score: float
    reason: str
    because_pidx: int | None = None
    terms: tuple[str, ...] = ()


@dataclass
class BlendWeights:
    """Learned blend weights: ``weights[regime][band][feature]``."""

    weights: dict[str, dict[str, dict[str, float]]]
    meta: dict = field(default_factory=dict)

    def for_person(self, regime: str, n_ratings: int) -> dict[str, float]:
        table = self.weights.get(regime) or self.weights["cold"]
        return table.get(band_of(max(n_ratings, 1))) or next(iter(table.values()))

    @classmethod
    def default(cls) -> BlendWeights:
        """Equal weights: used only before weights have been learned."""
        even = {b: {f: 1.0 / len(FEATURES) for f in FEATURES} for b in BANDS}
        return cls({"cold": even, "warm": even}, {"source": "untrained default"})

    @classmethod
    def load(cls, text: str = "tfidf", path: Path | None = None) -> BlendWeights:
        """Read the learned weights for text representation ``text`` from ``weights.json``."""
        path = path or WEIGHTS_PATH
        if not path.exists():
            return cls.default()
        data = json.loads(path.read_text())
        # Features are per-person z-scores, so weights learned for TF-IDF are a sound fallback
        # for a representation that has none of its own yet.
        entry = data.get(text.split(":")[0]) or data.get("tfidf")
        if entry is None:
            return cls.default()
        return cls(entry["weights"], {k: v for k, v in entry.items() if k != "weights"})


def zscore_rows(scores: np.ndarray) -> np.ndarray:
    """Per-person z-score (kept here so callers need not import content)."""
    return zscore(scores)


@dataclass
class Recommender:
    """A fitted bundle: text model, paper vectors, content and collaborative models, weights.

    Build one with :func:`fit_recommender`; save/load it with :mod:`recommender.artifacts`.
    """

    text: TfidfText | EmbeddingText
    item_vectors: np.ndarray | sp.csr_matrix
    content: ContentModel
    collab: CollabModel | None
    weights: BlendWeights
    text_kind: str = "tfidf"
    co_ratings: int = 0
    # Neighbour floors of recent candidate sets: re-ranking one person against today's dump
    # must not recompute them (they depend only on the papers, not on the person).
    _floor_cache: dict = field(default_factory=dict, repr=False, compare=False)

    def neighbour_floor(self, candidates: np.ndarray) -> np.ndarray:
        key = np.ascontiguousarray(candidates, dtype=np.int64).tobytes()
        if key not in self._floor_cache:
            if len(self._floor_cache) >= 4:
                self._floor_cache.pop(next(iter(self._floor_cache)))
            self._floor_cache[key] = self.content.neighbour_floor(candidates)
        return self._floor_cache[key]

    @property
    def n_items(self) -> int:
        return int(self.item_vectors.shape[0])

    def community_strength(self) -> float:
        """Between 0 and 1: how much to trust collaborative factors given community size."""
        return float(self.co_ratings / (self.co_ratings + COMMUNITY_HALF))

    def query_similarity(self, query: str, items: np.ndarray) -> np.ndarray:
        """Cosine similarity of ``items`` to a keyword query."""
        q = self.text.transform([query])
        X = self.item_vectors[items]
        sims = X @ q.T
        return np.asarray(sims.toarray() if sp.issparse(sims) else sims, dtype=np.float32).ravel()


def fit_recommender(
    texts: Sequence[str],
    user_items: sp.spmatrix | None = None,
    *,
    text: str = "tfidf",
    cache_dir: Path | None = None,
    weights: BlendWeights | None = None,
    content: ContentModel | None = None,
    collab: CollabModel | None = None,
    progress: bool = False,
) -> Recommender:
    """Fit every model from paper texts (row = ``pidx``) and ratings (people x papers, +1/-1).

    ``text`` is ``"tfidf"`` (default) or ``"embeddings"``; ``cache_dir`` holds the embedding
    cache. ``user_items`` may be ``None`` or empty (a brand-new install): then only the content
    model ranks.
    """
    text_model = make_text_model(text, cache_dir=cache_dir, progress=progress).fit(texts)
    vectors = text_model.transform(texts)
    content_model = (content or ContentModel()).fit(vectors)
    collab_model = None
    co_ratings = 0
    if user_items is not None and sp.csr_matrix(user_items).nnz:
        user_items = sp.csr_matrix(user_items)
        per_person = np.diff(user_items.indptr)
        co_ratings = int(np.maximum(per_person - 1, 0).sum())
        collab_model = (collab or CollabModel()).fit(user_items, vectors)
    return Recommender(
        text=text_model,
        item_vectors=vectors,
        content=content_model,
        collab=collab_model,
        weights=weights or BlendWeights.load(text),
        text_kind=text.split(":")[0],
        co_ratings=co_ratings,
    )


# -- the ranking path -------------------------------------------------------------------------


@dataclass
class _Context:
    """Per-call precomputation shared by every person ranked against the same candidates."""

    candidates: np.ndarray
    sims: np.ndarray  # (n_candidates, n_cols) similarity to every liked/disliked paper
    col_of: dict[int, int]  # pidx -> column of sims
    floor: np.ndarray
    regime: str
    position: dict[int, int]  # pidx -> position in candidates


def _context(rec: Recommender, profiles: Sequence[Profile], candidates: np.ndarray) -> _Context:
    cols = sorted({int(p) for pr in profiles for p in (*pr.liked, *pr.disliked)})
    sims = (
        rec.content.similarity(candidates, np.asarray(cols, dtype=np.int64))
        if cols
        else np.zeros((len(candidates), 0), np.float32)
    )
    rated = rec.collab.rated_[candidates].mean() if rec.collab is not None else 0.0
    return _Context(
        candidates=candidates,
        sims=sims,
        col_of={c: i for i, c in enumerate(cols)},
        floor=rec.neighbour_floor(candidates),
        regime="warm" if rated > 0.5 else "cold",
        position={int(c): i for i, c in enumerate(candidates)},
    )


def person_features(rec: Recommender, profile: Profile, ctx: _Context) -> dict[str, np.ndarray]:
    """Per-person z-scored signals over the context's candidates (``FEATURES`` keys)."""
    liked = [ctx.col_of[int(p)] for p in profile.liked]
    disliked = [ctx.col_of[int(p)] for p in profile.disliked]
    sim_q = rec.query_similarity(profile.query, ctx.candidates) if profile.query else None
    parts = rec.content.score_parts(
        ctx.sims[:, liked],
        ctx.sims[:, disliked] if disliked else None,
        floor=ctx.floor,
        sim_query=sim_q,
    )
    feats = {"knn": zscore(parts["knn"]), "centroid": zscore(parts["centroid"])}
    if rec.collab is not None and (len(profile.liked) or profile.uidx is not None):
        if profile.uidx is not None and profile.uidx < len(rec.collab.user_factors_):
            u = rec.collab.user_factors_[profile.uidx]
        else:
            u = rec.collab.user_factors_for(profile.liked, profile.disliked)
        feats["collab"] = zscore(rec.collab.score(u, ctx.candidates))
    else:
        feats["collab"] = np.zeros(len(ctx.candidates), np.float32)
    return feats


def blend(
    rec: Recommender, features: dict[str, np.ndarray], n_ratings: int, regime: str
) -> np.ndarray:
    """Weighted sum of z-scored features with the learned weights for this person."""
    w = dict(rec.weights.for_person(regime, n_ratings))
    w["collab"] = w.get("collab", 0.0) * rec.community_strength()
    total = np.zeros_like(features["knn"])
    for name in FEATURES:
        if w.get(name):
            total += np.float32(w[name]) * features[name]
    return total


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


def _shared_terms(rec: Recommender, pidx: int, against: np.ndarray | sp.spmatrix, n: int = 3):
    """Top TF-IDF terms ``pidx`` shares with a profile vector (empty for embeddings)."""
    if not isinstance(rec.text, TfidfText) or not sp.issparse(rec.item_vectors):
        return ()
    row = rec.item_vectors[pidx]
    prod = row.multiply(against).tocoo()
    if not prod.nnz:
        return ()
    top = prod.col[np.argsort(-prod.data)[:n]]
    terms = rec.text.terms_
    return tuple(str(terms[t]) for t in top)


def rank_users(
    rec: Recommender,
    profiles: Sequence[Profile],
    *,
    candidates: Sequence[int] | np.ndarray | None = None,
    n: int = 50,
    diversity: float = 0.0,
    reasons: bool = True,
    progress: bool = False,
) -> list[list[Ranked]]:
    """Rank ``candidates`` (default: every paper) for each profile; best first, ``n`` each.

    Excluded papers (``profile.exclude``) and the person's own rated papers never appear.
    ``diversity`` in [0, 1) re-orders the top with maximal marginal relevance (0 = off).
    """
    cand = np.arange(rec.n_items) if candidates is None else np.asarray(candidates, dtype=np.int64)
    ctx = _context(rec, profiles, cand)
    iterator: Iterable[Profile] = profiles
    if progress:
        from tqdm import tqdm

        iterator = tqdm(profiles, desc="ranking", unit="person")
    results = []
    for profile in iterator:
        if not len(profile.liked) and not profile.query and profile.uidx is None:
            results.append([])  # nothing to go on yet: the caller shows recent papers instead
            continue
        feats = person_features(rec, profile, ctx)
        n_ratings = len(profile.liked) + len(profile.disliked)
        scores = blend(rec, feats, n_ratings, ctx.regime)
        drop = [
            ctx.position[int(p)]
            for p in (*profile.exclude, *profile.liked, *profile.disliked)
            if int(p) in ctx.position
        ]
        if drop:
            scores[np.asarray(drop)] = -np.inf
        results.append(_top(rec, profile, ctx, feats, scores, n, diversity, reasons))
    return results


def _top(rec, profile, ctx, feats, scores, n, diversity, reasons) -> list[Ranked]:
    valid = int(np.isfinite(scores).sum())
    take = min(n, valid)
    if take <= 0:
        return []
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
    top = top[:take]
    out = []
    liked_cols = [ctx.col_of[int(p)] for p in profile.liked]
    liked = np.asarray(profile.liked, dtype=np.int64)
    profile_vec = None
    if reasons and isinstance(rec.text, TfidfText):
        parts = []
        if len(liked):
            parts.append(rec.item_vectors[liked].sum(axis=0))
        if profile.query:
            parts.append(rec.text.transform([profile.query]).toarray())
        if parts:
            profile_vec = sp.csr_matrix(np.asarray(sum(parts)))
    for pos in top:
        pidx = int(ctx.candidates[pos])
        because = None
        terms: tuple[str, ...] = ()
        reason = "recommended"
        if reasons:
            if liked_cols:
                because = int(liked[int(np.argmax(ctx.sims[pos, liked_cols]))])
                reason = f"similar to a paper you liked (#{because})"
            if profile_vec is not None:
                terms = _shared_terms(rec, pidx, profile_vec)
            if because is None and terms:
                reason = "matches " + ", ".join(terms)
            elif because is None and feats["collab"][pos] > feats["centroid"][pos]:
                reason = "liked by people with similar taste"
        out.append(Ranked(pidx, float(scores[pos]), reason, because, terms))
    return out


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
