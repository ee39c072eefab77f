"""The engine assembled: database, bus, journal, data manager and trainer.

This is the one object the server holds. Nothing here knows about gRPC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.data.ingest import IngestLimits
from engine.data.manager import DEFAULT_MAX_UPLOAD_BYTES, DataManager
from engine.jobs.trainer import ModelTrainer, TrainerSettings
from engine.models.evaluation import ModelEvaluator
from engine.models.inspect import inspect_isolated
from engine.models.registry import LoadPolicy, ModelRegistry
from engine.monitor.bus import Bus
from engine.monitor.journal import Journal
from engine.monitor.tensorboard import TensorBoardLogs
from engine.storage.artifacts import ArtifactStore, StorageConfig
from engine.pipelines.manager import PipelineManager
from engine.tuning.manager import TuningManager
from engine.store.database import Database


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


class Engine:
    def __init__(self, settings: EngineSettings):
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
            ),
            self.models,
            self.storage,
        )

        self.evaluator = ModelEvaluator(self.trainer, self.models, self.data, self.storage, settings.data_dir / "tmp")
        self.tuning = TuningManager(self.db, self.trainer, self.journal)
        # Custom stage functions come from the configuration (ServerConfig.pipeline_functions).
        self.pipelines = PipelineManager(self.db, self)

    def start(self) -> None:
        self.db.create_schema()
        if self.settings.training_enabled:
            self.trainer.executor.start()  # a Ray cluster that cannot be reached stops the start, saying so
        self.data.sweep()
        self.trainer.recover()
        self.tuning.recover()
        self.pipelines.recover()

    def shutdown(self, grace_seconds: float = 10.0) -> None:
        self.tuning.shutdown()  # first: a stopping controller must not resume the trials pausing now
        self.pipelines.shutdown()
        self.trainer.shutdown(grace_seconds)
        self.db.close()
