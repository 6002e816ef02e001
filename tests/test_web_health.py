from __future__ import annotations

import pytest

from recommender.ingest import ingest_paths
from web import ConfigError, create_app

from .conftest import SAMPLE_DUMPS


def test_healthz_reports_papers_and_dumps(app, db):
    ingest_paths(db, [SAMPLE_DUMPS / "004_993749e1571ba9fe.txt"], dump_date="2026-11-20")
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
    ingest_paths(db, [SAMPLE_DUMPS / "004_993749e1571ba9fe.txt"], dump_date="2026-11-20")
    version = pipeline.refit(db, load_settings(app.config["DATA_DIR"]))["version"]
    assert client.get("/healthz").get_json()["model_version"] == version
