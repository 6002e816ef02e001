"""Issue 20, item 1 with the real thing: gunicorn with 2 workers as in the Procfile, a file
of the published bundle truncated, then a worker crash. Before, the replacement worker
failed to boot and gunicorn shut the whole app down; now it serves the previous bundle,
and ``/healthz`` says ``degraded``, which bundle and why, until the writer re-publishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from recommender import bundles, jobs, pipeline, store
from recommender.config import load_settings

from .test_gunicorn import REPO, _free_port

SECRET = "a-production-secret-of-forty-characters!"


def _health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
        assert response.status == 200
        return json.load(response)


def _workers(master: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(") ", 1)[1].split()[1]) == master:
                found.append(int(entry))
    return found


def _until(condition, timeout: float = 60.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_a_truncated_model_file_and_a_worker_crash_leave_the_site_up_and_degraded(data_dir):
    settings = load_settings(data_dir)
    with store.connect(settings.db_path) as db:
        pipeline.refit(db, settings)  # b0002 on top of the corpus's b0001
    assert bundles.current_name(settings.models_dir) == "b0002"
    port = _free_port()
    env = {
        **os.environ,
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        "PAPERFEED_DATA_DIR": str(data_dir),
        "PAPERFEED_SECRET_KEY": SECRET,
        "PAPERFEED_ENV": "production",
    }
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "-c",
            "python:web.gunicorn_conf",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "web:create_app()",
        ],
        cwd=REPO,
        env=env,
        start_new_session=True,
        stderr=subprocess.PIPE,
        text=True,
    )
    log: list[str] = []
    reader = threading.Thread(target=lambda: log.extend(server.stderr), daemon=True)
    reader.start()
    try:

        def up():
            try:
                return _health(port)
            except OSError:
                assert server.poll() is None, "gunicorn exited"
                return None

        assert _until(up, what="gunicorn")["model_version"] == "b0002"
        # both workers have loaded the model (a worker still loading would read the file
        # while it is being cut, and fail in another way)
        _until(lambda: sum("paperfeed worker ready" in line for line in log) == 2)
        workers = _until(lambda: len(_workers(server.pid)) == 2 and _workers(server.pid))
        size = (settings.models_dir / "bundles/b0002/arrays.vectors.data.npy").stat().st_size
        with open(settings.models_dir / "bundles/b0002/arrays.vectors.data.npy", "r+b") as handle:
            handle.truncate(size // 2)

        # The running workers still serve b0002 from memory, but no longer say "ok".
        health = _health(port)
        assert health["status"] == "degraded" and health["model_version"] == "b0002"
        assert (
            "b0002/arrays.vectors.data.npy changed on disk after it was loaded"
            in health["model_problem"]
        )

        os.kill(workers[0], signal.SIGKILL)  # a crash; gunicorn starts a replacement
        _until(lambda: workers[0] not in _workers(server.pid) and len(_workers(server.pid)) == 2)

        def fallback_seen():
            health = up()
            return health if health and health["model_version"] == "b0001" else None

        health = _until(fallback_seen, what="the new worker's answer")
        assert health["status"] == "degraded"
        assert health["model_problem"].startswith(
            "model b0002 is damaged (b0002/arrays.vectors.data.npy has "
        )
        assert "serving b0001, the newest that verifies" in health["model_problem"]
        assert server.poll() is None
        for _ in range(6):  # both workers answer pages
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=10) as r:
                assert r.status == 200

        jobs.ingest_and_publish(settings)  # the scheduler's next minute: a fresh bundle
        assert bundles.current_name(settings.models_dir) == "b0003"

        def healthy_everywhere():
            answers = [up() for _ in range(8)]
            return all(a and a["status"] == "ok" and a["model_version"] == "b0003" for a in answers)

        _until(healthy_everywhere, what="both workers to serve b0003")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        reader.join(timeout=10)
    text = "".join(log)
    assert "Shutting down: Master" in text and "Reason: Worker failed to boot" not in text
