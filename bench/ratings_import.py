"""Time the BibTeX ratings reader on 0.5, 1, 2 and 4 MB files: it must grow linearly.

The files are reference-manager style ``@article`` entries (about 330 bytes each).
With ``--before REV`` (a git revision, e.g. 3ab6efd) the reader of that revision is
timed beside the current one, read from ``git show`` (the reader was quadratic before:
it counted newlines from the start of the file for every entry).

Usage: python bench/ratings_import.py [--runs 3] [--before REV]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import types
from pathlib import Path

from _common import median_time

from recommender import ratings_io

ROOT = Path(__file__).resolve().parents[1]

ENTRY = """@article{{paper{n},
  author = {{Lovelace, Ada and Turing, Alan and Hopper, Grace}},
  title = {{{{Deep}} kernels for paper number {n}, revisited: a study}},
  journal = {{Journal of Benchmarks}},
  year = {{2024}},
  eprint = {{2401.{n:05}}},
  url = {{https://arxiv.org/abs/2401.{n:05}}},
  rating = {{like}},
}}

"""


def bibtex_of_size(size: int) -> str:
    parts, total, n = [], 0, 0
    while total < size:
        entry = ENTRY.format(n=n)
        parts.append(entry)
        total += len(entry)
        n += 1
    return "".join(parts)


def reader_at(rev: str):
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:recommender/ratings_io.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType(f"ratings_io_{rev}")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{rev}:ratings_io.py", "exec"), module.__dict__)
    return module.read_ratings


parser = argparse.ArgumentParser()
parser.add_argument("--runs", type=int, default=3)
parser.add_argument("--before", metavar="REV", help="also time the reader of this git revision")
args = parser.parse_args()

readers = {"now": ratings_io.read_ratings}
if args.before:
    readers[args.before] = reader_at(args.before)
print(f"{'size':>7} {'entries':>8} " + " ".join(f"{name + ' s':>10}" for name in readers))
for megabytes in (0.5, 1, 2, 4):
    text = bibtex_of_size(int(megabytes * 1024 * 1024))
    entries = text.count("@article")
    row = []
    for name, read in readers.items():
        if name != "now" and megabytes > 2:
            row.append(f"{'-':>10}")  # the quadratic reader would take a minute
            continue
        seconds, _ = median_time(lambda read=read, text=text: read(text, "bibtex"), args.runs)
        row.append(f"{seconds:>10.3f}")
    assert len(ratings_io.read_ratings(text, "bibtex")) == entries
    print(f"{megabytes:>5} MB {entries:>8} " + " ".join(row))
