"""The one ranking path: candidates in, ordered papers with reasons out.

Every consumer (web feed, JSON, Atom, email digest, CLI, benchmark) calls :func:`rank_for_user`
or its batch form :func:`rank_users`; both share the same code, so they cannot drift apart.

Scores are blended from per-person z-scored signals:

- ``knn`` and ``centroid`` from :class:`recommender.content.ContentModel`,
- ``collab`` from :class:`recommender.collab.CollabModel` (bridged factors for new papers),
- ``popularity``: log(1 + likes) of each candidate in the training ratings (the same for every
  person; constant, hence zero after z-scoring, when no candidate has a like).

The blend weights are *learned* on the cold-aldi-val benchmark task (see
``python -m recommender.evaluate --learn-weights``) and stored in ``weights.json`` beside this
module: one weight set per band of "how many ratings the person has", per regime (``cold``:
candidates nobody has rated; ``warm``: candidates with ratings); a pool where a share of the
candidates has ratings mixes the two in that proportion. The collaborative weight is further
shrunk when the community is small (few people who rated more than one paper), where ALS
factors carry little signal: the weight it loses goes to the content-only weights learned
beside the full ones.

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

FEATURES = ("knn", "centroid", "collab", "popularity")
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
    """Learned blend weights: ``weights[regime][band][feature]``.

    ``content[regime][band]`` are the best weights *without* the collaborative signal, learned
    alongside; they take over as the collaborative signal weakens (small community, no likes).
    """

    weights: dict[str, dict[str, dict[str, float]]]
    meta: dict = field(default_factory=dict)
    content: dict[str, dict[str, dict[str, float]]] | None = None

    def for_person(self, regime: str, n_ratings: int) -> dict[str, float]:
        return self._lookup(self.weights, regime, n_ratings)

    @staticmethod
    def _lookup(tables, regime: str, n_ratings: int) -> dict[str, float]:
        table = tables.get(regime) or tables["cold"]
        return table.get(band_of(max(n_ratings, 1))) or next(iter(table.values()))

    def content_for_person(self, regime: str, n_ratings: int) -> dict[str, float]:
        """Weights without ``collab``: learned ones, else the content shares of the full set."""
        if self.content:
            return dict(self._lookup(self.content, regime, n_ratings), collab=0.0)
        w = self.for_person(regime, n_ratings)
        total = sum(w.get(f, 0.0) for f in FEATURES if f != "collab")
        if total <= 0:
            return {"knn": 0.0, "centroid": 1.0, "collab": 0.0}
        return {f: (w.get(f, 0.0) / total if f != "collab" else 0.0) for f in FEATURES}

    def mixed(self, regime: str, n_ratings: int, strength: float) -> dict[str, float]:
        """``strength`` (0..1, trust in collaborative factors) of the full weights, the rest
        content-only weights."""
        full = self.for_person(regime, n_ratings)
        if strength >= 1.0:
            return {f: full.get(f, 0.0) for f in FEATURES}
        alone = self.content_for_person(regime, n_ratings)
        return {
            f: strength * full.get(f, 0.0) + (1 - strength) * alone.get(f, 0.0) for f in FEATURES
        }

    def for_pool(self, warm_share: float, n_ratings: int, strength: float) -> dict[str, float]:
        """Weights for a candidate pool in which ``warm_share`` of the papers have ratings:
        that share of the ``warm`` weights, the rest ``cold`` (see :meth:`mixed`).

        ``popularity`` keeps its full ``warm`` weight in a mixed pool: it is the same for every
        paper nobody has rated, so it only orders the rated share (and lifts it above the
        rest); diluting its weight by that share under-weights it (one-like analogue of
        cold-aldi-val, docs/benchmarks.md). On a cold pool it is constant, i.e. zero.
        """
        cold = self.mixed("cold", n_ratings, strength)
        if warm_share <= 0:
            return cold
        warm = self.mixed("warm", n_ratings, strength)
        if warm_share >= 1:
            return warm
        out = {f: warm_share * warm[f] + (1 - warm_share) * cold[f] for f in FEATURES}
        out["popularity"] = warm["popularity"]
        return out

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
        meta = {k: v for k, v in entry.items() if k not in ("weights", "content_weights")}
        return cls(entry["weights"], meta, entry.get("content_weights"))


def zscore_rows(scores: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """Z-score each row (one person) of ``scores``; constant rows become zeros.

    Row by row the same as :func:`recommender.content.zscore`. With ``keep``
    (a boolean mask of the same shape), each row's mean and spread come from its
    kept entries only, so a person ranked in a batch over a shared candidate pool
    gets the same scores as when ranked alone over their own candidates.
    """
    scores = np.asarray(scores, dtype=np.float32)
    # One formula whether or not anything is masked, so that a row's result never
    # depends on the other rows of its block (bit-for-bit, not just approximately).
    if keep is None:
        keep = np.ones(scores.shape, dtype=bool)
    count = np.maximum(keep.sum(axis=1, keepdims=True), 1).astype(np.float32)
    mean = np.where(keep, scores, 0).sum(axis=1, keepdims=True) / count
    centred = np.where(keep, scores - mean, 0)
    std = np.sqrt((centred * centred).sum(axis=1, keepdims=True) / count)
    ok = np.isfinite(std) & (std >= 1e-12)
    out = (scores - mean) / np.where(ok, std, np.float32(1))
    out[~ok[:, 0]] = 0
    return out.astype(np.float32, copy=False)


#: Similarity values kept per candidate set by :meth:`Recommender.candidate_similarity`
#: (float32: 32 MB; 32,000 papers' rows against a 250-paper dump).
SIM_CACHE_CELLS = 8_000_000


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
    # Each paper's neighbour floor (NaN: not computed yet). It depends on the paper alone, so
    # re-ranking against today's dump, or any subset of it, computes none again.
    _floor_values: np.ndarray | None = field(default=None, repr=False, compare=False)
    # Similarity rows of papers to recent candidate sets (see candidate_similarity).
    _sim_cache: dict = field(default_factory=dict, repr=False, compare=False)
    _terms: list[str] | None = field(default=None, repr=False, compare=False)

    def neighbour_floor(self, candidates: np.ndarray) -> np.ndarray:
        """``content.neighbour_floor(candidates)``, each paper's value computed once."""
        cand = np.asarray(candidates, dtype=np.int64)
        if self._floor_values is None:
            self._floor_values = np.full(self.n_items, np.nan, dtype=np.float32)
        values = self._floor_values[cand]
        missing = np.unique(cand[np.isnan(values)])
        if len(missing):
            self._floor_values[missing] = self.content.neighbour_floor(missing)
            values = self._floor_values[cand]
        return values

    def candidate_similarity(
        self, rows: np.ndarray, candidates: np.ndarray, universe: np.ndarray | None = None
    ) -> np.ndarray:
        """``content.similarity(rows, candidates)``, each paper's row computed once per
        candidate set and kept.

        A person's likes change one at a time: re-ranking after a like computes one new
        row, not one per liked paper, and everyone ranked against the same dump shares
        the rows of papers they have in common. ``universe``, a superset of
        ``candidates`` that stays the same across calls (today's dump, while the
        candidates are the part of it a person has not rated), is what rows are kept
        against, so a like that takes a paper out of the candidates does not start a new
        set. Keeps the rows of the two most recent sets, up to :data:`SIM_CACHE_CELLS`
        values each; rows beyond that are computed and not kept. The model never changes
        under a cache (a refit makes a new :class:`Recommender`), so a kept row is never
        stale.
        """
        rows = np.asarray(rows, dtype=np.int64)
        candidates = np.asarray(candidates, dtype=np.int64)
        if universe is not None and len(universe):
            universe = np.unique(np.asarray(universe, dtype=np.int64))
            cols = np.minimum(np.searchsorted(universe, candidates), len(universe) - 1)
            if len(cols) and np.array_equal(universe[cols], candidates):
                return self.candidate_similarity(rows, universe)[:, cols]
            # not a superset of the candidates: keep by candidates
        key = np.ascontiguousarray(candidates, dtype=np.int64).tobytes()
        table = self._sim_cache.get(key)
        if table is None:
            while len(self._sim_cache) >= 2:
                self._sim_cache.pop(next(iter(list(self._sim_cache))), None)
            table = self._sim_cache.setdefault(key, {})
        wanted = rows.tolist()
        missing = sorted({r for r in wanted if r not in table})
        extra: dict[int, np.ndarray] = {}
        if missing:
            block = self.content.similarity(np.asarray(missing, np.int64), candidates)
            room = SIM_CACHE_CELLS // max(len(candidates), 1) - len(table)
            fresh = dict(zip(missing, block, strict=True))
            if len(missing) <= room:
                table.update(fresh)
            else:
                extra = fresh
        if not wanted:
            return np.zeros((0, len(candidates)), np.float32)
        return np.stack([table[r] if r in table else extra[r] for r in wanted])

    def terms_list(self) -> list[str]:
        """The TF-IDF vocabulary as Python strings, built once (reasons name shared terms)."""
        if self._terms is None:
            self._terms = [str(t) for t in self.text.terms_]
        return self._terms

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


