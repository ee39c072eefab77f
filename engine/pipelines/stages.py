"""What each pipeline stage type does, on the engine's own objects (no gRPC here).

The executor (engine.pipelines.manager) resolves a stage's `${...}` references and calls
`run_stage(type, parameters, context)` in a thread of its own; the stage returns its outputs,
a JSON-serializable dict that later stages reference and conditions read
("validate.accuracy >= 0.9": metrics sit at the top level of the outputs).

Errors:
  InvalidArgument  a parameter is missing or wrong; the violation's field is
                   `stages[<id>].parameters.<name>[.<deeper path>]` (`check_parameters` raises the
                   same at CreatePipeline time for values that hold no `${...}` reference)
  StageFailed      the stage ran and failed for a reason the user should read (its `code` says
                   what kind, as the engine's error codes do: FAILED_PRECONDITION, NOT_FOUND ...)
  StageCancelled   context.cancelled was set (a cancel, a timeout, or the server stopping)

Resources a stage creates are named after the execution and the stage (ids
`<execution>-<stage>-<hash>[-suffix]`), so a retried attempt, or the same attempt run again
after a restart, finds what an earlier try made and reuses it instead of failing on
ALREADY_EXISTS. Training jobs add the attempt (`...-a<attempt>`): a failed job cannot be
restarted, so each attempt trains afresh.

Stage types, their parameters and outputs (dataset, job and model references are resource
names or bare ids of the execution's project):

data_preparation
  dataset         an existing dataset to use; or load one with
  source_uri      a path or file://, s3://, gs:// URI the server can read, or
  data_source     a registered data source (with `query` for SQL sources), and optionally
                  format (csv, parquet, jsonl, image_folder, text; default from the name),
                  label_column, display_name, dataset_id (default: derived from the execution;
                  a fixed id works for one execution only: the next finds it taken)
  filter          optional: an expression rows must satisfy (as FilterDataset), e.g. "age >= 18"
  split           optional: {"ratios": [0.7, 0.15, 0.15], "seed": 0, "shuffle": true,
                  "stratify_column", "group_column", "time_column"} (as SplitDataset)
  outputs: dataset (after the filter), row_count; with a split also datasets (the parts, in
  ratio order), train_dataset and test_dataset (first and last part; two or three parts),
  validation_dataset (three parts)

data_validation
  dataset, rules  ValidationRules as the DataManager takes them (snake_case keys:
                  required_columns, min_rows, max_null_fraction, constraints, conditions)
  fail_on_invalid default true: a dataset that breaks a rule fails the stage, listing them
  outputs: valid, failed_rules ["<rule> <column>", ...], report {valid, issues: [...]}

feature_extraction
  dataset         the dataset the processing is fitted on (the training split)
  processing      ProcessingConfig as the DataManager takes it (snake_case keys)
  apply_to        optional: datasets (or one) to process with the fitted steps as well
  validation      optional: ValidationRules every processed dataset must pass first
  A data pipeline is created (DataManager.create_pipeline) and run on `dataset` and on
  each of `apply_to`.
  outputs: data_pipeline, dataset (the processed fit dataset), datasets {input: processed}

model_training
  request         a TrainingRequest in its JSON form (snake_case or camelCase keys), or the
                  request's fields given directly as the parameters. Without a model_id the
                  versions go to the model `<pipeline>-<stage>`, so each execution adds a version
                  of the same model (and model_deployment archives the previous one).
  The job is started (or, after a restart, re-attached to), followed until it ends, resumed
  when a server shutdown paused it, cancelled when the stage is cancelled; each epoch's
  metrics are reported as they come.
  outputs: training_job, model_version, metrics {latest epoch}, test_metrics, and the
  metrics at the top level (test metrics as test_<name>)

model_validation, model_evaluation
  model           a completed training job or a model version
  dataset         the dataset to evaluate on (as EvaluateModel: processed the way the training
                  data was, unless it came out of that same processing)
  thresholds      optional: {"accuracy": 0.9, "rmse": {"max": 3.0}, "f1_score": {"min": 0.8}};
                  a bare number is a maximum for error metrics (rmse, mae, mape, mse, names ending
                  in "loss") and a minimum for every other metric. A missed threshold fails the
                  stage, naming every metric that missed.
  outputs: the numeric metrics at the top level, metrics {...}, row_count, model, dataset, and
  class_labels, confusion_matrix, per_class when the report has them

model_deployment
  model           a model version, or a completed training job (its registered version)
  stage           production (default) or staging; promoting to production archives the
                  model's previous production version
  format          the export to deploy: onnx (default), pickle, torch, savedmodel, xgboost_json
  destination     optional: where to copy that export, a path relative to the artifact
                  store's models/ directory, or a path or URI under it or under the server's
                  extra model roots (--model-root); a trailing "/" or an existing directory
                  gets the format's file name. Copies are recorded as written by this service,
                  so LoadModel trusts them.
  outputs: model_version, stage, format, uri, sha256, size_bytes (of the copy, or of the stored
  export without a destination), archived [version names]

custom
  function        the registered function's name (the executor passes StageConfig.custom_function)
  ...             anything else the function takes
  The function is called as functions[name](parameters, context) and must return a
  JSON-serializable dict: the outputs.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field as dataclass_field
from pathlib import Path
from typing import Any

from engine import names
from engine.data import expressions
from engine.data.splits import RATIO_TOLERANCE
from engine.data.validation import parse_rules
from engine.jobs.request import spec_from_request
from engine.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    ForgeError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unimplemented,
)
from engine.export.formats import FORMATS, parse_format
from engine.jobs import states
from engine.jobs.trainer import CANCEL_GRACE_SECONDS
from engine.models.registry import parse_version_name
from engine.storage.artifacts import location, resolve_model_path
from engine.storage.files import CHUNK, write_atomic

STAGE_TYPES = ("data_preparation", "data_validation", "feature_extraction", "model_training", "model_validation",
               "model_evaluation", "model_deployment", "custom")
POLL_SECONDS = 0.2
DATA_FORMATS = ("csv", "parquet", "jsonl", "image_folder", "text")
DEPLOY_STAGES = ("production", "staging")
# Metrics where lower is better: a bare threshold number is their maximum.
_ERROR_METRICS = ("rmse", "mae", "mape", "mse")
# Bookkeeping values of a metric point that are not metrics of the model.
_BOOKKEEPING = ("sequence", "epoch", "total_epochs", "progress", "epoch_seconds", "best_epoch")


def _nothing(*_: Any) -> None:
    return None


@dataclass
class StageContext:
    engine: Any                      # the Engine (data, trainer, models, evaluator, storage, journal)
    project: str
    execution: str                   # the execution's resource name, for naming what the stage creates
    stage_id: str
    attempt: int
    log: Callable[[str], None] = _nothing                        # a line in the execution's event stream
    metrics: Callable[[dict[str, float]], None] = _nothing       # a metrics event (each epoch of a training)
    # Set on cancel or timeout: stop promptly (cancelling any job started) and raise StageCancelled.
    cancelled: threading.Event = dataclass_field(default_factory=threading.Event)
    make_spec: Callable[[dict], Any] = spec_from_request         # TrainingRequest JSON -> TrainingSpec
    functions: dict[str, Callable[[dict, "StageContext"], dict]] = dataclass_field(default_factory=dict)
    handles: dict[str, Any] = dataclass_field(default_factory=dict)  # what an earlier try remembered
    remember: Callable[[dict[str, Any]], None] = _nothing        # persist handles now (merged into them)
    # Set (before `cancelled`) when the server is stopping rather than the stage being cancelled:
    # the stage then leaves its training job alone (the trainer pauses it) so that after the
    # restart the stage re-attaches to it through `handles`.
    stopping: threading.Event = dataclass_field(default_factory=threading.Event)


class StageCancelled(Exception):
    """The stage stopped because context.cancelled was set."""


class StageFailed(ForgeError):
    """The stage ran and failed; the message says what happened and how to fix it, and `code`
    what kind of failure it was (an engine error code: FAILED_PRECONDITION, NOT_FOUND, ...)."""

    def __init__(self, message: str, code: str = "FAILED_PRECONDITION", *, violations=()):
        super().__init__(message, violations=violations)
        self.code = code

    def __reduce__(self):
        return StageFailed, (self.message, self.code)


# ----- entry points


def run_stage(stage_type: str, params: dict[str, Any], ctx: StageContext) -> dict[str, Any]:
    """Run one attempt of a stage whose parameters are resolved; returns its outputs."""
    kind = _stage_type(stage_type, f"stages[{ctx.stage_id}].type")
    field = f"stages[{ctx.stage_id}].parameters"
    values = _CHECKS[kind](_Params(params, field, static=False))
    _check_cancelled(ctx)
    return _RUNNERS[kind](values, _Params(params, field, static=False), ctx)


def check_parameters(stage_type: str, params: dict[str, Any], field: str) -> None:
    """Cheap static checks of a stage's parameters (`field` is their path, e.g.
    "pipeline.stages[train].parameters"): InvalidArgument naming the first bad one. Values
    that still hold a `${...}` reference are checked when the stage runs instead."""
    kind = _stage_type(stage_type, field.rsplit(".", 1)[0] + ".type" if "." in field else "type")
    _CHECKS[kind](_Params(params, field, static=True))


def _stage_type(value: str, field: str) -> str:
    kind = str(value or "").strip().lower().removeprefix("stage_type_")
    if kind not in STAGE_TYPES:
        raise InvalidArgument.field(field, f"unknown stage type {value!r}: use one of {', '.join(STAGE_TYPES)}")
    return kind


def _check_cancelled(ctx: StageContext) -> None:
    if ctx.cancelled.is_set():
        raise StageCancelled(f"stage {ctx.stage_id} was stopped")


# ----- parameters


def _unresolved(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def _holds_reference(value: Any) -> bool:
    if _unresolved(value):
        return True
    if isinstance(value, dict):
        return any(_holds_reference(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_reference(v) for v in value)
    return False


class _Skip:
    """A value that still holds a `${...}` reference (static checks only): checked at run time."""

    def __repr__(self) -> str:
        return "<unresolved>"


SKIP = _Skip()


class _Params:
    """Typed access to a stage's parameters; errors name `<field>.<name>`."""

    def __init__(self, params: Any, field: str, static: bool):
        if not isinstance(params, dict):
            raise InvalidArgument.field(field, f"must be an object of parameters, not {type(params).__name__}")
        self.raw, self.field, self.static = params, field, static

    def path(self, name: str) -> str:
        return f"{self.field}.{name}" if name else self.field

    def error(self, name: str, description: str, reason: str = "INVALID_VALUE") -> InvalidArgument:
        return InvalidArgument.field(self.path(name), description, reason)

    def skip(self, value: Any) -> bool:
        return self.static and _unresolved(value)

    def given(self, name: str) -> bool:
        return self.raw.get(name) not in (None, "", [], {})

    def known(self, stage: str, *keys: str) -> None:
        for key in self.raw:
            if key not in keys:
                raise self.error(key, f"is not a parameter of a {stage} stage: use {', '.join(keys)}")

    def string(self, name: str, required: bool = False, default: str = "", what: str = "") -> Any:
        value = self.raw.get(name)
        if value is None or value == "":
            if required:
                raise self.error(name, f"is required{': ' + what if what else ''}", "REQUIRED")
            return default
        if self.skip(value):
            return SKIP
        if not isinstance(value, str):
            raise self.error(name, f"must be a string, not {_kind(value)}")
        return value

    def boolean(self, name: str, default: bool) -> Any:
        value = self.raw.get(name)
        if value is None:
            return default
        if self.skip(value):
            return SKIP
        if not isinstance(value, bool):
            raise self.error(name, f"must be true or false, not {value!r}")
        return value

    def mapping(self, name: str, required: bool = False, what: str = "") -> Any:
        value = self.raw.get(name)
        if value is None:
            if required:
                raise self.error(name, f"is required{': ' + what if what else ''}", "REQUIRED")
            return None
        if self.skip(value):
            return SKIP
        if not isinstance(value, dict):
            raise self.error(name, f"must be an object, not {_kind(value)}")
        return value

    def strings(self, name: str) -> Any:
        """A list of strings; a single string counts as a list of one."""
        value = self.raw.get(name)
        if value is None or value == "":
            return []
        if self.skip(value):
            return SKIP
        if isinstance(value, str):
            return [value]
        if not isinstance(value, (list, tuple)):
            raise self.error(name, f"must be a list of strings, not {_kind(value)}")
        for i, item in enumerate(value):
            if self.skip(item):
                continue
            if not isinstance(item, str) or not item:
                raise self.error(f"{name}[{i}]", f"must be a non-empty string, not {item!r}")
        return list(value)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgument.field(path, f"must be a finite number, not {value!r}")
    return float(value)


