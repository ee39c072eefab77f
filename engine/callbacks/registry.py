"""A job's callbacks (TrainingRequest.callbacks): the built-in types, the server's own, and
building them, in priority order, in the worker.

Built-in types: "early_stopping" (EarlyStopping), "metric_threshold" (MetricThreshold),
"time_budget" (TimeBudget), and "checkpoint" and "lr_schedule", which are the settings of
training_config.checkpoints and lr_scheduler written as callbacks: the request reader reads
them into those sections (engine/jobs/request.py), so each setting has one home and the job's
spec shows them there.

Other types name callbacks the server's operator registered ("name=module:Class", serve
--callback or server.callbacks in the configuration file): classes deriving from
engine.callbacks.base.Callback, constructed with the request's config as keyword arguments
(whole numbers as int), in the worker. A client names a registered callback and gives it settings; it never sends code.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Any

from engine.callbacks.base import Callback
from engine.errors import FailedPrecondition, InvalidArgument

FOLDED = {"checkpoint": "checkpoints", "lr_schedule": "lr_scheduler"}  # read into training_config
BUILT_IN = ("early_stopping", "metric_threshold", "time_budget", *FOLDED)


def _built_in(kind: str) -> type[Callback]:
    if kind == "early_stopping":
        from engine.callbacks.early_stopping import EarlyStopping
        return EarlyStopping
    if kind == "metric_threshold":
        from engine.callbacks.threshold import MetricThreshold
        return MetricThreshold
    from engine.callbacks.time_budget import TimeBudget
    return TimeBudget


def load_class(target: str, what: str = "--callback") -> type[Callback]:
    """The class a "module:Class" registration names; ValueError saying what is wrong."""
    module_name, _, attribute = target.partition(":")
    if not (module_name and attribute):
        raise ValueError(f"{what} {target!r}: use MODULE:CLASS")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"{what} {target!r}: {exc}") from None
    if not (inspect.isclass(found) and issubclass(found, Callback)):
        raise ValueError(f"{what} {target!r} is not a class deriving from engine.callbacks.base.Callback")
    return found


def _settings(cls: type[Callback]) -> tuple[list[str], bool]:
    """The keyword settings a callback class takes (and whether it takes any, **kwargs)."""
    names, open_ended = [], False
    for parameter in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if parameter.kind is parameter.VAR_KEYWORD:
            open_ended = True
        elif parameter.kind in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD) and parameter.name != "name":
            names.append(parameter.name)
    return names, open_ended


def _plain(value: Any) -> Any:
    """A setting as a callback takes it: JSON has one kind of number (a request's config reaches
    the server as a protobuf Struct, all doubles), so whole numbers arrive as int."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _construct(cls: type[Callback], entry: dict[str, Any], where: str, built_in: bool) -> Callback:
    config = _plain(entry.get("config") or {})
    names, open_ended = _settings(cls)
    unknown = [key for key in config if key not in names]
    if unknown and not open_ended:
        raise InvalidArgument.field(f"{where}.config.{unknown[0]}",
                                    f"is not a setting of {entry['type']}: use {', '.join(names) or 'none'}")
    if not built_in:
        return cls(**config)  # the operator's class: its own errors are its own
    try:
        return cls(**config, name=entry["name"])
    except InvalidArgument as exc:  # the callback names its own setting: placed under the entry
        field = exc.violations[0].field if exc.violations else ""
        raise InvalidArgument.field(f"{where}.config.{field}" if field else f"{where}.config",
                                    exc.violations[0].description if exc.violations else exc.message) from None
    except (TypeError, ValueError) as exc:
        raise InvalidArgument.field(f"{where}.config", str(exc)) from None


def ordered(callbacks: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """(index in the request, entry) in the order they run: ascending priority, then as listed."""
    return sorted(enumerate(callbacks), key=lambda pair: (pair[1].get("priority", 0), pair[0]))


def check(callbacks: list[dict[str, Any]], registered: Mapping[str, str]) -> None:
    """INVALID_ARGUMENT naming the entry and setting when a callback's type is unknown or its
    settings are wrong (built-ins are constructed to check them; a registered class's settings
    are checked against its constructor's, without running it)."""
    for index, entry in enumerate(callbacks):
        where = f"callbacks[{index}]"
        kind = entry["type"]
        if kind in BUILT_IN:
            _construct(_built_in(kind), entry, where, built_in=True)
        elif kind in registered:
            try:
                cls = load_class(registered[kind], f"callback {kind!r}")
            except ValueError as exc:
                raise FailedPrecondition(f"{where}.type: {exc}; the server's configuration must be fixed") from None
            names, open_ended = _settings(cls)
            unknown = [key for key in entry.get("config") or {} if key not in names]
            if unknown and not open_ended:
                raise InvalidArgument.field(f"{where}.config.{unknown[0]}",
                                            f"is not a setting of {kind}: use {', '.join(names) or 'none'}")
        else:
            mine = f"; this server registers {', '.join(sorted(registered))}" if registered else \
                "; this server registers none (serve --callback NAME=MODULE:CLASS)"
            raise InvalidArgument.field(f"{where}.type", f"{kind!r} is not a callback type: use one of "
                                                         f"{', '.join(BUILT_IN)}{mine}")


def build(callbacks: list[dict[str, Any]], registered: Mapping[str, str]) -> list[tuple[str, Callback]]:
    """(name, callback) of each entry that runs after epochs, in the order they run (in the
    worker; "checkpoint" and "lr_schedule" are not among them, see the module's docstring)."""
    built = []
    for index, entry in ordered(callbacks):
        kind = entry["type"]
        if kind in FOLDED:
            continue
        where = f"callbacks[{index}]"
        if kind in BUILT_IN:
            built.append((entry["name"], _construct(_built_in(kind), entry, where, built_in=True)))
        else:
            built.append((entry["name"], _construct(load_class(registered[kind]), entry, where, built_in=False)))
    return built