def default_collab(text: str = "tfidf") -> CollabModel:
    """The collaborative model for text representation ``text`` (settings chosen on
    cold-aldi-val, see docs/benchmarks.md).

    With embeddings, new papers' factors mix the ridge bridge (embeddings, plus TF-IDF stacked
    on its residuals) half and half with the kNN bridge (30 nearest rated papers, weights
    cos**5). With TF-IDF alone the ridge bridge is used.
    """
    if text.split(":")[0] == "embeddings":
        return CollabModel(bridge_neighbours=30, bridge_power=5.0, bridge_knn_share=0.5)
    return CollabModel()


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
        # Embeddings: TF-IDF (fitted here, used only by the bridge) adds the words the
        # sentence encoder blurs, as a ridge stacked on the embedding ridge's residuals.
        extra = None if sp.issparse(vectors) else TfidfText().fit(texts).transform(texts)
        collab_model = (collab or default_collab(text)).fit(user_items, vectors, extra)
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
    sims_t: np.ndarray  # (n_cols, n_candidates) similarity of every liked/disliked paper
    knn_t: np.ndarray  # sims_t where the liked paper is among the candidate's neighbours, else 0
    col_of: dict[int, int]  # pidx -> row of sims_t
    col_lookup: np.ndarray  # pidx -> row of sims_t (-1: none)
    floor: np.ndarray
    regime: str
    warm_share: float  # share of candidates with a rating: mixes the cold and warm weights
    popularity: np.ndarray  # (n_candidates,) z-scored log(1 + likes)
    position: dict[int, int]  # pidx -> position in candidates
    pos_lookup: np.ndarray  # pidx -> position in candidates (-1: not a candidate)
    cand_factors: np.ndarray | None  # (n_candidates, factors) float64 collaborative factors

    @property
    def sims(self) -> np.ndarray:
        """(n_candidates, n_cols) similarity to every liked/disliked paper (a view)."""
        return self.sims_t.T


