"""Blend weights: how much each ranking signal counts, per person and per candidate pool.

Scores are blended from per-person z-scored signals (:data:`FEATURES`):

- ``knn`` and ``centroid`` from :class:`recommender.content.ContentModel`,
- ``collab`` from :class:`recommender.collab.CollabModel` (bridged factors for new papers),
- ``popularity``: log(1 + likes) of each candidate in the training ratings (the same for every
  person; constant, hence zero after z-scoring, when no candidate has a like).

The weights are *learned* (see ``python -m recommender.evaluate --learn-weights``) and stored
in ``weights.json`` beside this module: one weight set per band of "how many ratings the person
has", per regime (``cold``: candidates nobody has rated; ``warm``: candidates with ratings); a
pool where a share of the candidates has ratings mixes the two in that proportion. The
collaborative weight is further shrunk when the community is small (few people who rated more
than one paper), where ALS factors carry little signal: the weight it loses goes to the
content-only weights learned beside the full ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

FEATURES = ("taste", "knn", "centroid", "collab", "popularity")
WEIGHTS_PATH = Path(__file__).with_name("weights.json")
#: Lower edges of the "ratings the person has" bands used by the learned weights.
BAND_EDGES = (1, 3, 10, 30)
#: Number of co-ratings (ratings beyond each person's first) at which collaborative weight
#: reaches half its learned value. A prior, not tuned: benchmarks have large communities.
COMMUNITY_HALF = 2000.0
#: People who rated at which the large-community weights get half of every blend, the
#: small-install prior the other half (a lab of 20: 4%; CiteULike's 5,551: 92%). A prior.
PEOPLE_HALF = 500.0


def band_of(n_ratings: int) -> str:
    """Name of the ratings band ``n_ratings`` falls into, e.g. ``"3-9"`` or ``"30+"``."""
    edges = list(BAND_EDGES)
    for lo, hi in zip(edges, [*edges[1:], None], strict=True):
        if (hi is None or n_ratings < hi) and (n_ratings >= lo or lo == edges[0]):
            return f"{lo}+" if hi is None else f"{lo}-{hi - 1}"
    return f"{edges[-1]}+"


BANDS = tuple(band_of(e) for e in BAND_EDGES)


@dataclass(frozen=True)
class SmallInstall:
    """Blend weights for the installs people run (one person, a lab), learned on labs-val.

    A person's own taste leads (``content``: weights of ``taste``, ``knn``, ``centroid``).
    Colleagues are evidence, weighed by how much of it there is *for this person*: the
    collaborative signal gets ``collab_max * e / (e + collab_half)`` of the weight, where
    ``e`` is the person's co-likes (for each paper they liked, how many other people liked
    it too), and nothing at all when only one person has rated. Popularity gets none: in a
    lab, what colleagues liked is a hint through the collaborative factors, never a verdict.
    """

    content: dict[str, float]
    collab_max: float = 0.5
    collab_half: float = 5.0

    def collab_share(self, co_likes: float, n_people: int) -> float:
        if n_people < 2 or co_likes <= 0:
            return 0.0
        if co_likes == float("inf"):
            return self.collab_max
        return self.collab_max * co_likes / (co_likes + self.collab_half)

    def for_person(self, co_likes: float, n_people: int) -> dict[str, float]:
        c = self.collab_share(co_likes, n_people)
        total = sum(self.content.values()) or 1.0
        out = {f: (1 - c) * self.content.get(f, 0.0) / total for f in FEATURES}
        out["collab"] = c
        out["popularity"] = 0.0
        return out


@dataclass
class BlendWeights:
    """Learned blend weights: ``weights[regime][band][feature]``.

    ``content[regime][band]`` are the best weights *without* the collaborative signal, learned
    alongside; they take over as the collaborative signal weakens (small community, no likes).
    """

    weights: dict[str, dict[str, dict[str, float]]]
    meta: dict = field(default_factory=dict)
    content: dict[str, dict[str, dict[str, float]]] | None = None
    #: The prior for installs too small to learn from (see :class:`SmallInstall`).
    small: SmallInstall | None = None

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

    def fingerprint(self) -> str:
        """A short hash of every value (weights, meta, content weights, prior): equal
        fingerprints, equal weights."""
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

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
        meta = {
            k: v
            for k, v in entry.items()
            if k not in ("weights", "content_weights", "small", "small_from")
        }
        small = entry.get("small")
        return cls(
            entry["weights"],
            meta,
            entry.get("content_weights"),
            SmallInstall(**small) if small else None,
        )
