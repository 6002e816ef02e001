"""Published models: one writer, many readers.

Layout under ``<data dir>/models/``::

    writer.lock              # flock: held by the one process that fits and publishes
    bundles/b0007/           # a complete bundle; never changed once it appears
        manifest.json        #   the Recommender (recommender.artifacts)
        arrays.*.npy         #   its arrays, one file each, memory-mapped by readers
        paper_ids.npy        #   pidx -> paper_id
        serving.*.npy        #   per-corpus precompute: neighbourhoods, onboarding sample
        bundle.json          #   what it was fitted on, when, and what each part cost
        checksums.json       #   size and sha256 of every file above, written last
    CURRENT                  # "b0007": the bundle readers load

Only a :class:`ModelWriter` writes here, and only while it holds ``writer.lock``
(``fcntl.flock``, which holds across processes and is released by the kernel when its
holder dies, so a killed refit never leaves the lock stuck). A bundle is written into a
``.staging-*`` folder, synced, renamed into place, and only then is ``CURRENT`` replaced;
readers (web workers, digests) therefore always load a complete bundle. Leftover staging
folders can only come from a writer that died, so the next writer removes them, and it
alone prunes old bundles.

A file can still be damaged after it was published (a disk error, a careless hand, a
full disk under a copy). Readers therefore verify a bundle against its ``checksums.json``
before they load it, and a reader whose newest bundle does not verify serves the newest
one that does (:func:`load_servable`) and says why; a worker never fails to start because
of a model file. The writer's next run publishes a fresh bundle (:func:`current_problem`).
"""

from __future__ import annotations

import errno
import fcntl
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .artifacts import READABLE_FORMATS, load_recommender, save_recommender, stored_weights
from .features import PreviousNeighbours
from .fsio import (
    atomic_write_text,
    load_arrays,
    load_npz,
    publish_dir,
    save_arrays,
    staging_dir,
)
from .model import Recommender
from .neighbourhoods import NeighbourRows
from .quantized import Int8Rows
from .ranking import CandidateIndex
from .weights import BlendWeights

log = logging.getLogger(__name__)

#: Bundles kept on disk: the current one and two before it (a reader still loading one).
KEEP_BUNDLES = 3
#: Papers in the onboarding sample stored with each bundle.
ONBOARDING_SAMPLE = 12
#: Papers the onboarding sample's k-means is fitted on, at most (a random sample).
ONBOARDING_FIT_ROWS = 20_000
_NAME = re.compile(r"b(\d{4,})")
#: The file listing every other file of a bundle with its size and sha256.
CHECKSUMS = "checksums.json"


class WriterBusy(RuntimeError):
    """Another process holds the models' writer lock (a refit is running)."""


class BundleDamaged(ValueError):
    """A published bundle's files do not match its checksums, or cannot be read."""


@dataclass
class Bundle:
    """A loaded, published model and what was precomputed for serving it."""

    name: str
    rec: Recommender
    paper_ids: np.ndarray  # pidx -> paper_id
    index: CandidateIndex  # neighbourhoods of the papers people are shown
    onboarding: np.ndarray  # paper ids: one representative per topic cluster
    info: dict = field(default_factory=dict)  # bundle.json
    checksums: dict = field(default_factory=dict)  # checksums.json: file -> size, sha256

    @functools.cached_property
    def pidx_of(self) -> dict[int, int]:
        return {int(pid): i for i, pid in enumerate(self.paper_ids)}

    @functools.cached_property
    def pidx_lookup(self) -> np.ndarray:
        """paper_id -> pidx as an array (-1: not in this model), for vectorised lookups."""
        lookup = np.full(self.max_paper_id + 1, -1, dtype=np.int64)
        lookup[self.paper_ids] = np.arange(len(self.paper_ids))
        return lookup

    def warm(self) -> None:
        """Build now, at load, what the first request would otherwise build: the id lookup
        and the collaborative solve every person's factors share (small: ``factors x
        factors``). Nothing per paper or per term is built into Python objects: the
        arrays stay mapped, shared by every worker."""
        _ = self.pidx_lookup
        if self.rec.collab is not None:
            self.rec.collab.prepare_solves()

    def pidx(self, paper_id: int) -> int | None:
        """The row of ``paper_id`` in this model, or None when it does not know it."""
        lookup = self.pidx_lookup
        row = int(lookup[paper_id]) if 0 <= paper_id < len(lookup) else -1
        return row if row >= 0 else None

    @property
    def max_paper_id(self) -> int:
        return int(self.paper_ids.max()) if len(self.paper_ids) else 0

    def rows_of_mask(self, paper_ids) -> np.ndarray:
        """Which of these paper ids the model knows (a boolean per id)."""
        pids = np.asarray(paper_ids, dtype=np.int64)
        lookup = self.pidx_lookup
        inside = (pids >= 0) & (pids < len(lookup))
        known = np.zeros(len(pids), dtype=bool)
        known[inside] = lookup[pids[inside]] >= 0
        return known

    def rows_of(self, paper_ids) -> np.ndarray:
        """The pidx of each paper id this model knows, in order (unknown ids are dropped)."""
        pids = np.asarray(paper_ids, dtype=np.int64)
        lookup = self.pidx_lookup
        rows = lookup[np.clip(pids, 0, len(lookup) - 1)]
        return rows[(rows >= 0) & (pids >= 0) & (pids < len(lookup))]


