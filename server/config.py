"""Server settings from command-line flags, falling back to FORGE_TRAINING_* environment variables."""

from __future__ import annotations

import argparse
import importlib
import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.app import EngineSettings
from engine.data.ingest import IngestLimits
from engine.errors import ForgeError
from engine.jobs.executors import EXECUTORS
from engine.jobs.spec import parse_cpu, parse_memory
from engine.models.registry import LoadPolicy
from engine.storage.artifacts import STORAGE_TYPES, StorageConfig
from server.logs import LOG_FORMATS

ENV_PREFIX = "FORGE_TRAINING_"
AUTH_MODES = ("none", "api-key")
TRACING_MODES = ("none", "console", "otlp")
MIN_MESSAGE_BYTES = 2 * 1024 * 1024


@dataclass
class ServerConfig:
    address: str = "127.0.0.1:50051"
    data_dir: Path = Path("./forge-data")
    database_url: str = ""
    max_concurrent_jobs: int = 2
    # Idle warm workers (forked from a process with the frameworks imported) kept ready for
    # jobs to start in; None: one per job slot, at most 4; 0: every job spawns a fresh process.
    warm_workers: int | None = None
    # Where jobs' workers run: "local" processes or "ray" tasks on the cluster at ray_address.
    executor: str = "local"
    ray_address: str = ""
    # False: nothing trains and no worker process starts; training methods answer UNAVAILABLE.
    training_enabled: bool = True
    # Checkpoints, one folder per project; None: <data_dir>/checkpoints.
    checkpoint_dir: Path | None = None
    max_upload_bytes: int = 1 << 30
    shutdown_grace_seconds: float = 10.0
    log_level: str = "INFO"
    storage: StorageConfig = field(default_factory=StorageConfig)
    load_policy: LoadPolicy = field(default_factory=LoadPolicy)
    # Custom pipeline stages: name -> callable(parameters, context) -> outputs dict.
    pipeline_functions: dict[str, Callable] = field(default_factory=dict)
    # Training callbacks jobs may name: type name -> "module:Class" (engine/callbacks/registry.py).
    callbacks: dict[str, str] = field(default_factory=dict)
    # "none" or "api-key": every call to the forge services then needs a key (`forge-training keys`).
    auth: str = "none"
    # TLS: the server's certificate chain and private key (PEM files); with a client CA, mutual
    # TLS: only clients presenting a certificate signed by it can connect.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    # Streaming calls (watchers, log followers, uploads) one caller may hold open at once; 0: no cap.
    max_streams_per_key: int = 1000
    # Largest gRPC message either way; export chunks are 1 MiB, so at least 2 MiB.
    max_message_bytes: int = 4 * 1024 * 1024
    # Folders local data sources may read; None: anywhere (only a loopback server without
    # authentication defaults to that), () nowhere.
    data_roots: tuple[str, ...] | None = None
    ingest_limits: IngestLimits = field(default_factory=IngestLimits)
    # For jobs that do not say (resources.timeout / resources.memory); 0: no limit.
    default_job_timeout_seconds: float = 0.0
    default_job_memory_bytes: int = 0
    # For jobs whose resources leave them unset: a CPU request, GPUs and a queue priority.
    default_job_cpu: str = ""
    default_job_gpu: int = 0
    default_job_priority: int = 0
    # Alerts to webhooks: the first retry's delay in seconds (doubling after), and attempts in all.
    alert_retry_seconds: float = 1.0
    alert_max_attempts: int = 6
    # Whether alert webhooks may be on loopback, private or link-local addresses; None: only for
    # a loopback server without authentication (one user on one machine), as data_roots.
    alert_private_webhooks: bool | None = None
    # The HTTP listener of pipelines' webhook triggers (server/webhooks.py): host:port; "": none.
    webhook_address: str = ""
    # Prometheus /metrics: host:port of its HTTP listener (port 0 picks a free one); "": none.
    # It shares the server's TLS (HTTPS with tls_cert, mutual with tls_client_ca).
    metrics_address: str = ""
    # "text" or "json" (one object per line, with the request id of the call being served).
    log_format: str = "text"
    # OpenTelemetry spans, one per RPC: "none", "console" (printed to stdout) or "otlp".
    tracing: str = "none"
    # otlp: the collector's OTLP/HTTP traces URL; "": the OTEL_EXPORTER_OTLP_* environment,
    # else http://localhost:4318/v1/traces.
    tracing_endpoint: str = ""

    def engine_settings(self) -> EngineSettings:
        """The engine's part of this configuration: what an embedded engine is built from too."""
        return EngineSettings(
            data_dir=self.data_dir,
            database_url=self.database_url,
            max_concurrent_jobs=self.max_concurrent_jobs,
            warm_workers=self.warm_workers,
            executor=self.executor,
            ray_address=self.ray_address,
            training_enabled=self.training_enabled,
            checkpoint_dir=self.checkpoint_dir,
            max_upload_bytes=self.max_upload_bytes,
            storage=self.storage,
            load_policy=self.load_policy,
            data_roots=self.data_roots,
            ingest_limits=self.ingest_limits,
            default_timeout_seconds=self.default_job_timeout_seconds,
            default_memory_limit_bytes=self.default_job_memory_bytes,
            default_cpu=self.default_job_cpu,
            default_gpu=self.default_job_gpu,
            default_priority=self.default_job_priority,
            callbacks=self.callbacks,
            alert_retry_seconds=self.alert_retry_seconds,
            alert_max_attempts=self.alert_max_attempts,
            alert_private_webhooks=(self.alert_private_webhooks if self.alert_private_webhooks is not None
                                    else self.auth == "none" and is_loopback(self.address)),
        )


