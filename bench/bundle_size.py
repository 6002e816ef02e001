"""The published bundle's size on disk, file by file, against arxiv-sanity-lite's features
file for the same papers.

arxiv-sanity-lite's ``compute.py`` fits a ``TfidfVectorizer`` (uni- and bigrams,
``max_features=20000``, ``min_df=5``, ``max_df=0.1``, its token pattern, sublinear tf) on
each paper's title, abstract and author names, and pickles ``{"pids", "x" (float32 sparse),
"vocab", "idf"}`` with the highest protocol. This script does the same on the data dir's
papers (pids: arXiv-like ids of 10 characters made from the paper ids), without installing
arxiv-sanity-lite, and prints both sizes and their ratio.

Usage: python bench/bundle_size.py DATA_DIR [--bundle bNNNN] [--republish]

``--republish`` first writes the current bundle again in this checkout's layout (the same
models and neighbourhoods, nothing refitted: ``ModelWriter.publish`` with the loaded
models), so that a bundle fitted by an older checkout can be compared without a refit.
"""

from __future__ import annotations

import argparse
import io
import pickle
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402

from recommender import store  # noqa: E402
from recommender.bundles import current_name, load_current, model_writer  # noqa: E402


def arxiv_sanity_features_bytes(db) -> int:
    """Bytes of arxiv-sanity-lite's ``features.p`` for the papers of ``db``."""
    papers = store.all_papers(db)
    ids = [pid for pid, _, _ in papers]
    authors = store.paper_authors(db, ids)
    texts = [
        " ".join([title, abstract, " ".join(authors.get(pid, ()))])
        for pid, title, abstract in papers
    ]
    v = TfidfVectorizer(
        input="content",
        encoding="utf-8",
        decode_error="replace",
        strip_accents="unicode",
        lowercase=True,
        analyzer="word",
        stop_words="english",
        token_pattern=r"(?u)\b[a-zA-Z_][a-zA-Z0-9_]+\b",
        ngram_range=(1, 2),
        max_features=20000,
        norm="l2",
        use_idf=True,
        smooth_idf=True,
        sublinear_tf=True,
        max_df=0.1,
        min_df=5,
    )
    v.fit(texts)
    x = v.transform(texts).astype(np.float32)
    features = {
        "pids": [f"{2601 + pid // 100000}.{pid % 100000:05d}" for pid in ids],  # arXiv-like
        "x": x,
        "vocab": v.vocabulary_,
        "idf": v._tfidf.idf_,
    }
    buffer = io.BytesIO()
    pickle.dump(features, buffer, -1)
    return len(buffer.getvalue())


def bundle_files(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}


def republish(models: Path) -> None:
    """Write the current bundle again with this checkout's code (nothing refitted)."""
    bundle = load_current(models)
    info = {k: v for k, v in bundle.info.items() if k not in ("name", "parts")}
    with model_writer(models, wait=True) as writer:
        name, parts = writer.publish(
            bundle.rec,
            np.asarray(bundle.paper_ids),
            served=bundle.index.candidates,
            info={**info, "republished_from": bundle.name},
            onboarding=np.asarray(bundle.onboarding),
        )
    print(f"republished {bundle.name} as {name}: {parts}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", type=Path)
    parser.add_argument("--bundle", help="bundle name (default: CURRENT)")
    parser.add_argument("--republish", action="store_true")
    args = parser.parse_args()
    models = args.data / "models"
    if args.republish:
        republish(models)
    name = args.bundle or current_name(models)
    folder = models / "bundles" / name
    files = bundle_files(folder)
    total = sum(files.values())
    db = store.open_db(args.data / "paperfeed.db")
    sanity = arxiv_sanity_features_bytes(db)
    print(f"{args.data} bundle {name}: {total / 1e6:.1f} MB in {len(files)} files")
    for file, size in sorted(files.items(), key=lambda kv: -kv[1]):
        if size >= 100_000:
            print(f"  {file:40s} {size / 1e6:8.1f} MB")
    rest = sum(s for s in files.values() if s < 100_000)
    print(f"  {'(files under 0.1 MB)':40s} {rest / 1e6:8.1f} MB")
    print(
        f"arxiv-sanity-lite features.p for the same {store.count_papers(db)} papers: "
        f"{sanity / 1e6:.1f} MB; bundle / features = {total / sanity:.2f}x"
    )


if __name__ == "__main__":
    main()
