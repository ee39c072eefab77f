"""Server settings from command-line flags, falling back to FORGE_TRAINING_* environment variables."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

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


def from_args(args: argparse.Namespace) -> ServerConfig:
    if args.max_concurrent_jobs < 1:
        raise SystemExit("--max-concurrent-jobs must be at least 1")
    return ServerConfig(
        address=args.address,
        data_dir=args.data_dir,
        database_url=args.database_url,
        max_concurrent_jobs=args.max_concurrent_jobs,
        max_upload_bytes=args.max_upload_bytes,
        shutdown_grace_seconds=args.shutdown_grace,
        log_level=args.log_level.upper(),
    )
