"""ModelTrainer: the training job lifecycle, as the seed's ModelTrainer interface.

Jobs are rows in the metadata database; this class owns their state changes. A queue
(PENDING rows ordered by priority, then age) feeds at most `max_concurrent_jobs`
worker processes. Each worker has a supervisor thread that relays its metrics, logs,
checkpoints and outcome back here. Every method is blocking and thread-safe; the
gRPC server calls them from a thread pool, never on its event loop.
"""

from __future__ import annotations

import logging
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import object_session

from engine import names
from engine.alerts.dispatcher import Alerts, firing, state_line
from engine.callbacks import registry as callback_registry
from engine.callbacks.early_stopping import ALIASES, metric_key
from engine.data.manager import DataManager
from engine.data.training_data import CATEGORICAL_TYPES, NUMERIC_TYPES, feature_columns, input_kind
from engine.errors import (AlreadyExists, FailedPrecondition, ForgeError, InvalidArgument, NotFound, Unavailable,
                           Unimplemented)
from engine.frameworks.base import FrameworkAdapter
from engine.frameworks.registry import get_adapter
from engine.jobs import cross_validation, fine_tuning, states
from engine.jobs.spec import MAX_RETRIES, MAX_WORKERS, MODEL_TYPES, TrainingSpec, parse_cpu, parse_memory
from engine.jobs.executors import make_executor
from engine.jobs.supervisor import WorkerHandle, supervise
from engine.models.registry import ModelRegistry
from engine.monitor.bus import Bus
from engine.monitor.journal import Journal
from engine.paging import next_token, page_bounds, parse_filter
from engine.storage.artifacts import ArtifactStore, StorageConfig, resolve_model_path
from engine.store.database import Database
from engine.store.models import TrainingJobRow

log = logging.getLogger("forge.trainer")

CANCEL_GRACE_SECONDS = 5.0
SUPERVISED_TASKS = ("classification", "regression", "forecasting")


# Metrics every adapter reports per epoch, by model type; what early stopping may watch.
REPORTED_METRICS = {
    "classification": ("validation_loss", "training_loss", "accuracy", "precision", "recall", "f1_score"),
    "regression": ("validation_loss", "training_loss", "rmse", "mae", "r2"),
    "forecasting": ("validation_loss", "training_loss", "rmse", "mae", "r2", "mape", "smape", "mase"),
    "recommendation": ("validation_loss", "training_loss", "rmse", "mae", "r2", "ndcg_at_10", "map_at_10",
                       "precision_at_10"),
    # precision, recall and f1_score only when the label column marks known anomalies.
    "anomaly_detection": ("validation_loss", "training_loss", "precision", "recall", "f1_score"),
}


def _check_columns(spec: TrainingSpec, columns: dict[str, str], dataset: str) -> list[str]:
    """Check the data roles the spec names against the training data's schema; returns the columns used."""
    data = spec.data

    def column(field: str, name: str, types: tuple[str, ...] = (), what: str = "") -> str:
        if not name:
            raise InvalidArgument.field(f"data_config.{field}", f"is required for {spec.model_type}: one of "
                                                                f"{', '.join(columns)}", "REQUIRED")
        if name not in columns:
            raise InvalidArgument.field(f"data_config.{field}",
                                        f"{name!r} is not a column of {dataset}: one of {', '.join(columns)}")
        if types and columns[name] not in types:
            raise InvalidArgument.field(f"data_config.{field}", f"column {name!r} is {columns[name]}; {what}")
        return name

    numeric = ("int64", "float64")
    kind = input_kind(spec)
    # Roles that do nothing for this kind of job are refused rather than silently ignored.
    unused = {
        "text_column": data.text_column and kind in ("sequence", "interactions"),
        "time_column": data.time_column and kind != "sequence",
        "user_column": data.user_column and kind != "interactions",
        "item_column": data.item_column and kind != "interactions",
        "window_size": data.window_size and kind != "sequence",
        "feature_columns": data.feature_columns and kind != "tabular",
    }
    for role, set_in_vain in unused.items():
        if set_in_vain:
            raise InvalidArgument.field(f"data_config.{role}", f"does not apply to a {spec.model_type} job reading "
                                                               f"{kind} data: leave it unset")
    if spec.model_type == "anomaly_detection":
        used = [column("label_column", data.label_column)] if data.label_column else []
    elif kind == "sequence":
        used = [column("label_column", data.label_column, numeric, "the series to forecast must be numeric")]
        if data.time_column:
            used.append(column("time_column", data.time_column))
        if data.window_size < 0:
            raise InvalidArgument.field("data_config.window_size", "must be >= 1 (0 means the default, 12)")
        return used
    elif kind == "interactions":
        return [column("user_column", data.user_column), column("item_column", data.item_column),
                column("label_column", data.label_column, numeric, "ratings must be numeric")]
    elif spec.model_type == "regression":
        used = [column("label_column", data.label_column, numeric + ("bool",), "a regression label must be numeric")]
    else:
        used = [column("label_column", data.label_column)]
    if kind == "text":
        return used + [column("text_column", data.text_column, ("string",), "a text column must hold strings")]
    features = feature_columns(spec, list(columns))
    if not features:
        raise InvalidArgument.field("data_config.feature_columns", f"{dataset} has no feature columns")
    for i, col in enumerate(features):
        field = f"data_config.feature_columns[{i}]" if data.feature_columns else "data_config.feature_columns"
        if col not in columns:
            raise InvalidArgument.field(field, f"{col!r} is not a column of {dataset}")
        if columns[col] not in NUMERIC_TYPES + CATEGORICAL_TYPES:
            raise InvalidArgument.field(field, f"column {col!r} is {columns[col]}; features must be numeric, boolean "
                                               "or categorical text: leave it out of data_config.feature_columns")
    return used + features


MAX_CATEGORIES = 1000


def _check_values(spec: TrainingSpec, adapter: FrameworkAdapter, train, used: list[str]) -> None:
    """What the training data's statistics already tell: failures a worker would otherwise hit
    only after it started."""
    data = spec.data
    stats = {c["name"]: c for c in train.statistics.get("columns", [])}
    label = data.label_column
    if label and label in stats and stats[label].get("null_count"):
        raise InvalidArgument.field("data_config.label_column",
                                    f"{label!r} is missing in {stats[label]['null_count']} rows of {train.name}: "
                                    f"drop them first, e.g. FilterDataset with \"notnull({label})\"")
    if spec.model_type == "forecasting":
        window = data.window_size or 12
        if train.row_count <= window:
            raise InvalidArgument.field("data_config.window_size",
                                        f"{train.name} has {train.row_count} rows; a window of {window} needs more: "
                                        "lower data_config.window_size or give more rows")
        return
    if input_kind(spec) != "tabular":
        return
    types = {c["name"]: c["data_type"] for c in train.schema.get("columns", [])}
    for col in used:
        if col == label or col not in stats:
            continue
        if stats[col].get("null_count") and not adapter.accepts_missing_values:
            raise InvalidArgument.field("data_config.feature_columns",
                                        f"feature {col!r} is missing in {stats[col]['null_count']} rows and "
                                        f"{spec.framework} needs every value: impute them first (TransformDataset "
                                        "with processing.imputation) or leave the column out")
        if types.get(col) == "string" and (stats[col].get("distinct_count") or 0) > MAX_CATEGORIES:
            raise InvalidArgument.field("data_config.feature_columns",
                                        f"text column {col!r} has {stats[col]['distinct_count']} distinct values, "
                                        f"too many to one-hot encode (at most {MAX_CATEGORIES}): leave it out, or "
                                        "use it as data_config.text_column with a text classifier")


