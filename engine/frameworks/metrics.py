"""Metrics shared by framework adapters and model evaluation, computed with sklearn.metrics.

classification_metrics and regression_metrics are the per-epoch metrics: keys match
TrainingMetrics fields, with "loss" left for the caller to name training_loss or
validation_loss. evaluation_report is the fuller report of a trained model on a labelled
dataset (engine/jobs/evaluate.py). sklearn is imported inside the functions: adapters import
this module in the server process, where sklearn must not be loaded.

The per-epoch metrics are computed with numpy from class indices: they run after every epoch
(every boosting round), where sklearn's input validation costs more than the metrics (about
40 ms of CPU on 40,000 validation rows, against 1.5-3 ms with numpy: 8 s over 200 rounds),
and a PyTorch worker then never imports sklearn (1-2 s). They give sklearn's values
(tests/unit/engine/frameworks/test_metrics.py compares them); inputs numpy cannot take as
they are (labels outside the classes, non-finite values) go to sklearn, which says what is
wrong exactly as before.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:
    from engine.frameworks.base import Prediction

REGRESSION_TASKS = ("regression", "forecasting", "recommendation")


def _label_scores(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[Any],
                  n_classes: int) -> tuple[dict[str, float], tuple[np.ndarray, ...]]:
    """(accuracy, precision, recall and f1_score; per-label (precision, recall, f1, support))
    of predicted labels, per-label arrays in `labels` order.

    The first `n_classes` labels are the model's classes (any after them are labels only
    y_true has). With two classes precision/recall/f1 are those of the positive class
    labels[1]; with more they are macro averages over the model's classes. Undefined ratios
    (no predicted or no true rows) count as 0."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    per_label = precision_recall_fscore_support(y_true, y_pred, labels=list(labels), average=None, zero_division=0)
    precision, recall, f1 = (np.asarray(a, dtype=np.float64)[:n_classes] for a in per_label[:3])
    if n_classes == 2:
        summary = {"precision": precision[1], "recall": recall[1], "f1_score": f1[1]}
    else:
        summary = {"precision": precision.mean(), "recall": recall.mean(), "f1_score": f1.mean()}
    scores = {"accuracy": float(accuracy_score(y_true, y_pred)), **{k: float(v) for k, v in summary.items()}}
    return scores, per_label


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[Any]) -> dict[str, float]:
    """loss (log loss), accuracy, precision, recall and f1_score of class probabilities.

    `proba` has one column per entry of `classes`, in that order. With two classes,
    precision/recall/f1 are those of the positive class `classes[1]`; with more they are
    macro averages. Undefined ratios (no predicted or no true positives) count as 0.
    """
    labels = np.asarray(classes)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] != len(labels):
        raise ValueError(f"proba has shape {proba.shape}; expected one column per class ({len(labels)})")
    if len(labels) < 2:
        raise ValueError("classification metrics need at least two classes")
    y_true = np.asarray(y_true)
    codes = class_codes(y_true, classes)
    if codes is not None and len(codes) and np.isfinite(proba).all():
        return classification_metrics_of_codes(codes, proba)
    from sklearn.metrics import log_loss

    y_pred = labels[np.argmax(proba, axis=1)]
    scores, _ = _label_scores(y_true, y_pred, labels.tolist(), len(labels))
    return {"loss": float(log_loss(y_true, proba, labels=labels)), **scores}


def class_codes(y: np.ndarray, classes: Sequence[Any]) -> np.ndarray | None:
    """The index in `classes` of every label of y (int64 [n]); None when a label is not one of
    the classes."""
    index = {c: i for i, c in enumerate(classes)}
    y = np.asarray(y).ravel()
    try:
        distinct, inverse = np.unique(y, return_inverse=True)
    except TypeError:  # labels numpy cannot sort (mixed types): one by one
        try:
            return np.fromiter((index[v] for v in y.tolist()), dtype=np.int64, count=len(y))
        except (KeyError, TypeError):
            return None
    known = [index.get(v, -1) for v in distinct.tolist()]
    if -1 in known:
        return None
    return np.asarray(known, dtype=np.int64)[inverse.ravel()]


