"""Stop training when a monitored metric has stopped improving."""

from __future__ import annotations

import math
import operator
import warnings
from typing import Any

from engine.callbacks.base import Callback

_COMPARE = {"min": operator.lt, "max": operator.gt}
# Metrics where larger is better; everything else (losses, errors) is minimized.
_MAXIMIZED = {"accuracy", "precision", "recall", "f1_score", "r2", "auc", "roc_auc"}
_MAXIMIZED_PREFIXES = ("ndcg_at_", "map_at_", "precision_at_")  # ranking metrics
# The names users write in configs, mapped to TrainingMetrics fields.
ALIASES = {"val_loss": "validation_loss", "loss": "training_loss", "train_loss": "training_loss", "f1": "f1_score"}


def metric_key(metric: str) -> str:
    return ALIASES.get(metric, metric)


def default_mode(metric: str) -> str:
    key = metric_key(metric)
    return "max" if key in _MAXIMIZED or key.startswith(_MAXIMIZED_PREFIXES) else "min"


class EarlyStopping(Callback):
    def __init__(self, *, metric: str = "val_loss", patience: int = 5, mode: str = "", min_delta: float = 0.0,
                 strict: bool = False, restore_best: bool = False, name: str = "early_stopping"):
        mode = mode or default_mode(metric)
        if mode not in _COMPARE:
            raise ValueError(f"early_stopping.mode {mode!r} is not supported: pass mode='min' or mode='max'")
        if patience < 0:
            raise ValueError(f"early_stopping.patience must be >= 0, got {patience}: pass patience=0 or more")
        if min_delta < 0:
            raise ValueError(f"early_stopping.min_delta must be >= 0, got {min_delta}")
        self.metric = metric
        self.key = metric_key(metric)
        self.patience = patience
        self.mode = mode
        self.min_delta = min_delta
        self.strict = strict
        # Whether the job ends with the weights of the best epoch (the worker keeps them).
        self.restore_best = restore_best
        self.name = name
        self.best: float | None = None
        self.best_epoch = 0
        self.wait = 0
        self._reason = ""

    def _improved(self, current: float) -> bool:
        if self.best is None:
            return True
        delta = -self.min_delta if self.mode == "min" else self.min_delta
        return _COMPARE[self.mode](current, self.best + delta)

    def evaluate(self, epoch: int, current: float) -> tuple[bool, str]:
        """Decide whether to stop, without side effects on anything but this callback's counters."""
        if self._improved(current):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            return False, ""
        self.wait += 1
        if self.wait > self.patience:
            return True, (
                f"early stopping: {self.metric} did not improve for {self.wait} epochs "
                f"(best {self.best:.6g} at epoch {self.best_epoch})"
            )
        return False, ""

    def after_epoch(self, epoch: int, metrics: dict[str, float]) -> bool:
        current = metrics.get(self.key)
        if current is None or (isinstance(current, float) and math.isnan(current)):
            message = f"early stopping monitors {self.metric!r}, which this job does not report"
            if self.strict:
                raise RuntimeError(message)
            warnings.warn(message, RuntimeWarning, stacklevel=2)
            return False
        stop, self._reason = self.evaluate(epoch, float(current))
        return stop

    @property
    def stop_reason(self) -> str:
        return self._reason

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state.get("best")
        self.best_epoch = state.get("best_epoch", 0)
        self.wait = state.get("wait", 0)