def bundle_names(models_dir: Path) -> list[str]:
    folder = Path(models_dir) / "bundles"
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if _NAME.fullmatch(p.name))


def current_name(models_dir: Path) -> str | None:
    """The bundle ``CURRENT`` names, or None before the first publish."""
    try:
        return (Path(models_dir) / "CURRENT").read_text().strip() or None
    except FileNotFoundError:
        return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def write_checksums(folder: Path) -> dict:
    """Record the size and sha256 of every file in ``folder`` in ``checksums.json``."""
    sums = {
        entry.name: {"size": entry.stat().st_size, "sha256": _sha256(entry)}
        for entry in sorted(Path(folder).iterdir())
        if entry.is_file() and entry.name != CHECKSUMS
    }
    atomic_write_text(Path(folder) / CHECKSUMS, json.dumps(sums, indent=2, sort_keys=True))
    return sums


def verify_bundle(folder: Path) -> dict:
    """The bundle's checksums once every file matches them; :class:`BundleDamaged` naming
    the first file that does not (missing, another size, another sha256). A bundle
    published before checksums existed has none: it is loaded unverified ({})."""
    folder = Path(folder)
    try:
        sums = json.loads((folder / CHECKSUMS).read_text())
    except FileNotFoundError:
        if (folder / "bundle.json").exists():
            return {}  # published before checksums.json existed
        raise BundleDamaged(f"{folder.name}: bundle.json and {CHECKSUMS} are missing") from None
    except (ValueError, OSError) as exc:
        raise BundleDamaged(f"{folder.name}/{CHECKSUMS} is unreadable ({exc})") from None
    for file, expected in sums.items():
        path = folder / file
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            if not folder.is_dir():
                raise  # the whole bundle went (pruned while being read)
            raise BundleDamaged(f"{folder.name}/{file} is missing") from None
        if size != expected["size"]:
            raise BundleDamaged(
                f"{folder.name}/{file} has {size} bytes, its checksum says {expected['size']}"
            )
        if _sha256(path) != expected["sha256"]:
            raise BundleDamaged(f"{folder.name}/{file} does not match its sha256 checksum")
    return sums


def load_bundle(models_dir: Path, name: str) -> Bundle:
    """Read a published bundle into memory, once its files match their checksums
    (:class:`BundleDamaged` otherwise, or when a file cannot be read for another reason)."""
    folder = Path(models_dir) / "bundles" / name
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such bundle")
    sums = verify_bundle(folder)
    try:
        return _read_bundle(folder, name, sums)
    except FileNotFoundError:
        raise
    except Exception as exc:  # a file that matched (or had no) checksums yet cannot be read
        raise BundleDamaged(f"{name} cannot be read ({type(exc).__name__}: {exc})") from exc


def read_tuning(models_dir: Path, name: str) -> tuple[dict, BlendWeights]:
    """``(info, weights)`` of a published bundle: its ``bundle.json`` and its blend weights,
    read from ``bundle.json`` and ``manifest.json`` alone, once both
    match their checksums (:class:`BundleDamaged` otherwise, or for an unreadable format).

    What a refit needs to reuse the bundle's tuned weights: it replaces the arrays, so
    they are neither read nor hashed (hundreds of MB at 50,000 papers)."""
    folder = Path(models_dir) / "bundles" / name
    try:
        sums = json.loads((folder / CHECKSUMS).read_text())
    except FileNotFoundError:
        sums = {}  # published before checksums.json existed
    except (ValueError, OSError) as exc:
        raise BundleDamaged(f"{name}/{CHECKSUMS} is unreadable ({exc})") from None
    read = {}
    for file in ("bundle.json", "manifest.json"):
        try:
            data = (folder / file).read_bytes()
        except OSError as exc:
            raise BundleDamaged(f"{name}/{file} cannot be read ({exc})") from None
        expected = sums.get(file, {}).get("sha256") if sums else None
        if sums and expected != hashlib.sha256(data).hexdigest():
            raise BundleDamaged(f"{name}/{file} does not match its sha256 checksum")
        try:
            read[file] = json.loads(data)
        except ValueError as exc:
            raise BundleDamaged(f"{name}/{file} is not JSON ({exc})") from None
    manifest = read["manifest.json"]
    if manifest.get("format") not in READABLE_FORMATS:
        raise BundleDamaged(f"{name} has model format {manifest.get('format')}")
    try:
        return read["bundle.json"], stored_weights(manifest)
    except (KeyError, TypeError) as exc:
        raise BundleDamaged(f"{name}/manifest.json lacks its weights ({exc!r})") from None


