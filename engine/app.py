"""The engine assembled: database, bus, journal, data manager, trainer, pipelines, tuning.

This is the one object the server holds, and what a Python application uses to train in its
own process without a server (docs/embedding.md):

    from engine import Engine, EngineSettings

    with Engine(EngineSettings(data_dir="./forge-data")) as forge:
        data = forge.data.create_dataset("default", "churn", {"source_uri": "churn.csv", "label_column": "churned"})
        job = forge.start_training({"modelType": "classification", ...})
        for point in forge.watch_metrics(job.name):
            print(point["epoch"], point["validation_loss"])

`trainer` (ModelTrainer), `data` (DataManager), `pipelines` (PipelineManager), `models`
(ModelRegistry) and `tuning` (TuningManager) are the very objects the gRPC servicers call;
the methods below add what a Python caller needs on top: requests as dicts read exactly as
the server reads them, bare ids, blocking iterators over metrics and logs, a verified copy
of an export. Errors are the engine's (engine.errors), each with the gRPC code the server
would answer. Nothing here knows about gRPC.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from engine import names
from engine.alerts.dispatcher import Alerts
from engine.data.ingest import IngestLimits
from engine.data.manager import DEFAULT_MAX_UPLOAD_BYTES, DataManager
from engine.errors import InvalidArgument
from engine.jobs import states
from engine.jobs.request import spec_from_request
from engine.jobs.spec import TrainingSpec
from engine.jobs.supervisor import main_script
from engine.jobs.trainer import ModelTrainer, TrainerSettings
from engine.monitor import metrics_export
from engine.models.evaluation import ModelEvaluator
from engine.models.inspect import inspect_isolated
from engine.models.registry import LoadPolicy, ModelRegistry
from engine.monitor.bus import Bus
from engine.monitor.follow import WAKE_SECONDS, follow
from engine.monitor.journal import LEVELS, Journal
from engine.monitor.tensorboard import TensorBoardLogs
from engine.storage.artifacts import ArtifactStore, StorageConfig
from engine.pipelines.manager import PipelineManager
from engine.tuning.manager import TuningManager
from engine.store.database import Database
from engine.store.models import TrainingJobRow
from engine.tenancy import DEFAULT_PROJECT


# Idle warm workers cost little memory of their own (they share the warm template's pages), but
# each is a process; beyond a few, jobs arriving together are rare enough to fork on demand.
DEFAULT_MAX_WARM_WORKERS = 4


@dataclass
class EngineSettings:
    data_dir: Path
    database_url: str = ""  # empty: SQLite file in the data dir
    max_concurrent_jobs: int = 2
    # Idle warm workers kept ready (engine/jobs/supervisor.py); None: one per job slot, at
    # most DEFAULT_MAX_WARM_WORKERS; 0: every job starts in a freshly spawned process.
    warm_workers: int | None = None
    # Where jobs' workers run (engine/jobs/executors.py): "local" processes, or "ray" tasks on
    # the cluster at ray_address ("auto": the cluster this machine belongs to).
    executor: str = "local"
    ray_address: str = ""
    # False: datasets, models and job history are served, but nothing trains and no worker
    # process starts (the seed's TrainingConfiguration.enabled).
    training_enabled: bool = True
    # Where checkpoints live (one folder per project); None: <data_dir>/checkpoints.
    checkpoint_dir: Path | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    default_timeout_seconds: float = 0.0
    default_memory_limit_bytes: int = 0  # for jobs without resources.memory; 0: no limit
    # For jobs whose resources leave them unset: a CPU request ("2", "500m"), GPUs, priority.
    default_cpu: str = ""
    default_gpu: int = 0
    default_priority: int = 0
    # Training callbacks jobs may name: type name -> "module:Class" (engine/callbacks/registry.py).
    callbacks: dict[str, str] = field(default_factory=dict)
    # Alert deliveries to webhooks: the first retry's delay (doubling after), and attempts in all.
    alert_retry_seconds: float = 1.0
    alert_max_attempts: int = 6
    # Whether alert webhooks may be on loopback, private or link-local addresses.
    alert_private_webhooks: bool = True
    storage: StorageConfig = field(default_factory=StorageConfig)
    load_policy: LoadPolicy = field(default_factory=LoadPolicy)
    # Folders CreateDataset and data sources may read local files (and SQLite databases) from;
    # None: any path the server's user can read, () none at all (engine/data/locations.py).
    data_roots: tuple[str, ...] | None = None
    # Columns, record size and decompressed size a file must stay within to become a dataset.
    ingest_limits: IngestLimits = field(default_factory=IngestLimits)

    def resolved_warm_workers(self) -> int:
        if self.executor != "local" or not self.training_enabled:
            return 0  # warm workers are local processes; a Ray cluster starts its own
        if self.warm_workers is None:
            return min(self.max_concurrent_jobs, DEFAULT_MAX_WARM_WORKERS)
        return self.warm_workers

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'forge.db').resolve()}"


def _check_process_can_train(settings: EngineSettings) -> None:
    """Refuse, saying what to change, the two ways a Python program cannot host worker processes.

    Workers are started with multiprocessing's "spawn" (and the warm template's fork server),
    which import the program's main script again in each new process, as `__mp_main__`: code
    outside `if __name__ == "__main__":` runs there too, and an Engine built by it would start
    jobs from inside a worker. multiprocessing marks a process that is still importing its
    parent's main module with `_inheriting` (what its own "bootstrapping phase" error checks).
    A program read from standard input has no script to import, so no worker could start."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise RuntimeError("an Engine is being created while a worker process imports the program's main script: "
                           "keep the code that creates it under `if __name__ == \"__main__\":` (docs/embedding.md)")
    main_path = main_script()
    if settings.training_enabled and settings.executor == "local" and main_path and not os.path.exists(main_path):
        raise RuntimeError(f"worker processes cannot start from a program read from {main_path}: save it to a file "
                           "(or run it with python -c), or build the Engine with training_enabled=False")


