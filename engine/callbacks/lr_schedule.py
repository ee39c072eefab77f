"""Learning-rate schedules, computed per epoch and framework-agnostic.

Neural-network adapters (PyTorch, Keras) ask `lr_for_epoch(epoch)` before each epoch and
set it on their optimizer, then report `observe(epoch, metrics)` after it, so every
framework follows the same formulas and a resumed job restores the schedule from its
checkpoint through state_dict().

Schedules (TrainingConfig.lr_scheduler.type), with `base` the configured learning rate and
`e` the epoch counted from 1 after any warm-up:
- "" / "constant": base
- "step": base * gamma ** ((e - 1) // step_size)           (gamma 0.1, step_size 10)
- "exponential": base * gamma ** (e - 1)                     (gamma 0.95)
- "cosine": min_lr + (base - min_lr) * (1 + cos(pi * (e - 1) / E)) / 2, E = epochs after warm-up
- "reduce_on_plateau": base, multiplied by gamma (0.1) each time `metric` (val_loss) has not
  improved for `patience` (5) epochs
- "linear_warmup": warm-up (below), then constant
`warmup_epochs` > 0 (any type) ramps linearly from base / warmup_epochs to base first.
Every schedule is floored at min_lr.
"""

from __future__ import annotations

import math
from typing import Any

from engine.callbacks.early_stopping import default_mode, metric_key
from engine.errors import InvalidArgument
from engine.jobs.spec import LRSchedulerSpec

TYPES = ("", "constant", "step", "exponential", "cosine", "reduce_on_plateau", "linear_warmup")
FIELD = "training_config.lr_scheduler"


def validate(spec: LRSchedulerSpec, epochs: int) -> None:
    kind = spec.type.strip().lower()
    if kind not in TYPES:
        raise InvalidArgument.field(f"{FIELD}.type", f"unknown schedule {spec.type!r}: use one of "
                                                     f"{', '.join(t for t in TYPES if t)}")
    if spec.gamma and not 0 < spec.gamma < 1:
        raise InvalidArgument.field(f"{FIELD}.gamma", f"must be between 0 and 1 (exclusive), got {spec.gamma}")
    if spec.step_size < 0:
        raise InvalidArgument.field(f"{FIELD}.step_size", "must be >= 0")
    if spec.warmup_epochs < 0 or (spec.warmup_epochs and spec.warmup_epochs >= epochs):
        raise InvalidArgument.field(f"{FIELD}.warmup_epochs", f"must be between 0 and epochs - 1 ({epochs - 1})")
    if spec.min_lr < 0:
        raise InvalidArgument.field(f"{FIELD}.min_lr", "must be >= 0")
    if spec.patience < 0:
        raise InvalidArgument.field(f"{FIELD}.patience", "must be >= 0")


class LearningRateSchedule:
    def __init__(self, spec: LRSchedulerSpec, base_lr: float, epochs: int):
        validate(spec, epochs)
        self.kind = spec.type.strip().lower() or "constant"
        self.base = base_lr
        self.epochs = epochs
        self.warmup = spec.warmup_epochs
        self.step_size = spec.step_size or 10
        self.gamma = spec.gamma or (0.95 if self.kind == "exponential" else 0.1)
        self.min_lr = spec.min_lr
        self.patience = spec.patience or 5
        self.metric = metric_key(spec.metric or "val_loss")
        self.mode = default_mode(self.metric)
        # reduce_on_plateau state
        self.current = base_lr
        self.best: float | None = None
        self.wait = 0

    def lr_for_epoch(self, epoch: int) -> float:
        if self.warmup and epoch <= self.warmup:
            return max(self.min_lr, self.base * epoch / self.warmup)
        e = epoch - self.warmup
        if self.kind == "step":
            lr = self.base * self.gamma ** ((e - 1) // self.step_size)
        elif self.kind == "exponential":
            lr = self.base * self.gamma ** (e - 1)
        elif self.kind == "cosine":
            span = max(1, self.epochs - self.warmup)
            lr = self.min_lr + (self.base - self.min_lr) * (1 + math.cos(math.pi * (e - 1) / span)) / 2
        elif self.kind == "reduce_on_plateau":
            lr = self.current
        else:
            lr = self.base
        return max(self.min_lr, lr)

    def observe(self, epoch: int, metrics: dict[str, float]) -> None:
        """Feed the epoch's metrics; only reduce_on_plateau uses them."""
        if self.kind != "reduce_on_plateau" or epoch <= self.warmup:
            return
        value = metrics.get(self.metric)
        if value is None:
            return
        improved = self.best is None or (value < self.best if self.mode == "min" else value > self.best)
        if improved:
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.current = max(self.min_lr, self.current * self.gamma)
            self.wait = 0

    def state_dict(self) -> dict[str, Any]:
        return {"current": self.current, "best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.current = state.get("current", self.base)
        self.best = state.get("best")
        self.wait = state.get("wait", 0)
