"""Papers per second of the sentence-embeddings encoder on this machine (issue 17, item 4).

Encodes the same sample papers (title + abstract, as a refit does) with no cache, for each
torch thread count and batch size, alternating configurations within each round so load
drifts hit them alike; prints the median papers/s of each and its ratio to the default
(``EmbeddingText``'s batch size, torch's own thread count).

Usage: nice -n 10 python bench/encode.py [--papers 256] [--rounds 3]
[--threads 1,2] [--batches 16,32,64,128]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from worker_memory import REPO  # noqa: E402

from recommender.ingest import parse_file  # noqa: E402
from recommender.text import EmbeddingText, paper_text  # noqa: E402


def sample_papers(n: int) -> list[str]:
    texts = []
    for path in sorted((REPO / "samples" / "dumps").iterdir()):
        texts += [paper_text(p.title, p.abstract) for p in parse_file(path).papers]
    return texts[:n]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--papers", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--batches", default="16,32,64,128")
    args = parser.parse_args()
    texts = sample_papers(args.papers)
    model = EmbeddingText(progress=False).load()
    model.encoder_.encode(texts[:8])  # warm the model up
    default = (torch.get_num_threads(), EmbeddingText().batch_size)
    configs = list(
        itertools.product(
            [int(t) for t in args.threads.split(",")], [int(b) for b in args.batches.split(",")]
        )
    )
    if default not in configs:
        configs.append(default)
    rates: dict[tuple[int, int], list[float]] = {c: [] for c in configs}
    ordered = sorted(texts, key=len, reverse=True)  # as EmbeddingText.transform sends them
    for _ in range(args.rounds):
        for threads, batch in configs:
            torch.set_num_threads(threads)
            started = time.perf_counter()
            model.encoder_.encode(ordered, batch_size=batch, normalize_embeddings=True)
            rates[(threads, batch)].append(len(texts) / (time.perf_counter() - started))
    base = statistics.median(rates[default])
    print(f"{len(texts)} papers, {args.rounds} rounds, load {os.getloadavg()[0]:.1f}")
    for (threads, batch), values in sorted(rates.items()):
        median = statistics.median(values)
        mark = " (default)" if (threads, batch) == default else ""
        print(
            f"  threads {threads}, batch {batch:>3}: median {median:5.1f} papers/s, "
            f"{median / base:.2f}x the default{mark}"
        )


if __name__ == "__main__":
    main()
