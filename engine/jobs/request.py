"""A TrainingRequest in its JSON form -> the engine's TrainingSpec: the one reading of a request.

The server hands every request here (StartTraining's message as a dict with proto field names,
pipeline stages' and tuning trials' requests once it has checked them against the proto), and
so does a Python application using the engine directly: the defaults, the refusals
(INVALID_ARGUMENT naming the field) and the result
are the same whichever way a request comes.

The engine does not read the proto (it imports no generated code), so REQUEST below writes
down the TrainingRequest's fields once; tests/unit/engine/jobs/test_request.py holds it to the
proto's descriptor. Keys may be snake_case or camelCase, as in the proto's JSON mapping; enum
values may be short ("classification") or full ("MODEL_TYPE_CLASSIFICATION"); int64 values may
be strings and durations "90s" or seconds, as the JSON mapping writes them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from engine.alerts.rules import read_rules
from engine.data.schema import DATA_TYPES
from engine.errors import InvalidArgument, json_kind
from engine.names import snake_case
from engine.jobs.spec import (MODEL_TYPES, CheckpointSpec, CrossValidationSpec, DataSpec, EarlyStoppingSpec,
                              LRSchedulerSpec, RegularizationSpec, ResourceSpec, TrainingSpec, WorkerRetrySpec,
                              parse_duration)

# Field kinds: "str", "int", "float", "bool", "duration", "model_type", "data_type", "struct" (any JSON
# object), "strs", "ints", "labels" (string -> string), "list" (objects, read by their own
# code), or a nested section (a dict of its fields).
RULES = {"required_columns": "strs", "min_rows": "int", "max_null_fraction": "float", "constraints": "list",
         "fail_on_violation": "bool", "conditions": "strs"}
CALLBACK = {"name": "str", "type": "str", "config": "struct", "priority": "int"}
CONSTRAINT = {"column": "str", "min": "float", "max": "float", "allowed_values": "strs", "pattern": "str",
              "not_null": "bool", "data_type": "data_type", "unique": "bool"}
REQUEST = {
    "display_name": "str",
    "model_type": "model_type",
    "model_config": {"framework": "str", "architecture": "str", "hyperparameters": "struct", "input_shape": "ints",
                     "output_shape": "ints", "pretrained_path": "str", "frozen_layers": "strs"},
    "training_config": {
        "epochs": "int", "batch_size": "int", "learning_rate": "float", "optimizer": "str",
        "optimizer_config": "struct", "loss_function": "str",
        "regularization": {"l1": "float", "l2": "float", "dropout": "float", "batch_norm": "bool",
                           "weight_decay": "float", "gradient_clip_norm": "float"},
        "early_stopping": {"enabled": "bool", "patience": "int", "metric": "str", "mode": "str",
                           "min_delta": "float", "restore_best": "bool"},
        "lr_scheduler": {"type": "str", "step_size": "int", "gamma": "float", "warmup_epochs": "int",
                         "min_lr": "float", "patience": "int", "metric": "str"},
        "checkpoints": {"enabled": "bool", "save_best": "bool", "save_latest": "bool", "every_n_epochs": "int",
                        "keep_last": "int", "monitor_metric": "str", "path": "str"},
        "seed": "int", "gradient_accumulation_steps": "int", "mixed_precision": "bool",
        "retry_policy": {"max_retries": "int"},
    },
    "data_config": {"train_dataset": "str", "validation_dataset": "str", "test_dataset": "str", "label_column": "str",
                    "feature_columns": "strs", "validation_fraction": "float", "no_validation": "bool",
                    "text_column": "str", "time_column": "str", "user_column": "str", "item_column": "str",
                    "window_size": "int", "validation": RULES},
    "resources": {"cpu": "str", "memory": "str", "gpu": "int", "timeout": "duration", "priority": "int",
                  "workers": "int"},
    "validation": {"cross_validation": {"enabled": "bool", "folds": "int", "shuffle": "bool", "seed": "int",
                                        "final_model": "str", "metric": "str"}},
    "callbacks": "list",
    "labels": "labels",
    "model_id": "str",
    "alerts": "list",
}
MAX_TIMEOUT_SECONDS = 366 * 24 * 3600


def spec_from_request(request: Mapping[str, Any]) -> TrainingSpec:
    """The TrainingSpec of a TrainingRequest given as a dict; INVALID_ARGUMENT names a field that
    is unknown or of the wrong type."""
    r = _section(request, REQUEST, "")
    mc, tc, dc, rc = (r.get(k, {}) for k in ("model_config", "training_config", "data_config", "resources"))
    callbacks = _callbacks(r.get("callbacks", []), tc)  # may fill tc's checkpoints and lr_scheduler
    reg, es, lr, ck = (tc.get(k, {}) for k in ("regularization", "early_stopping", "lr_scheduler", "checkpoints"))
    cv = r.get("validation", {}).get("cross_validation", {})
    if mc.get("output_shape"):
        raise InvalidArgument.field("model_config.output_shape", "is derived from the data (classes or targets); "
                                                                 "leave it unset")
    if mc.get("frozen_layers") and not mc.get("pretrained_path", "").strip():
        raise InvalidArgument.field("model_config.frozen_layers", "freezes layers of the model a job starts from: "
                                                                   "set model_config.pretrained_path too")
    timeout = rc.get("timeout", 0.0)
    if not 0 <= timeout <= MAX_TIMEOUT_SECONDS:
        raise InvalidArgument.field("resources.timeout", "must be between 0 and 366 days")
    return TrainingSpec(
        framework=mc.get("framework", "").strip().lower(),
        architecture=mc.get("architecture", "").strip().lower(),
        model_type=r.get("model_type", ""),
        hyperparameters=mc.get("hyperparameters", {}),
        input_shape=mc.get("input_shape", []),
        pretrained_path=mc.get("pretrained_path", "").strip(),
        frozen_layers=[layer.strip() for layer in mc.get("frozen_layers", [])],
        display_name=r.get("display_name", ""),
        epochs=tc.get("epochs") or 10,
        batch_size=tc.get("batch_size") or 32,
        learning_rate=tc.get("learning_rate", 0.0),
        optimizer=tc.get("optimizer", "").strip().lower(),
        optimizer_config=tc.get("optimizer_config", {}),
        loss_function=tc.get("loss_function", "").strip().lower(),
        seed=tc.get("seed", 0),
        gradient_accumulation_steps=tc.get("gradient_accumulation_steps", 0),
        mixed_precision=tc.get("mixed_precision", False),
        regularization=RegularizationSpec(**reg),
        early_stopping=EarlyStoppingSpec(enabled=es.get("enabled", False), patience=es.get("patience") or 5,
                                         metric=es.get("metric", ""), mode=es.get("mode", "").lower(),
                                         min_delta=es.get("min_delta", 0.0),
                                         restore_best=es.get("restore_best", False)),
        lr_scheduler=LRSchedulerSpec(**lr),
        checkpoints=CheckpointSpec(enabled=ck.get("enabled", False), save_best=ck.get("save_best", False),
                                   save_latest=ck.get("save_latest", False),
                                   every_n_epochs=ck.get("every_n_epochs") or 1, keep_last=ck.get("keep_last") or 3,
                                   monitor_metric=ck.get("monitor_metric") or "val_loss", path=ck.get("path", "")),
        retry_policy=WorkerRetrySpec(**tc.get("retry_policy", {})),
        cross_validation=CrossValidationSpec(
            enabled=cv.get("enabled", False), folds=cv.get("folds") or 5, shuffle=cv.get("shuffle", False),
            seed=cv.get("seed", 0), final_model=cv.get("final_model", "").strip().lower() or "all_data",
            metric=cv.get("metric", "").strip()),
        data=DataSpec(**{k: v for k, v in dc.items() if k not in ("validation_fraction", "validation")},
                      validation_fraction=dc.get("validation_fraction")
                      or (0.0 if dc.get("no_validation") else 0.15),
                      validation=dc.get("validation", {})),
        resources=ResourceSpec(**{k: v for k, v in rc.items() if k != "timeout"}, timeout_seconds=timeout),
        callbacks=callbacks,
        alerts=read_rules(r.get("alerts"), "alerts", metrics=True),
        labels=r.get("labels", {}),
        model_id=r.get("model_id", ""),
    )


def _callbacks(entries: list[Any], tc: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's callbacks, each {"name", "type", "config", "priority"}; "checkpoint" and
    "lr_schedule" ones are read into `tc` (the training_config) as its checkpoints and
    lr_scheduler, which they must not also set (engine/callbacks/registry.py)."""
    from engine.callbacks.registry import FOLDED

    kept, names = [], set()
    for index, item in enumerate(entries):
        where = f"callbacks[{index}]"
        entry = _section(item, CALLBACK, where)
        for key in ("name", "type"):
            if not entry.get(key, "").strip():
                raise InvalidArgument.field(f"{where}.{key}", "is required" + (
                    ": a name unique within the job" if key == "name" else
                    ": early_stopping, checkpoint, lr_schedule, metric_threshold, time_budget or a registered one"),
                    "REQUIRED")
        name, kind = entry["name"].strip(), entry["type"].strip().lower()
        if name in names:
            raise InvalidArgument.field(f"{where}.name", f"{name!r} is the name of an earlier callback: give each "
                                                         "its own")
        names.add(name)
        section = FOLDED.get(kind)
        if section:
            if tc.get(section):
                raise InvalidArgument.field(where, f"a {kind} callback and training_config.{section} set the same "
                                                   "thing: keep one of them")
            fields = REQUEST["training_config"][section]
            tc[section] = _section(entry.get("config", {}), fields, f"{where}.config")
            if kind == "checkpoint":
                tc[section].setdefault("enabled", True)
        kept.append({"name": name, "type": kind, "config": entry.get("config", {}),
                     "priority": entry.get("priority", 0)})
    return [entry for entry in kept if entry["type"] not in FOLDED]


