"""Every command and every setting is documented in the README."""

from __future__ import annotations

import re

from recommender.cli import cli

from .conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_every_cli_command_is_in_the_readme():
    missing = [name for name in cli.commands if f"paperfeed {name}" not in README]
    assert missing == []


def test_every_environment_setting_is_in_the_readme():
    used = set()
    for path in [*REPO.glob("recommender/**/*.py"), *REPO.glob("web/**/*.py")]:
        used |= set(re.findall(r"PAPERFEED_[A-Z_]+", path.read_text(encoding="utf-8")))
    assert used, "no settings found: the scan is broken"
    assert sorted(name for name in used if f"`{name}`" not in README) == []


def test_the_quick_start_is_the_two_make_commands():
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "make run" in quick_start and "make test" in quick_start
