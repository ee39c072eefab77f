"""The search space of a tuning job: parsing, asking Optuna for values, and writing them into
the base training request.

A parameter is {"path": "training_config.learning_rate", and one of
  "values": [..]                         a list to choose from (any JSON values),
  "double_range": {min, max, log_scale}  a real interval,
  "int_range": {min, max, log_scale}     an integer interval}.
Paths are field paths of the TrainingRequest in its proto JSON form (snake_case), e.g.
"model_config.hyperparameters.max_depth"; a trial's request is the base request with each
path set to the trial's value.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from dataclasses import dataclass
from typing import Any

from engine.errors import InvalidArgument

GRID_LIMIT = 10_000  # combinations a grid may have
INT_GRID_LIMIT = 1_000  # values an int range may expand to in a grid


@dataclass(frozen=True)
class Parameter:
    path: str
    kind: str  # "values" | "double" | "int"
    values: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False

    def suggest(self, trial) -> Any:
        """The value an Optuna trial picks for this parameter."""
        if self.kind == "values":
            # Optuna's categorical choices must be plain scalars: choose an index when they are not.
            if all(v is None or isinstance(v, (bool, int, float, str)) for v in self.values):
                return trial.suggest_categorical(self.path, list(self.values))
            return self.values[trial.suggest_categorical(self.path, list(range(len(self.values))))]
        if self.kind == "int":
            return trial.suggest_int(self.path, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.path, self.low, self.high, log=self.log)

    def grid(self) -> list[Any]:
        if self.kind == "values":
            return list(self.values)
        if self.kind == "int" and not self.log and self.high - self.low < INT_GRID_LIMIT:
            return list(range(int(self.low), int(self.high) + 1))
        raise InvalidArgument.field(f"spec.parameters[{self.path}]",
                                    "grid search needs lists of values or integer ranges of fewer than "
                                    f"{INT_GRID_LIMIT} values; use RANDOM or BAYESIAN for real ranges")


def parse_space(parameters: list[dict[str, Any]]) -> list[Parameter]:
    if not parameters:
        raise InvalidArgument.field("spec.parameters", "is required: at least one parameter to search", "REQUIRED")
    parsed: list[Parameter] = []
    seen: set[str] = set()
    for i, item in enumerate(parameters):
        field = f"spec.parameters[{i}]"
        path = str(item.get("path") or "")
        if not path:
            raise InvalidArgument.field(f"{field}.path", "is required, e.g. 'training_config.learning_rate'",
                                        "REQUIRED")
        if path in seen:
            raise InvalidArgument.field(f"{field}.path", f"{path!r} is searched twice: give each path once")
        seen.add(path)
        parsed.append(_parse_domain(item, path, field))
    return parsed


def _parse_domain(item: dict[str, Any], path: str, field: str) -> Parameter:
    if "values" in item:
        values = (item["values"] or {}).get("values") or []
        if not values:
            raise InvalidArgument.field(f"{field}.values", "needs at least one value")
        keys = [json.dumps(v, sort_keys=True) for v in values]
        if len(set(keys)) != len(keys):
            raise InvalidArgument.field(f"{field}.values", "lists a value twice")
        return Parameter(path, "values", tuple(values))
    for key, kind in (("double_range", "double"), ("int_range", "int")):
        if key in item:
            domain = item[key] or {}
            low, high = float(domain.get("min", 0)), float(domain.get("max", 0))
            log = bool(domain.get("log_scale", False))
            if not (math.isfinite(low) and math.isfinite(high)) or low > high:
                raise InvalidArgument.field(f"{field}.{key}", f"min {low:g} must not exceed max {high:g}")
            if log and low <= 0:
                raise InvalidArgument.field(f"{field}.{key}.log_scale", "a log scale needs min > 0")
            if kind == "int" and log and low < 1:
                raise InvalidArgument.field(f"{field}.{key}.log_scale", "an integer log scale needs min >= 1")
            return Parameter(path, kind, low=low, high=high, log=log)
    raise InvalidArgument.field(field, "needs a domain: values, double_range or int_range", "REQUIRED")


def grid_space(space: list[Parameter]) -> dict[str, list[Any]]:
    grid = {p.path: p.grid() for p in space}
    size = math.prod(len(v) for v in grid.values())
    if size > GRID_LIMIT:
        raise InvalidArgument.field("spec.parameters", f"the grid has {size} combinations, more than {GRID_LIMIT}: "
                                                       "narrow it or use RANDOM or BAYESIAN")
    return grid


def grid_size(space: list[Parameter]) -> int | None:
    """Combinations of a fully discrete space; None when a real range makes it infinite."""
    try:
        return math.prod(len(p.grid()) for p in space)
    except InvalidArgument:
        return None


def grid_points(space: list[Parameter]) -> list[dict[str, Any]]:
    grid = grid_space(space)
    return [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]


def parameters_key(values: dict[str, Any]) -> str:
    """Canonical text of a trial's values: floats are rounded to 12 significant digits, so a
    value a sampler proposes again with float noise is still the same trial."""
    def canonical(v: Any) -> Any:
        return float(f"{v:.12g}") if isinstance(v, float) else v

    return json.dumps({k: canonical(v) for k, v in sorted(values.items())}, sort_keys=True)


def apply(request: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A copy of `request` (a TrainingRequest in JSON form) with each path set to its value."""
    out = copy.deepcopy(request)
    for path, value in values.items():
        node = out
        parts = path.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise InvalidArgument.field("spec.parameters", f"{path!r}: {part!r} is not a message to go into")
            node = child
        node[parts[-1]] = value
    return out
