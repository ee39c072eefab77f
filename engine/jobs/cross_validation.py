"""k-fold cross-validation of a job (validation.cross_validation), run by the worker.

The training rows (those left after any validation holdout) are split into `folds` folds:
stratified for classification, in time order for forecasting (each fold validates on the
windows after the ones it trains on, scikit-learn's TimeSeriesSplit), plain k-fold
otherwise. Each fold trains a fresh model for the configured epochs on the other folds and
is measured on its own; callbacks and early stopping (a time budget included) judge the final
model alone, and so are refused with "best_fold". Then, by
`final_model`:
- "all_data" (the default): the final model trains as the job says, on all the training rows,
  validated as configured;
- "best_fold": the fold model with the best `metric` is the job's model.

The job's epochs count on across the phases (fold 1's, fold 2's, ..., the final model's), so the
metric stream and the checkpoints need nothing new: each point of a fold carries `cv_fold`
(0 for the final model) in its extra metrics, each fold's last point `cv.fold_<k>.<metric>`,
and the last fold's `cv.mean.<metric>` and `cv.std.<metric>` as well. The summary is also the
job's `cross_validation` (summary() below).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from engine.errors import InvalidArgument
from engine.jobs.spec import CrossValidationSpec, TrainingSpec

FINAL_MODELS = ("all_data", "best_fold")
FIELD = "validation.cross_validation"
# What a fold's summary keeps of its last epoch: its validation metrics (not the training loss,
# the learning rate, or an adapter's bookkeeping such as PyTorch's batch count).
VALIDATION_METRICS = ("validation_loss", "accuracy", "precision", "recall", "f1_score", "rmse", "mae", "r2",
                      "roc_auc", "anomaly_fraction", "mape", "smape", "mase")
_RANKING_PREFIXES = ("ndcg_at_", "map_at_", "precision_at_")


def check(job: TrainingSpec) -> None:
    """INVALID_ARGUMENT naming the field for settings cross-validation cannot take."""
    spec, model_type, workers = job.cross_validation, job.model_type, job.resources.workers
    if not spec.enabled:
        return
    if spec.final_model == "best_fold" and (job.callbacks or job.early_stopping.enabled):
        raise InvalidArgument.field(f"{FIELD}.final_model", "callbacks and early stopping judge the final model, "
                                                            "and best_fold trains none: use all_data, or drop them")
    if not 2 <= spec.folds <= 100:
        raise InvalidArgument.field(f"{FIELD}.folds", f"must be between 2 and 100, got {spec.folds}")
    if spec.final_model not in FINAL_MODELS:
        raise InvalidArgument.field(f"{FIELD}.final_model", f"{spec.final_model!r}: use all_data or best_fold")
    if spec.shuffle and model_type == "forecasting":
        raise InvalidArgument.field(f"{FIELD}.shuffle", "forecasting folds keep time order: leave shuffle unset")
    if workers > 1:
        raise InvalidArgument.field(f"{FIELD}.enabled", "cross-validation runs on one worker: leave "
                                                        "resources.workers at 0 or 1")


def split(spec: CrossValidationSpec, task: str, X: np.ndarray, y: np.ndarray | None) -> list[tuple[np.ndarray, ...]]:
    """(train indices, validation indices) of each fold, in fold order; the same every time for
    the same rows and settings (a resumed job rebuilds the fold it was in)."""
    from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit

    rows = len(X)
    if rows < spec.folds * 2:
        raise InvalidArgument.field(f"{FIELD}.folds", f"{spec.folds} folds need at least {spec.folds * 2} training "
                                                      f"rows; there are {rows}")
    seed = spec.seed if spec.shuffle else None
    if task == "forecasting":
        splitter: Any = TimeSeriesSplit(n_splits=spec.folds)
        return list(splitter.split(np.zeros(rows)))
    if task == "classification" and y is not None:
        _, counts = np.unique(np.asarray(y).astype(str), return_counts=True)
        if counts.min() < spec.folds:
            raise InvalidArgument.field(f"{FIELD}.folds", f"the rarest class has {counts.min()} training rows, "
                                                          f"fewer than the {spec.folds} folds: use fewer folds")
        splitter = StratifiedKFold(n_splits=spec.folds, shuffle=spec.shuffle, random_state=seed)
        return list(splitter.split(np.zeros(rows), np.asarray(y).astype(str)))
    return list(KFold(n_splits=spec.folds, shuffle=spec.shuffle, random_state=seed).split(np.zeros(rows)))


def fold_data(data: Any, train: np.ndarray, validation: np.ndarray) -> Any:
    """TrainingData of one fold: the fold's training rows, and its validation rows as validation."""
    y = data.y_train
    return replace(data, X_train=data.X_train[train], y_train=None if y is None else y[train],
                   X_val=data.X_train[validation], y_val=None if y is None else y[validation])


def fold_metrics(observed: dict[str, float]) -> dict[str, float]:
    """What a fold's summary keeps of its last epoch: its validation metrics."""
    return {k: v for k, v in observed.items()
            if (k in VALIDATION_METRICS or k.startswith(_RANKING_PREFIXES)) and math.isfinite(v)}


def summary(spec: CrossValidationSpec, folds: list[dict[str, Any]], metric: str, mode: str) -> dict[str, Any]:
    """The job's cross_validation: folds [{fold, train_rows, validation_rows, metrics}], mean and
    std (population) of every metric all folds have, the best fold by `metric` (`mode` min or
    max; the first fold when no fold has it), the final model and the metric."""
    names = set.intersection(*(set(f["metrics"]) for f in folds)) if folds else set()
    values = {name: np.array([f["metrics"][name] for f in folds]) for name in sorted(names)}
    scored = [(f["metrics"][metric], f["fold"]) for f in folds if metric in f["metrics"]]
    best = (min(scored) if mode == "min" else max(scored, key=lambda s: (s[0], -s[1])))[1] if scored else 1
    return {"folds": folds, "mean": {k: float(v.mean()) for k, v in values.items()},
            "std": {k: float(v.std()) for k, v in values.items()}, "best_fold": best,
            "final_model": spec.final_model, "metric": metric}


def point_extras(result: dict[str, Any], fold: int, last: bool) -> dict[str, float]:
    """The extra metrics of a fold's last point: its own, and the mean and std after the last."""
    extras = {f"cv.fold_{fold}.{k}": v for k, v in result["folds"][-1]["metrics"].items()}
    if last:
        extras.update({f"cv.mean.{k}": v for k, v in result["mean"].items()})
        extras.update({f"cv.std.{k}": v for k, v in result["std"].items()})
    return extras
