"""A damaged model file never takes serving down (issue 20, item 1): bundles carry
checksums, readers verify them and fall back to the newest bundle that verifies, and the
writer's next scheduled run publishes a fresh bundle."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from recommender import bundles, jobs, pipeline
from recommender.bundles import model_writer
from recommender.config import load_settings
from recommender.model import fit_recommender
from tests._corpus import corpus, topical_likes


@pytest.fixture(scope="module")
def rec():
    texts, topics = corpus()
    return fit_recommender(texts, topical_likes(topics, new={5, 11, 17}))


def publish(models_dir, rec) -> str:
    with model_writer(models_dir) as writer:
        ids = np.arange(rec.n_items, dtype=np.int64) + 1
        return writer.publish(rec, ids, served=np.arange(5), info={"papers": rec.n_items})[0]


def truncate(path, keep: float = 0.5) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.truncate(int(size * keep))


def test_a_bundle_lists_every_file_with_its_size_and_sha256(rec, tmp_path):
    name = publish(tmp_path, rec)
    folder = tmp_path / "bundles" / name
    sums = json.loads((folder / bundles.CHECKSUMS).read_text())
    files = sorted(p.name for p in folder.iterdir() if p.name != bundles.CHECKSUMS)
    assert sorted(sums) == files
    sizes = {f: (folder / f).stat().st_size for f in files}
    assert {k: v["size"] for k, v in sums.items()} == sizes
    assert all(len(v["sha256"]) == 64 for v in sums.values())


@pytest.mark.parametrize(
    "file", ["arrays.vectors.data.npy", "serving.nbr_data.npy", "paper_ids.npy", "manifest.json"]
)
def test_a_truncated_file_makes_readers_serve_the_previous_bundle_and_say_why(rec, tmp_path, file):
    publish(tmp_path, rec)
    publish(tmp_path, rec)
    truncate(tmp_path / "bundles" / "b0002" / file)
    bundle, problem = bundles.load_servable(tmp_path)
    assert bundle.name == "b0001"
    assert problem.startswith("model b0002 is damaged (b0002/" + file + " has ")
    assert problem.endswith("serving b0001, the newest that verifies")
    assert bundles.current_problem(tmp_path) is not None


def test_a_flipped_byte_of_the_same_size_is_caught_by_the_sha256(rec, tmp_path):
    publish(tmp_path, rec)
    publish(tmp_path, rec)
    path = tmp_path / "bundles" / "b0002" / "arrays.vectors.data.npy"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    bundle, problem = bundles.load_servable(tmp_path)
    assert (
        bundle.name == "b0001"
        and "arrays.vectors.data.npy does not match its sha256 checksum" in problem
    )


def test_when_no_bundle_verifies_readers_serve_none_and_say_why(rec, tmp_path):
    publish(tmp_path, rec)
    truncate(tmp_path / "bundles" / "b0001" / "arrays.vectors.data.npy")
    bundle, problem = bundles.load_servable(tmp_path)
    assert bundle is None
    assert problem.startswith("model b0001 is damaged (b0001/arrays.vectors.data.npy has ")
    assert problem.endswith("and no older model verifies")


def test_a_bundle_published_before_checksums_existed_still_loads(rec, tmp_path):
    publish(tmp_path, rec)
    os.unlink(tmp_path / "bundles" / "b0001" / bundles.CHECKSUMS)
    bundle, problem = bundles.load_servable(tmp_path)
    assert bundle.name == "b0001" and problem is None
    assert bundles.current_problem(tmp_path) is None


def test_a_damaged_file_without_checksums_is_still_refused_cleanly(rec, tmp_path):
    publish(tmp_path, rec)
    publish(tmp_path, rec)
    folder = tmp_path / "bundles" / "b0002"
    os.unlink(folder / bundles.CHECKSUMS)
    truncate(folder / "arrays.vectors.data.npy")
    bundle, problem = bundles.load_servable(tmp_path)
    assert bundle.name == "b0001" and "b0002 cannot be read" in problem


@pytest.mark.parametrize(
    "file, why",
    [
        ("serving.nbr_indices.npy", "neighbourhoods do not fit their shape"),
        ("arrays.collab.bridge_rows.npy", "bridge_coef has"),
    ],
)
def test_arrays_that_do_not_fit_each_other_are_refused_and_named(rec, tmp_path, file, why):
    """A bundle whose checksums match but whose arrays disagree (a neighbour table's indices
    shorter than its similarities, a ridge's row list shorter than its rows: written by a
    broken writer) is refused with what is wrong; readers serve the bundle before it."""
    publish(tmp_path, rec)
    publish(tmp_path, rec)
    folder = tmp_path / "bundles" / "b0002"
    np.save(folder / file, np.load(folder / file)[:-1])
    bundles.write_checksums(folder)
    bundle, problem = bundles.load_servable(tmp_path)
    assert bundle.name == "b0001" and "b0002 cannot be read" in problem and why in problem


def test_the_feed_service_reports_damage_found_after_loading(app_data):
    settings = load_settings(app_data)
    feeds = pipeline.FeedService(settings)
    from recommender import store

    with store.connect(settings.db_path) as db:
        assert "model_problem" not in feeds.status(db)
        name = feeds.bundle().name
        truncate(settings.models_dir / "bundles" / name / "serving.nbr_data.npy")
        status = feeds.status(db)
    assert status["model_version"] == name  # still served from memory
    assert status["model_problem"].startswith(f"{name}/serving.nbr_data.npy changed on disk")


def test_the_schedulers_next_inbox_run_republishes_a_damaged_model(app_data):
    settings = load_settings(app_data)
    before = bundles.current_name(settings.models_dir)
    truncate(settings.models_dir / "bundles" / before / "arrays.vectors.data.npy")
    jobs.ingest_and_publish(settings)  # nothing in the inbox: only the damage makes it refit
    after = bundles.current_name(settings.models_dir)
    assert after != before and bundles.current_problem(settings.models_dir) is None
    assert bundles.load_servable(settings.models_dir)[0].name == after
    jobs.ingest_and_publish(settings)  # a sound model is left alone
    assert bundles.current_name(settings.models_dir) == after


@pytest.fixture
def app_data(tmp_path):
    from tests._web import copy_corpus

    return copy_corpus(tmp_path / "data")