def _env(name: str, default):
    return os.environ.get(ENV_PREFIX + name, default)


def add_database_arguments(parser: argparse.ArgumentParser) -> None:
    """--data-dir and --database-url: every command that opens the metadata database takes them."""
    d = ServerConfig()
    parser.add_argument("--data-dir", type=Path, default=Path(_env("DATA_DIR", d.data_dir)),
                        help="datasets, checkpoints, artifacts and the SQLite database live here "
                             "(env FORGE_TRAINING_DATA_DIR; default %(default)s)")
    parser.add_argument("--database-url", default=_env("DATABASE_URL", d.database_url),
                        help="SQLAlchemy URL of the metadata database; default SQLite in the data dir "
                             "(env FORGE_TRAINING_DATABASE_URL)")


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    d = ServerConfig()
    parser.add_argument("--config", type=Path, default=_env("CONFIG", None), metavar="FILE",
                        help="a YAML configuration file (docs/configuration.md#the-configuration-file); "
                             "environment variables and flags override what it says (env FORGE_TRAINING_CONFIG)")
    parser.add_argument("--address", default=_env("ADDRESS", d.address),
                        help="host:port to listen on (env FORGE_TRAINING_ADDRESS; default %(default)s)")
    add_database_arguments(parser)
    parser.add_argument("--max-concurrent-jobs", type=int,
                        default=int(_env("MAX_CONCURRENT_JOBS", d.max_concurrent_jobs)),
                        help="training jobs that run at once; the rest wait in the queue "
                             "(env FORGE_TRAINING_MAX_CONCURRENT_JOBS; default %(default)s)")
    warm = _env("WARM_WORKERS", "")
    parser.add_argument("--warm-workers", type=int, default=int(warm) if warm else None,
                        help="idle worker processes, forked from one that has imported scikit-learn and XGBoost, "
                             "kept ready so a job's worker starts in milliseconds instead of seconds; each runs "
                             "one job and is replaced. 0: every job starts a fresh Python process "
                             "(env FORGE_TRAINING_WARM_WORKERS; default: one per job slot, at most 4)")
    parser.add_argument("--executor", choices=EXECUTORS, default=_env("EXECUTOR", d.executor),
                        help="where jobs' workers run: local processes, or tasks on a Ray cluster (--ray-address; "
                             "docs/ray.md) (env FORGE_TRAINING_EXECUTOR; default %(default)s)")
    parser.add_argument("--ray-address", default=_env("RAY_ADDRESS", ""),
                        help="with --executor ray: the cluster's address, e.g. 10.0.0.5:6379 or "
                             "ray://head:10001; default: the cluster this machine belongs to (ray start) "
                             "(env FORGE_TRAINING_RAY_ADDRESS)")
    parser.add_argument("--no-training", dest="training_enabled", action="store_false",
                        default=_env("NO_TRAINING", "") not in ("1", "true"),
                        help="serve datasets, models and job history without training: no worker process starts, "
                             "and the methods that would start a job answer UNAVAILABLE (env FORGE_TRAINING_NO_TRAINING=1)")
    parser.add_argument("--checkpoint-dir", type=Path, default=_env("CHECKPOINT_DIR", None),
                        help="where jobs' checkpoints live, one folder per project "
                             "(env FORGE_TRAINING_CHECKPOINT_DIR; default: checkpoints/ in the data dir)")
    parser.add_argument("--max-upload-bytes", type=int, default=int(_env("MAX_UPLOAD_BYTES", d.max_upload_bytes)),
                        help="largest dataset upload accepted (env FORGE_TRAINING_MAX_UPLOAD_BYTES; "
                             "default %(default)s)")
    parser.add_argument("--shutdown-grace", type=float, default=float(_env("SHUTDOWN_GRACE", d.shutdown_grace_seconds)),
                        help="seconds running jobs get to checkpoint on SIGTERM (default %(default)s)")
    parser.add_argument("--insecure", action="store_true", default=_env("INSECURE", "") in ("1", "true"),
                        help="listen on a non-loopback address without both --auth api-key and TLS: anyone who "
                             "reaches the port (or reads the traffic) can train, read data and export models; "
                             "also lets --metrics-address be non-loopback without mutual TLS "
                             "(env FORGE_TRAINING_INSECURE=1)")
    observability = parser.add_argument_group("observability", "logs, Prometheus metrics and OpenTelemetry "
                                                               "traces (docs/observability.md)")
    observability.add_argument("--log-level", default=_env("LOG_LEVEL", d.log_level),
                               help="logging level: DEBUG, INFO, WARNING or ERROR "
                                    "(env FORGE_TRAINING_LOG_LEVEL; default %(default)s)")
    observability.add_argument("--log-format", choices=LOG_FORMATS, default=_env("LOG_FORMAT", d.log_format),
                               help="json: one JSON object per line, with the request id of the call being served "
                                    "(env FORGE_TRAINING_LOG_FORMAT; default %(default)s)")
    observability.add_argument("--metrics-address", default=_env("METRICS_ADDRESS", d.metrics_address),
                               metavar="HOST:PORT",
                               help="serve Prometheus metrics at http://HOST:PORT/metrics (https with --tls-cert); "
                                    "port 0 picks a free one. A non-loopback host needs --tls-client-ca (only "
                                    "scrapers with a certificate it signed may read) or --insecure "
                                    "(env FORGE_TRAINING_METRICS_ADDRESS; default: no metrics)")
    observability.add_argument("--alert-retry-seconds", type=float,
                               default=float(_env("ALERT_RETRY_SECONDS", d.alert_retry_seconds)),
                               help="delay before an alert's webhook is tried again, doubling each time "
                                    "(env FORGE_TRAINING_ALERT_RETRY_SECONDS; default %(default)s)")
    observability.add_argument("--alert-max-attempts", type=int,
                               default=int(_env("ALERT_MAX_ATTEMPTS", d.alert_max_attempts)),
                               help="attempts to deliver an alert to its webhook, the first included "
                                    "(env FORGE_TRAINING_ALERT_MAX_ATTEMPTS; default %(default)s)")
    observability.add_argument("--alert-private-webhooks", action="store_true",
                               default=_env("ALERT_PRIVATE_WEBHOOKS", "") in ("1", "true"),
                               help="let alert webhooks be on loopback, private or link-local addresses (default: "
                                    "only on a loopback server without authentication; a server others reach must "
                                    "not be made to call its own network) (env FORGE_TRAINING_ALERT_PRIVATE_WEBHOOKS)")
    observability.add_argument("--webhook-address", default=_env("WEBHOOK_ADDRESS", d.webhook_address),
                               metavar="HOST:PORT",
                               help="listen for pipelines' webhook triggers (POST /v1/projects/P/pipelines/ID/"
                                    "triggers/NAME, signed with the trigger's secret) on HOST:PORT; https with "
                                    "--tls-cert (env FORGE_TRAINING_WEBHOOK_ADDRESS; default: none)")
    observability.add_argument("--tracing", choices=TRACING_MODES, default=_env("TRACING", d.tracing),
                               help="an OpenTelemetry span per RPC: console prints them to stdout, otlp sends them "
                                    "to a collector over OTLP/HTTP (env FORGE_TRAINING_TRACING; default %(default)s)")
    observability.add_argument("--tracing-endpoint", default=_env("TRACING_ENDPOINT", d.tracing_endpoint),
                               metavar="URL",
                               help="otlp: the collector's traces URL, e.g. http://collector:4318/v1/traces "
                                    "(env FORGE_TRAINING_TRACING_ENDPOINT; default: OTEL_EXPORTER_OTLP_ENDPOINT, "
                                    "else http://localhost:4318/v1/traces)")
    security = parser.add_argument_group(
        "security", "API keys (`forge-training keys create`), TLS and limits; a non-loopback --address needs "
        "--auth api-key with --tls-cert/--tls-key, or --insecure")
    security.add_argument("--auth", choices=AUTH_MODES, default=_env("AUTH", d.auth),
                          help="api-key: every call needs 'authorization: Bearer <key>' metadata and sees only its "
                               "key's projects (env FORGE_TRAINING_AUTH; default %(default)s)")
    security.add_argument("--tls-cert", type=Path, default=_env("TLS_CERT", None),
                          help="PEM certificate chain of the server (env FORGE_TRAINING_TLS_CERT)")
    security.add_argument("--tls-key", type=Path, default=_env("TLS_KEY", None),
                          help="PEM private key of the server (env FORGE_TRAINING_TLS_KEY)")
    security.add_argument("--tls-client-ca", type=Path, default=_env("TLS_CLIENT_CA", None),
                          help="mutual TLS: only clients with a certificate signed by this PEM CA may connect "
                               "(env FORGE_TRAINING_TLS_CLIENT_CA)")
    security.add_argument("--max-streams-per-key", type=int,
                          default=int(_env("MAX_STREAMS_PER_KEY", d.max_streams_per_key)),
                          help="streaming calls (watchers, log followers, uploads) one API key may hold open at "
                               "once; 0: no cap (env FORGE_TRAINING_MAX_STREAMS_PER_KEY; default %(default)s)")
    security.add_argument("--data-root", action="append",
                          default=[r for r in _env("DATA_ROOTS", "").split(",") if r] or None,
                          help="a folder local data sources (file paths, SQLite databases) may be read from; "
                               "repeatable (env FORGE_TRAINING_DATA_ROOTS, comma-separated). Default: anywhere "
                               "for a loopback server without authentication, nowhere otherwise")
    limits = parser.add_argument_group("limits", "what one request or job may use")
    limits.add_argument("--max-columns", type=int, default=int(_env("MAX_COLUMNS", IngestLimits.max_columns)),
                        help="columns a dataset file may have (default %(default)s)")
    limits.add_argument("--max-record-bytes", type=int,
                        default=int(_env("MAX_RECORD_BYTES", IngestLimits.max_record_bytes)),
                        help="bytes of one CSV / JSON Lines record (default %(default)s)")
    limits.add_argument("--max-expanded-bytes", type=int,
                        default=int(_env("MAX_EXPANDED_BYTES", IngestLimits.max_expanded_bytes)),
                        help="bytes a compressed data file may expand to (default %(default)s)")
    limits.add_argument("--default-job-timeout", type=float, default=float(_env("DEFAULT_JOB_TIMEOUT", 0)),
                        help="seconds a job without resources.timeout may run before it fails; 0: no limit "
                             "(env FORGE_TRAINING_DEFAULT_JOB_TIMEOUT)")
    limits.add_argument("--default-job-memory", default=_env("DEFAULT_JOB_MEMORY", ""),
                        help="memory limit of a job without resources.memory, e.g. 8Gi; empty: none "
                             "(env FORGE_TRAINING_DEFAULT_JOB_MEMORY)")
    limits.add_argument("--default-job-cpu", default=_env("DEFAULT_JOB_CPU", ""),
                        help="CPU request of a job without resources.cpu, e.g. 2 or 500m (a Ray task's num_cpus) "
                             "(env FORGE_TRAINING_DEFAULT_JOB_CPU)")
    limits.add_argument("--default-job-gpu", type=int, default=int(_env("DEFAULT_JOB_GPU", 0)),
                        help="GPUs of a job without resources.gpu; a job whose framework sees no GPU trains on the "
                             "CPU and says so in its log (env FORGE_TRAINING_DEFAULT_JOB_GPU)")
    limits.add_argument("--default-job-priority", type=int, default=int(_env("DEFAULT_JOB_PRIORITY", 0)),
                        help="queue priority of a job without resources.priority; higher starts first "
                             "(env FORGE_TRAINING_DEFAULT_JOB_PRIORITY)")
    security.add_argument("--max-message-bytes", type=int,
                          default=int(_env("MAX_MESSAGE_BYTES", d.max_message_bytes)),
                          help="largest gRPC message received or sent (env FORGE_TRAINING_MAX_MESSAGE_BYTES; "
                               "default %(default)s)")
    storage = parser.add_argument_group(
        "artifact storage", "where exported and saved models live; credentials come from the environment "
        "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY for s3, GOOGLE_APPLICATION_CREDENTIALS for gcs, "
        "AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_KEY for azure), never flags")
    storage.add_argument("--storage-type", choices=STORAGE_TYPES, default=_env("STORAGE_TYPE", "local"),
                         help="local, s3, gcs or azure (env FORGE_TRAINING_STORAGE_TYPE; default %(default)s)")
    storage.add_argument("--storage-path", default=_env("STORAGE_PATH", ""),
                         help="local: base directory (default: the data dir)")
    storage.add_argument("--storage-bucket", default=_env("STORAGE_BUCKET", ""),
                         help="s3/gcs: the bucket; azure: the container")
    storage.add_argument("--storage-prefix", default=_env("STORAGE_PREFIX", ""), help="s3/gcs/azure: a key prefix")
    storage.add_argument("--storage-region", default=_env("STORAGE_REGION", ""), help="s3: the region")
    storage.add_argument("--storage-endpoint-url", default=_env("STORAGE_ENDPOINT_URL", ""),
                         help="s3: an S3-compatible endpoint, e.g. MinIO; gcs: an emulator (no credentials sent)")
    storage.add_argument("--storage-project", default=_env("STORAGE_PROJECT", ""), help="gcs: the project")
    storage.add_argument("--storage-account", default=_env("STORAGE_ACCOUNT", ""),
                         help="azure: the storage account (default: the one AZURE_STORAGE_CONNECTION_STRING names)")
    parser.add_argument("--model-root", action="append",
                        default=[r for r in _env("MODEL_ROOTS", "").split(",") if r],
                        help="a directory or URI LoadModel may read besides the storage's models/ directory; "
                             "repeatable (env FORGE_TRAINING_MODEL_ROOTS, comma-separated)")
    parser.add_argument("--pipeline-function", action="append", metavar="NAME=MODULE:CALLABLE",
                        default=[f for f in _env("PIPELINE_FUNCTIONS", "").split(",") if f],
                        help="a callable custom pipeline stages may run by NAME; repeatable "
                             "(env FORGE_TRAINING_PIPELINE_FUNCTIONS, comma-separated). Clients name it, "
                             "never send code")
    parser.add_argument("--callback", action="append", metavar="NAME=MODULE:CLASS",
                        default=[f for f in _env("CALLBACKS", "").split(",") if f],
                        help="a training callback class (deriving from engine.callbacks.base.Callback) jobs may "
                             "use as callbacks[].type NAME; repeatable (env FORGE_TRAINING_CALLBACKS, "
                             "comma-separated). Clients name it and give its settings, never send code")
    parser.add_argument("--allow-untrusted-pickles", action="store_true",
                        default=_env("ALLOW_UNTRUSTED_PICKLES", "") in ("1", "true"),
                        help="let LoadModel accept pickles this service did not write; a pickle runs its "
                             "author's code when loaded (env FORGE_TRAINING_ALLOW_UNTRUSTED_PICKLES)")