def _check_monitored(spec: TrainingSpec, metric: str, field: str) -> None:
    reported = REPORTED_METRICS.get(spec.model_type)
    if reported and metric_key(metric) not in (*reported, "epoch_seconds"):
        names = ", ".join("val_loss" if m == "validation_loss" else m for m in reported)
        raise InvalidArgument.field(field, f"{metric!r} is not reported for {spec.model_type}: use one of {names}")


def _after_commit(row: TrainingJobRow, action: Callable[[], None]) -> None:
    """Run `action` once the change to `row` is committed (at once for a row outside a session)."""
    session = object_session(row)
    if session is None:
        action()
    else:
        session.info.setdefault("after_commit", []).append(action)


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _worker_death(code: int | None) -> str:
    """Why a worker died without reporting an outcome, in words."""
    if code is not None and code < 0:
        name = _signal_name(code)
        hint = " (the system may have run out of memory, or someone ran kill -9)" if -code == signal.SIGKILL else ""
        return f"the worker process was killed by {name}{hint}; the job's checkpoints and logs are kept"
    return (f"the worker process exited unexpectedly with code {code}; see the job's logs (an error before the "
            "worker reached the job, such as importing the program's main script, is on the standard error of "
            "the process running the engine)")


def _mib(size: int) -> str:
    return f"{size / 2**20:.0f} MiB"


def _column_types(dataset) -> dict[str, str]:
    return {c["name"]: c["data_type"] for c in (dataset.schema or {}).get("columns", [])}


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class WorkerResources:
    """What one running worker uses, for monitoring: its process tree's CPU time and resident
    memory now, and the GPU use it reported with its last epoch (None without a GPU, or before
    its first epoch ends). A worker on another machine (a Ray task) has no process tree here:
    its CPU time is unknown (None) and its memory is what it reported with its last epoch."""

    job: str
    cpu_seconds: float | None
    memory_bytes: int | None
    gpu_usage: float | None = None
    gpu_memory_bytes: int | None = None


@dataclass
class TrainerSettings:
    data_dir: Path
    max_concurrent_jobs: int = 2
    default_timeout_seconds: float = 0.0
    # Memory limit (bytes) of a job that sets no resources.memory; 0: none.
    default_memory_limit_bytes: int = 0
    # Idle workers forked ahead from the warm template (supervisor.WarmPool); 0: every job
    # starts in a freshly spawned process.
    warm_workers: int = 0
    # Where workers run (executors.EXECUTORS): "local" processes, or tasks on a Ray cluster at
    # ray_address.
    executor: str = "local"
    ray_address: str = ""
    # False: this engine trains nothing (the seed's TrainingConfiguration.enabled): no worker
    # process starts, and the methods that would start one raise Unavailable.
    enabled: bool = True
    # Checkpoints live here, one folder per project; None: <data_dir>/checkpoints.
    checkpoint_dir: Path | None = None
    # For jobs whose resources leave them unset (the seed's DefaultResources).
    default_cpu: str = ""
    default_gpu: int = 0
    default_priority: int = 0
    # Callbacks the operator registered, by the type name a request uses: "module:Class"
    # (engine/callbacks/registry.py); imported in the worker, never sent by a client.
    callbacks: dict[str, str] = field(default_factory=dict)

    @property
    def checkpoint_root(self) -> Path:
        return Path(self.checkpoint_dir) if self.checkpoint_dir else Path(self.data_dir) / "checkpoints"


TRAINING_DISABLED = ("training is disabled on this server (its configuration says enabled: false, or it was "
                     "started with --no-training): start a server with training enabled to run jobs; datasets, "
                     "models and job history can still be read here")


