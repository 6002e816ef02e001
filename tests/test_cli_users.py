"""``paperfeed user`` and ``paperfeed ratings``: the real CLI on a real database."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from werkzeug.security import check_password_hash

from recommender import store
from recommender.cli import cli
from recommender.ingest import ingest_paths

from .conftest import SAMPLE_DUMPS


@pytest.fixture
def run(data_dir):
    def invoke(*args: str, input: str | None = None):
        return CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args], input=input)

    return invoke


def test_user_add_reads_the_password_from_stdin_and_list_shows_the_account(run, db):
    result = run("user", "add", "ada@example.org", "--password-stdin", input="a long password\n")
    assert result.exit_code == 0, result.output
    assert "added ada@example.org" in result.output
    user = store.get_user_by_email(db, "ada@example.org")
    assert check_password_hash(user["password_hash"], "a long password")
    assert user["email_confirmed_at"] is None
    listed = run("user", "list")
    assert "ada@example.org  unconfirmed  0 likes, 0 dislikes" in listed.output
    assert json.loads(run("user", "list", "--json").output)[0]["email"] == "ada@example.org"


def test_user_add_prompts_twice_and_refuses_duplicates_and_short_passwords(run, db):
    prompted = run(
        "user", "add", "bob@example.org", "--confirmed", input="pass word 1\npass word 1\n"
    )
    assert prompted.exit_code == 0, prompted.output
    assert store.get_user_by_email(db, "bob@example.org")["email_confirmed_at"] is not None
    again = run("user", "add", "BOB@example.org", "--password-stdin", input="pass word 2\n")
    assert again.exit_code == 1 and "exists already" in again.output
    short = run("user", "add", "cy@example.org", "--password-stdin", input="short\n")
    assert short.exit_code == 1 and "at least 8" in short.output
    assert [u["email"] for u in store.list_users(db)] == ["bob@example.org"]


def test_ratings_export_then_import_into_another_account(run, db, tmp_path):
    ingest_paths(db, [SAMPLE_DUMPS / "2026-11-20_004_993749e1571ba9fe.txt"], dump_date="2026-11-20")
    for address in ("ada@example.org", "bob@example.org"):
        run("user", "add", address, "--password-stdin", input="a long password\n")
    ada = store.get_user_by_email(db, "ada@example.org")["id"]
    store.set_rating(db, ada, 1, 1)
    store.set_rating(db, ada, 2, -1)
    out = tmp_path / "ada.bib"
    exported = run("ratings", "export", "ada@example.org", "--format", "bibtex", "-o", str(out))
    assert exported.exit_code == 0 and out.read_text().count("@misc") == 2
    imported = run("ratings", "import", "bob@example.org", str(out))
    assert imported.exit_code == 0 and "2 imported, 0 unchanged, 0 not found" in imported.output
    bob = store.get_user_by_email(db, "bob@example.org")["id"]
    assert store.rating_values(db, bob) == {1: 1, 2: -1}
    as_csv = run("ratings", "export", "bob@example.org")
    assert as_csv.output.splitlines()[0] == "title,rating,external_id,url,authors,rated_at,interest"


def test_a_malformed_ratings_file_imports_nothing(run, db, tmp_path):
    run("user", "add", "ada@example.org", "--password-stdin", input="a long password\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("title,rating\nSomething,like\nOther,perhaps\n")
    result = run("ratings", "import", "ada@example.org", str(bad))
    assert result.exit_code == 1
    assert f"{bad}:3: rating must be like or dislike" in result.output
    assert "nothing was imported" in result.output
    assert run("ratings", "export", "nobody@example.org").exit_code == 1
