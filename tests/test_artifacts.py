"""Versioned artifacts: complete versions, atomic CURRENT pointer, no pickles."""

import numpy as np
import pytest

from recommender.artifacts import current_version, load_recommender, save_recommender
from recommender.model import fit_recommender
from recommender.ranking import Profile, rank_for_user
from tests._corpus import corpus, topical_likes


@pytest.fixture(scope="module")
def rec():
    texts, topics = corpus()
    return fit_recommender(texts, topical_likes(topics, new={5, 11, 17}))


def test_saved_then_loaded_model_ranks_identically(rec, tmp_path):
    name = save_recommender(rec, tmp_path)
    again = load_recommender(tmp_path)
    profile = Profile(liked=[0, 7], disliked=[13], query="galaxy")
    assert rank_for_user(again, profile, n=10) == rank_for_user(rec, profile, n=10)
    assert current_version(tmp_path) == name == "v0001"


def test_each_save_is_a_new_version_and_old_ones_are_pruned(rec, tmp_path):
    names = [save_recommender(rec, tmp_path, keep=2) for _ in range(3)]
    assert names == ["v0001", "v0002", "v0003"]
    assert current_version(tmp_path) == "v0003"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("v")) == [
        "v0002",
        "v0003",
    ]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_arrays_load_without_pickle(rec, tmp_path):
    name = save_recommender(rec, tmp_path)
    with np.load(tmp_path / name / "arrays.npz", allow_pickle=False) as data:
        assert "collab/item_factors" in data.files


def test_loading_from_an_empty_folder_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="refit"):
        load_recommender(tmp_path)