def _resource_ref(value: Any, collection: str, field: str, project: str) -> Any:
    if value is SKIP or _unresolved(value):
        return SKIP
    return names.resolve(value, collection, field, project)


def _model_ref(value: Any, field: str, project: str | None) -> Any:
    """A model version name, or a training job's full name (a bare id is a job id)."""
    if value is SKIP or _unresolved(value):
        return SKIP
    if "/models/" in value:
        return parse_version_name(value, field)
    return names.resolve(value, "trainingJobs", field, project)


# Each check returns the parameters it read, normalised (SKIP where a reference is unresolved).

def _check_data_preparation(p: _Params) -> dict[str, Any]:
    p.known("data_preparation", "dataset", "source_uri", "data_source", "query", "format", "label_column",
            "display_name", "dataset_id", "filter", "split")
    sources = [k for k in ("dataset", "source_uri", "data_source") if p.given(k)]
    if not sources:
        raise p.error("dataset", "is required: an existing dataset, or load one with source_uri (a path or URI) or "
                                 "data_source (a registered source)", "REQUIRED")
    if len(sources) > 1:
        raise p.error(sources[1], f"give only one of dataset, source_uri and data_source (also got {sources[0]})")
    out: dict[str, Any] = {"dataset": p.string("dataset"), "source_uri": p.string("source_uri"),
                           "data_source": p.string("data_source"), "query": p.string("query"),
                           "format": p.string("format"), "label_column": p.string("label_column"),
                           "display_name": p.string("display_name"), "dataset_id": p.string("dataset_id")}
    if out["dataset"]:
        for key in ("query", "format", "label_column", "display_name", "dataset_id"):
            if p.given(key):
                raise p.error(key, "applies only when the stage loads data (source_uri or data_source); an existing "
                                   "dataset keeps its own")
    if out["query"] and out["query"] is not SKIP and not out["data_source"]:
        raise p.error("query", "needs a SQL data source: set data_source to a registered one")
    fmt = out["format"]
    if fmt and fmt is not SKIP:
        fmt = fmt.strip().lower().removeprefix("data_format_")
        if fmt not in DATA_FORMATS:
            raise p.error("format", f"unknown format {out['format']!r}: use one of {', '.join(DATA_FORMATS)}")
        out["format"] = fmt
    if out["dataset_id"] and out["dataset_id"] is not SKIP:
        names.validate_id(out["dataset_id"], p.path("dataset_id"))
    expression = p.string("filter")
    if expression and expression is not SKIP:
        expressions.parse(expression, p.path("filter"))
    out["filter"] = expression
    out["split"] = _check_split(p)
    return out