def _section(value: Any, fields: dict[str, Any], path: str) -> dict[str, Any]:
    """`value` read as the section `fields` describes: snake_case keys, each value of its kind;
    null or absent fields are left out (their defaults apply)."""
    if not isinstance(value, Mapping):
        raise InvalidArgument.field(path or "request", f"must be an object, got {json_kind(value)}")
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = snake_case(key)
        where = f"{path}.{key}" if path else str(key)
        kind = fields.get(name)
        if kind is None:
            raise InvalidArgument.field(where, f"is not a field of {path or 'the training request'}: use one of "
                                               f"{', '.join(fields)}")
        if item is None:
            continue
        out[name] = _section(item, kind, where) if isinstance(kind, dict) else _value(item, kind, where)
    if fields is RULES and "constraints" in out:
        out["constraints"] = [_constraint(c, f"{path}.constraints[{i}]") for i, c in enumerate(out["constraints"])]
    return out


def _constraint(value: Any, path: str) -> dict[str, Any]:
    constraint = _section(value, CONSTRAINT, path)
    if "data_type" in constraint:
        given = constraint["data_type"]
        if isinstance(given, int) and 1 <= given <= len(DATA_TYPES):  # the proto's numbering
            given = DATA_TYPES[given - 1]
        short = given.strip().upper().removeprefix("DATA_TYPE_").lower().replace("-", "_") \
            if isinstance(given, str) else ""
        if short not in DATA_TYPES:
            raise InvalidArgument.field(f"{path}.data_type", f"{constraint['data_type']!r} is not a DataType: use "
                                                             f"one of {', '.join(DATA_TYPES)}")
        constraint["data_type"] = short
    return constraint