def from_args(args: argparse.Namespace) -> ServerConfig:
    if args.max_concurrent_jobs < 1:
        raise SystemExit("--max-concurrent-jobs must be at least 1")
    if args.warm_workers is not None and not 0 <= args.warm_workers <= args.max_concurrent_jobs:
        raise SystemExit(f"--warm-workers must be between 0 (none) and --max-concurrent-jobs "
                         f"({args.max_concurrent_jobs}), got {args.warm_workers}")
    if args.ray_address and args.executor != "ray":
        raise SystemExit("--ray-address is for --executor ray; add --executor ray, or leave --ray-address out")
    if args.executor == "ray" and args.warm_workers:
        raise SystemExit("--warm-workers are local processes; with --executor ray the cluster starts the workers: "
                         "leave --warm-workers out")
    tls = check_tls(args.tls_cert, args.tls_key, args.tls_client_ca)
    if args.max_message_bytes < MIN_MESSAGE_BYTES:
        raise SystemExit(f"--max-message-bytes must be at least {MIN_MESSAGE_BYTES} (export chunks are 1 MiB)")
    if args.max_streams_per_key < 0:
        raise SystemExit("--max-streams-per-key must be 0 (no cap) or more")
    try:
        ingest_limits = IngestLimits(args.max_columns, args.max_record_bytes, args.max_expanded_bytes)
        job_memory = parse_memory(args.default_job_memory, "--default-job-memory") if args.default_job_memory else 0
    except (ValueError, ForgeError) as exc:
        raise SystemExit(str(exc)) from None
    if args.default_job_timeout < 0:
        raise SystemExit("--default-job-timeout must be 0 (no limit) or more seconds")
    if args.default_job_cpu:
        try:
            parse_cpu(args.default_job_cpu, "--default-job-cpu")
        except ForgeError as exc:
            raise SystemExit(exc.message) from None
    if args.default_job_gpu < 0:
        raise SystemExit("--default-job-gpu must be 0 or more GPUs")
    if not is_loopback(args.address) and not args.insecure and not (args.auth == "api-key" and tls):
        missing = " and ".join(m for m, ok in (("--auth api-key", args.auth == "api-key"),
                                                ("--tls-cert/--tls-key", tls)) if not ok)
        raise SystemExit(f"--address {args.address} is reachable from other machines, and this server has no "
                         f"{missing}: add them, listen on 127.0.0.1, or pass --insecure to accept that anyone who "
                         "reaches the port (or reads its traffic) can use it")
    check_observability(args, tls)
    storage = StorageConfig(type=args.storage_type, base_path=args.storage_path, bucket=args.storage_bucket,
                            prefix=args.storage_prefix, region=args.storage_region,
                            endpoint_url=args.storage_endpoint_url, project=args.storage_project,
                            account=args.storage_account)
    try:
        storage.validate()
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    return ServerConfig(
        address=args.address,
        data_dir=args.data_dir,
        database_url=args.database_url,
        max_concurrent_jobs=args.max_concurrent_jobs,
        warm_workers=args.warm_workers,
        executor=args.executor,
        ray_address=args.ray_address,
        training_enabled=args.training_enabled,
        checkpoint_dir=args.checkpoint_dir,
        max_upload_bytes=args.max_upload_bytes,
        shutdown_grace_seconds=args.shutdown_grace,
        log_level=args.log_level.upper(),
        storage=storage,
        load_policy=LoadPolicy(tuple(args.model_root), args.allow_untrusted_pickles),
        pipeline_functions=load_functions(args.pipeline_function),
        callbacks=load_callbacks(args.callback),
        auth=args.auth,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
        max_streams_per_key=args.max_streams_per_key,
        max_message_bytes=args.max_message_bytes,
        data_roots=default_data_roots(args),
        ingest_limits=ingest_limits,
        default_job_timeout_seconds=args.default_job_timeout,
        default_job_memory_bytes=job_memory,
        default_job_cpu=args.default_job_cpu,
        default_job_gpu=args.default_job_gpu,
        default_job_priority=args.default_job_priority,
        metrics_address=args.metrics_address,
        alert_retry_seconds=args.alert_retry_seconds,
        alert_max_attempts=args.alert_max_attempts,
        alert_private_webhooks=args.alert_private_webhooks or None,
        webhook_address=args.webhook_address,
        log_format=args.log_format,
        tracing=args.tracing,
        tracing_endpoint=args.tracing_endpoint,
    )


