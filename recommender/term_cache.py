"""The term-count cache of a TF-IDF fit: each text's raw term counts, kept by text hash.

Counting terms is most of a TF-IDF fit (Python code: at 50,728 papers ~5 s, where reading
the counts back takes ~0.3 s), and what a text's counts are depends on that text and the
tokenising settings alone: pruning by document frequency and the sorted vocabulary come
after, from the counts of the texts being fitted. So a refit counts only the texts it has
not counted before (a day's new papers), as the embedding cache encodes only those, and
gives the same matrix as counting them all (``tests/test_text.py`` checks it).

One file per tokenising setting (:func:`cache_path`: its digest names the file, so another
setting, scikit-learn's stop words or Python's Unicode tables never read a file made with
others), in the embedding cache's folder (``PAPERFEED_CACHE_DIR``):

- ``keys``: the hex SHA-1 of each text (``S40``);
- ``indptr``, ``ids``, ``counts``: each text's row of term ids and counts (CSR arrays);
- ``vocabulary``: the terms, UTF-8, one per line (a term is a run of word characters, or
  such runs joined by spaces: never a newline), so that id ``i`` is line ``i``.

Rows are never dropped (like the embedding cache: two installs may share the folder), and
deleting the file is always safe. A file that cannot be read or does not hold together is
counted afresh and replaced; failing to write one costs the next refit the counting, never
the fit (:func:`save` logs and returns).
"""

from __future__ import annotations

import hashlib
import json
import logging
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sklearn

from recommender.fsio import atomic_write_npz

log = logging.getLogger(__name__)

#: Bump when a text's counting changes (its tokens, n-grams, stop words or the order of its
#: row's terms): files of another version are not read.
CACHE_VERSION = 1


@dataclass(frozen=True)
class TermRows:
    """Cached rows: text keys, their CSR rows of ``ids`` and ``counts``, and the terms."""

    keys: np.ndarray  # S40, hex SHA-1 of each text
    indptr: np.ndarray  # int64, len(keys) + 1
    ids: np.ndarray  # int64 term ids
    counts: np.ndarray  # float32
    terms: list[str]  # term of each id

    @classmethod
    def empty(cls) -> TermRows:
        return cls(
            np.zeros(0, "S40"),
            np.zeros(1, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.float32),
            [],
        )

    def appended(
        self,
        keys: list[bytes],
        indptr: np.ndarray,
        ids: np.ndarray,
        counts: np.ndarray,
        terms: list[str],
    ) -> TermRows:
        """These rows followed by new ones (``indptr`` from 0; ``terms``: all of them now)."""
        return TermRows(
            np.concatenate([self.keys, np.array(keys, dtype="S40")]),
            np.concatenate([self.indptr, self.indptr[-1] + np.asarray(indptr[1:], np.int64)]),
            np.concatenate([self.ids, np.asarray(ids, np.int64)]),
            np.concatenate([self.counts, np.asarray(counts, np.float32)]),
            terms,
        )

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(indptr, ids, counts)`` of the rows ``rows``, in that order."""
        rows = np.asarray(rows, np.int64)
        if len(rows) == len(self.keys) and np.array_equal(rows, np.arange(len(rows))):
            return self.indptr, self.ids, self.counts
        starts = self.indptr[rows]
        lengths = self.indptr[rows + 1] - starts
        indptr = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(lengths, out=indptr[1:])
        at = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1], dtype=np.int64)
        return indptr, self.ids[at], self.counts[at]


def text_key(text: str) -> bytes:
    """The cache key of a text: the hex SHA-1 of its UTF-8 bytes (the embedding cache's)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest().encode("ascii")


def cache_path(folder: str | Path, settings: dict) -> Path:
    """The file of one tokenising ``settings`` (JSON-able), with the versions that change
    what a setting means: this cache's, scikit-learn's (its stop words, its preprocessing)
    and Python's Unicode tables (accent stripping, word characters)."""
    described = json.dumps(
        {
            **settings,
            "cache": CACHE_VERSION,
            "sklearn": sklearn.__version__,
            "unicode": unicodedata.unidata_version,
        },
        sort_keys=True,
    )
    digest = hashlib.sha1(described.encode("utf-8")).hexdigest()[:16]
    return Path(folder) / f"terms-{digest}.npz"


def load(path: Path) -> TermRows:
    """The rows stored at ``path``; no rows when there is no file, or when it cannot be read
    or does not hold together (logged: the texts are counted again, the file replaced)."""
    if not path.exists():
        return TermRows.empty()
    try:
        with np.load(path, allow_pickle=False) as data:
            keys, indptr = data["keys"], data["indptr"].astype(np.int64, copy=False)
            ids, counts = data["ids"].astype(np.int64, copy=False), data["counts"]
            vocabulary = data["vocabulary"]
        text = vocabulary.tobytes().decode("utf-8")
        terms = text.split("\n") if text else []
        whole = (
            keys.dtype == np.dtype("S40")
            and counts.dtype == np.float32
            and keys.ndim == indptr.ndim == ids.ndim == counts.ndim == 1
            and len(indptr) == len(keys) + 1
            and indptr[0] == 0
            and indptr[-1] == len(ids) == len(counts)
            and bool(np.all(np.diff(indptr) >= 0))
            and (not len(ids) or (ids.min() >= 0 and ids.max() < len(terms)))
        )
        if not whole:
            raise ValueError("its arrays do not fit together")
    except Exception as exc:  # any damage: count again, the next save replaces the file
        log.warning("term-count cache %s is unreadable (%s): counting every text again", path, exc)
        return TermRows.empty()
    return TermRows(keys, indptr, ids, counts, terms)


def save(path: Path, rows: TermRows) -> None:
    """Write ``rows`` to ``path`` atomically; a failure (a full disk) is logged, not raised:
    the fit it serves is already counted."""
    if any("\n" in term for term in rows.terms):  # never from the word tokens cached
        log.warning("term-count cache %s not written: a term holds a newline", path)
        return
    vocabulary = np.frombuffer("\n".join(rows.terms).encode("utf-8"), dtype=np.uint8)
    index = np.int32 if len(rows.terms) < np.iinfo(np.int32).max else np.int64
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_npz(
            path,
            {
                "keys": rows.keys,
                "indptr": rows.indptr,
                "ids": rows.ids.astype(index),
                "counts": rows.counts,
                "vocabulary": vocabulary,
            },
        )
    except OSError as exc:
        log.warning("term-count cache %s not written (%s): the next fit counts again", path, exc)
