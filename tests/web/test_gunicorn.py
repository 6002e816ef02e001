"""The Procfile's web command, run as written: gunicorn with paperfeed's settings."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(shutil.which("bash") is None, reason="the Procfile line is a shell command")
def test_the_procfile_web_command_serves_the_app_with_the_model_loaded(data_dir):
    line = next(
        entry.split(":", 1)[1].strip()
        for entry in (REPO / "Procfile").read_text().splitlines()
        if entry.startswith("web:")
    )
    assert "web.gunicorn_conf" in line
    port = _free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "PORT": str(port),
        "PAPERFEED_DATA_DIR": str(data_dir),
        "PAPERFEED_SECRET_KEY": "test-secret",
    }
    line = line.replace("0.0.0.0", "127.0.0.1").replace("--workers 2", "--workers 1")
    server = subprocess.Popen(
        ["bash", "-c", f"exec {line}"],
        cwd=REPO,
        env=env,
        start_new_session=True,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                    health = json.load(r)
                break
            except OSError:
                assert server.poll() is None, "gunicorn exited"
                assert time.monotonic() < deadline, "gunicorn did not answer within 60 s"
                time.sleep(0.2)
        assert health["status"] == "ok" and health["model_version"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as r:
            assert r.status == 200 and b'name="csrf_token"' in r.read()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        _, log = server.communicate(timeout=30)
    # each worker loaded the model before its first request and froze what it held
    ready = re.search(r"paperfeed worker ready: model (\S+), (\d+) objects frozen", log)
    assert ready, log[-2000:]
    assert ready.group(1) == health["model_version"] and int(ready.group(2)) > 10_000
