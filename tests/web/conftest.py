"""Web tests run against a copy of a data dir with two real sample dumps and fitted models."""

from __future__ import annotations

import pytest

from .._web import copy_corpus, sign_up


@pytest.fixture
def data_dir(tmp_path):
    return copy_corpus(tmp_path / "data")


@pytest.fixture
def ada(client):
    """The test client, signed up and logged in as ada@example.org."""
    sign_up(client, "ada@example.org")
    return client
