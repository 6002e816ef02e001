from __future__ import annotations

import time

import pytest

from recommender.ingest import ingest_paths
from web import ConfigError, create_app

from .conftest import SAMPLE_DUMPS


def test_healthz_reports_papers_and_dumps(app, db):
    ingest_paths(db, [SAMPLE_DUMPS / "2026-11-20_004_993749e1571ba9fe.txt"], dump_date="2026-11-20")
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["papers"] == 145 and body["dumps"] == 1
    assert body["latest_dump"]["date"] == "2026-11-20"


def test_production_refuses_to_start_without_a_secret_key(data_dir, monkeypatch):
    monkeypatch.setenv("PAPERFEED_ENV", "production")
    monkeypatch.delenv("PAPERFEED_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="PAPERFEED_SECRET_KEY"):
        create_app({"DATA_DIR": str(data_dir)})


def test_development_key_is_random_and_private(data_dir, monkeypatch):
    monkeypatch.delenv("PAPERFEED_SECRET_KEY", raising=False)
    app = create_app({"DATA_DIR": str(data_dir)})
    key_file = data_dir / "secret_key"
    assert app.config["SECRET_KEY"] == key_file.read_text().strip()
    assert len(app.config["SECRET_KEY"]) == 64
    assert key_file.stat().st_mode & 0o077 == 0


def test_healthz_reports_the_model_version_once_fitted(app, db):
    from recommender import pipeline
    from recommender.config import load_settings

    client = app.test_client()
    assert client.get("/healthz").get_json()["model_version"] is None
    ingest_paths(db, [SAMPLE_DUMPS / "2026-11-20_004_993749e1571ba9fe.txt"], dump_date="2026-11-20")
    version = pipeline.refit(db, load_settings(app.config["DATA_DIR"]))["version"]
    assert client.get("/healthz").get_json()["model_version"] == version
    # a newer dump the model does not know yet: healthz says how far behind it is
    ingest_paths(db, [SAMPLE_DUMPS / "2026-11-16_000_7b2f11b90d39ad34.txt"], dump_date="2026-11-21")
    body = client.get("/healthz").get_json()
    assert body["model_version"] == version and body["papers_behind"] > 0
    assert body["papers_behind"] == body["papers"] - body["papers_in_model"]
    newer = pipeline.refit(db, load_settings(app.config["DATA_DIR"]))["version"]
    # the worker keeps serving the old bundle while a thread loads the new one, then swaps
    during = client.get("/healthz").get_json()
    assert during["model_version"] == version and during["papers_behind"] > 0
    deadline = time.monotonic() + 30
    while (body := client.get("/healthz").get_json())["model_version"] != newer:
        assert time.monotonic() < deadline, body
        time.sleep(0.02)
    assert body["papers_behind"] == 0


def test_two_data_dirs_in_one_process_never_see_each_others_feeds(tmp_path):
    """Two apps (two data dirs) in one process with the same shape: the same user id, dump
    id, bundle name, paper rows and likes, other papers. Each serves only its own (a
    process-wide memo keyed by bundle name and rows served one the other's)."""
    import json

    from recommender import pipeline, store
    from recommender.config import load_settings
    from recommender.dumps import parse_dump

    from ._web import PASSWORD, log_in

    words = {"a": "graph message passing nodes", "b": "diffusion denoising audio video"}
    apps = {}
    for name, topic in words.items():
        data = tmp_path / name
        db = store.open_db(data / "paperfeed.db")
        lines = [
            json.dumps(
                {
                    "title": f"{name.upper()} paper {i}",
                    # the two corpora rank in opposite orders for the same like
                    "abstract": f"{topic} " * (1 + (i if name == "a" else 30 - i)) + f"n{i}",
                }
            )
            for i in range(30)
        ]
        dump = parse_dump("\n".join(lines).encode(), fmt="jsonl", source=f"{name}.jsonl")
        store.record_dump(db, dump, dump_date="2026-11-20")
        uid = store.create_user(db, "ada@example.org", _hash(PASSWORD))
        store.confirm_email(db, uid, "ada@example.org")
        pipeline.record_feedback(db, uid, 1, 1)
        assert pipeline.refit(db, load_settings(data))["version"] == "b0001"
        db.close()
        app = create_app({"DATA_DIR": str(data), "TESTING": True, "SECRET_KEY": name * 16})
        apps[name] = (app, data)
    for _ in range(2):  # the second round is served from each app's memos
        for name, (app, data) in apps.items():
            client = app.test_client()
            assert log_in(client, "ada@example.org").status_code == 302
            feed = client.get("/feed.json").get_json()
            shown = [(item["paper_id"], item["score"]) for item in feed["papers"]]
            assert {item["title"].split()[0] for item in feed["papers"]} == {name.upper()}
            assert feed["papers"][0]["reason"] != "new in this dump"  # ranked, memoised
            db = store.open_db(data / "paperfeed.db")
            alone = (
                pipeline.FeedService(load_settings(data))
                .feed(db, pipeline.FeedQuery(1, window="today"))
                .items
            )
            db.close()
            assert shown == [(i.paper_id, i.score) for i in alone][: len(shown)]


def _hash(password: str) -> str:
    from werkzeug.security import generate_password_hash

    return generate_password_hash(password)


def test_healthz_says_who_the_blend_rests_on(app, db):
    """``tuning.sample.basis`` says what is true: nobody rated, one person, or more."""
    from recommender import pipeline, store
    from recommender.config import load_settings

    client = app.test_client()
    settings = load_settings(app.config["DATA_DIR"])
    ingest_paths(db, [SAMPLE_DUMPS / "2026-11-20_004_993749e1571ba9fe.txt"], dump_date="2026-11-20")
    store.create_user(db, "ada@example.org", None)  # signed up, nothing rated
    store.create_user(db, "bob@example.org", None)

    def basis() -> dict:
        pipeline.refit(db, settings)
        deadline = time.monotonic() + 30
        while (body := client.get("/healthz").get_json())["papers_behind"] or body[
            "model_version"
        ] != sorted(p.name for p in (settings.models_dir / "bundles").iterdir())[-1]:
            assert time.monotonic() < deadline, body
            time.sleep(0.02)
        return body["tuning"]["sample"]

    nobody = basis()
    assert (nobody["people"], nobody["ratings"]) == (0, 0)
    assert nobody["basis"].startswith("nobody has rated yet")
    papers = [r[0] for r in db.execute("SELECT id FROM papers ORDER BY id LIMIT 6")]
    for paper in papers[:3]:
        pipeline.record_feedback(db, 1, paper, 1)
    one = basis()
    assert one["people"] == 1 and one["basis"].startswith("one person")
    for paper in papers[2:6]:
        pipeline.record_feedback(db, 2, paper, 1)
    two = basis()
    assert two["people"] == 2
    assert not two["basis"].startswith(("nobody", "one person"))
