"""The fitted recommender: text model, paper vectors, content and collaborative models, weights.

:func:`fit_recommender` builds one from paper texts and ratings; :mod:`recommender.artifacts`
saves and loads it. Everything works on matrix rows (``pidx``), never database ids.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recommender import tuning
from recommender.collab import CollabModel
from recommender.content import ContentModel
from recommender.text import EmbeddingText, TfidfText, make_text_model
from recommender.weights import COMMUNITY_HALF, BlendWeights


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
    #: What fit-time self-tuning chose and measured (:mod:`recommender.tuning`): a plain,
    #: JSON-serialisable dict; ``{"status": "off"}`` when it did not run.
    tuning_: dict = field(default_factory=lambda: {"status": "off"}, compare=False)
    _terms: list[str] | None = field(default=None, repr=False, compare=False)

    def terms_list(self) -> list[str]:
        """The TF-IDF vocabulary as Python strings, built once (reasons name shared terms)."""
        if self._terms is None:
            self._terms = [str(t) for t in self.text.terms_]
        return self._terms

    @property
    def n_items(self) -> int:
        return int(self.item_vectors.shape[0])

    def community_strength(self) -> float:
        """Between 0 and 1: how much to trust collaborative factors given community size.

        Weights tuned on this community's own ratings already say how much its factors are
        worth (their shrinkage towards the shipped weights is built in): 1.
        """
        if self.weights.meta.get("self_tuned"):
            return 1.0
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
    tune: bool = True,
    seed: int = 0,
    tuning_options: dict | None = None,
    progress: bool = False,
) -> Recommender:
    """Fit every model from paper texts (row = ``pidx``) and ratings (people x papers, +1/-1).

    ``text`` is ``"tfidf"`` (default) or ``"embeddings"``; ``cache_dir`` holds the embedding
    cache. ``user_items`` may be ``None`` or empty (a brand-new install): then only the content
    model ranks. ``weights`` are the shipped blend weights (default: ``weights.json``); with
    ``tune`` (default) the blend weights are learned on a held-out slice of ``user_items``
    first (:mod:`recommender.tuning`, ``seed`` picks the slice; ``tuning_options`` go to
    :func:`recommender.tuning.tune_weights`) and the report is kept in ``Recommender.tuning_``.
    """
    started = time.perf_counter()
    text_model = make_text_model(text, cache_dir=cache_dir, progress=progress).fit(texts)
    vectors = text_model.transform(texts)
    content_model = (content or ContentModel()).fit(vectors)
    shipped = weights or BlendWeights.load(text)
    chosen, report = shipped, {"status": "off"}
    collab_model = None
    co_ratings = 0
    if user_items is not None and sp.csr_matrix(user_items).nnz:
        user_items = sp.csr_matrix(user_items)
        co_ratings = _co_ratings(user_items)
        # Embeddings: TF-IDF (fitted here, used only by the bridge) adds the words the
        # sentence encoder blurs, as a ridge stacked on the embedding ridge's residuals.
        extra = None if sp.issparse(vectors) else TfidfText().fit(texts).transform(texts)
        blank = copy.deepcopy(collab) if collab is not None else default_collab(text)
        if tune:
            tuned = time.perf_counter()
            holdout = tuning.holdout_split(user_items, seed=seed)
            check_collab = copy.deepcopy(blank).fit(holdout.train, vectors, extra)
            fitted = time.perf_counter()
            check = Recommender(
                text=text_model,
                item_vectors=vectors,
                content=content_model,
                collab=check_collab,
                weights=shipped,
                text_kind=text.split(":")[0],
                co_ratings=_co_ratings(holdout.train),
            )
            chosen, report = tuning.tune_weights(
                check, holdout, seed=seed, progress=progress, **(tuning_options or {})
            )
            if report["status"] != "tuned":
                chosen = shipped
            report["seconds"] = round(time.perf_counter() - tuned, 2)
            report["holdout_fit_seconds"] = round(fitted - tuned, 2)
        collab_model = blank.fit(user_items, vectors, extra)
    report["fit_seconds"] = round(time.perf_counter() - started, 2)
    if collab_model is not None:
        # Not tuned per deployment (each value would cost another ALS fit): recorded beside
        # the weights so a bundle says everything it ranks with.
        report["hyper_parameters"] = {
            "knn_k": content_model.k,
            "als_factors": collab_model.factors,
            "als_regularization": collab_model.regularization,
            "als_confidence": collab_model.alpha,
            "bridge_neighbours": collab_model.bridge_neighbours,
        }
    return Recommender(
        text=text_model,
        item_vectors=vectors,
        content=content_model,
        collab=collab_model,
        weights=chosen,
        text_kind=text.split(":")[0],
        co_ratings=co_ratings,
        tuning_=report,
    )


def _co_ratings(user_items: sp.csr_matrix) -> int:
    """Ratings beyond each person's first (what collaborative filtering learns from)."""
    return int(np.maximum(np.diff(sp.csr_matrix(user_items).indptr) - 1, 0).sum())
