"""The model registry: every completed training job becomes a version of a named model.

A version keeps what it was made from (the job, the datasets and their processing, the
library versions) and points at the job's verified artifacts, so it can be exported, and
listed or deleted, on its own.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from engine import names, tenancy
from engine.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from engine.export.formats import FORMATS, parse_format
from engine.paging import next_token, page_bounds, parse_filter
from engine.storage.artifacts import ArtifactStore, StorageConfig, resolve_model_path
from engine.store.database import Database
from engine.store.models import ModelVersionRow, TrainingJobRow, WrittenArtifactRow

STAGES = ("", "staging", "production", "archived")
# File name endings LoadModel reads a format from when the request names none.
_SUFFIXES = ((".savedmodel.tar", "savedmodel"), (".tar", "savedmodel"), (".onnx", "onnx"), (".pkl", "pickle"),
             (".pickle", "pickle"), (".pt", "torch"), (".pth", "torch"), (".json", "xgboost_json"))
# Formats LoadModel accepts from elsewhere: loading them runs no code of the file's author.
_SAFE_FOREIGN = ("onnx", "xgboost_json")


def version_name(project: str, model_id: str, version: int) -> str:
    return f"projects/{project}/models/{model_id}/versions/{version}"


def parse_version_name(value: str, field: str = "name") -> str:
    parts = value.split("/")
    if len(parts) != 6 or parts[0] != "projects" or parts[2] != "models" or parts[4] != "versions" \
            or not parts[5].isdigit():
        raise InvalidArgument.field(field, f"{value!r} is not a model version: use "
                                           "'projects/{project}/models/{model}/versions/{version}'")
    names.validate_id(parts[1], field)
    names.validate_id(parts[3], field)
    names.check_access(parts[1], value)
    return value


@dataclass
class LoadPolicy:
    """What LoadModel accepts: paths under the store's models/ directory or these extra roots,
    and pickles this service did not write only when explicitly allowed."""
    extra_roots: tuple[str, ...] = ()
    allow_untrusted_pickles: bool = False


class ModelRegistry:
    def __init__(self, db: Database, store: ArtifactStore | None = None, policy: LoadPolicy | None = None,
                 inspect: Callable[[str, str], dict[str, Any]] | None = None, scratch_dir: Path | None = None):
        self._db = db
        self.store = store or ArtifactStore(StorageConfig(), ".")
        self.policy = policy or LoadPolicy()
        # Reads a foreign artifact's features and classes, isolated from the server process.
        self._inspect = inspect
        # Where a remote artifact is downloaded to be inspected.
        self._scratch_dir = Path(scratch_dir or tempfile.gettempdir())
        self._lock = threading.Lock()  # version numbers and stages change one at a time

    def register(self, job: TrainingJobRow) -> ModelVersionRow:
        """The next version of the job's model (spec model_id, default the job id)."""
        spec = job.spec
        with self._db.session() as s:
            for fmt, info in (job.artifacts or {}).items():
                if fmt != "state":
                    self._record(s, info["sha256"], fmt, job.name, info.get("uri") or info.get("path", ""))
        return self._add_version(job.project, spec.get("model_id") or names.short_id(job.name),
                                 framework=spec.get("framework", ""), model_type=spec.get("model_type", ""),
                                 framework_versions=job.framework_versions or {}, metrics=self._metrics(job),
                                 training_job=job.name, artifacts=job.artifacts or {}, model_info=job.model_info or {})

    def _add_version(self, project: str, model_id: str, **fields: Any) -> ModelVersionRow:
        info = fields["model_info"]
        with self._lock:
            with self._db.session() as s:
                last = s.scalar(select(func.max(ModelVersionRow.version)).where(
                    ModelVersionRow.project == project, ModelVersionRow.model_id == model_id)) or 0
                row = ModelVersionRow(
                    name=version_name(project, model_id, last + 1), project=project, model_id=model_id,
                    version=last + 1, stage="", create_time=datetime.now(timezone.utc),
                    datasets=[d["name"] for d in (info.get("datasets") or {}).values() if d.get("name")],
                    **fields,
                )
                s.add(row)
        return row

    @staticmethod
    def _record(s, sha256: str, fmt: str, job: str, uri: str) -> None:
        if s.get(WrittenArtifactRow, sha256) is None:
            s.add(WrittenArtifactRow(sha256=sha256, format=fmt, training_job=job, uri=uri,
                                     create_time=datetime.now(timezone.utc)))

    def record_written(self, sha256: str, fmt: str, job: str, uri: str) -> None:
        """Remember bytes this service wrote (SaveModel), so LoadModel can trust them."""
        with self._db.session() as s:
            self._record(s, sha256, fmt, job, uri)

    def writer_project(self, sha256: str) -> str | None:
        """The project whose job the service wrote these bytes for; None when it did not
        write them (or the job is gone)."""
        with self._db.session() as s:
            written = s.get(WrittenArtifactRow, sha256)
            job = s.get(TrainingJobRow, written.training_job) if written and written.training_job else None
        return job.project if job is not None else None

    @staticmethod
    def _metrics(job: TrainingJobRow) -> dict[str, float]:
        latest = job.latest_metrics or {}
        metrics = {k: float(v) for k, v in latest.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)
                   and k not in ("sequence", "epoch", "total_epochs", "progress", "epoch_seconds", "best_epoch")}
        metrics.update({f"test_{k}": float(v) for k, v in (job.test_metrics or {}).items()})
        return metrics

    def get(self, name: str) -> ModelVersionRow:
        with self._db.session() as s:
            row = s.get(ModelVersionRow, parse_version_name(name))
        if row is None:
            raise NotFound(f"model version {name} not found")
        return row

    def list(self, project: str, page_size: int, page_token: str, filter_: str) -> tuple[list[ModelVersionRow], str]:
        terms = parse_filter(filter_, {"model_id", "framework", "stage"})
        offset, limit = page_bounds(page_size, page_token)
        query = select(ModelVersionRow).where(ModelVersionRow.project == project)
        if "model_id" in terms:
            query = query.where(ModelVersionRow.model_id == terms["model_id"])
        if "framework" in terms:
            query = query.where(ModelVersionRow.framework == terms["framework"].lower())
        if "stage" in terms:
            stage = terms["stage"].lower().removeprefix("model_stage_")
            stage = "" if stage in ("none", "unspecified") else stage
            if stage not in STAGES:
                raise InvalidArgument.field("filter", f"unknown stage {terms['stage']!r}: use NONE, STAGING, "
                                                      "PRODUCTION or ARCHIVED")
            query = query.where(ModelVersionRow.stage == stage)
        with self._db.session() as s:
            rows = list(s.scalars(query.order_by(ModelVersionRow.create_time.desc(), ModelVersionRow.name)))
        page = rows[offset: offset + limit]
        return page, next_token(offset, limit, len(page), offset + limit < len(rows))

    def set_stage(self, name: str, stage: str) -> tuple[ModelVersionRow, list[ModelVersionRow]]:
        """Move a version to `stage`; promoting one to production archives the model's previous
        production version in the same transaction. Returns (the version, those archived)."""
        if stage not in STAGES:
            raise InvalidArgument.field("stage", f"unknown stage {stage!r}: use STAGING, PRODUCTION or ARCHIVED")
        with self._lock:
            with self._db.session() as s:
                row = s.get(ModelVersionRow, parse_version_name(name))
                if row is None:
                    raise NotFound(f"model version {name} not found")
                archived = []
                if stage == "production":
                    for other in s.scalars(select(ModelVersionRow).where(
                            ModelVersionRow.project == row.project, ModelVersionRow.model_id == row.model_id,
                            ModelVersionRow.stage == "production", ModelVersionRow.name != row.name)):
                        other.stage = "archived"
                        archived.append(other)
                    s.flush()  # the archiving first: the partial unique index allows one production row
                row.stage = stage
        return row, archived

    def delete(self, name: str) -> None:
        with self._db.session() as s:
            row = s.get(ModelVersionRow, parse_version_name(name))
            if row is None:
                raise NotFound(f"model version {name} not found")
            if row.stage == "production":
                raise FailedPrecondition(f"{name} is in production: move another version to production first")
            s.delete(row)

    def artifact(self, name: str, fmt: str, check: bool = True) -> tuple[ModelVersionRow, dict[str, Any]]:
        row = self.get(name)
        return row, self.store.exported(row.artifacts, fmt, name, check)

    def forget_job(self, job: str) -> None:
        """A deleted job takes its artifacts along: its versions go too. A version LoadModel
        registered from a saved copy keeps that copy and loses only the job's state."""
        with self._db.session() as s:
            for row in s.scalars(select(ModelVersionRow).where(ModelVersionRow.training_job == job)):
                if (row.model_info or {}).get("loaded_from"):
                    row.artifacts = {k: v for k, v in row.artifacts.items() if k != "state"}
                else:
                    s.delete(row)

    # ----- LoadModel

    def load(self, project: str, path: str, model_id: str, fmt: str = "") -> ModelVersionRow:
        """Register the artifact at `path` (under the allowed roots) as the next version of
        `model_id`. Bytes this service wrote keep the metadata of the job that made them;
        others are read in isolation, and pickles among them need the server's permission."""
        names.validate_id(model_id, "model_id")
        uri = resolve_model_path(self.store, path, "path", self.policy.extra_roots)
        fmt = parse_format(fmt) if fmt else _format_of(uri)
        if not self.store.exists(uri):
            raise NotFound(f"no model artifact at {path!r}: SaveModel writes one, or copy the file there")
        size, sha256 = self.store.hash(uri)
        record = {"uri": uri, "sha256": sha256, "size_bytes": size}
        with self._db.session() as s:
            written = s.get(WrittenArtifactRow, sha256)
            job = s.get(TrainingJobRow, written.training_job) if written and written.training_job else None
        if job is not None and not tenancy.current().allows(job.project):
            # Another project's model, saved where this caller can name it: as good as absent.
            raise NotFound(f"no model artifact at {path!r}: SaveModel writes one, or copy the file there")
        if written is not None and written.format != fmt:
            raise InvalidArgument.field("format", f"{path!r} was written as {written.format}, not {fmt}")
        if job is not None:
            # Our own bytes: the job says what they are; its state keeps EvaluateModel working.
            artifacts = {fmt: {**(job.artifacts or {}).get(fmt, {}), **record}}
            if "state" in (job.artifacts or {}):
                artifacts["state"] = job.artifacts["state"]
            return self._add_version(
                project, model_id, framework=job.spec.get("framework", ""), model_type=job.spec.get("model_type", ""),
                framework_versions=job.framework_versions or {}, metrics=self._metrics(job), training_job=job.name,
                artifacts=artifacts, model_info={**(job.model_info or {}), "loaded_from": uri})
        if fmt == "pickle" and written is None and not self.policy.allow_untrusted_pickles:
            raise PermissionDenied(
                f"{path!r} (sha256 {sha256}) is a pickle this service did not write, and loading a pickle runs "
                "its author's code; load one that SaveModel wrote, export ONNX instead, or start the server with "
                "--allow-untrusted-pickles if you trust its source")
        if fmt not in _SAFE_FOREIGN and fmt != "pickle":
            raise FailedPrecondition(f"{fmt} artifacts are loaded only when this service wrote them (from a job that "
                                     "still exists); load the model as onnx or xgboost_json instead")
        if self._inspect is None:
            raise FailedPrecondition("this server cannot inspect foreign model artifacts")
        local = self.store.fetch(record, self._scratch_dir / f".inspect-{sha256}-{FORMATS[fmt].filename}")
        try:
            found = self._inspect(str(local), fmt)
        finally:
            if not self.store.local:
                local.unlink(missing_ok=True)
        return self._add_version(
            project, model_id, framework=found.get("framework", ""), model_type=found.get("task", ""),
            framework_versions=found.get("versions", {}), metrics={}, training_job="",
            artifacts={fmt: {**record, **found.get("signature", {})}},
            model_info={"features": found.get("features", []), "classes": found.get("classes", []),
                        "task": found.get("task", ""), "loaded_from": uri, "preprocessing": {}})




def _format_of(uri: str) -> str:
    lowered = uri.lower()
    for suffix, fmt in _SUFFIXES:
        if lowered.endswith(suffix):
            return fmt
    raise InvalidArgument.field("format", f"cannot tell the format of {uri.rsplit('/', 1)[-1]!r} from its name: "
                                          "set format (ONNX, PICKLE, TORCH, SAVEDMODEL or XGBOOST_JSON)")