def _value(value: Any, kind: str, where: str) -> Any:
    if kind == "str":
        if isinstance(value, str):
            return value
    elif kind == "bool":
        if isinstance(value, bool):
            return value
    elif kind == "int":
        number = _number(value)
        if number is not None and float(number).is_integer():
            return int(number)
    elif kind == "float":
        number = _number(value)
        if number is not None:
            return float(number)
    elif kind == "duration":
        return parse_duration(value, where)
    elif kind == "model_type":
        return _model_type(value, where)
    elif kind == "data_type":  # a name or the proto's number; checked by _constraint
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return value
    elif kind == "struct":
        if isinstance(value, Mapping):
            return dict(value)
    elif kind in ("strs", "ints", "list"):
        if isinstance(value, (list, tuple)):
            if kind == "list":
                return list(value)
            return [_value(v, kind[:-1], f"{where}[{i}]") for i, v in enumerate(value)]
    elif kind == "labels":
        if isinstance(value, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            return dict(value)
    expected = {"str": "a string", "data_type": "a DataType name", "bool": "true or false", "int": "an integer", "float": "a number",
                "struct": "an object", "strs": "a list of strings", "ints": "a list of integers",
                "list": "a list", "labels": "an object of strings"}[kind]
    raise InvalidArgument.field(where, f"must be {expected}, got {json_kind(value)} {value!r}")


def _number(value: Any) -> float | int | None:
    """A JSON number, or a string holding one (the JSON mapping writes int64 values as strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value if not isinstance(value, float) or math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _model_type(value: Any, where: str) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer():
        if value == 0:
            return ""
        if 1 <= value <= len(MODEL_TYPES):
            return MODEL_TYPES[int(value) - 1]  # the proto's numbering
    elif isinstance(value, str):
        short = value.strip().upper().removeprefix("MODEL_TYPE_").lower().replace("-", "_")
        if short in MODEL_TYPES or short in ("", "unspecified"):
            return "" if short == "unspecified" else short
    raise InvalidArgument.field(where, f"{value!r} is not a ModelType: use one of {', '.join(MODEL_TYPES)} "
                                       "(or the full name, e.g. MODEL_TYPE_CLASSIFICATION)")
