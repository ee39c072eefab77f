"""Server settings from command-line flags, falling back to FORGE_TRAINING_* environment variables."""

from __future__ import annotations

import argparse
import importlib
import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.models.registry import LoadPolicy
from engine.storage.artifacts import STORAGE_TYPES, StorageConfig

ENV_PREFIX = "FORGE_TRAINING_"


@dataclass
class ServerConfig:
    address: str = "127.0.0.1:50051"
    data_dir: Path = Path("./forge-data")
    database_url: str = ""
    max_concurrent_jobs: int = 2
    max_upload_bytes: int = 1 << 30
    shutdown_grace_seconds: float = 10.0
    log_level: str = "INFO"
    storage: StorageConfig = field(default_factory=StorageConfig)
    load_policy: LoadPolicy = field(default_factory=LoadPolicy)
    # Custom pipeline stages: name -> callable(parameters, context) -> outputs dict.
    pipeline_functions: dict[str, Callable] = field(default_factory=dict)


def _env(name: str, default):
    return os.environ.get(ENV_PREFIX + name, default)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    d = ServerConfig()
    parser.add_argument("--address", default=_env("ADDRESS", d.address),
                        help="host:port to listen on (env FORGE_TRAINING_ADDRESS; default %(default)s)")
    parser.add_argument("--data-dir", type=Path, default=Path(_env("DATA_DIR", d.data_dir)),
                        help="datasets, checkpoints, artifacts and the SQLite database live here "
                             "(env FORGE_TRAINING_DATA_DIR; default %(default)s)")
    parser.add_argument("--database-url", default=_env("DATABASE_URL", d.database_url),
                        help="SQLAlchemy URL of the metadata database; default SQLite in the data dir "
                             "(env FORGE_TRAINING_DATABASE_URL)")
    parser.add_argument("--max-concurrent-jobs", type=int,
                        default=int(_env("MAX_CONCURRENT_JOBS", d.max_concurrent_jobs)),
                        help="training jobs that run at once; the rest wait in the queue "
                             "(env FORGE_TRAINING_MAX_CONCURRENT_JOBS; default %(default)s)")
    parser.add_argument("--max-upload-bytes", type=int, default=int(_env("MAX_UPLOAD_BYTES", d.max_upload_bytes)),
                        help="largest dataset upload accepted (env FORGE_TRAINING_MAX_UPLOAD_BYTES; "
                             "default %(default)s)")
    parser.add_argument("--shutdown-grace", type=float, default=float(_env("SHUTDOWN_GRACE", d.shutdown_grace_seconds)),
                        help="seconds running jobs get to checkpoint on SIGTERM (default %(default)s)")
    parser.add_argument("--log-level", default=_env("LOG_LEVEL", d.log_level), help="default %(default)s")
    parser.add_argument("--insecure", action="store_true", default=_env("INSECURE", "") in ("1", "true"),
                        help="listen on a non-loopback address although the server has no authentication "
                             "yet: anyone who reaches the port can train, read data and export models "
                             "(env FORGE_TRAINING_INSECURE=1)")
    storage = parser.add_argument_group(
        "artifact storage", "where exported and saved models live; credentials come from the environment "
        "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY for s3, GOOGLE_APPLICATION_CREDENTIALS for gcs), never flags")
    storage.add_argument("--storage-type", choices=STORAGE_TYPES, default=_env("STORAGE_TYPE", "local"),
                         help="local, s3 or gcs (env FORGE_TRAINING_STORAGE_TYPE; default %(default)s)")
    storage.add_argument("--storage-path", default=_env("STORAGE_PATH", ""),
                         help="local: base directory (default: the data dir)")
    storage.add_argument("--storage-bucket", default=_env("STORAGE_BUCKET", ""), help="s3/gcs: the bucket")
    storage.add_argument("--storage-prefix", default=_env("STORAGE_PREFIX", ""), help="s3/gcs: a key prefix")
    storage.add_argument("--storage-region", default=_env("STORAGE_REGION", ""), help="s3: the region")
    storage.add_argument("--storage-endpoint-url", default=_env("STORAGE_ENDPOINT_URL", ""),
                         help="s3: an S3-compatible endpoint, e.g. MinIO")
    storage.add_argument("--storage-project", default=_env("STORAGE_PROJECT", ""), help="gcs: the project")
    parser.add_argument("--model-root", action="append",
                        default=[r for r in _env("MODEL_ROOTS", "").split(",") if r],
                        help="a directory or URI LoadModel may read besides the storage's models/ directory; "
                             "repeatable (env FORGE_TRAINING_MODEL_ROOTS, comma-separated)")
    parser.add_argument("--pipeline-function", action="append", metavar="NAME=MODULE:CALLABLE",
                        default=[f for f in _env("PIPELINE_FUNCTIONS", "").split(",") if f],
                        help="a callable custom pipeline stages may run by NAME; repeatable "
                             "(env FORGE_TRAINING_PIPELINE_FUNCTIONS, comma-separated). Clients name it, "
                             "never send code")
    parser.add_argument("--allow-untrusted-pickles", action="store_true",
                        default=_env("ALLOW_UNTRUSTED_PICKLES", "") in ("1", "true"),
                        help="let LoadModel accept pickles this service did not write; a pickle runs its "
                             "author's code when loaded (env FORGE_TRAINING_ALLOW_UNTRUSTED_PICKLES)")


def from_args(args: argparse.Namespace) -> ServerConfig:
    if args.max_concurrent_jobs < 1:
        raise SystemExit("--max-concurrent-jobs must be at least 1")
    if not is_loopback(args.address) and not args.insecure:
        raise SystemExit(f"--address {args.address} is reachable from other machines, and this server has no "
                         "authentication yet: listen on 127.0.0.1, or pass --insecure to accept that anyone "
                         "who reaches the port can use it")
    storage = StorageConfig(type=args.storage_type, base_path=args.storage_path, bucket=args.storage_bucket,
                            prefix=args.storage_prefix, region=args.storage_region,
                            endpoint_url=args.storage_endpoint_url, project=args.storage_project)
    try:
        storage.validate()
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    return ServerConfig(
        address=args.address,
        data_dir=args.data_dir,
        database_url=args.database_url,
        max_concurrent_jobs=args.max_concurrent_jobs,
        max_upload_bytes=args.max_upload_bytes,
        shutdown_grace_seconds=args.shutdown_grace,
        log_level=args.log_level.upper(),
        storage=storage,
        load_policy=LoadPolicy(tuple(args.model_root), args.allow_untrusted_pickles),
        pipeline_functions=load_functions(args.pipeline_function),
    )


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


def is_loopback(address: str) -> bool:
    """Whether host:port (or [v6]:port) only accepts connections from this machine."""
    host = address.rsplit(":", 1)[0].strip("[]").lower()
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name that may resolve anywhere
