"""Save and load fitted recommenders as versioned artifacts: ``.npz`` arrays + JSON, no pickles.

Layout under a caller-given directory::

    models/
      v0001/  manifest.json  arrays.npz
      v0002/  ...
      CURRENT              # text file naming the complete version readers should load

A version folder is written under a temporary name and renamed when complete; only then is
``CURRENT`` replaced (temp file + ``os.replace``), so a reader always loads a whole version.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recommender.collab import CollabModel
from recommender.content import ContentModel
from recommender.model import Recommender
from recommender.text import text_model_from_state
from recommender.weights import BlendWeights

FORMAT_VERSION = 1
_VERSION_RE = re.compile(r"^v(\d{4,})$")


def _versions(root: Path) -> list[int]:
    if not root.exists():
        return []
    return sorted(int(m.group(1)) for p in root.iterdir() if (m := _VERSION_RE.match(p.name)))


def current_version(root: Path) -> str | None:
    """Name of the version ``CURRENT`` points to (e.g. ``"v0007"``), or ``None``."""
    pointer = Path(root) / "CURRENT"
    return pointer.read_text().strip() or None if pointer.exists() else None


def save_recommender(rec: Recommender, root: Path, *, keep: int = 3) -> str:
    """Write ``rec`` as the next version under ``root``, point ``CURRENT`` at it, return its name.

    Keeps the newest ``keep`` versions (older ones are removed after the switch).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    name = f"v{(max(_versions(root), default=0) + 1):04d}"
    arrays: dict[str, np.ndarray] = {}
    text_params, text_arrays = rec.text.state()
    arrays.update({f"text/{k}": v for k, v in text_arrays.items()})
    X = rec.item_vectors
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        arrays.update(
            {
                "vectors/data": X.data,
                "vectors/indices": X.indices,
                "vectors/indptr": X.indptr,
                "vectors/shape": np.asarray(X.shape),
            }
        )
    else:
        arrays["vectors/dense"] = np.asarray(X)
    manifest = {
        "format": FORMAT_VERSION,
        "version": name,
        "text_kind": rec.text_kind,
        "text": text_params,
        "content": {
            "k": rec.content.k,
            "knn_weight": rec.content.knn_weight,
            "dislike_weight": rec.content.dislike_weight,
            "block_size": rec.content.block_size,
        },
        "collab": None,
        "weights": {
            "weights": rec.weights.weights,
            "meta": rec.weights.meta,
            "content": rec.weights.content,
        },
        "co_ratings": rec.co_ratings,
    }
    if rec.collab is not None:
        params, collab_arrays = rec.collab.state()
        manifest["collab"] = params
        arrays.update({f"collab/{k}": v for k, v in collab_arrays.items()})
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        np.savez(tmp / "arrays.npz", **arrays)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        os.replace(tmp, root / name)  # the version appears complete or not at all
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    pointer_tmp = root / ".CURRENT.tmp"
    pointer_tmp.write_text(name + "\n")
    os.replace(pointer_tmp, root / "CURRENT")
    for old in _versions(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(root / f"v{old:04d}", ignore_errors=True)
    return name


def load_recommender(root: Path, version: str | None = None) -> Recommender:
    """Load the version ``CURRENT`` points to (or ``version``) from ``root``."""
    root = Path(root)
    version = version or current_version(root)
    if version is None:
        raise FileNotFoundError(f"no saved model under {root}: run a refit first")
    folder = root / version
    manifest = json.loads((folder / "manifest.json").read_text())
    if manifest.get("format") != FORMAT_VERSION:
        raise ValueError(
            f"{folder} has model format {manifest.get('format')}, "
            f"expected {FORMAT_VERSION}: refit the models"
        )
    with np.load(folder / "arrays.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}

    def group(prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix) + 1 :]: v for k, v in arrays.items() if k.startswith(prefix + "/")}

    text = text_model_from_state(manifest["text"], group("text"))
    vec = group("vectors")
    if "dense" in vec:
        vectors = vec["dense"]
    else:
        vectors = sp.csr_matrix(
            (vec["data"], vec["indices"], vec["indptr"]), shape=tuple(int(s) for s in vec["shape"])
        )
    content = ContentModel(**manifest["content"]).fit(vectors)
    collab = None
    if manifest["collab"] is not None:
        collab = CollabModel.from_state(manifest["collab"], group("collab"))
    return Recommender(
        text=text,
        item_vectors=vectors,
        content=content,
        collab=collab,
        weights=BlendWeights(
            manifest["weights"]["weights"],
            manifest["weights"]["meta"],
            manifest["weights"].get("content"),
        ),
        text_kind=manifest["text_kind"],
        co_ratings=int(manifest["co_ratings"]),
    )
