"""A nightly refit reuses the blend weights an earlier refit tuned while the ratings barely
changed, and tunes them anew otherwise (recommender/refit.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from recommender import refit as refit_module
from recommender import store
from recommender.artifacts import load_recommender
from recommender.bundles import current_name
from recommender.cli import cli
from recommender.config import load_settings
from recommender.refit import refit

#: People in the test install: enough for the tuning to learn (tuning.MIN_PEOPLE is 30).
PEOPLE = 60
LIKES = 12
#: Stamped on the install's first ratings: made long before any refit reads them.
LONG_AGO = "2026-01-01T00:00:00+00:00"


@pytest.fixture
def install(tmp_path):
    """The sample corpus with 60 people who liked 12 papers each, made long ago."""
    from tests._web import copy_corpus

    data = copy_corpus(tmp_path / "data")
    settings = load_settings(data)
    db = store.open_db(settings.db_path)
    ids = store.paper_ids(db)
    rng = np.random.default_rng(0)
    people = []
    for n in range(PEOPLE):
        people.append(store.create_user(db, f"p{n}@example.org", None))
        start = int(rng.integers(0, len(ids) - 30))  # neighbours in id order share a dump
        for pid in rng.choice(ids[start : start + 30], size=LIKES, replace=False):
            store.set_rating(db, people[-1], int(pid), 1)
    # The ratings were made long before the first refit (not seconds before it, inside the
    # slack a refit allows for writers that stamp a rating before they get the lock).
    db.execute("UPDATE ratings SET updated_at = ?", [LONG_AGO])
    db.conn.commit()
    yield settings, db, people, ids
    db.close()


def _tuning(settings) -> dict:
    """The tuning report of the current bundle, as bundle.json has it (what /healthz shows)."""
    name = current_name(settings.models_dir)
    info = json.loads((settings.models_dir / "bundles" / name / "bundle.json").read_text())
    return info["tuning"]


def _weights(settings):
    return load_recommender(settings.models_dir / "bundles" / current_name(settings.models_dir))


def _first(settings, db) -> dict:
    first = refit(db, settings)
    assert first["tuning"]["status"] == "tuned", first["tuning"]
    return first


def _unlike(db, people, n: int) -> None:
    """``n`` likes undone (the row deleted, as the web's undo does)."""
    done = 0
    for uid in people:
        for pid, _ in sorted(store.rating_values(db, uid).items())[:2]:
            if done < n:
                store.delete_rating(db, uid, pid)
                done += 1


def test_a_second_refit_with_no_rating_changes_reuses_the_tuned_weights(install):
    settings, db, _, _ = install
    first = _first(settings, db)
    tuned = _weights(settings).weights
    second = refit(db, settings)
    report = second["tuning"]
    assert report["status"] == "reused" and report["of"] == first["version"]
    assert report["ratings_changed"] == 0
    # the original tuning's fields are carried forward unchanged ...
    for key in ("tuned_at", "ratings_read_at", "tuned_on_ratings", "regimes", "shipped_weights"):
        assert report[key] == first["tuning"][key], key
    # ... no check fit or weight search ran (their timings would be this refit's) ...
    assert report["seconds"] == first["tuning"]["seconds"]
    assert report["search_seconds"] == first["tuning"]["search_seconds"]
    # ... the bundle ranks with exactly the tuned weights, and says so
    assert _weights(settings).weights == tuned
    assert _tuning(settings) == report
    assert report["sample"]["basis"].startswith("learned on this install's own ratings")
    # a reused tuning is reused again: "of" still names the bundle that tuned
    third = refit(db, settings)
    assert third["tuning"]["status"] == "reused" and third["tuning"]["of"] == first["version"]


def test_a_few_new_ratings_reuse_and_more_than_the_share_retune(install):
    settings, db, people, ids = install
    first = _first(settings, db)
    then = first["tuning"]["tuned_on_ratings"]
    assert then == PEOPLE * LIKES
    allowed = int(refit_module.RETUNE_RATINGS_SHARE * then)  # 36 of 720
    fresh = [(uid, pid) for uid in people for pid in ids[-3:]]
    for uid, pid in fresh[:allowed]:
        store.set_rating(db, uid, pid, 1)
    second = refit(db, settings)
    assert second["tuning"]["status"] == "reused"
    assert second["tuning"]["ratings_changed"] == allowed
    store.set_rating(db, *fresh[allowed], 1)  # one more: past the share
    third = refit(db, settings)
    assert third["tuning"]["status"] == "tuned"
    assert f"up to {allowed + 1} ratings changed" in third["tuning"]["retuned_because"]
    assert third["tuning"]["tuned_on_ratings"] == then + allowed + 1


def test_a_changed_rating_counts(install):
    settings, db, people, _ = install
    _first(settings, db)
    liked = next(iter(store.rating_values(db, people[0])))
    store.set_rating(db, people[0], liked, -1)  # a like turned into a dislike
    report = refit(db, settings)["tuning"]
    assert report["status"] == "reused" and report["ratings_changed"] >= 1


def test_undone_likes_count_as_changes(install):
    settings, db, people, _ = install
    first = _first(settings, db)
    allowed = int(refit_module.RETUNE_RATINGS_SHARE * first["tuning"]["tuned_on_ratings"])
    _unlike(db, people, allowed)
    second = refit(db, settings)
    assert second["tuning"]["status"] == "reused"
    assert second["tuning"]["ratings_changed"] == allowed
    _unlike(db, people[len(people) // 2 :], 1)
    assert refit(db, settings)["tuning"]["status"] == "tuned"


def test_a_tuning_older_than_retune_days_is_learned_anew(install, monkeypatch):
    settings, db, _, _ = install
    _first(settings, db)
    assert refit(db, settings)["tuning"]["status"] == "reused"
    # A tuning of a moment ago is older than zero days: what a week does to a real one.
    monkeypatch.setattr(refit_module, "RETUNE_DAYS", 0)
    again = refit(db, settings)["tuning"]
    assert again["status"] == "tuned" and "days old, more than 0" in again["retuned_because"]


def test_another_text_model_retunes(install, monkeypatch):
    pytest.importorskip("sentence_transformers")
    settings, db, _, _ = install
    _first(settings, db)
    assert refit(db, settings)["tuning"]["status"] == "reused"
    monkeypatch.setenv("PAPERFEED_TEXT_MODEL", "embeddings")
    embeddings = load_settings(settings.data_dir)
    report = refit(db, embeddings)["tuning"]
    assert report["status"] == "tuned" and report["text_model"] == "embeddings"
    assert "the text model is now embeddings" in report["retuned_because"]
    assert refit(db, embeddings)["tuning"]["status"] == "reused"  # that tuning, in turn


def test_retune_flag_learns_the_weights_anew(install):
    settings, db, _, _ = install
    _first(settings, db)
    result = CliRunner().invoke(
        cli, ["--data-dir", str(settings.data_dir), "refit", "--json"], catch_exceptions=False
    )
    assert json.loads(result.output.splitlines()[-1])["tuning"]["status"] == "reused"
    result = CliRunner().invoke(
        cli,
        ["--data-dir", str(settings.data_dir), "refit", "--json", "--retune"],
        catch_exceptions=False,
    )
    report = json.loads(result.output.splitlines()[-1])["tuning"]
    assert report["status"] == "tuned" and report["retuned_because"] == "asked to (--retune)"
    assert _tuning(settings)["status"] == "tuned"
    text = CliRunner().invoke(cli, ["--data-dir", str(settings.data_dir), "refit"]).output
    assert "blend weights: reused from" in text


def test_a_damaged_current_bundle_is_tuned_anew(install):
    settings, db, _, _ = install
    _first(settings, db)
    name = current_name(settings.models_dir)
    manifest = settings.models_dir / "bundles" / name / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"weights"', '"wrights"', 1))
    report = refit(db, settings)["tuning"]
    assert report["status"] == "tuned"
    assert f"{name} cannot be read" in report["retuned_because"]
    assert "sha256" in report["retuned_because"]


def test_ratings_changed_since_compare_times_not_spellings(install):
    settings, db, _, _ = install
    rows, since = store.all_ratings_and_changes(db, "2026-06-01T00:00:00+00:00")
    assert since == 0 and len(rows) == PEOPLE * LIKES
    # another ISO spelling of a time just before the stamps: every rating is newer
    rows, since = store.all_ratings_and_changes(db, "2025-12-31 23:59:59")
    assert since == len(rows) == PEOPLE * LIKES
