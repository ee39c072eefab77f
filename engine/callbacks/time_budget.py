"""End a job, as COMPLETED with its model, before it runs past a time budget (the "time_budget"
callback). Unlike resources.timeout, which fails a job that runs too long, the budget is a
way to finish: after each epoch the callback stops the job when one more epoch like the
last would go past the budget. Training time counts the epochs of every attempt (a resumed
job goes on from what it had spent), not queueing or pauses."""

from __future__ import annotations

from typing import Any

from engine.callbacks.base import Callback
from engine.errors import InvalidArgument
from engine.jobs.spec import parse_duration


class TimeBudget(Callback):
    def __init__(self, *, seconds: Any = None, duration: Any = None, name: str = "time_budget"):
        if (seconds is None) == (duration is None):
            raise InvalidArgument.field("seconds", "give exactly one of seconds (a number) and duration ('90s', '2h')")
        field = "seconds" if seconds is not None else "duration"
        value = parse_duration(seconds if seconds is not None else duration, field)
        if not value > 0:
            raise InvalidArgument.field(field, f"must be more than 0, got {value:g} s")
        self.budget, self.name = value, name
        self.spent = 0.0
        self._reason = ""

    def after_epoch(self, epoch: int, metrics: dict[str, float]) -> bool:
        last = float(metrics.get("epoch_seconds", 0.0))
        self.spent += last
        if self.spent + last <= self.budget:
            return False
        self._reason = (f"callback {self.name!r}: {self.spent:.1f} s of its {self.budget:g} s training budget spent; "
                        f"another epoch (the last took {last:.1f} s) would go past it")
        return True

    @property
    def stop_reason(self) -> str:
        return self._reason

    def state_dict(self) -> dict[str, Any]:
        return {"spent": self.spent}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.spent = state.get("spent", 0.0)
