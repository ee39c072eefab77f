"""Callback classes a test server registers (serve --callback NAME=callbacks_for_tests:CLASS):
the operator's code a job names, run in the job's worker process."""

from __future__ import annotations

from typing import Any

from engine.callbacks.base import Callback


class StopAtEpoch(Callback):
    """Stops the job once it has trained `epoch` epochs; remembers the losses it saw, across a
    pause and resume (its state travels in the checkpoint)."""

    def __init__(self, *, epoch: int, note: str = ""):
        self.epoch, self.note = epoch, note
        self.seen: list[int] = []
        self._reason = ""

    def after_epoch(self, epoch: int, metrics: dict[str, float]) -> bool:
        self.seen.append(epoch)
        if epoch >= self.epoch:
            self._reason = f"StopAtEpoch({self.note}): saw epochs {self.seen}"
            return True
        return False

    @property
    def stop_reason(self) -> str:
        return self._reason

    def state_dict(self) -> dict[str, Any]:
        return {"seen": self.seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seen = list(state.get("seen", []))


class Broken(Callback):
    """A callback with a bug: the job fails, naming it."""

    def after_epoch(self, epoch: int, metrics: dict[str, float]) -> bool:
        return metrics["no_such_metric"] > 0
