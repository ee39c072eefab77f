"""engine/jobs/cross_validation.py: folds as the model type wants them, and the summary."""

from __future__ import annotations

import numpy as np
import pytest

from engine.jobs import cross_validation as cv
from engine.jobs.spec import CrossValidationSpec


def test_classification_folds_are_stratified_and_cover_every_row_once():
    y = np.array(["a"] * 30 + ["b"] * 6)
    folds = cv.split(CrossValidationSpec(enabled=True, folds=3, shuffle=True, seed=1), "classification",
                     np.zeros((36, 2)), y)
    assert sorted(np.concatenate([v for _, v in folds]).tolist()) == list(range(36))
    assert [int((y[v] == "b").sum()) for _, v in folds] == [2, 2, 2]  # each fold has its share of the rare class
    again = cv.split(CrossValidationSpec(enabled=True, folds=3, shuffle=True, seed=1), "classification",
                     np.zeros((36, 2)), y)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))  # a resumed job rebuilds the same folds


def test_forecasting_folds_validate_after_what_they_train_on():
    folds = cv.split(CrossValidationSpec(enabled=True, folds=3), "forecasting", np.zeros((40, 3)), np.zeros(40))
    for train, validation in folds:
        assert train.max() < validation.min()


def test_the_summary_keeps_validation_metrics_and_names_the_best_fold():
    observed = [{"validation_loss": 0.3, "accuracy": 0.9, "training_loss": 0.1, "batches": 40.0, "epoch_seconds": 1},
                {"validation_loss": 0.2, "accuracy": 0.8, "ndcg_at_10": 0.7, "learning_rate": 0.01}]
    folds = [{"fold": i + 1, "train_rows": 10, "validation_rows": 5, "metrics": cv.fold_metrics(o)}
             for i, o in enumerate(observed)]
    assert folds[0]["metrics"] == {"validation_loss": 0.3, "accuracy": 0.9}
    result = cv.summary(CrossValidationSpec(), folds, "validation_loss", "min")
    assert result["mean"] == pytest.approx({"validation_loss": 0.25, "accuracy": 0.85})  # metrics all folds have
    assert result["std"]["accuracy"] == pytest.approx(0.05) and result["best_fold"] == 2
    assert cv.summary(CrossValidationSpec(), folds, "accuracy", "max")["best_fold"] == 1