def _check_split(p: _Params) -> Any:
    split = p.mapping("split")
    if split is None or split is SKIP:
        return split
    keys = ("ratios", "seed", "shuffle", "stratify_column", "group_column", "time_column")
    inner = _Params(split, p.path("split"), p.static)
    inner.known("data_preparation split", *keys)
    ratios = split.get("ratios")
    if ratios is None:
        raise inner.error("ratios", "is required: one fraction per part, e.g. [0.7, 0.15, 0.15]", "REQUIRED")
    out: dict[str, Any] = {"ratios": SKIP}
    if not inner.skip(ratios):
        if not isinstance(ratios, (list, tuple)) or len(ratios) < 2:
            raise inner.error("ratios", f"must be a list of at least 2 fractions, e.g. [0.8, 0.2]; got {ratios!r}")
        if not any(inner.skip(r) for r in ratios):
            values = [_number(r, inner.path(f"ratios[{i}]")) for i, r in enumerate(ratios)]
            for i, value in enumerate(values):
                if value <= 0:
                    raise inner.error(f"ratios[{i}]", f"is {value:g}; every ratio must be greater than 0")
            if abs(math.fsum(values) - 1.0) > RATIO_TOLERANCE:
                raise inner.error("ratios", f"must sum to 1; they sum to {math.fsum(values):.6g}")
            out["ratios"] = values
    seed = split.get("seed", 0)
    if not inner.skip(seed):
        if isinstance(seed, float) and seed.is_integer():
            seed = int(seed)  # JSON numbers from a Struct arrive as floats
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise inner.error("seed", f"must be a whole number, not {seed!r}")
    out["seed"] = SKIP if inner.skip(seed) else seed
    out["shuffle"] = inner.boolean("shuffle", True)
    for key in ("stratify_column", "group_column", "time_column"):
        out[key] = inner.string(key)
    return out


