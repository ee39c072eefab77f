"""Forecasting and ranking metrics (engine/frameworks/metrics.py), against their definitions
computed the slow way: user by user, row by row, and sklearn's ndcg_score."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from engine.frameworks.base import Prediction
from engine.frameworks.metrics import (evaluation_report, forecast_metrics, metric_reference, ranking_metrics,
                                       task_metrics)


def _interactions(seed: int, users: int = 40, per_user: tuple[int, int] = (1, 15)):
    rng = np.random.default_rng(seed)
    rows, truth, predicted = [], [], []
    for u in range(users):
        for i in rng.choice(50, rng.integers(*per_user), replace=False):
            rows.append((f"u{u}", f"i{i}"))
            rating = float(rng.integers(1, 6))
            truth.append(rating)
            predicted.append(rating + rng.normal(0, 1.5))
    return np.array(rows, dtype=object), np.array(truth), np.array(predicted)


def _slow_ranking(pairs, y, p, threshold, k):
    ndcgs, aps, precisions = [], [], []
    for user in sorted(set(pairs[:, 0])):
        mine = pairs[:, 0] == user
        truth, scores = y[mine], p[mine]
        if len(truth) > 1 and truth.max() > 0:
            ndcgs.append(ndcg_score([truth], [scores], k=k))
        elif len(truth) == 1 and truth[0] > 0:
            ndcgs.append(1.0)
        ranked = truth[np.argsort(-scores, kind="stable")]
        relevant = ranked >= threshold
        if relevant.sum() == 0:
            continue
        hits, total = 0, 0.0
        for rank, is_relevant in enumerate(relevant[:k], start=1):
            if is_relevant:
                hits += 1
                total += hits / rank
        aps.append(total / min(k, relevant.sum()))
        precisions.append(relevant[:k].sum() / min(k, len(truth)))
    return np.mean(ndcgs), np.mean(aps), np.mean(precisions)


@pytest.mark.parametrize("seed,k", [(0, 10), (1, 3), (2, 1)])
def test_ranking_metrics_match_their_definitions_user_by_user(seed, k):
    pairs, y, p = _interactions(seed)
    got = ranking_metrics(pairs, y, p, relevance_threshold=4.0, k=k)
    ndcg, average_precision, precision = _slow_ranking(pairs, y, p, 4.0, k)
    assert got == pytest.approx({f"ndcg_at_{k}": ndcg, f"map_at_{k}": average_precision,
                                 f"precision_at_{k}": precision}, rel=1e-12)


def test_a_perfect_ranking_scores_one_and_a_reversed_one_less():
    pairs, y, _ = _interactions(3, per_user=(5, 10))
    y = y + np.random.default_rng(0).uniform(0, 0.1, len(y))  # no ties in the truth
    perfect = ranking_metrics(pairs, y, y, relevance_threshold=3.0)
    assert perfect == pytest.approx({"ndcg_at_10": 1.0, "map_at_10": 1.0, "precision_at_10": perfect["precision_at_10"]})
    reversed_ = ranking_metrics(pairs, y, -y, relevance_threshold=3.0)
    assert reversed_["ndcg_at_10"] < 0.9 and reversed_["map_at_10"] < 0.9


def test_forecast_metrics_and_the_naive_scale():
    windows = np.array([[1.0, 2.0], [2.0, 4.0], [4.0, 0.0]])
    y, p = np.array([4.0, 0.0, 2.0]), np.array([3.0, 1.0, 2.0])
    got = forecast_metrics(windows, y, p)
    assert got["mape"] == pytest.approx((1 / 4 + 0 / 2) / 2)  # the row with y = 0 is left out
    assert got["smape"] == pytest.approx((2 / 7 + 2 / 1 + 0) / 3)
    naive = np.mean(np.abs(y - windows[:, -1]))  # |4-2|, |0-4|, |2-0|
    assert got["mase"] == pytest.approx(np.mean(np.abs(y - p)) / naive)
    assert forecast_metrics(windows, y, p, naive_mae=2.0)["mase"] == pytest.approx(np.mean(np.abs(y - p)) / 2.0)
    assert metric_reference("forecasting", windows, y) == {"naive_mae": pytest.approx(naive)}
    assert metric_reference("recommendation", windows, y) == {"relevance_threshold": 2.0}
    assert metric_reference("regression", windows, y) == {}


def test_the_evaluation_report_adds_them_by_model_type():
    pairs, y, p = _interactions(4)
    report = evaluation_report("recommendation", y, Prediction(values=p), None, pairs, {"relevance_threshold": 4.0})
    assert {"rmse", "mae", "ndcg_at_10", "map_at_10", "precision_at_10"} <= set(report)
    assert task_metrics("regression", pairs, y, p, {}) == {}
    windows = np.arange(20, dtype=float).reshape(10, 2)
    series = evaluation_report("forecasting", windows[:, 1] + 1, Prediction(values=windows[:, 1] + 1.5), None,
                               windows, {"naive_mae": 1.0})
    assert series["mase"] == pytest.approx(0.5) and {"mape", "smape"} <= set(series)


def test_other_model_types_need_no_reference_whatever_their_labels():
    assert metric_reference("classification", np.zeros((3, 2)), np.array(["billing", "tech", "billing"])) == {}
