"""evaluate_task end to end on a small generated task folder."""

import json

import pytest

from recommender.evaluate import evaluate_task, format_report, load_task
from tests._corpus import TOPICS


@pytest.fixture
def task_dir(tmp_path):
    """Three topics; each person likes papers of one topic; candidates are new papers."""
    items, _rng_words = [], {}
    for topic, titles in TOPICS.items():
        for n, title in enumerate(titles * 2):  # 12 papers per topic, ids are arbitrary strings
            items.append({"id": f"{topic}-{n}", "title": f"{title} study {n}", "abstract": ""})
    (tmp_path / "items.jsonl").write_text("\n".join(json.dumps(i) for i in items) + "\n")
    new = [i["id"] for i in items if int(i["id"].split("-")[1]) >= 9]
    old = [i["id"] for i in items if i["id"] not in new]
    train, test = ["user,item,value"], ["user,item"]
    for _t, topic in enumerate(TOPICS):
        for p in range(4):
            user = f"u:{topic}:{p}"
            train += [f"{user},{i},1" for i in old if i.startswith(topic)]
            test += [f"{user},{i}" for i in new if i.startswith(topic)][:2]
    (tmp_path / "train.csv").write_text("\n".join(train) + "\n")
    (tmp_path / "test.csv").write_text("\n".join(test) + "\n")
    (tmp_path / "candidates.txt").write_text("\n".join(new) + "\n")
    spec = {
        "name": "tiny",
        "items": "items.jsonl",
        "k": [2, 5],
        "reference": {"Someone": {"recall@5": 0.5, "ndcg@20": 0.3}},
    }
    (tmp_path / "task.json").write_text(json.dumps(spec))
    return tmp_path


def test_evaluate_ranks_on_topic_new_papers_and_writes_everything(task_dir, tmp_path):
    rankings, plot = tmp_path / "out" / "rankings.jsonl", tmp_path / "out" / "plot.png"
    result = evaluate_task(task_dir, rankings_path=rankings, plot_path=plot, progress=False)
    assert result["task"] == "tiny" and result["users"] == 12
    assert set(result["metrics"]) == {"recall@2", "recall@5", "precision@20", "ndcg@20"}
    assert result["metrics"]["recall@5"] == pytest.approx(1.0)
    assert set(result["baselines"]) == {"tfidf-centroid", "arxiv-sanity"}
    assert result["references"] == {"Someone": {"recall@5": 0.5, "ndcg@20": 0.3}}
    json.dumps(result)  # JSON-serialisable
    lines = [json.loads(line) for line in rankings.read_text().splitlines()]
    assert len(lines) == 12 and all(len(line["items"]) >= 5 for line in lines)
    assert lines[0]["user"].startswith("u:") and lines[0]["items"][0].split("-")[0] in TOPICS
    assert plot.read_bytes()[:4] == b"\x89PNG"
    report = format_report(result)
    assert "arxiv-sanity" in report and "Someone" in report and "recall@5" in report


def test_masked_pairs_are_never_ranked(task_dir):
    task = load_task(task_dir)
    first = sorted(task.test)[0]
    masked = task.candidates[0]
    (task_dir / "mask.csv").write_text(
        f"user,item\n{task.user_ids[first]},{task.item_ids[masked]}\n"
    )
    rankings = task_dir / "r.jsonl"
    evaluate_task(task_dir, rankings_path=rankings, baselines=False, progress=False)
    line = json.loads(rankings.read_text().splitlines()[0])
    assert line["user"] == task.user_ids[first]
    assert task.item_ids[masked] not in line["items"]


def test_a_folder_without_task_json_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="task.json"):
        evaluate_task(tmp_path, progress=False)
