"""The development secret key file: made once, atomically; an empty or short one is refused."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recommender.config import ConfigError, load_settings

from .conftest import REPO

#: Each child waits for the go file, then reads (or creates) the key and prints it.
CHILD = """
import os, sys, time
from recommender.config import load_settings
go = sys.argv[2]
while not os.path.exists(go):
    time.sleep(0.0005)
print(load_settings(sys.argv[1]).secret_key())
"""


@pytest.mark.slow
def test_many_concurrent_first_starts_all_read_the_same_full_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERFEED_")}
    env["PYTHONPATH"] = str(REPO)
    keys: list[str] = []
    for round_ in range(4):
        data, go = tmp_path / f"data{round_}", tmp_path / f"go{round_}"
        children = [
            subprocess.Popen(
                [sys.executable, "-c", CHILD, str(data), str(go)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(30)
        ]
        time.sleep(1.5)  # let every child import and start polling
        go.touch()
        outputs = [child.communicate(timeout=60) for child in children]
        assert [c.returncode for c in children] == [0] * len(children), outputs[0][1]
        printed = {out.strip() for out, _ in outputs}
        assert len(printed) == 1, printed  # one key, never an empty or a second one
        [key] = printed
        assert len(key) == 64 and key == (data / "secret_key").read_text()
        assert (data / "secret_key").stat().st_mode & 0o777 == 0o600
        assert [p.name for p in data.iterdir()] == ["secret_key"]  # no temp file left
        keys.append(key)
    assert len(set(keys)) == len(keys)  # each data dir its own key


@pytest.mark.parametrize("content", ["", "\n", "short-key"])
def test_an_empty_or_short_key_file_is_refused_with_a_clear_message(data_dir, content):
    from web import create_app

    path = data_dir / "secret_key"
    path.write_text(content)
    with pytest.raises(ConfigError, match=r"secret_key.*(empty|too short)") as caught:
        create_app({"DATA_DIR": str(data_dir)})
    assert str(path) in str(caught.value) and "delete it" in str(caught.value)
    assert path.read_text() == content  # never overwritten: sessions signed with it may exist


def test_a_short_key_is_refused_in_production(data_dir, monkeypatch):
    monkeypatch.setenv("PAPERFEED_ENV", "production")
    monkeypatch.setenv("PAPERFEED_SECRET_KEY", "hunter2")
    with pytest.raises(ConfigError, match="PAPERFEED_SECRET_KEY is too short"):
        load_settings(data_dir).secret_key()


def test_the_key_file_is_made_once_and_kept(data_dir: Path):
    settings = load_settings(data_dir)
    first = settings.secret_key()
    assert len(first) == 64 and settings.secret_key() == first
