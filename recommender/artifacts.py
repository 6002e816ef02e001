"""A fitted recommender as files: ``manifest.json`` + one ``arrays.<name>.npy`` per array,
no pickles. The arrays are uncompressed so readers map them read-only
(``np.load(mmap_mode="r")``): every web worker serving a bundle shares one copy of it in
the page cache, and pages serving never reads (the bridge's coefficients, the people's
factors) are never read at all. Formats 3 (one ``arrays.npz``, read into memory) and 4 still
load.

:func:`save_recommender` writes into a folder that the caller publishes whole
(:mod:`recommender.bundles` stages it and renames it into place under the writer lock);
:func:`load_recommender` reads one back. Versions are the bundles' business, not this
module's: there is one versioning scheme, ``models/bundles/bNNNN`` and ``models/CURRENT``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recommender.collab import CollabModel
from recommender.content import ContentModel
from recommender.fsio import atomic_write_text, load_arrays, load_npz, save_arrays
from recommender.model import Recommender
from recommender.quantized import Int8Rows
from recommender.taste import TasteModel
from recommender.text import text_model_from_state
from recommender.weights import BlendWeights, SmallInstall

FORMAT_VERSION = 6
#: Formats :func:`load_recommender` reads (3: every array in one ``arrays.npz``; 4: the
#: ridges' every row, float32 neighbour similarities and int32 neighbour indices; 5: the
#: ridges' nonzero rows, float16 similarities, indices as narrow as the served papers
#: allow, which code reading format 4 would misread, hence the new number; 6: dense vectors
#: and the collaborative factors as int8 rows with a scale each (:mod:`recommender.quantized`),
#: the ridges' coefficients as float16).
READABLE_FORMATS = (3, 4, 5, 6)


def save_recommender(rec: Recommender, folder: Path) -> None:
    """Write ``rec`` into ``folder`` (created if needed) as ``manifest.json`` + ``arrays.*.npy``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
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
    elif isinstance(X, Int8Rows):
        arrays["vectors/codes"], arrays["vectors/scales"] = X.codes, X.scales
    else:
        arrays["vectors/dense"] = np.asarray(X)
    manifest = {
        "format": FORMAT_VERSION,
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
            "small": dataclasses.asdict(rec.weights.small) if rec.weights.small else None,
        },
        "co_ratings": rec.co_ratings,
        "n_people": rec.n_people,
    }
    if rec.taste is not None:
        params, taste_arrays = rec.taste.state()
        manifest["taste"] = params
        arrays.update({f"taste/{k}": v for k, v in taste_arrays.items()})
    if rec.bridge_text is not None:
        params, bridge_arrays = rec.bridge_text.state()
        manifest["bridge_text"] = params
        arrays.update({f"bridge_text/{k}": v for k, v in bridge_arrays.items()})
    if rec.collab is not None:
        params, collab_arrays = rec.collab.state()
        manifest["collab"] = params
        arrays.update({f"collab/{k}": v for k, v in collab_arrays.items()})
    save_arrays(folder, "arrays", arrays)
    atomic_write_text(folder / "manifest.json", json.dumps(manifest, indent=2))


def load_recommender(folder: Path) -> Recommender:
    """Load the recommender saved in ``folder`` by :func:`save_recommender`."""
    folder = Path(folder)
    if not (folder / "manifest.json").exists():
        raise FileNotFoundError(f"no saved model in {folder}: run `paperfeed refit` first")
    manifest = json.loads((folder / "manifest.json").read_text())
    if manifest.get("format") not in READABLE_FORMATS:
        raise ValueError(
            f"{folder} has model format {manifest.get('format')}, "
            f"expected {FORMAT_VERSION}: refit the models"
        )
    if manifest["format"] == 3:
        arrays = load_npz(folder / "arrays.npz")
    else:
        arrays = load_arrays(folder, "arrays")

    def group(prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix) + 1 :]: v for k, v in arrays.items() if k.startswith(prefix + "/")}

    text = text_model_from_state(manifest["text"], group("text"))
    vec = group("vectors")
    if "codes" in vec:
        vectors = Int8Rows(vec["codes"], vec["scales"])
    elif "dense" in vec:
        vectors = vec["dense"]
    else:
        vectors = sp.csr_matrix(
            (vec["data"], vec["indices"], vec["indptr"]), shape=tuple(int(s) for s in vec["shape"])
        )
    content = ContentModel(**manifest["content"]).fit(vectors)
    collab = None
    if manifest["collab"] is not None:
        collab = CollabModel.from_state(manifest["collab"], group("collab"))
    taste = None
    if manifest.get("taste") is not None:
        taste = TasteModel.from_state(manifest["taste"], group("taste"))
    bridge_text = None
    if manifest.get("bridge_text") is not None:
        bridge_text = text_model_from_state(manifest["bridge_text"], group("bridge_text"))
    return Recommender(
        text=text,
        item_vectors=vectors,
        content=content,
        collab=collab,
        weights=stored_weights(manifest),
        text_kind=manifest["text_kind"],
        co_ratings=int(manifest["co_ratings"]),
        n_people=int(manifest.get("n_people", 0)),
        taste=taste,
        bridge_text=bridge_text,
    )


def stored_weights(manifest: dict) -> BlendWeights:
    """The blend weights a saved model's ``manifest.json`` holds, exactly as fitted."""
    stored = manifest["weights"]
    small = stored.get("small")
    return BlendWeights(
        stored["weights"],
        stored["meta"],
        stored.get("content"),
        SmallInstall(**small) if small else None,
    )