def check_observability(args: argparse.Namespace, tls: bool) -> None:
    """Refuse a malformed or exposed --metrics-address and a --tracing-endpoint without otlp.
    /metrics names every RPC method, job states and counts, and running jobs by name: other
    machines may read it only over mutual TLS, or with --insecure."""
    if args.metrics_address:
        host, _, port = args.metrics_address.rpartition(":")
        if not host or not port.isdigit() or int(port) > 65535:
            raise SystemExit(f"--metrics-address {args.metrics_address!r}: use HOST:PORT, e.g. 127.0.0.1:9464 "
                             "(port 0 picks a free one)")
        if not is_loopback(args.metrics_address) and not args.insecure and not (tls and args.tls_client_ca):
            raise SystemExit(f"--metrics-address {args.metrics_address} is reachable from other machines, and "
                             "/metrics shows method rates, job counts and running jobs' names: add --tls-client-ca "
                             "(with --tls-cert/--tls-key) so only scrapers with a certificate it signed can read it, "
                             "listen on 127.0.0.1, or pass --insecure to accept that anyone who reaches the port "
                             "can read it")
    if not args.alert_retry_seconds > 0 or not 1 <= args.alert_max_attempts <= 100:
        raise SystemExit("--alert-retry-seconds must be more than 0 and --alert-max-attempts between 1 and 100")
    if args.webhook_address:
        host, _, port = args.webhook_address.rpartition(":")
        if not host or not port.isdigit() or int(port) > 65535:
            raise SystemExit(f"--webhook-address {args.webhook_address!r}: use HOST:PORT, e.g. 127.0.0.1:8081 "
                             "(port 0 picks a free one)")
    if args.tracing_endpoint:
        if args.tracing != "otlp":
            raise SystemExit("--tracing-endpoint is where --tracing otlp sends spans: add --tracing otlp, or drop it")
        if not args.tracing_endpoint.startswith(("http://", "https://")):
            raise SystemExit(f"--tracing-endpoint {args.tracing_endpoint!r}: give the collector's OTLP/HTTP traces "
                             "URL, e.g. http://collector:4318/v1/traces")


