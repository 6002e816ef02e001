"""The fitted recommender: text model, paper vectors, content and collaborative models, weights.

:func:`fit_recommender` builds one from paper texts and ratings; :mod:`recommender.artifacts`
saves and loads it. Everything works on matrix rows (``pidx``), never database ids.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recommender import tuning
from recommender.collab import CollabModel
from recommender.content import ContentModel
from recommender.quantized import Int8Rows
from recommender.taste import TasteModel
from recommender.text import EmbeddingText, TfidfText, make_text_model
from recommender.weights import COMMUNITY_HALF, PEOPLE_HALF, BlendWeights


@dataclass
class Recommender:
    """A fitted bundle: text model, paper vectors, content and collaborative models, weights.

    Build one with :func:`fit_recommender`; save/load it with :mod:`recommender.artifacts`.
    """

    text: TfidfText | EmbeddingText
    item_vectors: np.ndarray | sp.csr_matrix | Int8Rows  # dense: int8 rows (see quantized)
    content: ContentModel
    collab: CollabModel | None
    weights: BlendWeights
    text_kind: str = "tfidf"
    co_ratings: int = 0
    #: People with at least one rating in the fitted ratings.
    n_people: int = 0
    #: What fit-time self-tuning chose and measured (:mod:`recommender.tuning`): a plain,
    #: JSON-serialisable dict; ``{"status": "off"}`` when it did not run.
    tuning_: dict = field(default_factory=lambda: {"status": "off"}, compare=False)
    #: Each person's own linear taste model shares this whitening (:mod:`recommender.taste`).
    taste: TasteModel | None = None
    #: Embeddings: the TF-IDF model whose vectors feed the collaborative bridge's stacked
    #: ridge (``CollabModel.extra_coef_``); kept so a publish bridges new papers the same way.
    bridge_text: TfidfText | None = None
    _topics: dict = field(default_factory=dict, repr=False, compare=False)
    _topics_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def terms_list(self) -> np.ndarray:
        """The TF-IDF vocabulary, index-aligned with the vectors' columns (reasons name
        shared terms). A loaded bundle's is its stored array, memory-mapped: nothing is
        built per term (a Python string each would be tens of MB per worker)."""
        return self.text.terms_

    @property
    def n_items(self) -> int:
        return int(self.item_vectors.shape[0])

    def community_strength(self) -> float:
        """Between 0 and 1: how far this install is from a small one, by how many people rated.

        The share of the large-community weights in every blend (the rest: the small-install
        prior, :class:`recommender.weights.SmallInstall`), ``people / (people +
        PEOPLE_HALF)``. Weights tuned on this community's own ratings already say how much
        its signals are worth (their shrinkage towards the prior is built in): 1.
        """
        if self.weights.meta.get("self_tuned"):
            return 1.0
        return float(self.n_people / (self.n_people + PEOPLE_HALF))

    def collab_strength(self) -> float:
        """Between 0 and 1: how much the large-community weights trust collaborative factors,
        by co-ratings (ratings beyond each person's first); 1 once self-tuned."""
        if self.weights.meta.get("self_tuned"):
            return 1.0
        return float(self.co_ratings / (self.co_ratings + COMMUNITY_HALF))

    def blend_for(
        self, warm_share: float, n_ratings: int, has_collab: bool, co_likes: float
    ) -> dict[str, float]:
        """One person's blend weights (``FEATURES`` keys).

        ``has_collab``: the person has collaborative factors (a like, or stored factors);
        ``co_likes``: how many times other people liked the papers they liked (the evidence
        colleagues give about them). With one person in the install, or no co-likes in a
        small one, the ranking is the content ranking alone.
        """
        large = self.weights.for_pool(
            warm_share, n_ratings, self.collab_strength() if has_collab else 0.0
        )
        small = self.weights.small
        if small is None:  # weights without a small-install prior: the large ones alone
            return large
        mine = small.for_person(co_likes if has_collab else 0.0, self.n_people)
        if self.n_people < 2:
            return mine
        s = self.community_strength()
        return {f: s * large.get(f, 0.0) + (1 - s) * mine.get(f, 0.0) for f in mine}

    def topic_vectors(self, query: str) -> np.ndarray | sp.csr_matrix:
        """A keyword query's topics (:func:`split_topics`) as text vectors, one row each.

        Kept per model (the text model never changes in a fitted bundle), a bounded few:
        the features and the reasons of one request both ask, and encoding costs ~10 ms.
        """
        with self._topics_lock:
            vectors = self._topics.get(query)
        if vectors is None:
            vectors = self.text.transform(split_topics(query) or [query])
            with self._topics_lock:
                self._topics[query] = vectors
                while len(self._topics) > TOPIC_MEMO:
                    self._topics.pop(next(iter(self._topics)))
        return vectors

    def topic_similarity(self, topics, items: np.ndarray) -> np.ndarray:
        """``(len(items), topics)`` cosine similarity of ``items`` to each topic vector."""
        sims = self.item_vectors[items] @ topics.T
        return np.asarray(sims.toarray() if sp.issparse(sims) else sims, dtype=np.float32)


#: Keyword queries whose topic vectors a model keeps (oldest dropped first).
TOPIC_MEMO = 256
#: Most topics read from one keyword query.
MAX_TOPICS = 20


def split_topics(query: str) -> list[str]:
    """The topics of a keyword query: "RL, sim-to-real; locomotion" -> three topics.

    Each topic is encoded on its own and a paper matches a query as well as its best topic,
    so that several interests are not blurred into one average.
    """
    parts = (p.strip() for p in re.split(r"[,;\n]+", query or ""))
    return list(dict.fromkeys(p for p in parts if p))[:MAX_TOPICS]


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
    reused_tuning: dict | None = None,
    progress: bool = False,
    threads: int | None = None,
) -> Recommender:
    """Fit every model from paper texts (row = ``pidx``) and ratings (people x papers, +1/-1).

    ``text`` is ``"tfidf"`` (default) or ``"embeddings"``; ``cache_dir`` holds the embedding
    cache. ``user_items`` may be ``None`` or empty (a brand-new install): then only the content
    model ranks. ``weights`` are the shipped blend weights (default: ``weights.json``); with
    ``tune`` (default) the blend weights are learned on a held-out slice of ``user_items``
    first (:mod:`recommender.tuning`, ``seed`` picks the slice; ``tuning_options`` go to
    :func:`recommender.tuning.tune_weights`) and the report is kept in ``Recommender.tuning_``.
    Without ``tune``, ``reused_tuning`` (the report of the earlier tuning that chose
    ``weights``) is kept as the report instead: the weights are reused, no check fit runs.
    ``threads`` (None: the collaborative model's ``num_threads``) fit ALS and the kNN
    bridge: the same model whatever the count.
    """
    started = time.perf_counter()
    text_model = make_text_model(text, cache_dir=cache_dir, progress=progress)
    vectors = text_model.fit_transform(texts)
    if not sp.issparse(vectors):  # stored as int8 rows: every model fits the rounded values
        vectors = Int8Rows.quantize(vectors)
    content_model = (content or ContentModel()).fit(vectors)
    taste_model = TasteModel().fit(vectors)
    shipped = weights or BlendWeights.load(text)
    chosen, report = shipped, {"status": "off"}
    collab_model = None
    bridge_text = None
    co_ratings = 0
    if user_items is not None and sp.csr_matrix(user_items).nnz:
        user_items = sp.csr_matrix(user_items)
        co_ratings = _co_ratings(user_items)
        # Embeddings: TF-IDF (fitted here, used only by the bridge) adds the words the
        # sentence encoder blurs, as a ridge stacked on the embedding ridge's residuals.
        extra = None
        if not sp.issparse(vectors):
            bridge_text = TfidfText(cache_dir=cache_dir)
            extra = bridge_text.fit_transform(texts)
        blank = copy.deepcopy(collab) if collab is not None else default_collab(text)
        if threads is not None:
            blank.num_threads = int(threads)
        if tune:
            tuned = time.perf_counter()
            holdout = tuning.holdout_split(user_items, seed=seed)
            # The check fit and the final one together: the sparse ridge's Gram matrix
            # and its factorisation depend on the text alone and are shared.
            check_collab, collab_model = blank.fit_each([holdout.train, user_items], vectors, extra)
            fitted = time.perf_counter()
            check = Recommender(
                text=text_model,
                item_vectors=vectors,
                content=content_model,
                collab=check_collab,
                weights=shipped,
                text_kind=text.split(":")[0],
                co_ratings=_co_ratings(holdout.train),
                n_people=_n_people(holdout.train),
                taste=taste_model,
            )
            chosen, report = tuning.tune_weights(
                check, holdout, seed=seed, progress=progress, **(tuning_options or {})
            )
            if report["status"] != "tuned":
                chosen = shipped
            report["seconds"] = round(time.perf_counter() - tuned, 2)
            report["collab_fit_seconds"] = round(fitted - tuned, 2)  # both fits
            # what the tuned weights rest on besides the ratings: a refit reuses them
            # only while these are unchanged (refit.py)
            report["shipped_weights"] = shipped.fingerprint()
            report["text_model"] = text
        else:
            collab_model = blank.fit(user_items, vectors, extra)
            if reused_tuning is not None:
                report = copy.deepcopy(reused_tuning)
    report["fit_seconds"] = round(time.perf_counter() - started, 2)
    if collab_model is not None:
        # Not tuned per deployment (each value would cost another ALS fit): recorded beside
        # the weights so a bundle says everything it ranks with.
        report["hyper_parameters"] = hyper_parameters(content_model, collab_model)
    rec = Recommender(
        text=text_model,
        item_vectors=vectors,
        content=content_model,
        collab=collab_model,
        weights=chosen,
        text_kind=text.split(":")[0],
        co_ratings=co_ratings,
        n_people=_n_people(user_items) if user_items is not None else 0,
        tuning_=report,
        taste=taste_model,
        bridge_text=bridge_text,
    )
    report["sample"] = _sample_report(rec, user_items)
    return rec