def _context(
    rec: Recommender,
    profiles: Sequence[Profile],
    candidates: np.ndarray,
    universe: np.ndarray | None = None,
) -> _Context:
    cols = np.unique(
        np.concatenate(
            [np.zeros(0, np.int64)]
            + [np.asarray(pr.liked, dtype=np.int64).ravel() for pr in profiles]
            + [np.asarray(pr.disliked, dtype=np.int64).ravel() for pr in profiles]
        )
    )
    sims_t = (
        rec.candidate_similarity(cols, candidates, universe)
        if len(cols)
        else np.zeros((0, len(candidates)), np.float32)
    )
    floor = rec.neighbour_floor(candidates)
    rated = float(rec.collab.rated_[candidates].mean()) if rec.collab is not None else 0.0
    likes = rec.collab.likes_[candidates] if rec.collab is not None else np.zeros(len(candidates))
    col_lookup = np.full(rec.n_items, -1, dtype=np.int64)
    col_lookup[cols] = np.arange(len(cols))
    pos_lookup = np.full(rec.n_items, -1, dtype=np.int64)
    pos_lookup[candidates] = np.arange(len(candidates))
    return _Context(
        candidates=candidates,
        sims_t=sims_t,
        knn_t=np.where(sims_t >= floor[None, :], sims_t, np.float32(0)),
        col_of={int(c): i for i, c in enumerate(cols)},
        col_lookup=col_lookup,
        floor=floor,
        regime="warm" if rated > 0.5 else "cold",
        warm_share=rated,
        popularity=zscore(np.log1p(np.asarray(likes, dtype=np.float32))),
        position={int(c): i for i, c in enumerate(candidates)},
        pos_lookup=pos_lookup,
        cand_factors=(
            rec.collab.item_factors_[candidates].astype(np.float64)
            if rec.collab is not None
            else None
        ),
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
    feats["popularity"] = ctx.popularity
    return feats


def blend(
    rec: Recommender, features: dict[str, np.ndarray], n_ratings: int, warm_share: float
) -> np.ndarray:
    """Weighted sum of z-scored features with the learned weights for this person."""
    strength = rec.community_strength() if features["collab"].any() else 0.0
    w = rec.weights.for_pool(warm_share, n_ratings, strength)
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
    universe: Sequence[int] | np.ndarray | None = None,
) -> list[list[Ranked]]:
    """Rank ``candidates`` (default: every paper) for each profile; best first, ``n`` each.

    Excluded papers (``profile.exclude``) and the person's own rated papers never appear.
    ``diversity`` in [0, 1) re-orders the top with maximal marginal relevance (0 = off).
    ``universe``: a superset of ``candidates`` that stays the same from call to call
    (today's dump); similarity rows are kept against it (see
    :meth:`Recommender.candidate_similarity`). It changes nothing in the result.

    People are ranked in blocks: every signal of a block is a matrix product over
    (people x candidates), so one person and 100,000 people go through the same code.
    """
    cand = np.arange(rec.n_items) if candidates is None else np.asarray(candidates, dtype=np.int64)
    ctx = _context(rec, profiles, cand, None if universe is None else np.asarray(universe))
    results: list[list[Ranked]] = [[] for _ in profiles]
    # nothing to go on yet: the caller shows recent papers instead
    active = [i for i, p in enumerate(profiles) if len(p.liked) or p.query or p.uidx is not None]
    block = max(1, BLOCK_CELLS // max(len(cand), 1))
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


def _indicator(rows: list[np.ndarray], lookup: np.ndarray, n_cols: int) -> sp.csr_matrix:
    """(len(rows), n_cols) float32 counts of ``lookup[rows[i]]`` (duplicates count twice)."""
    lens = np.fromiter((len(r) for r in rows), np.int64, len(rows))
    flat = np.concatenate([np.zeros(0, np.int64), *rows]) if len(rows) else np.zeros(0, np.int64)
    M = sp.csr_matrix(
        (np.ones(len(flat), np.float32), (np.repeat(np.arange(len(rows)), lens), lookup[flat])),
        shape=(len(rows), n_cols),
    )
    M.sum_duplicates()
    return M


def _block_features(
    rec: Recommender, profiles: Sequence[Profile], ctx: _Context, keep: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """(people x candidates) z-scored signals: :func:`person_features` for a block at once.

    ``keep`` marks each person's own candidates (see :func:`zscore_rows`).
    """
    B, n_cand = len(profiles), len(ctx.candidates)
    liked = [np.asarray(p.liked, dtype=np.int64).ravel() for p in profiles]
    disliked = [np.asarray(p.disliked, dtype=np.int64).ravel() for p in profiles]
    n_liked = np.fromiter((len(x) for x in liked), np.int64, B)
    n_disliked = np.fromiter((len(x) for x in disliked), np.int64, B)
    n_cols = ctx.sims_t.shape[0]
    L = _indicator(liked, ctx.col_lookup, n_cols)
    sum_liked = np.asarray(L @ ctx.sims_t, dtype=np.float32).reshape(B, n_cand)
    knn = np.asarray(L @ ctx.knn_t, dtype=np.float32).reshape(B, n_cand)
    # centroid: mean similarity to the liked papers, a keyword query counting as one more
    n_centroid = n_liked.copy()
    for i, p in enumerate(profiles):
        if p.query:
            sum_liked[i] += rec.query_similarity(p.query, ctx.candidates)
            n_centroid[i] += 1
    centroid = np.zeros((B, n_cand), np.float32)
    has = n_centroid > 0
    centroid[has] = sum_liked[has] / n_centroid[has, None].astype(np.float32)
    no_likes = n_liked == 0
    knn[no_likes] = centroid[no_likes]
    if n_disliked.any():
        # A dislike lowers both signals by the mean similarity to the disliked papers.
        D = _indicator(disliked, ctx.col_lookup, n_cols)
        dis = n_disliked > 0
        sum_dis = np.asarray(D[dis] @ ctx.sims_t, dtype=np.float32)
        penalty = np.float32(rec.content.dislike_weight) * (
            sum_dis / n_disliked[dis, None].astype(np.float32)
        )
        scale = np.maximum(1.0, np.sqrt(n_liked[dis].astype(np.float64))).astype(np.float32)
        centroid[dis] -= penalty
        knn[dis] -= penalty * scale[:, None]
    feats = {"knn": zscore_rows(knn, keep), "centroid": zscore_rows(centroid, keep)}
    collab = np.zeros((B, n_cand), np.float32)
    if rec.collab is not None:
        stored = len(rec.collab.user_factors_)
        U = np.zeros((B, rec.collab.factors), np.float32)
        solve = [
            i
            for i, p in enumerate(profiles)
            if (p.uidx is None or p.uidx >= stored) and (len(liked[i]) or p.uidx is not None)
        ]
        if solve:
            U[solve] = rec.collab.user_factors_batch(
                [liked[i] for i in solve], [disliked[i] for i in solve]
            )
        known = [i for i, p in enumerate(profiles) if p.uidx is not None and p.uidx < stored]
        if known:
            U[known] = rec.collab.user_factors_[[profiles[i].uidx for i in known]]
        collab = zscore_rows((U.astype(np.float64) @ ctx.cand_factors.T).astype(np.float32), keep)
    feats["collab"] = collab
    # standardised over each person's own pool, like the other signals
    feats["popularity"] = zscore_rows(np.broadcast_to(ctx.popularity, (B, n_cand)), keep)
    return feats


def _block_weights(rec: Recommender, profiles: Sequence[Profile], warm_share: float) -> np.ndarray:
    """(people x FEATURES) blend weights: collaborative weight shrunk by community size, the
    rest going to the content-only weights (all of it for people without collaborative factors).
    """
    W = np.zeros((len(profiles), len(FEATURES)), np.float32)
    strength = rec.community_strength() if rec.collab is not None else 0.0
    cache: dict[tuple[int, float], list[float]] = {}
    for i, p in enumerate(profiles):
        n_ratings = len(p.liked) + len(p.disliked)
        s = strength if (len(p.liked) or p.uidx is not None) else 0.0
        if (n_ratings, s) not in cache:
            w = rec.weights.for_pool(warm_share, n_ratings, s)
            cache[n_ratings, s] = [w.get(name, 0.0) or 0.0 for name in FEATURES]
        W[i] = cache[n_ratings, s]
    return W


def _rank_block(rec, profiles, ctx, n, diversity, reasons, terms_list) -> list[list[Ranked]]:
    B, n_cand = len(profiles), len(ctx.candidates)
    # never show excluded or already rated papers
    keep = np.ones((B, n_cand), dtype=bool)
    for i, p in enumerate(profiles):
        drop = np.concatenate(
            [
                (
                    np.asarray(p.exclude, dtype=np.int64).ravel()
                    if isinstance(p.exclude, np.ndarray)
                    else np.fromiter((int(x) for x in p.exclude), np.int64)
                ),
                np.asarray(p.liked, dtype=np.int64).ravel(),
                np.asarray(p.disliked, dtype=np.int64).ravel(),
            ]
        )
        drop = drop[(drop >= 0) & (drop < len(ctx.pos_lookup))]
        pos = ctx.pos_lookup[drop]
        keep[i, pos[pos >= 0]] = False
    feats = _block_features(rec, profiles, ctx, keep)
    W = _block_weights(rec, profiles, ctx.warm_share)
    scores = np.zeros((B, n_cand), np.float32)
    for j, name in enumerate(FEATURES):
        if W[:, j].any():  # e.g. popularity: weight 0 for new papers
            scores += W[:, j : j + 1] * feats[name]
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
    return _explain(rec, profiles, ctx, feats, scores, tops, reasons, terms_list)


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


def _explain(rec, profiles, ctx, feats, scores, tops, reasons, terms_list) -> list[list[Ranked]]:
    """Turn each person's top positions into :class:`Ranked` rows with their reasons."""
    out = []
    if not reasons:
        for i, top in enumerate(tops):
            pidxs, row_scores = ctx.candidates[top].tolist(), scores[i, top].tolist()
            out.append(
                [Ranked(p, s, "recommended") for p, s in zip(pidxs, row_scores, strict=True)]
            )
        return out
    because_of = _block_because(profiles, ctx, tops)
    terms_of = (
        _block_terms(rec, profiles, ctx, tops, terms_list) if terms_list is not None else None
    )
    similar: dict[int, str] = {}
    for i, top in enumerate(tops):
        pidxs, row_scores = ctx.candidates[top].tolist(), scores[i, top].tolist()
        because = because_of[i]
        row_terms = terms_of[i] if terms_of is not None else [()] * len(top)
        if because is not None:
            why = [
                similar.get(b) or similar.setdefault(b, f"similar to a paper you liked (#{b})")
                for b in because
            ]
            because_list = because
        else:
            collab_wins = (feats["collab"][i, top] > feats["centroid"][i, top]).tolist()
            why = [
                "matches " + ", ".join(t)
                if t
                else ("liked by people with similar taste" if cw else "recommended")
                for t, cw in zip(row_terms, collab_wins, strict=True)
            ]
            because_list = [None] * len(top)
        out.append(
            [
                Ranked(p, s, r, b, t)
                for p, s, r, b, t in zip(
                    pidxs, row_scores, why, because_list, row_terms, strict=True
                )
            ]
        )
    return out


def _block_because(profiles, ctx, tops) -> list[list[int] | None]:
    """For each shown paper, the person's liked paper it is most similar to (first on ties)."""
    B = len(profiles)
    liked = [np.asarray(p.liked, dtype=np.int64).ravel() for p in profiles]
    lens = np.fromiter((len(x) for x in liked), np.int64, B)
    widths = np.fromiter((len(t) for t in tops), np.int64, B)
    out: list[list[int] | None] = [None] * B
    if not lens.any():
        return out
    k, m = int(lens.max()), int(widths.max())
    pad_liked = np.zeros((B, k), np.int64)
    pad_top = np.zeros((B, m), np.int64)
    for i in range(B):
        pad_liked[i, : lens[i]] = liked[i]
        pad_top[i, : widths[i]] = tops[i]
    cols = ctx.col_lookup[pad_liked]  # (B, k)
    sims = ctx.sims_t[cols[:, :, None], pad_top[:, None, :]]  # (B, k, m)
    sims[np.arange(k)[None, :] >= lens[:, None]] = -np.inf  # padding never wins
    best = np.take_along_axis(pad_liked, np.argmax(sims, axis=1), axis=1)  # (B, m)
    for i in np.flatnonzero(lens):
        out[i] = best[i, : widths[i]].tolist()
    return out


def _row_entries(M: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """Positions in ``M.data``/``M.indices`` of the stored entries of ``rows``, row by row."""
    starts, ends = M.indptr[rows], M.indptr[rows + 1]
    lens = ends - starts
    return np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(int(lens.sum()))


def _block_terms(rec, profiles, ctx, tops, terms_list, n_terms: int = 3):
    """Top TF-IDF terms each shown paper shares with its person's likes and query.

    A person's profile is the sum of their liked papers' vectors plus their query's,
    summed with one ``bincount`` per block of people into a dense (people x terms)
    scratch: no sparse products, so one person costs a few array operations.
    """
    B = len(profiles)
    lens = np.fromiter((len(t) for t in tops), np.int64, B)
    if not lens.sum():
        return [[] for _ in range(B)]
    V = rec.item_vectors.shape[1]
    vectors = rec.item_vectors
    # each person's liked rows, in pidx order (a canonical summation order)
    liked = [np.sort(np.asarray(p.liked, dtype=np.int64).ravel()) for p in profiles]
    n_liked = np.fromiter((len(x) for x in liked), np.int64, B)
    flat_liked = np.concatenate([np.zeros(0, np.int64), *liked])
    liked_owner = np.repeat(np.arange(B), n_liked)
    queries = {i: rec.text.transform([p.query]).tocsr() for i, p in enumerate(profiles) if p.query}
    owner = np.repeat(np.arange(B), lens)
    X = vectors[ctx.candidates[np.concatenate(tops).astype(np.int64)]].tocsr()
    X.sort_indices()  # products in term order: ties keep the first term
    x_row = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    x_owner = owner[x_row]
    # profile weight at each (shown paper, term), a block of people at a time
    weight = np.zeros(len(X.data), dtype=np.float64)
    step = 256
    x_starts = np.searchsorted(x_owner, np.arange(0, B + step, step))
    l_starts = np.searchsorted(liked_owner, np.arange(0, B + step, step))
    for j, start in enumerate(range(0, B, step)):
        stop = min(start + step, B)
        rows = flat_liked[l_starts[j] : l_starts[j + 1]]
        whose = liked_owner[l_starts[j] : l_starts[j + 1]] - start
        at = _row_entries(vectors, rows)
        per_row = vectors.indptr[rows + 1] - vectors.indptr[rows]
        keys = [np.repeat(whose, per_row) * V + vectors.indices[at].astype(np.int64)]
        vals = [vectors.data[at].astype(np.float64)]
        for i in range(start, stop):
            if i in queries:
                q = queries[i]
                keys.append((i - start) * V + q.indices.astype(np.int64))
                vals.append(q.data.astype(np.float64))
        scratch = np.bincount(
            np.concatenate(keys), weights=np.concatenate(vals), minlength=(stop - start) * V
        )
        a, b = x_starts[j], x_starts[j + 1]
        weight[a:b] = scratch[(x_owner[a:b] - start) * V + X.indices[a:b]]
    prod = X.data * weight
    nz = np.flatnonzero(prod)
    order = nz[np.lexsort((-prod[nz], x_row[nz]))]
    rows = x_row[order]
    first = np.searchsorted(rows, rows)  # start of each row's run
    keep = order[np.arange(len(order)) - first < n_terms]
    words = [terms_list[t] for t in X.indices[keep].tolist()]
    bounds = np.searchsorted(x_row[keep], np.arange(X.shape[0] + 1)).tolist()
    per_item = [tuple(words[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    out, at = [], 0
    for k in lens.tolist():
        out.append(per_item[at : at + k])
        at += k
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