def _check_rules(p: _Params, name: str, required: bool) -> Any:
    rules = p.mapping(name, required, "ValidationRules, e.g. {\"required_columns\": [\"label\"], \"min_rows\": 100}")
    if rules is None or rules is SKIP:
        return rules
    if isinstance(rules.get("min_rows"), float) and rules["min_rows"].is_integer():
        rules = {**rules, "min_rows": int(rules["min_rows"])}  # a Struct's numbers are all floats
    if not (p.static and _holds_reference(rules)):
        parse_rules(rules, p.path(name))
    return rules


def _check_data_validation(p: _Params) -> dict[str, Any]:
    p.known("data_validation", "dataset", "rules", "fail_on_invalid")
    return {"dataset": p.string("dataset", True, what="the dataset to validate"),
            "rules": _check_rules(p, "rules", True), "fail_on_invalid": p.boolean("fail_on_invalid", True)}


def _check_feature_extraction(p: _Params) -> dict[str, Any]:
    p.known("feature_extraction", "dataset", "processing", "apply_to", "validation")
    processing = p.mapping("processing", True, "a ProcessingConfig, e.g. {\"normalization\": {\"method\": "
                                               "\"standard\"}}")
    if processing is not SKIP and not (p.static and _holds_reference(processing)):
        from engine.data.processing import _parse as parse_processing  # shape, types and method names only

        parse_processing(processing, p.path("processing"))
    return {"dataset": p.string("dataset", True, what="the dataset to fit the processing on (the training split)"),
            "processing": processing, "apply_to": p.strings("apply_to"),
            "validation": _check_rules(p, "validation", False)}


def _check_model_training(p: _Params) -> dict[str, Any]:
    if "request" in p.raw:
        p.known("model_training", "request")
        request = p.mapping("request", True)
        return {"request": request, "request_field": p.path("request")}
    if not p.raw:
        raise p.error("request", "is required: a TrainingRequest (model_type, model_config, training_config, "
                                 "data_config ...)", "REQUIRED")
    return {"request": p.raw, "request_field": p.field}


def _check_evaluation(p: _Params, stage: str) -> dict[str, Any]:
    p.known(stage, "model", "dataset", "thresholds")
    out = {"model": p.string("model", True, what="a completed training job or a model version"),
           "dataset": p.string("dataset", True, what="the dataset to evaluate on"),
           "thresholds": {}}
    if out["model"] and out["model"] is not SKIP:
        _model_ref(out["model"], p.path("model"), None)  # its shape; the project comes later
    thresholds = p.mapping("thresholds")
    if thresholds is SKIP:
        out["thresholds"] = SKIP
        return out
    for metric, rule in (thresholds or {}).items():
        path = p.path(f"thresholds.{metric}")
        if p.skip(rule):
            continue
        if isinstance(rule, dict):
            unknown = [k for k in rule if k not in ("min", "max")]
            if unknown:
                raise InvalidArgument.field(f"{path}.{unknown[0]}", "is not a bound: use min and/or max")
            if not rule:
                raise InvalidArgument.field(path, "give min, max or both")
            if any(p.skip(v) for v in rule.values()):
                continue
            low = _number(rule["min"], f"{path}.min") if "min" in rule else None
            high = _number(rule["max"], f"{path}.max") if "max" in rule else None
            if low is not None and high is not None and low > high:
                raise InvalidArgument.field(f"{path}.min", f"min {low:g} is greater than max {high:g}")
        else:
            value = _number(rule, path)
            low, high = (None, value) if _lower_is_better(metric) else (value, None)
        out["thresholds"][metric] = (low, high)
    return out


def _lower_is_better(metric: str) -> bool:
    return metric in _ERROR_METRICS or metric.endswith("loss")


def _check_model_deployment(p: _Params) -> dict[str, Any]:
    p.known("model_deployment", "model", "stage", "format", "destination")
    out = {"model": p.string("model", True, what="a model version or a completed training job"),
           "stage": p.string("stage", default="production"), "format": p.string("format", default="onnx"),
           "destination": p.string("destination")}
    if out["model"] is not SKIP:
        _model_ref(out["model"], p.path("model"), None)
    if out["stage"] is not SKIP:
        stage = out["stage"].strip().lower().removeprefix("model_stage_")
        if stage not in DEPLOY_STAGES:
            raise p.error("stage", f"{out['stage']!r} is not a deployment stage: use production or staging")
        out["stage"] = stage
    if out["format"] is not SKIP:
        fmt = out["format"].strip().lower().removeprefix("export_format_")
        if fmt not in FORMATS:
            raise p.error("format", f"unknown export format {out['format']!r}: use one of {', '.join(FORMATS)}")
        out["format"] = parse_format(fmt)
    destination = out["destination"]
    if destination and destination is not SKIP:
        if "\x00" in destination:
            raise p.error("destination", "contains a NUL character")
        if "://" not in destination and not destination.startswith("/") and ".." in Path(destination).parts:
            raise p.error("destination", f"{destination!r} leaves the model directory: give a relative path "
                                         "without '..'")
    return out


def _check_custom(p: _Params) -> dict[str, Any]:
    return {"function": p.string("function", True, what="the name of a function registered in the server's "
                                                        "configuration (StageConfig.custom_function)")}


_CHECKS: dict[str, Callable[[_Params], dict[str, Any]]] = {
    "data_preparation": _check_data_preparation,
    "data_validation": _check_data_validation,
    "feature_extraction": _check_feature_extraction,
    "model_training": _check_model_training,
    "model_validation": lambda p: _check_evaluation(p, "model_validation"),
    "model_evaluation": lambda p: _check_evaluation(p, "model_evaluation"),
    "model_deployment": _check_model_deployment,
    "custom": _check_custom,
}


