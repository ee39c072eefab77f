"""Per-epoch metrics shared by framework adapters, computed with sklearn.metrics.

Keys match TrainingMetrics fields, with "loss" left for the caller to name training_loss or
validation_loss. sklearn is imported inside the functions: adapters import this module in
the server process, where sklearn must not be loaded.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[Any]) -> dict[str, float]:
    """loss (log loss), accuracy, precision, recall and f1_score of class probabilities.

    `proba` has one column per entry of `classes`, in that order. With two classes,
    precision/recall/f1 are those of the positive class `classes[1]`; with more they are
    macro averages. Undefined ratios (no predicted or no true positives) count as 0.
    """
    from sklearn.metrics import accuracy_score, log_loss, precision_recall_fscore_support

    labels = np.asarray(classes)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] != len(labels):
        raise ValueError(f"proba has shape {proba.shape}; expected one column per class ({len(labels)})")
    if len(labels) < 2:
        raise ValueError("classification metrics need at least two classes")
    y_true = np.asarray(y_true)
    y_pred = labels[np.argmax(proba, axis=1)]
    if len(labels) == 2:
        averaging = {"average": "binary", "pos_label": labels[1]}
    else:
        averaging = {"average": "macro", "labels": labels}
    precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, zero_division=0, **averaging)
    return {
        "loss": float(log_loss(y_true, proba, labels=labels)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision),
        "recall": float(recall),
        "f1_score": float(f1),
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """loss (mean squared error), rmse, mae and r2 of predictions."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    mse = float(mean_squared_error(y_true, y_pred))
    # r2 is undefined for fewer than two samples; sklearn would warn and return nan anyway.
    r2 = float(r2_score(y_true, y_pred)) if len(y_true) >= 2 else math.nan
    return {
        "loss": mse,
        "rmse": math.sqrt(mse),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "r2": r2,
    }