def classification_metrics_of_codes(codes: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """classification_metrics of true class indices `codes` (int64 [n], n > 0, each a column of
    proba) and finite class probabilities proba [n, n_classes], with numpy; the formulas are
    sklearn's (log loss of probabilities clipped to [eps, 1 - eps], f1 = 2 tp / (true + predicted))."""
    proba = np.asarray(proba, dtype=np.float64)
    n, n_classes = proba.shape
    predicted = np.argmax(proba, axis=1)
    hits = predicted == codes
    true_positives = np.bincount(codes[hits], minlength=n_classes).astype(np.float64)
    predicted_count = np.bincount(predicted, minlength=n_classes).astype(np.float64)
    true_count = np.bincount(codes, minlength=n_classes).astype(np.float64)

    def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
        # Undefined ratios (nothing predicted, nothing true) count as 0, as zero_division=0 says.
        return np.divide(numerator, denominator, out=np.zeros(n_classes), where=denominator > 0)

    precision, recall = ratio(true_positives, predicted_count), ratio(true_positives, true_count)
    f1 = ratio(2 * true_positives, true_count + predicted_count)
    if n_classes == 2:
        summary = {"precision": precision[1], "recall": recall[1], "f1_score": f1[1]}
    else:
        summary = {"precision": precision.mean(), "recall": recall.mean(), "f1_score": f1.mean()}
    eps = np.finfo(np.float64).eps
    loss = -np.mean(np.log(np.clip(proba[np.arange(n), codes], eps, 1 - eps)))
    return {"loss": float(loss), "accuracy": float(hits.mean()), **{k: float(v) for k, v in summary.items()}}


def binary_metrics_of_codes(codes: np.ndarray, positive: np.ndarray) -> dict[str, float]:
    """classification_metrics_of_codes for two classes from P(classes[1]) alone (float64 [n],
    finite): what XGBoost's binary objective gives, measured every round without building the
    two-column probabilities. The predicted class is the argmax's: classes[1] only when its
    probability is above 1/2."""
    positive = np.asarray(positive, dtype=np.float64)
    truth = codes == 1
    predicted = positive > 0.5
    true_positives = float(np.count_nonzero(predicted & truth))
    predicted_count, true_count = float(np.count_nonzero(predicted)), float(np.count_nonzero(truth))
    eps = np.finfo(np.float64).eps
    loss = -np.mean(np.log(np.clip(np.where(truth, positive, 1.0 - positive), eps, 1 - eps)))
    return {"loss": float(loss), "accuracy": float(np.mean(predicted == truth)),
            "precision": true_positives / predicted_count if predicted_count else 0.0,
            "recall": true_positives / true_count if true_count else 0.0,
            "f1_score": 2 * true_positives / (true_count + predicted_count) if true_count + predicted_count else 0.0}


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """loss (mean squared error), rmse, mae and r2 of predictions."""
    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    if len(y_true) != len(y_pred) or not len(y_true) or not (np.isfinite(y_true).all() and np.isfinite(y_pred).all()):
        return _sklearn_regression_metrics(y_true, y_pred)  # its errors say what is wrong
    error = y_true - y_pred
    squares = float(np.dot(error, error))
    mse = squares / len(error)
    r2 = math.nan
    # r2 is undefined for fewer than two samples; sklearn would warn and return nan anyway.
    if len(y_true) >= 2:
        centred = y_true - y_true.mean()
        total = float(np.dot(centred, centred))
        # sklearn's r2_score for constant targets: 1 for a perfect fit, 0 otherwise.
        r2 = 1.0 - squares / total if total else (1.0 if squares == 0 else 0.0)
    return {"loss": mse, "rmse": math.sqrt(mse), "mae": float(np.mean(np.abs(error))), "r2": r2}


def _sklearn_regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    mse = float(mean_squared_error(y_true, y_pred))
    r2 = float(r2_score(y_true, y_pred)) if len(y_true) >= 2 else math.nan
    return {"loss": mse, "rmse": math.sqrt(mse), "mae": float(mean_absolute_error(y_true, y_pred)), "r2": r2}


def anomaly_metrics(is_anomaly: np.ndarray, predicted: np.ndarray,
                    scores: np.ndarray | None = None) -> dict[str, float]:
    """precision, recall and f1_score of the rows predicted anomalous (bool [n]) against the
    known anomalies (bool [n]); roc_auc of the anomaly scores (higher = more anomalous) when
    scores are given and the rows hold both anomalies and normal rows (undefined otherwise)."""
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    truth = np.asarray(is_anomaly, dtype=bool).ravel()
    predicted = np.asarray(predicted, dtype=bool).ravel()
    precision, recall, f1, _ = precision_recall_fscore_support(
        truth, predicted, average="binary", pos_label=True, zero_division=0)
    metrics = {"precision": float(precision), "recall": float(recall), "f1_score": float(f1)}
    if scores is not None and 0 < truth.sum() < len(truth):
        metrics["roc_auc"] = float(roc_auc_score(truth, np.asarray(scores, dtype=np.float64).ravel()))
    return metrics


# --- evaluation reports ------------------------------------------------------------------


def evaluation_report(task: str, y_true: np.ndarray | None, prediction: "Prediction",
                      classes: Sequence[Any] | None, X: np.ndarray | None = None,
                      reference: dict[str, float] | None = None) -> dict[str, Any]:
    """How well a trained model's `prediction` (engine.frameworks.base.Prediction) matches
    the labels y_true, by model type (JSON-serializable values):

    classification (`classes`: the model's classes, in its probability columns' order):
      accuracy, precision, recall, f1_score (two classes: of the positive class classes[1];
      more: macro averages over the model's classes), roc_auc (two classes: of classes[1];
      more: the one-vs-rest macro average over the classes that y_true holds along with other
      labels; omitted when y_true holds a single label), log_loss, class_labels (str), and
      confusion_matrix (rows: true label, columns: predicted label, both in class_labels order)
      and per_class ([{label, precision, recall, f1_score, support}] in class_labels order).
      Labels of y_true the model does not know are errors: they count against accuracy and
      against the precision of whichever class was predicted, and are appended to class_labels
      (sorted as text), so the confusion matrix has a row for them (its column is all zeros:
      the model never predicts them) and sums to the number of rows. They are left out of the
      macro averages, roc_auc's positives and log_loss (which covers only the rows whose label
      the model knows, and is omitted when there are none).
    regression, forecasting, recommendation:
      rmse, mae, r2 (omitted under two rows), and mape, the mean of |y - prediction| / |y|
      over the rows where y is not 0 (a fraction, not a percentage; omitted when every y is 0).
      Given the rows X and the model's metric_reference: forecasting adds smape and mase
      (forecast_metrics), recommendation ndcg_at_10, map_at_10 and precision_at_10
      (ranking_metrics).
    anomaly_detection (`classes`: [normal label, anomaly label] when the model knows its
    anomaly labels, else None; y_true may be None):
      anomaly_rate (the share of rows predicted anomalous); with labels and classes, also
      precision, recall and f1_score of the anomaly class and roc_auc of the anomaly scores
      (see anomaly_metrics).
    """
    if task == "classification":
        if y_true is None or not classes:
            raise ValueError("a classification report needs the labels and the model's classes")
        return _classification_report(np.asarray(y_true), prediction, list(classes))
    if task in REGRESSION_TASKS:
        if y_true is None:
            raise ValueError(f"a {task} report needs the true values")
        report = _regression_report(y_true, prediction.values)
        if X is not None:
            report.update(task_metrics(task, X, y_true, prediction.values, reference))
        return report
    if task == "anomaly_detection":
        predicted = np.asarray(prediction.values).ravel() == 1
        report: dict[str, Any] = {"anomaly_rate": float(predicted.mean()) if len(predicted) else 0.0}
        if y_true is not None and classes is not None and len(classes) == 2:
            truth = np.array([v == classes[1] for v in np.asarray(y_true, dtype=object).ravel().tolist()], dtype=bool)
            report.update(anomaly_metrics(truth, predicted, prediction.scores))
        return report
    raise ValueError(f"no evaluation report for model type {task!r}")


def _classification_report(y_true: np.ndarray, prediction: "Prediction", classes: list[Any]) -> dict[str, Any]:
    from sklearn.metrics import confusion_matrix, log_loss, roc_auc_score

    # Labels become indices into class_labels: the model's classes, then labels only y_true has.
    code = {label: i for i, label in enumerate(classes)}
    by_text = {str(label): i for i, label in enumerate(classes)}
    unseen: dict[str, int] = {}
    true_values = y_true.ravel().tolist()
    for v in true_values:
        if v not in code and str(v) not in by_text:
            unseen.setdefault(str(v), 0)
    unseen_labels = sorted(unseen)
    by_text.update({text: len(classes) + i for i, text in enumerate(unseen_labels)})

    def encode(values: list[Any]) -> np.ndarray:
        return np.fromiter((code[v] if v in code else by_text[str(v)] for v in values), dtype=np.int64,
                           count=len(values))

    y_codes = encode(true_values)
    p_codes = encode(np.asarray(prediction.values).ravel().tolist())
    n_classes, n_labels = len(classes), len(classes) + len(unseen_labels)
    indices = list(range(n_labels))
    scores, (precision, recall, f1, support) = _label_scores(y_codes, p_codes, indices, n_classes)
    report: dict[str, Any] = dict(scores)

    proba = prediction.probabilities
    if proba is not None:
        proba = np.asarray(proba, dtype=np.float64)
        aucs = []
        for k in ([1] if n_classes == 2 else range(n_classes)):
            truth = y_codes == k
            if 0 < truth.sum() < len(truth):
                aucs.append(float(roc_auc_score(truth, proba[:, k])))
        if aucs and len(np.unique(y_codes)) > 1:
            report["roc_auc"] = float(np.mean(aucs))
        known = y_codes < n_classes
        if known.any():
            report["log_loss"] = float(log_loss(y_codes[known], proba[known], labels=list(range(n_classes))))

    labels_text = [str(c) for c in classes] + unseen_labels
    matrix = confusion_matrix(y_codes, p_codes, labels=indices)
    report["class_labels"] = labels_text
    report["confusion_matrix"] = [[int(x) for x in row] for row in matrix]
    report["per_class"] = [
        {"label": label, "precision": float(p), "recall": float(r), "f1_score": float(f), "support": int(s)}
        for label, p, r, f, s in zip(labels_text, precision, recall, f1, support)
    ]
    return report


def _regression_report(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    measured = regression_metrics(y, p)
    report: dict[str, Any] = {"rmse": measured["rmse"], "mae": measured["mae"]}
    if math.isfinite(measured["r2"]):
        report["r2"] = measured["r2"]
    nonzero = y != 0
    if nonzero.any():
        report["mape"] = float(np.mean(np.abs(y[nonzero] - p[nonzero]) / np.abs(y[nonzero])))
    return report


# --- forecasting and ranking ---------------------------------------------------------------
#
# The seed's MetricsEvaluator had evaluators for time series and ranking besides classification
# and regression. Forecasting and recommendation jobs report these beside their regression
# metrics: every epoch on the validation rows (TrainingMetrics.extra), and on test data and
# EvaluateModel datasets. Both need something of the training data (the naive forecast's error,
# what counts as a relevant rating): metric_reference measures it once, and it is recorded in
# the model's info so a later evaluation measures the same way.

RANKING_K = 10


def metric_reference(task: str, X: np.ndarray, y: np.ndarray | None) -> dict[str, float]:
    """What forecast_metrics / ranking_metrics need of the training rows (X, y):
    forecasting: naive_mae, the mean absolute error of the naive forecast (each window's last
    value) on the training windows, MASE's scale; recommendation: relevance_threshold, the mean
    training rating (a rating at or above it is relevant). {} for other tasks or no rows."""
    if task not in ("forecasting", "recommendation") or y is None or not len(y):
        return {}
    y = np.asarray(y, dtype=np.float64).ravel()
    if task == "forecasting":
        return {"naive_mae": float(np.mean(np.abs(y - np.asarray(X, dtype=np.float64)[:, -1])))}
    if task == "recommendation":
        return {"relevance_threshold": float(np.mean(y))}
    return {}


def forecast_metrics(windows: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
                     naive_mae: float | None = None) -> dict[str, float]:
    """mape (mean |y - p| / |y| over the rows where y is not 0; a fraction), smape (mean
    2 |y - p| / (|y| + |p|) over the rows where that is defined; 0 to 2) and mase (the
    forecast's mean absolute error over `naive_mae`, the naive forecast's on the training
    windows; without it, on these windows: `windows` [n, window] hold each row's past values,
    the last one the naive forecast). A metric undefined on these rows is left out."""
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    out: dict[str, float] = {}
    if not len(y) or not (np.isfinite(y).all() and np.isfinite(p).all()):
        return out
    error = np.abs(y - p)
    nonzero = y != 0
    if nonzero.any():
        out["mape"] = float(np.mean(error[nonzero] / np.abs(y[nonzero])))
    scale = np.abs(y) + np.abs(p)
    if (scale > 0).any():
        out["smape"] = float(np.mean(2 * error[scale > 0] / scale[scale > 0]))
    if naive_mae is None:
        naive_mae = float(np.mean(np.abs(y - np.asarray(windows, dtype=np.float64)[:, -1])))
    if naive_mae > 0:
        out["mase"] = float(np.mean(error) / naive_mae)
    return out


def ranking_metrics(pairs: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, relevance_threshold: float,
                    k: int = RANKING_K) -> dict[str, float]:
    """How well predicted ratings rank each user's items, as recommenders are judged: rows are
    (user, item) `pairs` [n, 2] with true and predicted ratings; each user's items are ranked by
    predicted rating (highest first) and the top k judged:

    - ndcg_at_k: DCG of the top k with the true ratings as gains (negative ones count 0) over
      the best possible DCG of that user's items; mean over users with a positive gain.
    - map_at_k: average precision of the top k, an item being relevant when its true rating is
      at least `relevance_threshold`, divided by min(k, the user's relevant items).
    - precision_at_k: the share of relevant items among the top min(k, the user's items).
    map and precision are means over users with at least one relevant item. Computed for all
    users at once (sorted groups), not user by user."""
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if not len(y) or not (np.isfinite(y).all() and np.isfinite(p).all()):
        return {}
    _, users = np.unique(np.asarray(pairs, dtype=object)[:, 0].astype(str), return_inverse=True)
    users = users.ravel()
    n_users = int(users.max()) + 1
    counts = np.bincount(users, minlength=n_users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))

    def ranked(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        order = np.lexsort((-score, users))  # by user, then best score first
        rank = np.arange(len(order)) - starts[users[order]]
        return order, rank

    discount = 1.0 / np.log2(np.arange(2, len(y) + 2))
    gains = np.maximum(y, 0.0)
    by_prediction, rank = ranked(p)
    top = rank < k
    dcg = np.bincount(users[by_prediction], weights=gains[by_prediction] * discount[rank] * top, minlength=n_users)
    by_truth, ideal_rank = ranked(y)
    ideal = np.bincount(users[by_truth], weights=gains[by_truth] * discount[ideal_rank] * (ideal_rank < k),
                        minlength=n_users)
    out: dict[str, float] = {}
    if (ideal > 0).any():
        out[f"ndcg_at_{k}"] = float(np.mean(dcg[ideal > 0] / ideal[ideal > 0]))

    relevant = (y >= relevance_threshold)[by_prediction]
    grouped = users[by_prediction]
    hits = np.bincount(grouped, weights=relevant * top, minlength=n_users)
    n_relevant = np.bincount(grouped, weights=relevant, minlength=n_users)
    # Relevant items so far within the user's ranking: a running count restarted at each user.
    running = np.cumsum(relevant)
    before = np.concatenate(([0], running))[starts][grouped]
    precision_at_rank = (running - before) / (rank + 1)
    average = np.bincount(grouped, weights=precision_at_rank * relevant * top, minlength=n_users)
    judged = n_relevant > 0
    if judged.any():
        out[f"map_at_{k}"] = float(np.mean(average[judged] / np.minimum(k, n_relevant[judged])))
        out[f"precision_at_{k}"] = float(np.mean(hits[judged] / np.minimum(k, counts[judged])))
    return out


def task_metrics(task: str, X: np.ndarray, y: np.ndarray | None, y_pred: np.ndarray,
                 reference: dict[str, float] | None) -> dict[str, float]:
    """The forecasting or ranking metrics of predictions y_pred on rows (X, y), by model type
    ({} for the other types, and without labels)."""
    if y is None or not len(y):
        return {}
    reference = reference or {}
    if task == "forecasting":
        return forecast_metrics(X, y, y_pred, reference.get("naive_mae"))
    if task == "recommendation":
        threshold = reference.get("relevance_threshold")
        return ranking_metrics(X, y, y_pred, float(np.mean(y)) if threshold is None else threshold)
    return {}