# ----- engine errors as stage errors


@contextmanager
def _engine_errors(field: str, fields: dict[str, str], what: str, default: str = "") -> Iterator[None]:
    """Engine errors in stage terms. InvalidArgument keeps its violations with their fields
    moved under the stage's parameters: `fields` maps an engine field (or the start of one) to
    a parameter path; others go under `default`. Other engine errors become StageFailed."""
    try:
        yield
    except (StageCancelled, StageFailed):
        raise
    except InvalidArgument as exc:
        raise _moved(exc, field, fields, default) from None
    except Unimplemented as exc:
        raise InvalidArgument.field(f"{field}.{default}".rstrip("."), exc.message) from None
    except ForgeError as exc:
        raise StageFailed(f"{what}: {exc.message}", exc.code) from None


def _moved(exc: InvalidArgument, field: str, fields: dict[str, str], default: str) -> InvalidArgument:
    """`default`: a prefix for unmapped fields when it ends with ".", else the parameter they all
    become ("" keeps them as they are, under `field`)."""
    def under(path: str) -> str:
        return f"{field}.{path}" if path else field

    def move(engine_field: str) -> str:
        if engine_field == field or engine_field.startswith(field + "."):
            return engine_field  # already a stage parameter's path
        for key in sorted(fields, key=len, reverse=True):
            if engine_field == key or engine_field.startswith((key + ".", key + "[")):
                rest = engine_field[len(key):]
                return under(fields[key] + rest if fields[key] else rest.lstrip("."))
        if default and not default.endswith("."):
            return under(default)
        return under(default + engine_field)

    violations = [FieldViolation(move(v.field), v.description, v.reason) for v in exc.violations]
    if not violations:  # an error about the whole value: the parameter itself
        violations = [FieldViolation(move("").rstrip("."), exc.message)]
    message = "; ".join(f"{v.field}: {v.description}" for v in violations)
    return InvalidArgument(message, violations=violations)


# ----- naming what a stage creates


def _slug(value: str) -> str:
    slug = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]+", "-", value.lower())).strip("-")
    return slug or "x"


def _fit_id(value: str, limit: int = 63) -> str:
    """`value` as a valid id of at most `limit` characters (a hash keeps cut ones distinct)."""
    slug = _slug(value)
    if not slug[0].isalpha():
        slug = "p-" + slug
    if len(slug) > limit:
        slug = slug[:limit - 9].rstrip("-") + "-" + hashlib.sha256(value.encode()).hexdigest()[:8]
    return slug


def _base_id(ctx: StageContext) -> str:
    """The id prefix of everything this stage of this execution creates (at most 50 characters)."""
    digest = hashlib.sha256(f"{ctx.execution}\0{ctx.stage_id}".encode()).hexdigest()[:8]
    execution = _slug(names.short_id(ctx.execution))[:20].rstrip("-")
    if not execution[0].isalpha():
        execution = "e" + execution[:19]
    return f"{execution}-{_slug(ctx.stage_id)[:20].strip('-')}-{digest}"


def _pipeline_id(ctx: StageContext) -> str:
    parts = ctx.execution.split("/")
    if len(parts) >= 4 and parts[2] == "pipelines":
        return parts[3]
    return names.short_id(ctx.execution)


def _labels(ctx: StageContext) -> dict[str, str]:
    return {"pipeline": _pipeline_id(ctx), "pipeline_execution": names.short_id(ctx.execution),
            "pipeline_stage": ctx.stage_id}


def _reuse(ctx: StageContext, what: str, create: Callable[[], Any], get: Callable[[], Any],
           ours: Callable[[Any], bool] = lambda _row: True, taken: Callable[[], Exception] | None = None) -> Any:
    """create(); when its id is taken by what an earlier try of this stage made, that instead."""
    try:
        return create()
    except AlreadyExists as exc:
        try:
            row = get()
        except NotFound:
            raise StageFailed(f"{what}: {exc.message}", exc.code) from None
        if not ours(row):
            raise (taken() if taken else StageFailed(f"{what}: {exc.message}", exc.code)) from None
        ctx.log(f"reusing {row.name}, made by an earlier attempt of this stage")
        return row


# ----- data stages


