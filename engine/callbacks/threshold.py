"""Stop or fail a job when a metric crosses a line (the "metric_threshold" callback).

"stop" ends the job early as COMPLETED, its model exported (a target reached: accuracy 0.95);
"fail" ends it as FAILED with ABORTED (a run gone wrong: a loss diverging, a metric that says
the data is broken), its metrics and logs kept.
"""

from __future__ import annotations

import math
from typing import Any

from engine.callbacks.base import Callback
from engine.callbacks.early_stopping import metric_key
from engine.errors import Aborted, InvalidArgument

ACTIONS = ("stop", "fail")


class MetricThreshold(Callback):
    """Acts when `metric` is above `above` or below `below` (exactly one of them) for `patience`
    epochs in a row, from epoch `min_epoch` on. A metric the epoch did not report (or NaN)
    counts as crossing for "fail" (a diverged loss is NaN) and not for "stop"."""

    def __init__(self, *, metric: str, above: float | None = None, below: float | None = None,
                 action: str = "stop", min_epoch: int = 1, patience: int = 1, name: str = "metric_threshold"):
        if not isinstance(metric, str) or not metric:
            raise InvalidArgument.field("metric", "is required: the metric to watch, e.g. 'val_loss' or 'accuracy'")
        if (above is None) == (below is None):
            raise InvalidArgument.field("above", "give exactly one of above and below")
        line = above if above is not None else below
        if isinstance(line, bool) or not isinstance(line, (int, float)) or not math.isfinite(line):
            raise InvalidArgument.field("above" if above is not None else "below", f"must be a number, got {line!r}")
        if action not in ACTIONS:
            raise InvalidArgument.field("action", f"{action!r}: use 'stop' (complete early) or 'fail'")
        for key, value in (("min_epoch", min_epoch), ("patience", patience)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgument.field(key, f"must be a whole number of epochs, 1 or more, got {value!r}")
        self.metric, self.key = metric, metric_key(metric)
        self.above, self.line = above is not None, float(line)
        self.action, self.min_epoch, self.patience, self.name = action, min_epoch, patience, name
        self.count = 0
        self._reason = ""

    def after_epoch(self, epoch: int, metrics: dict[str, float]) -> bool:
        value = metrics.get(self.key)
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        if epoch < self.min_epoch:
            return False
        if missing:
            crossed = self.action == "fail"
        else:
            crossed = value > self.line if self.above else value < self.line
        self.count = self.count + 1 if crossed else 0
        if self.count < self.patience:
            return False
        if missing:
            self._reason = f"callback {self.name!r}: {self.metric} is not reported at epoch {epoch}"
        else:
            side = "above" if self.above else "below"
            epochs = f" for {self.count} epochs" if self.patience > 1 else ""
            self._reason = (f"callback {self.name!r}: {self.metric} {value:.6g} is {side} {self.line:g}{epochs} "
                            f"at epoch {epoch}")
        if self.action == "fail":
            raise Aborted(f"{self._reason}: the job fails, as the callback's action says")
        return True

    @property
    def stop_reason(self) -> str:
        return self._reason

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count = state.get("count", 0)