def default_data_roots(args: argparse.Namespace) -> tuple[str, ...] | None:
    """--data-root as given; without it, anywhere only for a loopback server without
    authentication (one user on one machine), else nowhere: a client must not read the
    server's files."""
    if args.data_root:
        return tuple(args.data_root)
    return None if args.auth == "none" and is_loopback(args.address) else ()


def check_tls(cert: Path | None, key: Path | None, client_ca: Path | None) -> bool:
    """Whether TLS is configured; a half-configured or unreadable one stops the server."""
    if bool(cert) != bool(key):
        raise SystemExit("--tls-cert and --tls-key go together: give both (PEM files) or neither")
    if client_ca and not cert:
        raise SystemExit("--tls-client-ca (mutual TLS) needs --tls-cert and --tls-key too")
    for flag, path in (("--tls-cert", cert), ("--tls-key", key), ("--tls-client-ca", client_ca)):
        if path and not Path(path).is_file():
            raise SystemExit(f"{flag} {path}: no such file")
    return bool(cert)


def load_functions(specs: list[str]) -> dict[str, Callable]:
    """{name: callable} from "name=module:callable" entries; a bad entry stops the server."""
    functions: dict[str, Callable] = {}
    for spec in specs:
        name, _, target = spec.partition("=")
        module_name, _, attribute = target.partition(":")
        if not (name and module_name and attribute):
            raise SystemExit(f"--pipeline-function {spec!r}: use NAME=MODULE:CALLABLE")
        try:
            function = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            raise SystemExit(f"--pipeline-function {spec!r}: {exc}") from None
        if not callable(function):
            raise SystemExit(f"--pipeline-function {spec!r}: {target} is not callable")
        functions[name] = function
    return functions


def load_callbacks(specs: list[str]) -> dict[str, str]:
    """{type name: "module:Class"} from "name=module:Class" entries, each imported once here so a
    bad entry stops the server at start, not a job later."""
    from engine.callbacks.registry import BUILT_IN, load_class

    callbacks: dict[str, str] = {}
    for spec in specs:
        name, _, target = spec.partition("=")
        name = name.strip().lower()  # as requests name it: callbacks[].type is read in lower case
        if not (name and target):
            raise SystemExit(f"--callback {spec!r}: use NAME=MODULE:CLASS")
        if name in BUILT_IN:
            raise SystemExit(f"--callback {spec!r}: {name} is a built-in callback type; register it under another "
                             "name")
        try:
            load_class(target)
        except ValueError as exc:
            raise SystemExit(f"--callback {spec!r}: {exc}") from None
        callbacks[name] = target
    return callbacks


def is_loopback(address: str) -> bool:
    """Whether host:port (or [v6]:port) only accepts connections from this machine."""
    host = address.rsplit(":", 1)[0].strip("[]").lower()
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name that may resolve anywhere