def _data_preparation(v: dict[str, Any], p: _Params, ctx: StageContext) -> dict[str, Any]:
    data = ctx.engine.data
    field = p.field
    base = _base_id(ctx)
    if v["dataset"]:
        name = _resource_ref(v["dataset"], "datasets", p.path("dataset"), ctx.project)
        with _engine_errors(field, {"name": "dataset"}, f"{field}.dataset"):
            row = data.get(name)
    else:
        dataset_id = v["dataset_id"] or base
        config = {"source_uri": v["source_uri"], "data_source": v["data_source"], "query": v["query"],
                  "format": v["format"], "label_column": v["label_column"], "display_name": v["display_name"],
                  "labels": _labels(ctx)}
        name = names.make(ctx.project, "datasets", dataset_id)
        with _engine_errors(field, {"config": "", "dataset_id": "dataset_id"}, "loading the data"):
            row = _reuse(ctx, f"{field}.dataset_id", lambda: data.create_dataset(ctx.project, dataset_id, config),
                         lambda: data.get(name),
                         ours=lambda r: all((r.labels or {}).get(k) == value for k, value in _labels(ctx).items()),
                         taken=lambda: InvalidArgument.field(
                             p.path("dataset_id"), f"dataset {name} already exists: choose another dataset_id, or "
                                                   "leave it unset to get one per execution"))
        ctx.log(f"loaded {row.name}: {row.row_count} rows")
    if v["filter"]:
        _check_cancelled(ctx)
        filtered_id = f"{base}-filtered"
        with _engine_errors(field, {"expression": "filter"}, "filtering"):
            parent = row
            row = _reuse(ctx, f"{field}.filter", lambda: data.filter(parent.name, v["filter"], filtered_id),
                         lambda: data.get(names.make(ctx.project, "datasets", filtered_id)))
        ctx.log(f"filtered {parent.name} into {row.name}: {row.row_count} of {parent.row_count} rows kept")
    outputs: dict[str, Any] = {"dataset": row.name, "row_count": int(row.row_count)}
    split = v["split"]
    if split:
        _check_cancelled(ctx)
        ratios = split["ratios"]
        suffixes = ["train", "validation", "test"] if len(ratios) == 3 else (
            ["train", "test"] if len(ratios) == 2 else [f"part-{i}" for i in range(len(ratios))])
        ids = [f"{base}-{s}" for s in suffixes]
        fields = {"ratios": "split.ratios", "stratify_column": "split.stratify_column",
                  "group_column": "split.group_column", "time_column": "split.time_column"}
        with _engine_errors(field, fields, "splitting", default="split"):
            parts = _reuse(ctx, f"{field}.split", lambda: data.split(
                row.name, ratios, seed=split["seed"], stratify_column=split["stratify_column"],
                shuffle=split["shuffle"], dataset_ids=ids, group_column=split["group_column"],
                time_column=split["time_column"]),
                lambda: _Parts([data.get(names.make(ctx.project, "datasets", i)) for i in ids]))
        parts = list(parts)
        ctx.log(f"split {row.name} into " + ", ".join(f"{r.name} ({r.row_count} rows)" for r in parts))
        outputs["datasets"] = [r.name for r in parts]
        if len(parts) in (2, 3):
            outputs["train_dataset"], outputs["test_dataset"] = parts[0].name, parts[-1].name
        if len(parts) == 3:
            outputs["validation_dataset"] = parts[1].name
    return outputs


class _Parts(list):
    """Split parts an earlier attempt made (a list with the `name` _reuse logs)."""

    @property
    def name(self) -> str:
        return ", ".join(r.name for r in self)


def _data_validation(v: dict[str, Any], p: _Params, ctx: StageContext) -> dict[str, Any]:
    name = _resource_ref(v["dataset"], "datasets", p.path("dataset"), ctx.project)
    with _engine_errors(p.field, {"rules": "rules", "name": "dataset"}, f"validating {name}"):
        report = ctx.engine.data.validate(name, v["rules"])
    issues = report.get("issues") or []
    failed = [f"{i.get('rule', '')} {i.get('column') or ''}".strip() for i in issues]
    ctx.log(f"{name}: " + ("valid" if report["valid"] else f"{len(issues)} rule(s) broken: {', '.join(failed)}"))
    if not report["valid"] and v["fail_on_invalid"]:
        details = "; ".join(f"{i.get('rule', '')} {i.get('column') or ''}: {i.get('message', '')}".replace(" :", ":")
                            for i in issues[:5])
        more = f" (and {len(issues) - 5} more)" if len(issues) > 5 else ""
        raise StageFailed(f"{name} breaks {len(issues)} validation rule(s): {details}{more}; fix the data or the "
                          f"rules, or set {p.path('fail_on_invalid')} to false to only report them")
    return {"valid": bool(report["valid"]), "failed_rules": failed,
            "report": {"valid": bool(report["valid"]), "issues": issues}}


def _feature_extraction(v: dict[str, Any], p: _Params, ctx: StageContext) -> dict[str, Any]:
    data = ctx.engine.data
    field = p.field
    base = _base_id(ctx)
    fit = _resource_ref(v["dataset"], "datasets", p.path("dataset"), ctx.project)
    inputs = [_resource_ref(d, "datasets", p.path(f"apply_to[{i}]"), ctx.project)
              for i, d in enumerate(v["apply_to"])]
    spec = {"fit_dataset": fit, "processing": v["processing"], "validation": v["validation"] or {},
            "display_name": f"{_pipeline_id(ctx)} {ctx.stage_id}"}
    pipeline_name = names.make(ctx.project, "dataPipelines", base)
    fields = {"data_pipeline.processing": "processing", "data_pipeline.validation": "validation",
              "data_pipeline.fit_dataset": "dataset"}
    with _engine_errors(field, fields, "fitting the processing", default="processing"):
        pipeline = _reuse(ctx, f"{field}.processing", lambda: data.create_pipeline(ctx.project, base, spec),
                          lambda: data.get_pipeline(pipeline_name), ours=lambda r: r.fit_dataset == fit)
    ctx.log(f"fitted {pipeline.name} on {fit}")
    processed: dict[str, str] = {}
    for index, dataset in [(-1, fit)] + list(enumerate(inputs)):
        if dataset in processed:
            continue
        _check_cancelled(ctx)
        output_id = f"{base}-fit" if index < 0 else f"{base}-out-{index}"
        source = "dataset" if index < 0 else f"apply_to[{index}]"
        with _engine_errors(field, {"dataset": source}, f"processing {dataset}", default=source):
            row = _reuse(ctx, f"{field}.{source}", lambda: data.run_pipeline(pipeline.name, dataset, output_id),
                         lambda: data.get(names.make(ctx.project, "datasets", output_id)))
        processed[dataset] = row.name
        ctx.log(f"processed {dataset} into {row.name}: {row.row_count} rows")
    return {"data_pipeline": pipeline.name, "dataset": processed[fit], "datasets": processed}


# ----- training


