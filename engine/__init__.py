"""forge-training's engine: training, data, pipelines and models, without gRPC.

The public API for Python applications (docs/embedding.md):

    from engine import Engine, EngineSettings, StorageConfig
    from engine.errors import ForgeError, InvalidArgument, NotFound, ...

Names are loaded on first use, so that a worker process importing one engine module does
not pay for the whole engine.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "Engine": "engine.app",
    "EngineSettings": "engine.app",
    "StorageConfig": "engine.storage.artifacts",
    "TrainingSpec": "engine.jobs.spec",
    "spec_from_request": "engine.jobs.request",
    "IngestLimits": "engine.data.ingest",
    "LoadPolicy": "engine.models.registry",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