def hyper_parameters(content: ContentModel, collab: CollabModel) -> dict:
    """The content and collaborative settings a fit records beside its tuning report."""
    return {
        "knn_k": content.k,
        "als_factors": collab.factors,
        "als_regularization": collab.regularization,
        "als_confidence": collab.alpha,
        "bridge_neighbours": collab.bridge_neighbours,
    }


def extend_recommender(
    rec: Recommender,
    texts: Sequence[str],
    *,
    cache_dir: Path | None = None,
    threads: int | None = None,
) -> Recommender:
    """``rec`` with the papers ``texts`` appended as new rows, nothing refitted.

    What a day of new papers needs when the models themselves need no refit: their vectors
    come from ``rec``'s fitted text model (TF-IDF: its vocabulary and idf, ``transform``
    only; embeddings: the encoder and its cache; with ``cache_dir``, their raw term counts
    also go to the term-count cache, so the next refit counts none of them), nobody has
    rated them, so their collaborative factors are bridged exactly as a fit bridges
    unrated papers (:meth:`CollabModel.extended`), and their taste terms use the fitted
    whitening. The
    blend weights, the self-tuning report and the people's counts are ``rec``'s.
    ``threads`` (None: those ``rec`` was fitted with) run the kNN bridge's blocks.
    """
    texts = list(texts)
    if not texts:
        return rec
    text_model = rec.text
    if isinstance(text_model, EmbeddingText) and cache_dir is not None:
        text_model.cache_dir = cache_dir
    if cache_dir is not None:  # their term counts, for the next refit (not this model's)
        TfidfText(cache_dir=cache_dir).remember(texts)
    new_vectors = text_model.transform(texts)
    old = rec.item_vectors
    if sp.issparse(old):
        vectors = sp.vstack([sp.csr_matrix(old), sp.csr_matrix(new_vectors)], format="csr")
    else:
        new_vectors = Int8Rows.quantize(new_vectors)
        vectors = Int8Rows.concat([Int8Rows.of(old), new_vectors])
    new = np.arange(rec.n_items, rec.n_items + len(texts))
    content = rec.content
    content_model = ContentModel(
        k=content.k,
        knn_weight=content.knn_weight,
        dislike_weight=content.dislike_weight,
        block_size=content.block_size,
    ).fit(vectors)
    collab = None
    if rec.collab is not None:
        extra = rec.bridge_text.transform(texts) if rec.bridge_text is not None else None
        fitted = rec.collab
        if threads is not None:  # this run's setting, not the one the fit was made with
            fitted = copy.copy(fitted)
            fitted.num_threads = int(threads)
        collab = fitted.extended(vectors, new, extra)
    taste = rec.taste.extended(new_vectors) if rec.taste is not None else None
    return dataclasses.replace(
        rec,
        item_vectors=vectors,
        content=content_model,
        collab=collab,
        taste=taste,
        tuning_=rec.tuning_,
        _topics={},
        _topics_lock=threading.Lock(),
    )