def _model_training(v: dict[str, Any], p: _Params, ctx: StageContext) -> dict[str, Any]:
    trainer = ctx.engine.trainer
    job = None
    after = 0
    known = ctx.handles.get("training_job")
    if known:
        try:
            job = trainer.get_job(known)
        except NotFound:
            ctx.log(f"training job {known} no longer exists: starting a new one")
        else:
            after = int(ctx.handles.get("metrics_sequence") or 0)
            ctx.log(f"re-attached to training job {job.name} ({job.state})")
    if job is None:
        job = _start_training(v, p, ctx)
    job = _follow(ctx, job.name, after)
    metrics = _metric_values(job.latest_metrics or {})
    test = _metric_values(job.test_metrics or {})
    return {**metrics, **{f"test_{k}": value for k, value in test.items()},
            "training_job": job.name, "model_version": (job.model_info or {}).get("model_version", ""),
            "metrics": metrics, "test_metrics": test}


def _start_training(v: dict[str, Any], p: _Params, ctx: StageContext):
    request_field = v["request_field"]
    relative = request_field[len(p.field):].lstrip(".")
    prefix = f"{relative}." if relative else ""
    with _engine_errors(p.field, {"parameters": relative}, "the training request", default=prefix):
        spec = ctx.make_spec(v["request"])
        if not spec.model_id:  # every execution adds a version of one model
            spec.model_id = _fit_id(f"{_pipeline_id(ctx)}-{ctx.stage_id}")
        spec.labels = {**_labels(ctx), **(spec.labels or {})}
        job_id = f"{_base_id(ctx)}-a{ctx.attempt}"
        _check_cancelled(ctx)
        trainer = ctx.engine.trainer
        name = names.make(ctx.project, "trainingJobs", job_id)
        job = _reuse(ctx, "starting the training job", lambda: trainer.start_training(ctx.project, job_id, spec),
                     lambda: trainer.get_job(name))
    ctx.remember({"training_job": job.name})
    ctx.log(f"started training job {job.name}: {spec.framework}/{spec.architecture}, {spec.epochs} epochs")
    return job


def _follow(ctx: StageContext, name: str, after: int):
    """Wait for the job to end, relaying its metrics; resume it when a shutdown paused it."""
    trainer, journal = ctx.engine.trainer, ctx.engine.journal
    while True:
        if ctx.cancelled.is_set():
            if ctx.stopping.is_set():  # the server stops: the trainer pauses the job, a restart re-attaches
                raise StageCancelled(f"the server is stopping; stage {ctx.stage_id} re-attaches to {name} after "
                                     "the restart")
            _cancel_job(ctx, name)
            raise StageCancelled(f"stage {ctx.stage_id} was stopped; training job {name} was cancelled")
        try:
            job = trainer.get_job(name)
        except NotFound:
            raise StageFailed(f"training job {name} was deleted while the stage waited for it", "NOT_FOUND") from None
        points = journal.metrics_after(name, after, 1000)
        for point in points:
            values = _metric_values(point, bookkeeping=True)
            if values:
                ctx.metrics(values)
        if points:
            after = int(points[-1]["sequence"])
            ctx.remember({"training_job": name, "metrics_sequence": after})
            if len(points) == 1000:
                continue
        if job.state == states.COMPLETED:
            ctx.log(f"training job {name} completed: {job.state_message}")
            return job
        if job.state == states.FAILED:
            raise StageFailed(f"training job {name} {job.state_message or 'failed'}",
                              (job.error or {}).get("code") or "ABORTED")
        if job.state == states.CANCELLED:
            raise StageFailed(f"training job {name} was cancelled outside the pipeline ({job.state_message})",
                              "ABORTED")
        if job.state == states.PAUSED:
            try:
                trainer.resume(name)
                ctx.log(f"training job {name} was paused ({job.state_message}); resumed it")
            except FailedPrecondition:
                pass  # its state changed meanwhile: the next poll sees it
        ctx.cancelled.wait(POLL_SECONDS)


def _cancel_job(ctx: StageContext, name: str) -> None:
    trainer = ctx.engine.trainer
    try:
        trainer.cancel(name)
    except (FailedPrecondition, NotFound):
        return  # already over
    ctx.log(f"cancelling training job {name}")
    deadline = time.monotonic() + CANCEL_GRACE_SECONDS + 5
    while time.monotonic() < deadline:  # the trainer kills a worker that ignores the cancel for long
        try:
            if trainer.get_job(name).state in states.FINAL:
                return
        except NotFound:
            return
        time.sleep(POLL_SECONDS)


def _metric_values(point: dict[str, Any], bookkeeping: bool = False) -> dict[str, float]:
    """The finite numbers of a metric point (its `extra` ones included) or a metrics dict."""
    values: dict[str, float] = {}
    items = list(point.items()) + list((point.get("extra") or {}).items())
    for key, value in items:
        if key == "sequence" or (key in _BOOKKEEPING and not bookkeeping):
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            values[key] = float(value)
    return values


# ----- evaluation


def _evaluation(v: dict[str, Any], p: _Params, ctx: StageContext) -> dict[str, Any]:
    model = _model_ref(v["model"], p.path("model"), ctx.project)
    dataset = _resource_ref(v["dataset"], "datasets", p.path("dataset"), ctx.project)
    with _engine_errors(p.field, {"dataset": "dataset", "name": "model"}, f"evaluating {model}"):
        report = ctx.engine.evaluator.evaluate(model, dataset)
    metrics = {k: float(value) for k, value in report.items()
               if isinstance(value, (int, float)) and not isinstance(value, bool) and k != "row_count"
               and math.isfinite(value)}
    outputs: dict[str, Any] = {**metrics, "metrics": metrics, "row_count": int(report.get("row_count", 0)),
                               "model": model, "dataset": dataset}
    for key in ("class_labels", "confusion_matrix", "per_class"):
        if key in report:
            outputs[key] = report[key]
    ctx.log(f"{model} on {dataset}: " + ", ".join(f"{k} {value:.4g}" for k, value in metrics.items()))
    failures = []
    for metric, (low, high) in v["thresholds"].items():
        value = metrics.get(metric)
        if value is None:
            failures.append(f"{metric} is not reported for this model (reported: {', '.join(metrics) or 'none'})")
        elif low is not None and value < low:
            failures.append(f"{metric} {value:.4g} is below the minimum {low:g}")
        elif high is not None and value > high:
            failures.append(f"{metric} {value:.4g} is above the maximum {high:g}")
    if failures:
        raise StageFailed(f"{model} misses {len(failures)} threshold(s) on {dataset}: {'; '.join(failures)}; "
                          f"improve the model or change {p.path('thresholds')}")
    return outputs


