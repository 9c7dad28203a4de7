"""Metric functions against hand-computed cases."""
import math

import numpy as np
import pytest

from eval.metrics import ranking_report, user_metrics


def test_user_metrics_hand_computed():
    # hits at ranks 1 and 3 of 4 recommended; 3 relevant items in all
    m = user_metrics([10, 20, 30, 40], {10, 30, 99}, k=4)
    assert m["precision@4"] == pytest.approx(2 / 4)
    assert m["recall@4"] == pytest.approx(2 / 3)
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg@4"] == pytest.approx(dcg / idcg)
    assert m["map"] == pytest.approx((1 / 1 + 2 / 3) / 3)


def test_perfect_and_empty_rankings():
    assert user_metrics([1, 2], {1, 2}, k=2)["ndcg@2"] == pytest.approx(1.0)
    none = user_metrics([5, 6], {1}, k=2)
    assert none["ndcg@2"] == none["map"] == none["recall@2"] == 0.0
    with pytest.raises(ValueError):
        user_metrics([1], set(), k=1)


def test_report_averages_users_and_beyond_accuracy():
    recs = {1: [1, 2], 2: [3, 4]}
    rel = {1: {1}, 2: {9}}
    report = ranking_report(recs, rel, k=2, n_catalog=10, popularity={1: 3, 2: 1, 3: 1, 4: 1},
                            item_vectors={1: np.array([1, 0]), 2: np.array([1, 0]), 3: np.array([1, 0]), 4: np.array([0, 1])})
    assert report["users"] == 2
    assert report["precision@2"] == pytest.approx(0.25)
    assert report["coverage@2"] == pytest.approx(0.4)
    assert report["diversity"] == pytest.approx(0.5)  # user 1: identical genres (0), user 2: orthogonal (1)
    assert report["novelty"] > 0
