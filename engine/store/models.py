"""SQLAlchemy tables of the metadata store.

Every row carries its project (tenant) from the first table on, and every resource
is keyed by its full resource name. Structured parts (specs, schemas, statistics)
are JSON columns: they are read and written whole, never queried inside.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, DateTime, Float, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class DatasetRow(Base):
    __tablename__ = "datasets"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    project: Mapped[str] = mapped_column(String(63), index=True)
    display_name: Mapped[str] = mapped_column(String(255), default="")
    type: Mapped[str] = mapped_column(String(32), default="tabular")
    source_uri: Mapped[str] = mapped_column(Text, default="")
    label_column: Mapped[str] = mapped_column(String(255), default="")
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    row_count: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer, default=1)
    schema: Mapped[dict] = mapped_column(JSON)
    statistics: Mapped[dict] = mapped_column(JSON)
    lineage: Mapped[dict] = mapped_column(JSON)
    labels: Mapped[dict] = mapped_column(JSON, default=dict)
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TrainingJobRow(Base):
    __tablename__ = "training_jobs"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    project: Mapped[str] = mapped_column(String(63), index=True)
    spec: Mapped[dict] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), index=True)
    state_message: Mapped[str] = mapped_column(Text, default="")
    # {"code": "INVALID_ARGUMENT", "message": "..."} when FAILED.
    error: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    start_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    end_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    update_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    current_epoch: Mapped[int] = mapped_column(Integer, default=0)
    total_epochs: Mapped[int] = mapped_column(Integer, default=0)
    # The checkpoint a resume continues from: {"epoch", "path", "sha256", "size_bytes", "tracker"}.
    checkpoint: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    latest_metrics: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    test_metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    # {"onnx": {"path", "sha256", "size_bytes"}, ...} written when the job completes.
    artifacts: Mapped[dict] = mapped_column(JSON, default=dict)
    framework_versions: Mapped[dict] = mapped_column(JSON, default=dict)
    # {"features": [...], "classes": [...]}: what an inference engine needs to feed the model.
    model_info: Mapped[dict] = mapped_column(JSON, default=dict)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    # Retries its retry policy has used after its worker died (kept here so that a server
    # restart does not hand out fresh ones).
    worker_retries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (Index("ix_training_jobs_queue", "state", "priority", "create_time"),)


class MetricPointRow(Base):
    __tablename__ = "metric_points"

    job: Mapped[str] = mapped_column(String(255), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    epoch: Mapped[int] = mapped_column(Integer)
    # The TrainingMetrics fields other than sequence and time.
    values: Mapped[dict] = mapped_column(JSON)
    # The whole point as the server streams it (its TrainingMetrics encoding, made by the
    # server's Journal.encode_metric when it was recorded), so a replay of a long history sends
    # stored bytes instead of decoding and re-encoding every point. NULL for points recorded
    # before revision 0004 or without an encoder: those are encoded from `values` when read.
    wire: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, default=None)


class LogEntryRow(Base):
    __tablename__ = "log_entries"

    job: Mapped[str] = mapped_column(String(255), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Numeric so "level >= WARNING" filters in SQL: 10 debug, 20 info, 30 warning, 40 error.
    level: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    epoch: Mapped[int] = mapped_column(Integer, default=0)




class DataSourceRow(Base):
    __tablename__ = "data_sources"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    project: Mapped[str] = mapped_column(String(63), index=True)
    display_name: Mapped[str] = mapped_column(String(255), default="")
    type: Mapped[str] = mapped_column(String(32))
    uri: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(32), default="")
    query: Mapped[str] = mapped_column(Text, default="")
    options: Mapped[dict] = mapped_column(JSON, default=dict)
    # Secrets: read only when the source is loaded; never returned by an RPC, never logged.
    credentials: Mapped[dict] = mapped_column(JSON, default=dict)
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DataPipelineRow(Base):
    __tablename__ = "data_pipelines"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    project: Mapped[str] = mapped_column(String(63), index=True)
    display_name: Mapped[str] = mapped_column(String(255), default="")
    validation: Mapped[dict] = mapped_column(JSON, default=dict)
    processing: Mapped[dict] = mapped_column(JSON, default=dict)
    fit_dataset: Mapped[str] = mapped_column(String(255))
    # Every step's learned parameters (engine/data/processing.py), applied unchanged by RunDataPipeline.
    fitted: Mapped[dict] = mapped_column(JSON, default=dict)
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ModelVersionRow(Base):
    __tablename__ = "model_versions"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    project: Mapped[str] = mapped_column(String(63), index=True)
    model_id: Mapped[str] = mapped_column(String(63), index=True)
    version: Mapped[int] = mapped_column(Integer)
    framework: Mapped[str] = mapped_column(String(32))
    model_type: Mapped[str] = mapped_column(String(32))
    framework_versions: Mapped[dict] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    training_job: Mapped[str] = mapped_column(String(255), default="")
    datasets: Mapped[list] = mapped_column(JSON, default=list)
    # The job's artifacts ({"onnx": {"path", "sha256", "size_bytes"}, ...}) and model info.
    artifacts: Mapped[dict] = mapped_column(JSON, default=dict)
    model_info: Mapped[dict] = mapped_column(JSON, default=dict)
    stage: Mapped[str] = mapped_column(String(16), default="")
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_model_versions_model", "project", "model_id", "version", unique=True),
        # At most one production version per model, whatever process writes (a partial index:
        # SQLite and PostgreSQL both have them).
        Index("ix_model_versions_production", "project", "model_id", unique=True,
              sqlite_where=text("stage = 'production'"), postgresql_where=text("stage = 'production'")),
    )


class WrittenArtifactRow(Base):
    """The sha256 of every artifact this service wrote (job exports, SaveModel copies).

    LoadModel trusts a pickle only when its bytes are among these: a pickle runs code when
    it is loaded, so a file from anywhere else needs the server's explicit permission.
    """

    __tablename__ = "written_artifacts"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    format: Mapped[str] = mapped_column(String(32))
    # The job whose model the bytes are; its model info describes a loaded copy.
    training_job: Mapped[str] = mapped_column(String(255), default="")
    uri: Mapped[str] = mapped_column(Text, default="")
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TuningJobRow(Base):
    """A hyperparameter search. Its trials are ordinary training jobs; the search itself is
    rebuilt from the trial rows after a restart."""

    __tablename__ = "tuning_jobs"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    project: Mapped[str] = mapped_column(String(63), index=True)
    # The TuningSpec: the base request in the proto's JSON form, the parsed search space, the rest.
    spec: Mapped[dict] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    state_message: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    best_trial_id: Mapped[str] = mapped_column(String(63), default="")
    last_event: Mapped[int] = mapped_column(Integer, default=0)
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    start_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    end_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class TuningTrialRow(Base):
    __tablename__ = "tuning_trials"

    tuning_job: Mapped[str] = mapped_column(String(255), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    parameters: Mapped[dict] = mapped_column(JSON)
    # The canonical JSON of the parameters: the same values never run twice.
    parameters_key: Mapped[str] = mapped_column(Text)
    training_job: Mapped[str] = mapped_column(String(255), default="")
    state: Mapped[str] = mapped_column(String(16))
    state_message: Mapped[str] = mapped_column(Text, default="")
    objective_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Objective value by epoch, as reported to the pruner ({"1": 0.52, ...}).
    intermediate: Mapped[dict] = mapped_column(JSON, default=dict)
    model_version: Mapped[str] = mapped_column(String(255), default="")
    epochs_trained: Mapped[int] = mapped_column(Integer, default=0)


class TuningEventRow(Base):
    __tablename__ = "tuning_events"

    tuning_job: Mapped[str] = mapped_column(String(255), primary_key=True)
    sequence: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(32))
    # The trial as it was when the event happened (empty for events about the whole job).
    trial: Mapped[dict] = mapped_column(JSON, default=dict)
    job_state: Mapped[str] = mapped_column(String(16))


class PipelineRow(Base):
    __tablename__ = "pipelines"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    project: Mapped[str] = mapped_column(String(63), index=True)
    display_name: Mapped[str] = mapped_column(String(255), default="")
    # The StageConfigs in the proto's JSON form (snake_case), as given.
    stages: Mapped[list] = mapped_column(JSON)
    timeout_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    template: Mapped[str] = mapped_column(String(255), default="")
    labels: Mapped[dict] = mapped_column(JSON, default=dict)
    # {"cron" | "interval_seconds", "timezone", "input", "paused"}; empty without a schedule.
    schedule: Mapped[dict] = mapped_column(JSON, default=dict)
    next_run_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # AlertRules of its executions and PipelineTriggers, in the proto's JSON form (snake_case;
    # secrets as given: the API never returns them).
    alerts: Mapped[list] = mapped_column(JSON, default=list)
    triggers: Mapped[list] = mapped_column(JSON, default=list)


class PipelineTemplateRow(Base):
    __tablename__ = "pipeline_templates"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    project: Mapped[str] = mapped_column(String(63), index=True)
    display_name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    stages: Mapped[list] = mapped_column(JSON)
    parameters: Mapped[list] = mapped_column(JSON)
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PipelineExecutionRow(Base):
    """One run of a pipeline. `stages` holds each stage's state, attempt, outputs, error and
    the handles a running attempt remembered (e.g. its training job), so a restarted server
    re-attaches instead of starting the work again."""

    __tablename__ = "pipeline_executions"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    project: Mapped[str] = mapped_column(String(63), index=True)
    pipeline: Mapped[str] = mapped_column(String(255), index=True)
    # The pipeline's stages and timeout when the execution started: later edits don't touch it.
    snapshot: Mapped[dict] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    state_message: Mapped[str] = mapped_column(Text, default="")
    input: Mapped[dict] = mapped_column(JSON, default=dict)
    stages: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    trigger: Mapped[str] = mapped_column(String(80), default="manual")
    last_event: Mapped[int] = mapped_column(Integer, default=0)
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ExecutionEventRow(Base):
    __tablename__ = "pipeline_execution_events"

    execution: Mapped[str] = mapped_column(String(255), primary_key=True)
    sequence: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    type: Mapped[str] = mapped_column(String(32))
    stage_id: Mapped[str] = mapped_column(String(63), default="")
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    execution_state: Mapped[str] = mapped_column(String(16))


class StageCacheRow(Base):
    """Outputs of a stage that succeeded, by the hash of its type, resolved parameters and code
    version: an identical stage later reuses them instead of running."""

    __tablename__ = "pipeline_stage_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    project: Mapped[str] = mapped_column(String(63))
    outputs: Mapped[dict] = mapped_column(JSON)
    execution: Mapped[str] = mapped_column(String(255))
    stage_id: Mapped[str] = mapped_column(String(63))
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiKeyRow(Base):
    """An API key. Only the SHA-256 of its secret is stored: the secret itself is shown once,
    when `forge-training keys create` makes it. Keys are 256-bit random, so a plain hash is
    enough (no password stretching needed)."""

    __tablename__ = "api_keys"

    # The public part of the key ("ftk_<id>_<secret>"): what `keys list` and logs show.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    # {project: "viewer" | "trainer" | "admin"}
    roles: Mapped[dict] = mapped_column(JSON)
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoke_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AlertDeliveryRow(Base):
    """An alert POSTed, or to be POSTed, to a webhook (engine/alerts): the body, fixed when it
    fired, and each attempt's outcome. The secret signs every attempt (the signature covers
    the attempt's timestamp); it is never returned."""

    __tablename__ = "alert_deliveries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project: Mapped[str] = mapped_column(String(63), index=True)
    resource: Mapped[str] = mapped_column(String(255), index=True)
    alert: Mapped[str] = mapped_column(String(63))
    event: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict] = mapped_column(JSON)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(Text, default="")
    # "pending", "delivered" or "failed"
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_response_code: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    next_attempt_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (Index("ix_alert_deliveries_due", "state", "next_attempt_time"),)
