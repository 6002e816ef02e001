"""``paperfeed run`` and ``paperfeed scheduler`` as real processes and signals (issue 11,
item 13): no orphan scheduler, never two schedulers on one data dir."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .test_digest import free_port

PAPERFEED = Path(sys.executable).with_name("paperfeed")


def start(data_dir: Path, *args: str, sigint: object = signal.SIG_DFL) -> subprocess.Popen:
    """The command as a process, with SIGINT's disposition ``sigint`` (SIG_IGN: as a shell
    starts a background job, or ``make test &`` starts the tests and their children)."""
    return subprocess.Popen(
        [str(PAPERFEED), "--data-dir", str(data_dir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, sigint),
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead: only its entry waits for its parent.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ")[1][0] != "Z"


def wait_until(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "sigint"),
    [
        (signal.SIGTERM, signal.SIG_DFL),
        (signal.SIGINT, signal.SIG_DFL),
        (signal.SIGINT, signal.SIG_IGN),
    ],
    ids=["SIGTERM", "SIGINT", "SIGINT-when-started-ignoring-it"],
)
def test_stopping_run_stops_its_scheduler(data_dir, sig, sigint):
    port = free_port()
    run = start(data_dir, "run", "--port", str(port), sigint=sigint)
    try:
        first = run.stdout.readline()
        pid = int(re.search(r"scheduler pid (\d+)", first).group(1))
        assert wait_until(lambda: answers(port)), "the web app never answered"
        assert alive(pid)
        run.send_signal(sig)
        run.communicate(timeout=60)
        assert wait_until(lambda: not alive(pid), 15), "the scheduler outlived `paperfeed run`"
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()


@pytest.mark.slow
def test_a_scheduler_killed_9_with_its_parent_does_not_stay_behind(data_dir):
    port = free_port()
    run = start(data_dir, "run", "--port", str(port))
    pid = int(re.search(r"scheduler pid (\d+)", run.stdout.readline()).group(1))
    assert wait_until(lambda: answers(port))
    run.kill()  # no handler runs: the kernel tells the child (PR_SET_PDEATHSIG)
    run.wait()
    assert wait_until(lambda: not alive(pid), 15)


@pytest.mark.slow
def test_a_second_scheduler_on_the_same_data_dir_refuses_to_start(data_dir):
    first = start(data_dir, "scheduler")
    third = None
    try:
        assert "scheduler running (pid" in first.stdout.readline()
        second = start(data_dir, "scheduler")
        out, err = second.communicate(timeout=60)
        assert second.returncode == 1, out
        assert f"another scheduler (pid {first.pid}) is running on {data_dir}" in err
        assert "scheduler running" not in out
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=90)
        assert first.returncode == 0, err
        # The lock went with the process: a new scheduler starts.
        third = start(data_dir, "scheduler")
        assert "scheduler running" in third.stdout.readline()
        third.send_signal(signal.SIGTERM)
        out, err = third.communicate(timeout=90)
        assert third.returncode == 0, err
    finally:
        for process in (first, third):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