def _read_bundle(folder: Path, name: str, sums: dict) -> Bundle:
    rec = load_recommender(folder)
    if (folder / "serving.npz").exists():  # published before the arrays were mapped
        serving = load_npz(folder / "serving.npz")
    else:
        serving = load_arrays(folder, "serving")
    index = CandidateIndex.for_model(
        rec,
        serving["candidates"],
        _stored_neighbours(serving, rec.n_items),
        floor=serving.get("floor"),
    )
    bundle = Bundle(
        name=name,
        rec=rec,
        paper_ids=np.load(folder / "paper_ids.npy", mmap_mode="r", allow_pickle=False).view(
            np.ndarray
        ),
        index=index,
        onboarding=serving["onboarding"],
        info=json.loads((folder / "bundle.json").read_text()),
        checksums=sums,
    )
    bundle.warm()
    return bundle


def _stored_neighbours(serving: dict, n_items: int) -> NeighbourRows:
    """The published neighbourhoods as stored (mapped; indices as narrow as written)."""
    return NeighbourRows(
        serving["nbr_data"],
        serving["nbr_indices"],
        serving["nbr_indptr"],
        shape=(n_items, len(serving["candidates"])),
    )


def load_current(models_dir: Path) -> Bundle | None:
    """The bundle ``CURRENT`` names, or None before the first publish.

    A writer prunes bundles beyond :data:`KEEP_BUNDLES`; should it prune the one being
    read (three publishes during one load), the pointer is read again.
    """
    for _ in range(5):
        name = current_name(models_dir)
        if name is None:
            return None
        try:
            return load_bundle(models_dir, name)
        except FileNotFoundError:
            if current_name(models_dir) == name:
                raise
    raise RuntimeError(f"{models_dir}: the current bundle kept changing while loading it")


def load_servable(models_dir: Path) -> tuple[Bundle | None, str | None]:
    """The bundle to serve and, when it is not the one ``CURRENT`` names, why.

    The bundle ``CURRENT`` names if it verifies and loads; else the newest older bundle
    that does, with a sentence naming both and what is wrong; else ``(None, why)``.
    Never raises for a damaged bundle: a web worker must start whatever the model files
    hold. ``(None, None)`` before the first publish.
    """
    models_dir = Path(models_dir)
    try:
        return load_current(models_dir), None
    except Exception as exc:
        problem = str(exc) if isinstance(exc, BundleDamaged) else f"{type(exc).__name__}: {exc}"
        log.error("the published model cannot be loaded: %s", problem)
    wanted = current_name(models_dir)
    for name in reversed(bundle_names(models_dir)):
        if wanted is not None and name >= wanted:
            continue
        try:
            bundle = load_bundle(models_dir, name)
        except Exception as exc:
            log.error("the older model %s cannot be loaded either: %s", name, exc)
            continue
        why = f"model {wanted} is damaged ({problem}); serving {name}, the newest that verifies"
        log.warning(why)
        return bundle, why
    return None, f"model {wanted} is damaged ({problem}) and no older model verifies"


def current_problem(models_dir: Path) -> str | None:
    """What is wrong with the bundle ``CURRENT`` names (None: it verifies, or there is
    none yet). The writer's scheduled runs publish a fresh bundle when this is not None."""
    name = current_name(models_dir)
    if name is None:
        return None
    folder = Path(models_dir) / "bundles" / name
    if not folder.is_dir():
        return f"{name} is missing"
    try:
        verify_bundle(folder)
    except BundleDamaged as exc:
        return str(exc)
    except OSError as exc:
        return f"{name}: {exc}"
    return None


