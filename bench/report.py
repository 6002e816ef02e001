"""Print markdown tables for docs/benchmarks.md from `paperfeed evaluate --json` outputs.

Usage: python bench/report.py RESULT.json [EMBEDDINGS_RESULT.json] ...
(pairs are matched by task name; a result with text "embeddings" fills that row).
"""

import json
import sys

results = []
for path in sys.argv[1:]:
    with open(path) as f:
        results.append(json.load(f))
by_task: dict[str, dict[str, dict]] = {}
for r in results:
    by_task.setdefault(r["task"], {})[r.get("text", "tfidf")] = r
for task, runs in by_task.items():
    base = runs.get("tfidf") or next(iter(runs.values()))
    cols = list(base["metrics"])
    print(f"\n### {task}\n")
    print("| method | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    rows = [(f"paperfeed, {t}", r["metrics"]) for t, r in runs.items()]
    rows += list(base.get("baselines", {}).items())
    for name, m in rows:
        print(f"| {name} | " + " | ".join(f"{m[c]:.4f}" for c in cols) + " |")
    for name, ref in base.get("references", {}).items():
        vals = " | ".join(f"{ref[c]:.4f}" if c in ref else "–" for c in cols)
        print(f"| {name} (published) | {vals} |")
    times = ", ".join(f"{t}: {r['seconds']} s" for t, r in runs.items())
    print(f"\n{base['users']} users; run time {times}.")