def _sample_report(rec: Recommender, user_items) -> dict:
    """What the blend rests on, for ``refit --json`` and ``/healthz``: how many people and
    ratings, how far the install is from a small one, and the prior it leans on."""
    ratings = int(sp.csr_matrix(user_items).nnz) if user_items is not None else 0
    small = rec.weights.small
    strength = rec.community_strength() if rec.n_people >= 2 else 0.0
    if rec.n_people == 0:
        basis = "nobody has rated yet: keyword topics and the content model alone"
    elif rec.n_people < 2:
        basis = "one person: the content ranking alone (colleagues' signals off)"
    elif rec.tuning_.get("status") in ("tuned", "reused"):
        basis = "learned on this install's own ratings, shrunk towards the shipped weights"
    else:
        basis = (
            f"too few ratings to learn from: the small-install prior (labs-val) "
            f"{1 - strength:.0%}, the large-community weights {strength:.0%}"
        )
    return {
        "people": rec.n_people,
        "ratings": ratings,
        "co_ratings": rec.co_ratings,
        "community_strength": round(strength, 3),
        "basis": basis,
        "small_install_prior": dataclasses.asdict(small) if small else None,
    }


def _co_ratings(user_items: sp.csr_matrix) -> int:
    """Ratings beyond each person's first (what collaborative filtering learns from)."""
    return int(np.maximum(np.diff(sp.csr_matrix(user_items).indptr) - 1, 0).sum())


def _n_people(user_items: sp.spmatrix) -> int:
    """People with at least one rating."""
    return int((np.diff(sp.csr_matrix(user_items).indptr) > 0).sum())
