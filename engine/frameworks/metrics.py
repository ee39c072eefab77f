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
                      classes: Sequence[Any] | None) -> dict[str, Any]:
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
        return _regression_report(y_true, prediction.values)
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