class ModelTrainer:
    def __init__(self, db: Database, journal: Journal, bus: Bus, datasets: DataManager, settings: TrainerSettings,
                 models: ModelRegistry | None = None, store: ArtifactStore | None = None):
        self._db = db
        self.store = store or ArtifactStore(StorageConfig(), settings.data_dir)
        self._models = models
        self._journal = journal
        self._bus = bus
        self._datasets = datasets
        self.settings = settings
        self._lock = threading.RLock()
        self._workers: dict[str, WorkerHandle] = {}
        # Alerts on jobs' states and metrics (engine/alerts), set by the Engine; the metric rules
        # of jobs running now, by job (project, rules).
        self.alerts: Alerts | None = None
        self._alert_rules: dict[str, tuple[str, list[dict[str, Any]]]] = {}
        self._threads: list[threading.Thread] = []
        self._accepting = True
        # Started by the first dispatch (recover() runs one when the engine starts).
        self.executor = make_executor(settings.executor, settings.warm_workers, settings.ray_address)

    # ----- paths

    def _checkpoint_dir(self, name: str, spec: dict[str, Any] | None = None) -> Path:
        """The job's checkpoint directory: under checkpoints.path when given (checked by _validate to
        stay inside the project's checkpoint directory), always ending in the job id so jobs that
        share a path never prune each other's checkpoints."""
        root = self.settings.checkpoint_root / names.project_of(name)
        sub = (spec or {}).get("checkpoints", {}).get("path") or ""
        return root / sub / names.short_id(name)

    def _checkpoint_key(self, path: str | Path) -> str:
        """Where a checkpoint file (or a job's checkpoint folder) lives in an object store: its
        place under the checkpoint directory, under checkpoints/. The worker uploads each one
        there as it writes it (worker.save_checkpoint); the server prunes and deletes them."""
        relative = Path(path).resolve().relative_to(self.settings.checkpoint_root.resolve())
        return f"checkpoints/{relative.as_posix()}"

    @staticmethod
    def _artifact_key(name: str) -> str:
        """Where the job's artifacts live in the artifact store."""
        return f"artifacts/{names.project_of(name)}/{names.short_id(name)}"

    def _artifact_dir(self, name: str) -> Path:
        """Where the worker writes them first: the store itself when it is local."""
        return self.settings.data_dir / self._artifact_key(name)

    # ----- lifecycle of the trainer itself

    def recover(self) -> None:
        """Jobs a previous server process left with a worker (it crashed, or was killed): a job
        with a checkpoint is queued again and resumes after it; one without starts over when its
        retry policy has a retry left, and fails, saying why, when not. Each decision goes into
        the job's log too. Then run the queue."""
        decided: list[tuple[str, str]] = []
        with self._db.session() as s:
            for row in s.scalars(select(TrainingJobRow).where(TrainingJobRow.state.in_(tuple(states.ACTIVE)))).all():
                if row.state == states.CANCELLING:
                    self._set_state(row, states.CANCELLED, "cancelled; the server stopped before the worker confirmed")
                    row.end_time = _now()
                    decided.append((row.name, row.state_message))
                    continue
                epoch = (row.checkpoint or {}).get("epoch", 0)
                if row.state == states.PAUSING and epoch:
                    self._set_state(row, states.PAUSED, f"paused: the server stopped while it paused; "
                                                        f"ResumeTraining continues after epoch {epoch}")
                elif epoch:
                    self._requeue(row, f"the server stopped while it ran: resuming after the checkpoint of "
                                       f"epoch {epoch}")
                elif row.state == states.RUNNING and (retry := self._retry_message(row, "the server stopped")):
                    self._requeue(row, retry, retry=True)
                else:
                    message = ("the server stopped while it ran and the job had no checkpoint to resume from; "
                               "start it again (training_config.checkpoints lets a job survive this)")
                    self._set_state(row, states.FAILED, f"failed: {message}")
                    row.error, row.end_time = {"code": "ABORTED", "message": message}, _now()
                decided.append((row.name, row.state_message))
        for name, message in decided:
            self._journal.log(name, message, "warning")
        self.dispatch()

    @staticmethod
    def _interrupted_message(row: TrainingJobRow, why: str) -> str:
        epoch = (row.checkpoint or {}).get("epoch", 0)
        if epoch:
            return f"interrupted: {why}; ResumeTraining continues after the checkpoint of epoch {epoch}"
        return f"interrupted: {why}; no checkpoint was written, so ResumeTraining starts from the first epoch"

    def begin_shutdown(self) -> None:
        """Stop starting jobs, stop the idle warm workers, and ask every running worker to
        checkpoint and pause."""
        with self._lock:
            self._accepting = False
            self.executor.stop_starting()
            handles = list(self._workers.values())
            for handle in handles:
                with self._db.session() as s:
                    row = s.get(TrainingJobRow, handle.job)
                    if row is None or row.state != states.RUNNING:
                        continue
                    self._journal.log(handle.job, "server shutting down: pausing the job at the end of its epoch")
                    self._set_state(row, states.PAUSING, "pausing: the server is shutting down")
                handle.command("pause")

    def shutdown(self, grace_seconds: float = 10.0) -> None:
        """Running jobs checkpoint and become PAUSED; workers still busy after the grace are killed."""
        self.begin_shutdown()
        deadline = time.monotonic() + grace_seconds
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            handles = list(self._workers.values())
        for handle in handles:
            handle.kill("shutdown")
        for thread in list(self._threads):
            thread.join(15)
        self.executor.close()

    # ----- requests

    def check_enabled(self) -> None:
        """Unavailable when this engine trains nothing (TrainerSettings.enabled is False)."""
        if not self.settings.enabled:
            raise Unavailable(TRAINING_DISABLED)

    def with_defaults(self, spec: TrainingSpec) -> TrainingSpec:
        """`spec` with the server's default CPU, GPU and priority where its resources leave them
        unset (0 or empty), so the job records what it was given."""
        r, s = spec.resources, self.settings
        resources = replace(r, cpu=r.cpu or s.default_cpu, gpu=r.gpu or s.default_gpu,
                            priority=r.priority or s.default_priority)
        return spec if resources == r else replace(spec, resources=resources)

    def start_training(self, project: str, job_id: str, spec: TrainingSpec) -> TrainingJobRow:
        self.check_enabled()
        spec = self.with_defaults(spec)
        if not self._accepting:
            raise FailedPrecondition("the server is shutting down; start the job again once it is back")
        job_id = names.validate_id(job_id, "training_job_id") if job_id else names.new_id("job")
        name = names.make(project, "trainingJobs", job_id)
        adapter = self._validate(project, spec)
        now = _now()
        row = TrainingJobRow(
            name=name,
            project=project,
            spec=spec.to_dict(),
            state=states.PENDING,
            state_message="waiting for a worker",
            priority=spec.resources.priority,
            create_time=now,
            update_time=now,
            total_epochs=adapter.planned_epochs(spec),
            test_metrics={},
            artifacts={},
            framework_versions={},
            model_info={},
        )
        exists = AlreadyExists(f"training job {name} already exists: choose another training_job_id")
        try:
            with self._db.session() as s:
                if s.get(TrainingJobRow, name) is not None:
                    raise exists
                s.add(row)
        except IntegrityError:  # created by a concurrent request between the check and the insert
            raise exists from None
        self._journal.log(name, f"job created: {spec.framework}/{spec.architecture} {spec.model_type}, "
                                f"{spec.epochs} epochs; queued")
        self.dispatch()
        return self.get_job(name)

    def validate(self, project: str, spec: TrainingSpec) -> None:
        """Refuse `spec` as start_training would (INVALID_ARGUMENT naming the field), without
        starting anything: for requests made on a user's behalf, such as tuning trials."""
        self._validate(project, spec)

    def _validate(self, project: str, spec: TrainingSpec) -> FrameworkAdapter:
        if not spec.framework:
            raise InvalidArgument.field("model_config.framework", "is required: e.g. 'sklearn'", "REQUIRED")
        if spec.model_id:
            names.validate_id(spec.model_id, "model_id")
        adapter = get_adapter(spec.framework)
        if spec.model_type not in MODEL_TYPES:
            raise InvalidArgument.field(
                "model_type", f"is required: one of {', '.join(t.upper() for t in MODEL_TYPES)}", "REQUIRED"
            )
        if not spec.architecture:
            raise InvalidArgument.field("model_config.architecture", "is required: e.g. 'logistic_regression'",
                                        "REQUIRED")
        if not 1 <= spec.epochs <= 100_000:
            raise InvalidArgument.field("training_config.epochs", f"must be between 1 and 100000, got {spec.epochs}")
        if spec.batch_size < 0:
            raise InvalidArgument.field("training_config.batch_size", f"must be >= 0, got {spec.batch_size}")
        if spec.learning_rate < 0:
            raise InvalidArgument.field("training_config.learning_rate", f"must be >= 0, got {spec.learning_rate}")
        es = spec.early_stopping
        if es.enabled:
            if es.patience < 0:
                raise InvalidArgument.field("training_config.early_stopping.patience", "must be >= 0")
            if es.mode not in ("", "min", "max"):
                raise InvalidArgument.field("training_config.early_stopping.mode", "must be 'min' or 'max'")
            if es.min_delta < 0:
                raise InvalidArgument.field("training_config.early_stopping.min_delta", "must be >= 0")
            _check_monitored(spec, es.metric or "val_loss", "training_config.early_stopping.metric")
        cross_validation.check(spec)
        if spec.cross_validation.enabled and spec.cross_validation.metric:
            _check_monitored(spec, spec.cross_validation.metric, "validation.cross_validation.metric")
        callback_registry.check(spec.callbacks, self.settings.callbacks)
        for index, entry in enumerate(spec.callbacks):
            metric = (entry.get("config") or {}).get("metric")
            if entry["type"] in ("early_stopping", "metric_threshold") and isinstance(metric, str):
                _check_monitored(spec, metric, f"callbacks[{index}].config.metric")
        for index, rule in enumerate(spec.alerts):  # a metric the job never reports would never fire
            if rule.get("metric"):
                _check_monitored(spec, rule["metric"]["metric"], f"alerts[{index}].metric.metric")
        if spec.checkpoints.monitor_metric:
            _check_monitored(spec, spec.checkpoints.monitor_metric, "training_config.checkpoints.monitor_metric")
        path = spec.checkpoints.path
        if path:
            root = (self.settings.checkpoint_root / project).resolve()
            target = (root / path).resolve() if "\x00" not in path else root  # resolve() raises on a NUL
            if "\x00" in path or Path(path).is_absolute() or not target.is_relative_to(root) or target == root:
                raise InvalidArgument.field("training_config.checkpoints.path",
                                            f"{path!r} leaves the checkpoint directory: give a relative path such as "
                                            "'churn/v1'")
        if spec.resources.timeout_seconds < 0:
            raise InvalidArgument.field("resources.timeout", "must not be negative")
        parse_memory(spec.resources.memory)
        parse_cpu(spec.resources.cpu)  # Ray's CPU request (--executor ray); checked whatever the executor
        workers = spec.resources.workers
        if not 0 <= workers <= MAX_WORKERS:
            raise InvalidArgument.field("resources.workers", f"must be between 0 and {MAX_WORKERS}, got {workers}")
        if workers > 1 and not adapter.data_parallel:
            raise Unimplemented(f"resources.workers: data-parallel training over several workers is implemented for "
                                f"PyTorch and XGBoost, not for {spec.framework}; leave resources.workers at 0 or 1")
        if workers > 1 and self.executor.name != "ray":
            raise FailedPrecondition(f"resources.workers: {workers} data-parallel workers need a server on a Ray "
                                     "cluster (forge-training serve --executor ray; docs/ray.md); this one runs "
                                     "jobs in local worker processes: leave resources.workers at 0 or 1")
        self.executor.check(asdict(spec.resources))
        if not 0 <= spec.retry_policy.max_retries <= MAX_RETRIES:
            raise InvalidArgument.field("training_config.retry_policy.max_retries",
                                        f"must be between 0 and {MAX_RETRIES}, got {spec.retry_policy.max_retries}")
        if not 0 <= spec.data.validation_fraction < 1:
            raise InvalidArgument.field("data_config.validation_fraction", "must be in [0, 1)")

        data = spec.data
        if not data.train_dataset:
            raise InvalidArgument.field("data_config.train_dataset", "is required: a dataset resource name or id",
                                        "REQUIRED")
        data.train_dataset = names.resolve(data.train_dataset, "datasets", "data_config.train_dataset", project)
        train = self._datasets.get(data.train_dataset, field="data_config.train_dataset")
        columns = {c["name"]: c["data_type"] for c in train.schema.get("columns", [])}
        if not data.label_column:  # anomaly detection too: a labelled dataset's label is never a feature
            data.label_column = train.label_column
        kind = input_kind(spec)
        if kind not in adapter.input_kinds:
            raise InvalidArgument.field("model_config.framework",
                                        f"{spec.framework} trains on tabular data; this job's data is {kind} "
                                        "(text, ratings or a time series): use pytorch or tensorflow")
        needed = _check_columns(spec, columns, train.name)
        _check_values(spec, adapter, train, needed)
        if data.validation:  # the job refuses training data that fails its rules
            self._datasets.refuse_invalid(train.name, data.validation, "data_config.validation")
        for part in ("validation_dataset", "test_dataset"):
            ref = getattr(data, part)
            if not ref:
                continue
            ref = names.resolve(ref, "datasets", f"data_config.{part}", project)
            setattr(data, part, ref)
            other = self._datasets.get(ref, field=f"data_config.{part}")
            other_cols = {c["name"] for c in other.schema.get("columns", [])}
            missing = [c for c in needed if c not in other_cols]
            if missing:
                raise InvalidArgument.field(f"data_config.{part}",
                                            f"{ref} lacks the columns {', '.join(missing)} of the training data")
        if es.enabled:
            es.metric = es.metric or "val_loss"
            if metric_key(es.metric) == "validation_loss" and data.no_validation and not data.validation_dataset:
                raise InvalidArgument.field("training_config.early_stopping.metric",
                                            "val_loss needs validation data: drop data_config.no_validation")
        adapter.validate(spec)
        # Fine-tuning: the parent model, resolved now and recorded with the job.
        spec.pretrained = fine_tuning.resolve(spec, project, adapter, get_job=self.get_job,
                                              get_version=self._models.get if self._models else None,
                                              checkpoint_root=self.settings.checkpoint_root)
        if spec.pretrained:
            spec.pretrained_path = spec.pretrained["source"].removeprefix("checkpoint:")
        return adapter

    def get_job(self, name: str) -> TrainingJobRow:
        with self._db.session() as s:
            row = s.get(TrainingJobRow, name)
            if row is None:
                raise NotFound(f"training job {name} not found")
            return row

    def list_jobs(self, project: str, page_size: int, page_token: str, filter_: str) -> tuple[list[TrainingJobRow], str]:
        terms = parse_filter(filter_, {"state", "framework", "architecture", "model_type"})
        offset, limit = page_bounds(page_size, page_token)
        query = select(TrainingJobRow).where(TrainingJobRow.project == project)
        if "state" in terms:
            state = terms["state"].upper().removeprefix("JOB_STATE_")
            if state not in states.TRANSITIONS:
                raise InvalidArgument.field("filter", f"unknown state {terms['state']!r}: one of {', '.join(states.TRANSITIONS)}")
            query = query.where(TrainingJobRow.state == state)
        query = query.order_by(TrainingJobRow.create_time.desc(), TrainingJobRow.name)
        with self._db.session() as s:
            rows = list(s.scalars(query))
        # Spec fields live in JSON; filter them here rather than with dialect-specific JSON SQL.
        for key, value in terms.items():
            if key in ("framework", "architecture", "model_type"):
                rows = [r for r in rows if str(r.spec.get(key, "")).lower() == value.lower()]
            elif key.startswith("label."):
                rows = [r for r in rows if r.spec.get("labels", {}).get(key[6:]) == value]
        page = rows[offset: offset + limit]
        return page, next_token(offset, limit, len(page), offset + limit < len(rows))

    def delete_job(self, name: str) -> None:
        with self._db.session() as s:
            row = s.get(TrainingJobRow, name)
            if row is None:
                raise NotFound(f"training job {name} not found")
            if row.state not in states.FINAL:
                raise FailedPrecondition(f"job {name} is {row.state}: cancel it first, then delete it")
            s.delete(row)
        self._journal.delete(name)
        if self._models is not None:
            self._models.forget_job(name)
        checkpoints = self._checkpoint_dir(name, row.spec)
        shutil.rmtree(checkpoints, ignore_errors=True)
        shutil.rmtree(self._artifact_dir(name), ignore_errors=True)
        self.store.delete(self.store.uri(self._artifact_key(name)))
        if not self.store.local:
            self.store.discard(self.store.uri(self._checkpoint_key(checkpoints)))

    def pause(self, name: str) -> TrainingJobRow:
        with self._lock:
            with self._db.session() as s:
                row = self._row(s, name)
                if row.state in (states.PAUSING, states.PAUSED):
                    return row
                if row.state == states.PENDING:
                    self._set_state(row, states.PAUSED, "paused before it started; ResumeTraining queues it again")
                    message = "paused while pending"
                else:
                    states.check_transition(name, row.state, states.PAUSING)
                    self._set_state(row, states.PAUSING, "pausing: the worker checkpoints at the end of its epoch")
                    message = "pause requested: the worker checkpoints at the end of its epoch"
            self._journal.log(name, message)  # under the lock: the worker cannot finish before it is written
            handle = self._workers.get(name)
            if handle is not None:
                handle.command("pause")
        return self.get_job(name)

    def resume(self, name: str) -> TrainingJobRow:
        self.check_enabled()
        with self._lock:
            with self._db.session() as s:
                row = self._row(s, name)
                states.check_transition(name, row.state, states.PENDING)
                epoch = (row.checkpoint or {}).get("epoch", 0)
                self._set_state(row, states.PENDING, f"resumed; continues after epoch {epoch} when a worker is free")
            self._journal.log(name, f"resume requested: continues after epoch {epoch}")
        self.dispatch()
        return self.get_job(name)

    def cancel(self, name: str) -> TrainingJobRow:
        with self._lock:
            with self._db.session() as s:
                row = self._row(s, name)
                if row.state in (states.CANCELLING, states.CANCELLED):
                    return row
                if row.state in (states.PENDING, states.PAUSED):
                    self._journal.log(name, "cancelled by the user")  # before the final state: see _finish
                    self._set_state(row, states.CANCELLED, "cancelled by the user")
                    row.end_time = _now()
                else:
                    states.check_transition(name, row.state, states.CANCELLING)
                    self._set_state(row, states.CANCELLING, "cancelling: stopping the worker")
                    self._journal.log(name, "cancel requested: stopping the worker")
            handle = self._workers.get(name)
        if handle is not None:
            handle.command("cancel")
            timer = threading.Timer(CANCEL_GRACE_SECONDS, handle.kill, args=("cancel",))
            timer.daemon = True
            timer.start()
        return self.get_job(name)

    def artifact(self, name: str, fmt: str, check: bool = True) -> tuple[TrainingJobRow, dict[str, Any]]:
        """The completed job and its stored artifact in `fmt`, checksum verified unless `check` is
        False (a streaming reader that hashes as it goes verifies for itself)."""
        row = self.get_job(name)
        if row.state != states.COMPLETED:
            raise FailedPrecondition(f"job {name} is {row.state}: only COMPLETED jobs have a model to export")
        return row, self.store.exported(row.artifacts, fmt, f"job {name}", check)

    def save_model(self, name: str, relative_path: str, fmt: str) -> tuple[str, int, str]:
        """Copy the job's `fmt` artifact to `relative_path` under the store's models/ directory,
        and remember its sha256 as one this service wrote (LoadModel trusts those)."""
        if "://" in relative_path or Path(relative_path).is_absolute():
            raise InvalidArgument.field("path", f"{relative_path!r} is not relative: give a path under the model "
                                                "directory such as 'churn/model.pkl'")
        target = resolve_model_path(self.store, relative_path, "path")
        row, info = self.artifact(name, fmt)
        if self.store.is_dir(target):
            raise InvalidArgument.field("path", f"{relative_path!r} is a directory: name a file, e.g. "
                                                f"'{relative_path.rstrip('/')}/model.pkl'")
        existing = self.store.hash(target)[1] if self._models is not None and self.store.exists(target) else ""
        if existing and existing != info.get("sha256") and self._models.writer_project(existing) != row.project:
            # Only a file this project's jobs wrote may be replaced (identical bytes change nothing):
            # the model directory is shared, and another project's or an operator's file is not ours.
            raise AlreadyExists(f"{relative_path!r} already holds a model that this project did not save: "
                                "choose another path")
        try:
            saved = self.store.copy(info, self.store.key_of(target))
        except (NotADirectoryError, FileExistsError) as exc:
            raise InvalidArgument.field("path", f"cannot write {relative_path!r}: a part of it is a file") from exc
        if self._models is not None:
            self._models.record_written(saved["sha256"], fmt, row.name, saved["uri"])
        return self.store.key_of(target).removeprefix("models/"), saved["size_bytes"], saved["sha256"]

    # ----- the queue

    def dispatch(self) -> None:
        """Start pending jobs while worker slots are free, highest priority first."""
        if not self.settings.enabled:
            return  # jobs stay queued for a server that trains
        with self._lock:
            if self._accepting:
                self.executor.start()
            while self._accepting and len(self._workers) < self.settings.max_concurrent_jobs:
                with self._db.session() as s:
                    row = s.scalars(
                        select(TrainingJobRow)
                        .where(TrainingJobRow.state == states.PENDING)
                        .order_by(TrainingJobRow.priority.desc(), TrainingJobRow.create_time, TrainingJobRow.name)
                        .limit(1)
                    ).first()
                    if row is None:
                        return
                    name = row.name
                    try:
                        payload = self._payload(row)
                        # Checked here too: jobs created before the limit was enforced never were.
                        memory_limit = (parse_memory(row.spec.get("resources", {}).get("memory") or "")
                                        or self.settings.default_memory_limit_bytes)
                    except ForgeError as exc:  # e.g. its dataset was deleted: fail this job, keep the queue going
                        failure = exc
                    else:
                        failure = None
                if failure is not None:
                    self._finish(name, states.FAILED, f"failed before it started: {failure.message}",
                                 error={"code": failure.code, "message": failure.message})
                    continue
                with self._db.session() as s:
                    row = self._row(s, name)
                    row.attempt_count += 1
                    payload["attempt"] = row.attempt_count
                    if row.start_time is None:
                        row.start_time = _now()
                    self._set_state(row, states.RUNNING, "training")
                    name = row.name
                    timeout = row.spec.get("resources", {}).get("timeout_seconds") or self.settings.default_timeout_seconds
                # A run resumed after a crash repeats the epochs after its checkpoint: their
                # metrics are already recorded, and the replay (exact on CPU) must not add them twice.
                recorded = self._journal.latest_metric(name)
                try:
                    handle = self.executor.launch(name, payload, timeout, memory_limit,
                                                  payload["spec"].get("resources") or {})
                    handle.recorded_epoch = int(recorded["epoch"]) if recorded else 0
                except Exception as exc:  # could not even start a process: the job fails, the queue goes on
                    self._finish(name, states.FAILED, f"could not start a worker: {exc}",
                                 error={"code": "RESOURCE_EXHAUSTED", "message": str(exc)})
                    continue
                self._workers[name] = handle
                thread = threading.Thread(
                    target=supervise, args=(handle, self._on_messages, self._on_exit), name=f"supervise:{name}",
                    daemon=True,
                )
                self._threads.append(thread)
                thread.start()

    def _payload(self, row: TrainingJobRow) -> dict[str, Any]:
        spec = row.spec
        parts = {}
        for part, key in (("train", "train_dataset"), ("validation", "validation_dataset"), ("test", "test_dataset")):
            ref = spec["data"].get(key)
            if ref:
                ds = self._datasets.get(ref, field=f"data_config.{key}")
                processed_by = self.processed_by(ds)
                parts[part] = {"name": ds.name, "path": ds.path, "sha256": ds.sha256, "version": ds.version,
                               # The object store's copy, for a worker whose machine lacks the file.
                               "stored": self._datasets.stored(ds),
                               "lineage": ds.lineage, "processed_by": processed_by,
                               # The raw columns an exported model takes: before any processing.
                               "raw_types": processed_by.pop("raw_types", None) or _column_types(ds)}
        resume = None
        if row.checkpoint and row.checkpoint.get("path"):
            resume = row.checkpoint
        return {
            "job": row.name,
            "spec": spec,
            "datasets": parts,
            "checkpoint_dir": str(self._checkpoint_dir(row.name, row.spec)),
            "artifact_dir": str(self._artifact_dir(row.name)),
            "artifact_key": self._artifact_key(row.name),
            "data_dir": str(self.settings.data_dir),
            "storage": self.store.config.to_dict(),
            # Where the worker copies each checkpoint in an object store (none for local storage).
            "checkpoint_key": None if self.store.local else self._checkpoint_key(self._checkpoint_dir(row.name,
                                                                                                     row.spec)),
            "resume": resume,
            # The registered callbacks this job uses: the worker imports them.
            "callback_classes": {c["type"]: self.settings.callbacks[c["type"]] for c in spec.get("callbacks", [])
                                 if c["type"] in self.settings.callbacks},
        }

    def processed_by(self, dataset) -> dict[str, Any]:
        """The nearest ancestor made by TransformDataset or RunDataPipeline, looking through splits
        and filters (which do not change columns): the processing raw input needs before the model."""
        current = dataset
        for _ in range(50):  # lineage is a DAG of finite depth; the bound only guards bad data
            operation = current.lineage.get("operation")
            if operation in ("transform", "data_pipeline"):
                parameters = current.lineage.get("parameters", {})
                return {"dataset": current.name, "operation": operation, "parameters": parameters,
                        **self._fitted_processing(current, operation, parameters)}
            parents = current.lineage.get("parents") or []
            if operation not in ("split", "filter") or len(parents) != 1:
                return {}
            try:
                current = self._datasets.get(parents[0])
            except NotFound:  # deleted since: nothing more to learn
                return {}
        return {}

    def _fitted_processing(self, dataset, operation: str, parameters: dict[str, Any]) -> dict[str, Any]:
        """The fitted processing that made `dataset`, and the column types of the data it was
        applied to, so the worker can put that processing in front of an exported model."""
        try:
            fitted = self.fitted_processing_of({"operation": operation, "parameters": parameters})
            parents = dataset.lineage.get("parents") or []
            raw_types = _column_types(self._datasets.get(parents[0])) if len(parents) == 1 else {}
        except (NotFound, InvalidArgument):  # deleted since: the export keeps its processed input
            return {}
        return {"fitted": fitted, "raw_types": raw_types}

    def fitted_processing_of(self, processed_by: dict[str, Any]) -> dict[str, Any]:
        """The fitted processing a processed_by record names (a transform's own, or a pipeline's)."""
        parameters = processed_by.get("parameters") or {}
        if processed_by.get("operation") == "transform":
            return parameters.get("fitted") or {}
        return self._datasets.get_pipeline(parameters.get("data_pipeline", "")).fitted

    # ----- messages from workers (supervisor threads)

    def _on_messages(self, handle: WorkerHandle, batch: list[tuple[str, Any]]) -> None:
        name = handle.job
        points: list[dict[str, Any]] = []
        logs: list[tuple[str, str, str, int]] = []

        def progress(statements, stamped: list[dict[str, Any]]) -> None:
            # In the journal's transaction: one commit per batch, and the job's row (spec and
            # all) is not read back for every epoch.
            if not stamped:
                return
            last = stamped[-1]
            updated = statements.run(_PROGRESS, {
                "job_name": name, "current_epoch": int(last["epoch"]), "total_epochs": int(last["total_epochs"]),
                "latest_metrics": {k: v for k, v in last.items() if k != "time"}, "update_time": _now()})
            if updated == 0:
                raise NotFound(f"training job {name} not found")

        def flush() -> None:
            if logs or points:
                self._journal.append(name, logs=list(logs), points=list(points), in_transaction=progress)
                try:
                    self._metric_alerts(name, points)
                except Exception:  # an alert must never fail the job it reports on
                    log.exception("checking the metric alerts of %s failed", name)
                logs.clear()
                points.clear()

        for kind, payload in batch:
            if kind == "log":
                logs.extend((level, message, "worker", epoch) for level, message, epoch in payload)
                continue
            if kind == "metrics":
                if int(payload.get("epoch", 0)) > handle.recorded_epoch:
                    points.append(payload)
                continue
            flush()  # keep order: what came before a state change is recorded before it
            self._record(handle, kind, payload)
        flush()

    def _metric_alerts(self, name: str, points: list[dict[str, Any]]) -> None:
        """The job's metric alert rules see each recorded point (its metrics and extra ones)."""
        if self.alerts is None:
            return
        if name not in self._alert_rules:
            row = self.get_job(name)
            rules = [r for r in (row.spec or {}).get("alerts") or [] if r.get("metric")]
            self._alert_rules[name] = (row.project, rules)
        project, rules = self._alert_rules[name]
        for point in points if rules else ():
            values = {**(point.get("extra") or {}), **{k: v for k, v in point.items()
                                                       if isinstance(v, (int, float)) and not isinstance(v, bool)}}
            values.update({alias: values[key] for alias, key in ALIASES.items() if key in values})
            self.alerts.metric_values(project, name, rules, values, epoch=point.get("epoch", 0))

    def _record(self, handle: WorkerHandle, kind: str, payload: dict[str, Any]) -> None:
        """Store what a worker reports. Outcomes change the job's state only in _on_exit, once the
        process is gone, so a PAUSED or COMPLETED job never still has a worker."""
        name = handle.job
        if kind == "started":
            with self._db.session() as s:
                row = self._row(s, name)
                row.total_epochs = payload["total_epochs"]
                row.framework_versions = payload["versions"]
                row.update_time = _now()
            self._bus.publish(name)
        elif kind in ("checkpoint", "paused"):
            with self._db.session() as s:
                row = self._row(s, name)
                row.checkpoint = payload
                row.update_time = _now()
                keep = row.spec.get("checkpoints", {}).get("keep_last") or 3
            pruned = _prune_checkpoints(Path(payload["path"]).parent, int(payload["epoch"]), keep)
            for path in pruned if not self.store.local else ():
                self.store.discard(self.store.uri(self._checkpoint_key(path)))
        elif kind == "cross_validation":  # its folds are done; the final model may still be training
            with self._db.session() as s:
                row = self._row(s, name)
                row.model_info = {**(row.model_info or {}), "cross_validation": payload}
                row.update_time = _now()
            self._bus.publish(name)
        elif kind == "completed":
            with self._db.session() as s:
                row = self._row(s, name)
                row.artifacts = payload["artifacts"]
                row.test_metrics = payload["test_metrics"]
                row.model_info = payload["model_info"]
                row.current_epoch = payload["epoch"]
        if kind in ("paused", "completed", "failed", "cancelled"):
            handle.outcome = (kind, payload)

    def _apply_outcome(self, name: str, kind: str, payload: dict[str, Any]) -> None:
        if kind == "paused":
            row = self.get_job(name)
            if row.state == states.CANCELLING:  # cancelled while it was pausing: the cancel wins
                self._finish(name, states.CANCELLED, f"cancelled after epoch {payload['epoch']}")
                return
            self._journal.log(name, f"paused: checkpoint of epoch {payload['epoch']} written")
            with self._db.session() as s:
                row = self._row(s, name)
                if row.state in (states.PAUSING, states.RUNNING):
                    self._set_state(row, states.PAUSED,
                                    f"paused after epoch {payload['epoch']}; ResumeTraining continues from there")
        elif kind == "completed":
            reason = payload.get("stop_reason")
            if self._models is not None:
                # Registered before the job shows COMPLETED, so a completed job always names its version.
                version = self._models.register(self.get_job(name))
                with self._db.session() as s:
                    row = self._row(s, name)
                    row.model_info = {**(row.model_info or {}), "model_version": version.name}
                self._journal.log(name, f"registered as {version.name}")
            self._finish(name, states.COMPLETED,
                         f"completed after epoch {payload['epoch']}" + (f" ({reason})" if reason else ""))
        elif kind == "failed":
            self._finish(name, states.FAILED, f"failed: {payload['message']}", error=payload)
        elif kind == "cancelled":
            self._finish(name, states.CANCELLED, f"cancelled after epoch {payload['epoch']}")

    def _on_exit(self, handle: WorkerHandle) -> None:
        # Under the trainer lock: pause and cancel read and write the same row under it, so a
        # user's request can never overwrite the outcome recorded here (or the reverse).
        try:
            with self._lock:
                if self._workers.get(handle.job) is handle:  # a resumed job may already have a new worker
                    del self._workers[handle.job]
                try:
                    self._threads.remove(threading.current_thread())
                except ValueError:
                    pass
                self._settle(handle)
        finally:
            self.dispatch()

    def _settle(self, handle: WorkerHandle) -> None:
        """Give the job of an exited worker its truthful state."""
        # A worker stopped for its timeout or memory limit fails, whatever it reported last.
        if handle.outcome is not None and handle.kill_reason not in ("timeout", "memory"):
            self._apply_outcome(handle.job, *handle.outcome)
        code = handle.exitcode
        row = self.get_job(handle.job)
        if row.state in states.FINAL or row.state in (states.PENDING, states.PAUSED) or handle.job in self._workers:
            return
        if handle.timed_out:
            limit = handle.timeout_seconds
            self._finish(handle.job, states.FAILED, f"failed: the job exceeded its timeout of {limit:g} s",
                         error={"code": "DEADLINE_EXCEEDED",
                                "message": f"the job exceeded its timeout of {limit:g} seconds "
                                           "(resources.timeout); raise it or train for fewer epochs"})
        elif handle.kill_reason == "memory":
            message = self._memory_message(row, handle)
            self._finish(handle.job, states.FAILED, f"failed: {message}",
                         error={"code": "RESOURCE_EXHAUSTED", "message": message})
        elif row.state == states.CANCELLING:
            self._finish(handle.job, states.CANCELLED, "cancelled: the worker was stopped")
        elif handle.kill_reason == "shutdown":
            with self._db.session() as s:
                r = self._row(s, handle.job)
                self._set_state(r, states.PAUSED, self._interrupted_message(r, "the server shut down"))
        elif not self._retry(handle, row, code):
            why = handle.failure or _worker_death(code)
            used = row.worker_retries or 0
            if used and not handle.failure:
                why += f"; it was retried {used} time{'s' * (used > 1)}, all that " \
                       "training_config.retry_policy.max_retries allows"
            self._finish(handle.job, states.FAILED, f"failed: {why}", error={"code": "INTERNAL", "message": why})

    def _memory_message(self, row: TrainingJobRow, handle: WorkerHandle) -> str:
        asked = row.spec.get("resources", {}).get("memory") or ""
        limit = f"{asked} (resources.memory)" if asked else \
            f"{_mib(handle.memory_limit)} (the server's default; set resources.memory to change it)"
        return (f"the job exceeded its memory limit of {limit}: peak {_mib(handle.peak_memory)}; "
                "raise resources.memory or use less data")

    def _retry(self, handle: WorkerHandle, row: TrainingJobRow, code: int | None) -> bool:
        """Queue the job of a worker that died of a signal nobody here sent again, when its retry
        policy has retries left; it resumes after its checkpoint, or from the first epoch."""
        if handle.failure or handle.kill_reason or code is None or code >= 0 or row.state != states.RUNNING:
            return False  # only unexplained deaths: not our kills, not exits, not user requests
        message = self._retry_message(row, _signal_name(code))
        if message is None:
            return False
        self._journal.log(handle.job, message, "warning")
        with self._db.session() as s:
            self._requeue(self._row(s, handle.job), message, retry=True)
        return True

    @staticmethod
    def _retry_message(row: TrainingJobRow, cause: str) -> str | None:
        """What a retry of the job says (its log line and state message), or None when its
        retry policy has no retry left."""
        allowed = TrainingSpec.from_dict(row.spec).retry_policy.max_retries
        used = row.worker_retries or 0
        if used >= allowed:
            return None
        epoch = (row.checkpoint or {}).get("epoch", 0)
        where = f"from checkpoint epoch {epoch}" if epoch else "from the first epoch (no checkpoint was written)"
        return f"worker died ({cause}); retrying {where} (retry {used + 1} of {allowed})"

    def _requeue(self, row: TrainingJobRow, message: str, retry: bool = False) -> None:
        """Back to the queue after its worker died (with the server, or alone): it resumes after
        its checkpoint, and dispatch drops the metrics of the epochs it trains again. `retry`:
        this uses one of its retry policy's retries."""
        if retry:
            row.worker_retries = (row.worker_retries or 0) + 1
        self._set_state(row, states.PENDING, message, after_crash=True)

    def _finish(self, name: str, state: str, message: str, error: dict[str, Any] | None = None) -> None:
        if self.get_job(name).state in states.FINAL:
            return
        # Logged before the state changes: streams end once they see a final state, so
        # nothing may be appended after it (the alerts it fires included).
        self._journal.log(name, message, "error" if state == states.FAILED else "info")
        for rule in firing(self.get_job(name).spec.get("alerts"), state) if self.alerts is not None else ():
            self._journal.log(name, state_line(rule, name, state, message),
                              "warning" if state == states.FAILED else "info")
        with self._db.session() as s:
            row = self._row(s, name)
            if row.state in states.FINAL:
                return
            self._set_state(row, state, message, alerts_logged=True)
            row.end_time = _now()
            if error is not None:
                row.error = {"code": error.get("code", "INTERNAL"), "message": error.get("message", "")}

    # ----- helpers

    @staticmethod
    def _row(session, name: str) -> TrainingJobRow:
        row = session.get(TrainingJobRow, name)
        if row is None:
            raise NotFound(f"training job {name} not found")
        return row

    def _set_state(self, row: TrainingJobRow, state: str, message: str, *, after_crash: bool = False,
                   alerts_logged: bool = False) -> None:
        # after_crash: _requeue queues a job whose worker died (with the previous server, or
        # alone and retried) again, a move (RUNNING -> PENDING) no request may make.
        if row.state != state and not after_crash:
            states.check_transition(row.name, row.state, state)
        rules = (row.spec or {}).get("alerts")
        if rules and self.alerts is not None and row.state != state:
            _after_commit(row, partial(self.alerts.state_changed, row.project, row.name, rules, state, message,
                                       logged=alerts_logged, epoch=row.current_epoch))
        if state in states.FINAL and self.alerts is not None:
            _after_commit(row, partial(self.alerts.forget, row.name))
            self._alert_rules.pop(row.name, None)
        row.state = state
        row.state_message = message
        row.update_time = _now()
        # Watchers are woken after the commit (Database.session), so they read the new state.
        session = object_session(row)
        if session is None:
            self._bus.publish(row.name)
        else:
            session.info.setdefault("publish", set()).add(row.name)

    def running_jobs(self) -> list[str]:
        with self._lock:
            return list(self._workers)

    def worker_resources(self) -> list[WorkerResources]:
        """Each running worker's resources, read now (see WorkerResources)."""
        with self._lock:
            handles = list(self._workers.values())
        if not handles:
            return []
        with self._db.session() as s:
            latest = dict(s.execute(select(TrainingJobRow.name, TrainingJobRow.latest_metrics)
                                    .where(TrainingJobRow.name.in_([h.job for h in handles]))).all())
        found = []
        for handle in handles:
            usage = (latest.get(handle.job) or {}).get("resource_usage") or {}
            gpu = usage.get("gpu_present", False)
            gpu_usage, gpu_memory = (usage.get("gpu_usage"), usage.get("gpu_memory")) if gpu else (None, None)
            if not handle.local:
                found.append(WorkerResources(handle.job, None, usage.get("memory_usage"), gpu_usage, gpu_memory))
                continue
            cpu, memory = 0.0, 0
            for i, process in enumerate(handle.tree()):
                try:
                    times = process.cpu_times()
                    # The worker's own figure includes the children it has already waited for.
                    cpu += times.user + times.system + (times.children_user + times.children_system if i == 0 else 0)
                    memory += process.memory_info().rss
                except psutil.Error:  # exited between the listing and the reading
                    pass
            found.append(WorkerResources(handle.job, cpu, memory, gpu_usage, gpu_memory))
        return found

    def count_by_state(self) -> dict[str, int]:
        with self._db.session() as s:
            return dict(s.execute(select(TrainingJobRow.state, func.count()).group_by(TrainingJobRow.state)).all())


# What each recorded epoch changes in its job's row (Journal.append's transaction).
_PROGRESS = (update(TrainingJobRow).where(TrainingJobRow.name == bindparam("job_name"))
             .values(current_epoch=bindparam("current_epoch"), total_epochs=bindparam("total_epochs"),
                     latest_metrics=bindparam("latest_metrics"), update_time=bindparam("update_time")))


def _prune_checkpoints(directory: Path, recorded_epoch: int, keep: int) -> list[Path]:
    """Keep the newest `keep` periodic checkpoints up to the one just recorded; delete older ones.

    Done here, once the checkpoint is recorded, rather than by the worker: the recorded one is
    where a restarted server resumes, and a worker orphaned by a killed server writes (and used
    to prune) a few more before it notices. Newer files than the recorded one are left alone:
    they are such a worker's, and the resumed job writes the same epochs over them."""
    recorded = []
    for path in directory.glob("epoch-*.ckpt"):
        try:
            epoch = int(path.stem.split("-", 1)[1])
        except ValueError:
            continue
        if epoch <= recorded_epoch:
            recorded.append((epoch, path))
    pruned = [path for _, path in sorted(recorded)[:-max(1, keep)]]
    for path in pruned:
        path.unlink(missing_ok=True)
    return pruned
