"""Ratings files that crashed the import with a traceback or a 500 (issue 11, item 10):
the real ``paperfeed ratings import`` on real files, and the settings page's upload."""

from __future__ import annotations

import io
import json

import pytest

from recommender import store
from recommender.ingest import ingest_paths
from recommender.ratings_io import RatingsFormatError, read_ratings

from ._web import post, sign_up
from .conftest import SAMPLE_DUMPS
from .test_cli import run

TITLE = "Gradient Matching for Domain Generalization"  # in the first sample dump

# name -> (file name, content, what the message says, line)
BAD_FILES = {
    "authors-a-number": (
        "r.json",
        json.dumps({"ratings": [{"title": TITLE, "rating": "like", "authors": 5}]}).encode(),
        "authors must be a list of names or a string, not 5",
        1,
    ),
    "csv-field-over-128k": (
        "r.csv",
        f'title,rating\n{TITLE},like\n"{"x" * 140_000}",like\n'.encode(),
        "not valid CSV: field larger than field limit",
        3,
    ),
    "latin-1": (
        "r.csv",
        f"title,rating\n{TITLE},like\nCaf\u00e9 paper,like\n".encode("latin-1"),
        "not UTF-8 text (byte 0xe9)",
        3,
    ),
    "binary": ("r.csv", b"title,rating\n\x89PNG\r\n\x1a\n\x00\x00\x00", "binary data", 4),
    "100000-deep-json": ("r.json", b"[" * 100_000 + b"]" * 100_000, "nested too deeply", 1),
    "5000-digit-rating": (
        "r.json",
        b'{"ratings": [\n {"title": "' + TITLE.encode() + b'", "rating": ' + b"9" * 5000 + b"}]}",
        "a number with more than 4,300 digits",
        2,
    ),
    "lone-surrogate-title": (
        "r.json",
        b'[{"title": "' + TITLE.encode() + b'", "rating": "like"},\n'
        b' {"title": "\\ud800", "rating": "like"}]',
        "the title holds a lone UTF-16 surrogate",
        2,
    ),
}


@pytest.fixture
def person(data_dir):
    """An account on a database holding the first sample dump."""
    with store.open_db(data_dir / "paperfeed.db") as db:
        ingest_paths(db, [SAMPLE_DUMPS / "2026-11-16_000_7b2f11b90d39ad34.txt"])
        store.create_user(db, "ada@example.org", "not-a-real-hash")
    return "ada@example.org"


@pytest.mark.parametrize("case", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_the_cli_names_the_file_and_line_and_imports_nothing(data_dir, person, case):
    name, content, words, line = case
    path = data_dir / name
    path.write_bytes(content)
    result = run(data_dir, "ratings", "import", person, str(path))
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"error: {path}:{line}: "), first
    assert words in first
    assert "nothing was imported" in result.stderr
    with store.connect(data_dir / "paperfeed.db") as db:
        assert db.execute("SELECT count(*) FROM ratings").fetchone()[0] == 0


def test_a_good_file_still_imports(data_dir, person):
    path = data_dir / "r.csv"
    path.write_text(f"title,rating\n{TITLE},like\n")
    result = run(data_dir, "ratings", "import", person, str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("1 imported")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"title": TITLE, "rating": "like", "url": {"a": 1}}, "url must be text"),
        ({"title": ["a list"], "rating": "like"}, "the title must be text"),
        ({"title": TITLE, "rating": True}, "rating must be like or dislike, not True"),
        ({"title": TITLE, "rating": "9" * 5000}, "not '999999"),
    ],
)
def test_fields_of_the_wrong_type_are_named(value, words):
    with pytest.raises(RatingsFormatError, match="^f.json:1: ") as info:
        read_ratings(json.dumps([value]), "json", source="f.json")
    assert words in str(info.value)
    assert len(str(info.value)) < 200  # a 5,000-digit value is not echoed whole


# -- the settings page --------------------------------------------------------------------------


@pytest.mark.parametrize("case", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_the_upload_gets_a_400_page_naming_the_line_and_the_session_survives(app, case):
    client = app.test_client()
    sign_up(client, "ada@example.org")
    name, content, words, line = case
    upload = {"file": (io.BytesIO(content), name)}
    response = post(client, "/settings/import", upload, content_type="multipart/form-data")
    page = response.get_data(as_text=True)
    assert response.status_code == 400, page[:300]
    assert "Nothing was imported" in page and f"{name}:{line}:" in page
    assert words.split(" (")[0] in page
    # The flash message went through the session cookie: every later page still works.
    for path in ("/settings", "/", "/settings.json"):
        assert client.get(path).status_code == 200, path
    assert client.get("/settings.json").get_json()["ratings"] == 0