class Engine:
    def __init__(self, settings: EngineSettings):
        _check_process_can_train(settings)
        if settings.max_concurrent_jobs < 1:
            raise ValueError("max_concurrent_jobs must be at least 1")
        if not 0 <= settings.resolved_warm_workers() <= settings.max_concurrent_jobs:
            raise ValueError(f"warm_workers must be between 0 and max_concurrent_jobs "
                             f"({settings.max_concurrent_jobs}), got {settings.warm_workers}")
        settings.data_dir = Path(settings.data_dir)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.bus = Bus()
        self.db = Database(settings.resolved_database_url(), on_commit=self.bus.publish)
        self.journal = Journal(self.db, self.bus, TensorBoardLogs(settings.data_dir / "tensorboard"))
        self.storage = ArtifactStore(settings.storage, settings.data_dir)
        self.data = DataManager(self.db, settings.data_dir, settings.max_upload_bytes,
                                data_roots=settings.data_roots, limits=settings.ingest_limits, store=self.storage)
        self.models = ModelRegistry(self.db, self.storage, settings.load_policy, inspect_isolated,
                                    settings.data_dir / "tmp")
        self.trainer = ModelTrainer(
            self.db,
            self.journal,
            self.bus,
            self.data,
            TrainerSettings(
                data_dir=settings.data_dir,
                max_concurrent_jobs=settings.max_concurrent_jobs,
                default_timeout_seconds=settings.default_timeout_seconds,
                default_memory_limit_bytes=settings.default_memory_limit_bytes,
                warm_workers=settings.resolved_warm_workers(),
                executor=settings.executor,
                ray_address=settings.ray_address,
                enabled=settings.training_enabled,
                checkpoint_dir=settings.checkpoint_dir,
                default_cpu=settings.default_cpu,
                default_gpu=settings.default_gpu,
                default_priority=settings.default_priority,
                callbacks=dict(settings.callbacks),
            ),
            self.models,
            self.storage,
        )

        self.evaluator = ModelEvaluator(self.trainer, self.models, self.data, self.storage, settings.data_dir / "tmp")
        self.tuning = TuningManager(self.db, self.trainer, self.journal)
        # Custom stage functions come from the configuration (ServerConfig.pipeline_functions).
        self.pipelines = PipelineManager(self.db, self)
        # Alerts of jobs, executions and tuning jobs: to their logs, and POSTed to webhooks.
        self.alerts = Alerts(self.db, log_to=self._log_alert, retry_base=settings.alert_retry_seconds,
                             max_attempts=settings.alert_max_attempts,
                             private_targets=settings.alert_private_webhooks)
        self.trainer.alerts = self.tuning.alerts = self.pipelines.alerts = self.alerts
        # Pipelines with a dataset-created trigger hear of every new dataset.
        self.data.on_created.append(self.pipelines.dataset_created)

    def start(self) -> None:
        self.db.create_schema()
        if self.settings.training_enabled:
            self.trainer.executor.start()  # a Ray cluster that cannot be reached stops the start, saying so
        self.data.sweep()
        self.trainer.recover()
        self.tuning.recover()
        self.pipelines.recover()
        self.alerts.start()  # with the deliveries a previous process left pending

    def shutdown(self, grace_seconds: float = 10.0) -> None:
        """Running jobs checkpoint and pause (workers still busy after `grace_seconds` are
        killed); a later start on the same data dir and database resumes them."""
        self.tuning.shutdown()  # first: a stopping controller must not resume the trials pausing now
        self.pipelines.shutdown()
        self.trainer.shutdown(grace_seconds)
        self.alerts.shutdown()  # what is still pending is sent by the next start
        self.db.close()

    # ----- in-process use

    def __enter__(self) -> "Engine":
        try:
            self.start()
        except BaseException:  # e.g. a database refused: close what the constructor opened
            self.shutdown(0)
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.shutdown()

    def start_training(self, request: Mapping[str, Any] | TrainingSpec, job_id: str = "",
                       project: str = DEFAULT_PROJECT) -> TrainingJobRow:
        """Queue a job. `request` is a TrainingRequest in its JSON form (the dict the SDKs and
        the CLI take: camelCase or snake_case keys, short enum names) or a TrainingSpec;
        `job_id` is generated when empty. Raises InvalidArgument naming a bad field."""
        spec = request if isinstance(request, TrainingSpec) else spec_from_request(request)
        return self.trainer.start_training(project, job_id, spec)

    def job(self, job: str, project: str = DEFAULT_PROJECT) -> TrainingJobRow:
        """A training job by name or bare id."""
        return self.trainer.get_job(self._job_name(job, project))

    def wait(self, job: str, timeout: float | None = None, project: str = DEFAULT_PROJECT) -> TrainingJobRow:
        """The job once it is COMPLETED, FAILED or CANCELLED; TimeoutError after `timeout` seconds."""
        name = self._job_name(job, project)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            version = self.bus.version(name)
            row = self.trainer.get_job(name)
            if row.state in states.FINAL:
                return row
            left = WAKE_SECONDS if deadline is None else min(WAKE_SECONDS, deadline - time.monotonic())
            if left <= 0:
                raise TimeoutError(f"job {name} is still {row.state} after {timeout} s")
            self.bus.wait_blocking(name, version, left)

    def watch_metrics(self, job: str, from_sequence: int = 0, follow_job: bool = True,
                      project: str = DEFAULT_PROJECT) -> Iterator[dict[str, Any]]:
        """The job's metric points after `from_sequence` (each a dict with "sequence", "epoch",
        "training_loss", "validation_loss", ...), then, with `follow_job`, each new one as it is
        recorded, until the job ends."""
        name = self._job_name(job, project)

        def fetch(after: int, limit: int) -> tuple[list[dict[str, Any]], int]:
            points = self.journal.metrics_after(name, after, limit)
            return points, points[-1]["sequence"] if points else after

        return follow(self.bus, name, fetch, self._state_of, from_sequence, follow_job)

    def logs(self, job: str, from_sequence: int = 0, follow_job: bool = False, min_level: str = "debug",
             contains: str = "", project: str = DEFAULT_PROJECT) -> Iterator[dict[str, Any]]:
        """The job's log entries ("sequence", "time", "level", "message", "source", "epoch") after
        `from_sequence` at `min_level` or above and containing `contains`; with `follow_job`,
        new ones as they come, until the job ends."""
        name = self._job_name(job, project)
        if min_level not in LEVELS:
            raise InvalidArgument.field("min_level", f"{min_level!r}: use one of {', '.join(LEVELS)}")

        def fetch(after: int, limit: int) -> tuple[list[dict[str, Any]], int]:
            return self.journal.logs_after(name, after, limit, LEVELS[min_level], contains)

        return follow(self.bus, name, fetch, self._state_of, from_sequence, follow_job)

    def export_metrics(self, job: str, fmt: str = "json", project: str = DEFAULT_PROJECT) -> Iterator[bytes]:
        """The job's whole metric history as a JSON or CSV document ("json", "csv"), in chunks
        (engine/monitor/metrics_export.py says what the documents hold)."""
        name = self._job_name(job, project)
        self.trainer.get_job(name)  # NotFound for an unknown job
        return metrics_export.export_metrics(name, partial(self.journal.metrics_after, name), fmt)

    def export_model(self, name: str, fmt: str, dest: str | os.PathLike,
                     project: str = DEFAULT_PROJECT) -> dict[str, Any]:
        """Copy a job's (or a model version's) export in `fmt` ("onnx", "pickle", "torch",
        "savedmodel", "xgboost_json", as its framework offers) to the file `dest`, checked
        against its recorded sha256 as it is written. Returns the artifact's record (uri,
        sha256, size_bytes, and for ONNX its inputs and outputs)."""
        if "/models/" in name:
            _, info = self.models.artifact(name, fmt, check=False)
        else:
            _, info = self.trainer.artifact(self._job_name(name, project), fmt, check=False)
        self.storage.download(info, dest)  # DataLoss, and no file, when the bytes changed
        return info

    def _log_alert(self, resource: str, message: str, level: str) -> None:
        """An alert, in the log of the training job it is about (executions have them in their
        events already, written with the state change; tuning jobs have no log: the server's)."""
        if "/trainingJobs/" in resource:
            self.journal.log(resource, message, level)

    def _job_name(self, job: str, project: str) -> str:
        return names.resolve(job, "trainingJobs", "job", project)

    def _state_of(self, name: str) -> str:
        return self.trainer.get_job(name).state