def changed_on_disk(models_dir: Path, bundle: Bundle) -> str | None:
    """A cheap check (one ``stat`` a file) that a loaded bundle's files still have the
    sizes they were verified with: a worker serving it from memory is fine, but the next
    worker to start would not load it. None when nothing changed."""
    folder = Path(models_dir) / "bundles" / bundle.name
    for file, expected in bundle.checksums.items():
        try:
            size = (folder / file).stat().st_size
        except OSError:
            return f"{bundle.name}/{file} went missing after it was loaded"
        if size != expected["size"]:
            return (
                f"{bundle.name}/{file} changed on disk after it was loaded "
                f"({size} bytes, its checksum says {expected['size']})"
            )
    return None


def onboarding_sample(rec: Recommender, k: int = ONBOARDING_SAMPLE) -> np.ndarray:
    """One representative paper (pidx) per topic cluster, largest cluster first.

    k-means on the paper vectors (fitted on at most ``ONBOARDING_FIT_ROWS`` of them, drawn
    at random: the topics of a large corpus show in a sample, and the fit's cost stops growing
    with the corpus), every paper assigned to its nearest centre; the paper nearest each
    centre stands for it.
    """
    from sklearn.cluster import MiniBatchKMeans
    from threadpoolctl import threadpool_limits

    X = rec.item_vectors
    n_clusters = min(k, X.shape[0])
    if n_clusters == 0:
        return np.zeros(0, np.int64)
    fit_rows = X
    if X.shape[0] > ONBOARDING_FIT_ROWS:
        pick = np.random.default_rng(0).choice(X.shape[0], ONBOARDING_FIT_ROWS, replace=False)
        fit_rows = X[np.sort(pick)]
    # One OpenMP thread: scikit-learn's threads wait for each other at every step, and on
    # a machine whose cores are busy that took 2.8-3.5 s at 50,728 papers against 0.4 s
    # on one, with the same sample; the sample then does not depend on the core count.
    with threadpool_limits(limits=1, user_api="openmp"):
        km = MiniBatchKMeans(n_clusters=n_clusters, random_state=0, n_init=3).fit(fit_rows)
        labels = km.predict(X) if fit_rows is not X else km.labels_
    sims = X @ km.cluster_centers_.T
    sims = np.asarray(sims.toarray() if sp.issparse(sims) else sims)
    chosen: list[int] = []
    for c in np.argsort(-np.bincount(labels, minlength=n_clusters), kind="stable"):
        members = np.flatnonzero(labels == c)
        if len(members):
            chosen.append(int(members[np.argmax(sims[members, c])]))
    return np.asarray(chosen, dtype=np.int64)


def previous_neighbours(
    models_dir: Path, rec: Recommender, paper_ids: np.ndarray
) -> PreviousNeighbours | None:
    """The current bundle's neighbourhoods when a publish of ``rec`` can extend them instead
    of searching again: the bundle verifies, its papers are the first of ``paper_ids`` in
    the same order, their vectors are the same (embeddings: the encoder's cache; not after
    a TF-IDF refit, whose vocabulary moves every vector) and the neighbourhood size is the
    same. None otherwise, and the publish searches every served paper."""
    name = current_name(models_dir)
    if name is None:
        return None
    folder = Path(models_dir) / "bundles" / name
    try:
        verify_bundle(folder)
        manifest = json.loads((folder / "manifest.json").read_text())
        if manifest.get("format") not in (4, 5, 6) or manifest["content"]["k"] != rec.content.k:
            return None
        old_ids = np.load(folder / "paper_ids.npy", mmap_mode="r", allow_pickle=False)
        n = len(old_ids)
        if n > len(paper_ids) or not np.array_equal(old_ids, paper_ids[:n]):
            return None
        vectors = load_arrays(folder, "arrays")
        X = rec.item_vectors
        if sp.issparse(X) != ("vectors/indptr" in vectors):
            return None
        if sp.issparse(X):
            head = sp.csr_matrix(X[:n])
            same = (
                np.array_equal(vectors["vectors/indptr"], head.indptr)
                and np.array_equal(vectors["vectors/indices"], head.indices)
                and np.array_equal(vectors["vectors/data"], head.data)
            )
        elif isinstance(X, Int8Rows):
            same = (
                "vectors/codes" in vectors
                and np.array_equal(vectors["vectors/codes"], X.codes[:n])
                and np.array_equal(vectors["vectors/scales"], X.scales[:n])
            )
        else:
            same = "vectors/dense" in vectors and np.array_equal(vectors["vectors/dense"], X[:n])
        if not same:
            return None
        serving = load_arrays(folder, "serving")
        candidates = np.asarray(serving["candidates"], dtype=np.int64)
        M = _stored_neighbours(serving, n)
    except (BundleDamaged, OSError, ValueError, KeyError) as exc:
        log.info("searching every neighbourhood again: %s cannot be reused (%s)", name, exc)
        return None
    floor = serving.get("floor")
    return PreviousNeighbours(n_items=n, candidates=candidates, neighbours_t=M, floor=floor)


