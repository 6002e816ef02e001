"""Metric code against hand-computed examples (definitions: shared/bench/README.md)."""

import math

import pytest

from recommender.evaluate import ndcg_at_k, precision_at_k, recall_at_k, task_metrics


def test_recall_counts_hits_in_the_top_k_over_all_relevant():
    assert recall_at_k(["a", "b", "c", "d"], {"b", "d", "z"}, 2) == pytest.approx(1 / 3)
    assert recall_at_k(["a", "b", "c", "d"], {"b", "d", "z"}, 4) == pytest.approx(2 / 3)


def test_precision_divides_by_k_even_when_the_list_is_shorter():
    assert precision_at_k(["a", "b"], {"a"}, 20) == pytest.approx(1 / 20)


def test_ndcg_uses_binary_gains_and_ideal_over_min_k_and_relevant():
    # hits at ranks 2 and 3; 2 relevant items -> ideal ranks 1 and 2
    dcg = 1 / math.log2(3) + 1 / math.log2(4)
    idcg = 1 + 1 / math.log2(3)
    assert ndcg_at_k(["x", "a", "b"], {"a", "b"}, 20) == pytest.approx(dcg / idcg)


def test_ndcg_is_one_for_a_perfect_ranking_and_zero_without_hits():
    assert ndcg_at_k(["a", "b", "c"], {"a", "b"}, 20) == pytest.approx(1.0)
    assert ndcg_at_k(["c", "d"], {"a"}, 20) == 0.0


def test_ndcg_ideal_is_capped_at_k():
    relevant = {f"r{i}" for i in range(30)}
    ranked = [f"r{i}" for i in range(30)]
    assert ndcg_at_k(ranked, relevant, 20) == pytest.approx(1.0)


def test_task_metrics_average_per_user():
    rankings = {1: ["a", "b"], 2: ["c", "d"]}
    truth = {1: {"a"}, 2: {"x", "d"}}
    m = task_metrics(rankings, truth, [1, 2])
    assert m["recall@1"] == pytest.approx((1 + 0) / 2)
    assert m["recall@2"] == pytest.approx((1 + 0.5) / 2)
    assert m["precision@20"] == pytest.approx((1 / 20 + 1 / 20) / 2)
    second = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert m["ndcg@20"] == pytest.approx((1 + second) / 2)
