"""Build a second validation from citeulike-a *training* data alone (no test.csv is read).

    python bench/make_validation.py [--out bench/out/val2] [--seed 11]

From ``cold-dropoutnet/train.csv`` (another split than cold-aldi-val, other held-out papers):

- ``val2-cold``: 20% of the liked papers lose every like; rank them for up to 2,000 people
  who liked some of them (and keep at least one other like);
- ``val2-warm``: people with >= 5 likes lose 20% of them; rank every paper still liked by
  someone, the person's remaining likes masked (as warm-aldi-test); up to 2,000 people.

Each is a task folder in the format of ``shared/bench/README.md``, so ``paperfeed evaluate``
runs on it unchanged. Choices are checked on cold-aldi-val *and* these.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

import numpy as np

BENCH = Path(os.environ.get("PAPERFEED_BENCH_DIR", Path(__file__).parents[2] / "shared/bench"))


def _write(folder: Path, name: str, train, test, candidates, mask=()) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    items = (BENCH / "citeulike-a" / "items.jsonl").resolve()
    spec = {
        "name": name,
        "description": "second validation built from cold-dropoutnet/train.csv alone",
        "items": str(items),
        "k": [20, 50, 100],
        "metrics": ["recall@20", "recall@50", "recall@100", "precision@20", "ndcg@20"],
    }
    (folder / "task.json").write_text(json.dumps(spec, indent=2) + "\n")
    for fname, rows, header in (
        ("train.csv", train, ["user", "item", "value"]),
        ("test.csv", test, ["user", "item"]),
        ("mask.csv", mask, ["user", "item"]),
    ):
        with open(folder / fname, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)
    (folder / "candidates.txt").write_text("\n".join(candidates) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("out") / "val2")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--users", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    with open(BENCH / "citeulike-a" / "cold-dropoutnet" / "train.csv", newline="") as f:
        pairs = [(r["user"], r["item"]) for r in csv.DictReader(f)]
    items = sorted({i for _, i in pairs})
    cold = set(rng.choice(items, size=len(items) // 5, replace=False).tolist())
    train = [(u, i, 1) for u, i in pairs if i not in cold]
    keeps = {u for u, _, _ in train}
    test = [(u, i) for u, i in pairs if i in cold and u in keeps]
    users = sorted({u for u, _ in test})
    chosen = set(rng.choice(users, size=min(args.users, len(users)), replace=False).tolist())
    _write(
        args.out / "val2-cold",
        "val2-cold",
        train,
        [(u, i) for u, i in test if u in chosen],
        sorted(cold),
    )
    by_user: dict[str, list[str]] = {}
    for u, i in pairs:
        by_user.setdefault(u, []).append(i)
    held = set()
    for u, liked in by_user.items():
        if len(liked) >= 5:
            for i in rng.choice(liked, size=len(liked) // 5, replace=False).tolist():
                held.add((u, i))
    train = [(u, i, 1) for u, i in pairs if (u, i) not in held]
    rated = {i for _, i, _ in train}
    test = [(u, i) for u, i in held if i in rated]
    users = sorted({u for u, _ in test})
    chosen = set(rng.choice(users, size=min(args.users, len(users)), replace=False).tolist())
    mask = [(u, i) for u, i, _ in train if u in chosen]
    _write(
        args.out / "val2-warm",
        "val2-warm",
        train,
        sorted((u, i) for u, i in test if u in chosen),
        sorted(rated),
        mask,
    )
    print(f"wrote {args.out}/val2-cold and {args.out}/val2-warm")


if __name__ == "__main__":
    main()