class ModelWriter:
    """The one writer of ``models/``: made by :func:`model_writer`, which holds the lock."""

    def __init__(self, models_dir: Path):
        self.models_dir = Path(models_dir)
        self.bundles_dir = self.models_dir / "bundles"

    def clean_staging(self) -> int:
        """Remove staging folders left by a writer that died; returns how many."""
        if not self.bundles_dir.exists():
            return 0
        stale = [p for p in self.bundles_dir.iterdir() if p.name.startswith(".staging-")]
        for folder in stale:
            shutil.rmtree(folder, ignore_errors=True)
        if stale:
            log.warning("removed %d staging folder(s) left by an interrupted refit", len(stale))
        return len(stale)

    def publish(
        self,
        rec: Recommender,
        paper_ids: np.ndarray,
        *,
        served: np.ndarray,
        info: dict,
        progress: bool = False,
        onboarding: np.ndarray | None = None,
        threads: int = 1,
    ) -> tuple[str, dict]:
        """Precompute what serving needs, write a complete bundle, point ``CURRENT`` at it.

        ``served`` are the pidx of the papers people are shown (recent dumps): their
        neighbourhoods are computed here, once, instead of in every request.
        ``onboarding``: the onboarding sample's paper ids to keep (a publish that adds a
        day's papers to a corpus keeps its topic clusters'); None: clustered here.
        ``threads``: of the neighbour search (the same neighbourhoods as one). Returns
        the bundle's name and the seconds each part took.
        """
        parts: dict[str, float] = {}
        started = time.perf_counter()
        served = np.unique(np.asarray(served, dtype=np.int64))
        previous = previous_neighbours(self.models_dir, rec, paper_ids)
        if previous is None:
            index = CandidateIndex.build(rec, served, progress=progress, threads=threads)
            searched = {"kept": 0, "searched": int(len(served))}
        else:
            index, searched = CandidateIndex.extend(
                rec, served, previous, progress=progress, threads=threads
            )
        parts["neighbours"] = time.perf_counter() - started
        started = time.perf_counter()
        if onboarding is None:
            sample = paper_ids[onboarding_sample(rec)]
        else:
            sample = np.asarray(onboarding, dtype=np.int64)
        parts["onboarding"] = time.perf_counter() - started
        started = time.perf_counter()
        existing = bundle_names(self.models_dir)
        name = f"b{int(existing[-1][1:]) + 1 if existing else 1:04d}"
        M = index.neighbours_t
        with staging_dir(self.bundles_dir) as staging:
            save_recommender(rec, staging)
            np.save(staging / "paper_ids.npy", paper_ids, allow_pickle=False)
            save_arrays(
                staging,
                "serving",
                {
                    "candidates": index.candidates,
                    "nbr_data": M.data,
                    "nbr_indices": M.indices,
                    "nbr_indptr": M.indptr,
                    "floor": index.floor,  # what a request would otherwise derive from M
                    "onboarding": np.asarray(sample, dtype=np.int64),
                },
            )
            parts["write"] = time.perf_counter() - started
            full = {**info, "name": name, "served_papers": int(len(served)), "parts": parts}
            full["neighbourhoods"] = searched
            atomic_write_text(staging / "bundle.json", json.dumps(full, indent=2, default=str))
            write_checksums(staging)  # last: it covers every file above
            publish_dir(staging, self.bundles_dir / name)
        atomic_write_text(self.models_dir / "CURRENT", name + "\n")
        for old in bundle_names(self.models_dir)[:-KEEP_BUNDLES]:
            shutil.rmtree(self.bundles_dir / old, ignore_errors=True)
        return name, {k: round(v, 3) for k, v in parts.items()}


@contextmanager
def model_writer(models_dir: Path, *, wait: bool = False) -> Iterator[ModelWriter]:
    """Hold the models' writer lock for the block; yields the :class:`ModelWriter`.

    With ``wait=False`` a second writer does not queue: it raises :class:`WriterBusy`
    naming the holder's pid. With ``wait=True`` it blocks until the lock is free.
    """
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    path = models_dir / "writer.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise WriterBusy(f"another refit is running (pid {holder})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        writer = ModelWriter(models_dir)
        writer.clean_staging()
        yield writer
    finally:
        os.close(fd)  # releases the lock
