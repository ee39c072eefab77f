"""The model registry: every completed training job becomes a version of a named model.

A version keeps what it was made from (the job, the datasets and their processing, the
library versions) and points at the job's verified artifacts, so it can be exported, and
listed or deleted, on its own.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, select

from engine import names
from engine.errors import FailedPrecondition, InvalidArgument, NotFound
from engine.paging import next_token, page_bounds, parse_filter
from engine.storage.files import verify
from engine.store.database import Database
from engine.store.models import ModelVersionRow, TrainingJobRow

STAGES = ("", "staging", "production", "archived")


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
    return value


class ModelRegistry:
    def __init__(self, db: Database):
        self._db = db
        self._lock = threading.Lock()  # version numbers are assigned one at a time

    def register(self, job: TrainingJobRow) -> ModelVersionRow:
        """The next version of the job's model (spec model_id, default the job id)."""
        spec = job.spec
        project = job.project
        model_id = spec.get("model_id") or names.short_id(job.name)
        info = job.model_info or {}
        with self._lock:
            with self._db.session() as s:
                last = s.scalar(select(func.max(ModelVersionRow.version)).where(
                    ModelVersionRow.project == project, ModelVersionRow.model_id == model_id)) or 0
                row = ModelVersionRow(
                    name=version_name(project, model_id, last + 1), project=project, model_id=model_id,
                    version=last + 1, framework=spec.get("framework", ""), model_type=spec.get("model_type", ""),
                    framework_versions=job.framework_versions or {}, metrics=self._metrics(job),
                    training_job=job.name,
                    datasets=[d["name"] for d in (info.get("datasets") or {}).values() if d.get("name")],
                    artifacts=job.artifacts or {}, model_info=info, stage="",
                    create_time=datetime.now(timezone.utc),
                )
                s.add(row)
        return row

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
        info = (row.artifacts or {}).get(fmt)
        if info is None:
            offered = ", ".join(k for k in row.artifacts if k != "state")
            raise FailedPrecondition(f"{name} has no {fmt} export: its framework offers {offered}")
        if check:
            verify(info["path"], info["sha256"])
        return row, info

    def forget_job(self, job: str) -> None:
        """A deleted job takes its artifacts along: its versions go too."""
        with self._db.session() as s:
            for row in s.scalars(select(ModelVersionRow).where(ModelVersionRow.training_job == job)):
                s.delete(row)


