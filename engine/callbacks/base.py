"""Callbacks run by the worker at epoch boundaries.

As in XGBoost, a callback votes to stop by returning True from `after_epoch`; the
worker combines votes with any(). As in Lightning, callbacks have state_dict() and
load_state_dict() so a resumed job restores them from its checkpoint.
"""

from __future__ import annotations

from typing import Any


class Callback:
    """Base class whose hooks do nothing."""

    def after_epoch(self, epoch: int, metrics: dict[str, float]) -> bool:
        return False

    @property
    def stop_reason(self) -> str:
        return ""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