# ----- deployment


def _version_of(ctx: StageContext, model: str, field: str) -> str:
    if "/models/" in model:
        return model
    try:
        job = ctx.engine.trainer.get_job(model)
    except NotFound as exc:
        raise StageFailed(f"{field}: {exc.message}", exc.code) from None
    if job.state != states.COMPLETED:
        raise StageFailed(f"{field}: training job {model} is {job.state}: only a COMPLETED job has a model to deploy")
    version = (job.model_info or {}).get("model_version")
    if not version:
        raise StageFailed(f"{field}: training job {model} registered no model version")
    return version


def _model_deployment(v: dict[str, Any], p: _Params, ctx: StageContext) -> dict[str, Any]:
    models, store = ctx.engine.models, ctx.engine.storage
    version = _version_of(ctx, _model_ref(v["model"], p.path("model"), ctx.project), p.path("model"))
    fmt = v["format"]
    target = None
    if v["destination"]:
        target = _destination(ctx, v["destination"], fmt, p.path("destination"))
    with _engine_errors(p.field, {"format": "format", "stage": "stage", "name": "model"}, f"deploying {version}"):
        row, info = models.artifact(version, fmt)
        if target is not None:
            _check_cancelled(ctx)
            saved = _copy(store, info, target)
            models.record_written(saved["sha256"], fmt, row.training_job or "", saved["uri"])
            ctx.log(f"copied the {fmt} export of {version} to {saved['uri']}")
        else:
            saved = {"uri": location(info), "sha256": info["sha256"],
                     "size_bytes": int(info.get("size_bytes") or store.hash(location(info))[0])}
        _check_cancelled(ctx)
        row, archived = models.set_stage(version, v["stage"])
    ctx.log(f"{version} is now in {v['stage']}" + (f"; archived {', '.join(a.name for a in archived)}"
                                                    if archived else ""))
    return {"model_version": version, "stage": v["stage"], "format": fmt, "uri": saved["uri"],
            "sha256": saved["sha256"], "size_bytes": int(saved["size_bytes"]), "archived": [a.name for a in archived]}


def _destination(ctx: StageContext, destination: str, fmt: str, field: str) -> str:
    store = ctx.engine.storage
    if destination.endswith("/"):
        destination += FORMATS[fmt].filename
    try:
        target = resolve_model_path(store, destination, field, ctx.engine.models.policy.extra_roots)
    except PermissionDenied as exc:
        raise InvalidArgument.field(field, exc.message) from None
    inside = store.contains(target)
    if (store.is_dir(target) if inside else "://" not in target and Path(target).is_dir()):
        target = f"{target.rstrip('/')}/{FORMATS[fmt].filename}"
    return target


def _copy(store, info: dict[str, Any], target: str) -> dict[str, Any]:
    """A verified copy of a stored artifact at `target`: in the store, or under an extra root."""
    if store.contains(target):
        return store.copy(info, store.key_of(target))
    digest = hashlib.sha256()

    def stream(out) -> None:
        with store.open(location(info)) as src:
            for block in iter(lambda: src.read(CHUNK), b""):
                digest.update(block)
                out.write(block)

    if "://" not in target:
        def write(tmp: str) -> None:
            with open(tmp, "wb") as out:
                stream(out)

        size, written = write_atomic(target, write)
    else:
        import fsspec

        with fsspec.open(target, "wb") as out:
            stream(out)
        size, written = None, digest.hexdigest()
    if written != info["sha256"] or digest.hexdigest() != info["sha256"]:
        if "://" not in target:
            Path(target).unlink(missing_ok=True)
        raise StageFailed(f"the copy at {target} does not match the recorded sha256 {info['sha256']}", "DATA_LOSS")
    return {"uri": target, "sha256": written, "size_bytes": size if size is not None else info.get("size_bytes", 0)}


# ----- custom


def _custom(v: dict[str, Any], p: _Params, ctx: StageContext) -> dict[str, Any]:
    name = v["function"]
    function = ctx.functions.get(name)
    if function is None:
        registered = ", ".join(sorted(ctx.functions)) or "none are registered"
        raise p.error("function", f"no custom function {name!r} is registered in the server's configuration "
                                  f"(registered: {registered})")
    try:
        result = function(dict(p.raw), ctx)
    except (StageCancelled, StageFailed, InvalidArgument):
        raise
    except ForgeError as exc:
        raise StageFailed(f"custom function {name}: {exc.message}", exc.code) from exc
    except Exception as exc:  # noqa: BLE001 - the user's code: its failure is the stage's
        raise StageFailed(f"custom function {name} raised {type(exc).__name__}: {exc}", "ABORTED") from exc
    if not isinstance(result, dict):
        raise StageFailed(f"custom function {name} returned {_kind(result)}; it must return a dict of outputs",
                          "INTERNAL")
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StageFailed(f"custom function {name} returned outputs that are not JSON: {exc}", "INTERNAL") from None
    return result


_RUNNERS: dict[str, Callable[[dict[str, Any], _Params, StageContext], dict[str, Any]]] = {
    "data_preparation": _data_preparation,
    "data_validation": _data_validation,
    "feature_extraction": _feature_extraction,
    "model_training": _model_training,
    "model_validation": _evaluation,
    "model_evaluation": _evaluation,
    "model_deployment": _model_deployment,
    "custom": _custom,
}
