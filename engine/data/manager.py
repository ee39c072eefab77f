"""DataManager: datasets as resources, as the seed's DataManager and Dataset.

A dataset is immutable: its rows are stored once as Parquet under the data dir with
their sha256, and every operation (split, ...) creates new datasets whose lineage
names their parents. File work happens in engine/data's pure functions; this class
keeps the metadata rows.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select

from engine import names
from engine.data.ingest import IngestResult, detect_format, ingest_file
from engine.data.records import read_records
from engine.data.schema import DataSchema
from engine.data.splits import split_table
from engine.errors import AlreadyExists, InvalidArgument, NotFound, ResourceExhausted, Unimplemented
from engine.paging import next_token, page_bounds, parse_filter
from engine.storage.files import verify
from engine.store.database import Database
from engine.store.models import DatasetRow

DATASET_TYPES = ("tabular", "image", "text", "time_series")
DEFAULT_MAX_UPLOAD_BYTES = 1 << 30


class DataManager:
    def __init__(self, db: Database, data_dir: Path, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES):
        self._db = db
        self._root = data_dir / "datasets"
        self.uploads_dir = data_dir / "uploads"
        self.max_upload_bytes = max_upload_bytes

    def _dir(self, name: str) -> Path:
        return self._root / names.project_of(name) / names.short_id(name)

    def _new_name(self, project: str, dataset_id: str, field: str) -> str:
        dataset_id = names.validate_id(dataset_id, field) if dataset_id else names.new_id("ds")
        name = names.make(project, "datasets", dataset_id)
        with self._db.session() as s:
            if s.get(DatasetRow, name) is not None:
                raise AlreadyExists(f"dataset {name} already exists: choose another {field}")
        return name

    def get(self, name: str, field: str = "name") -> DatasetRow:
        with self._db.session() as s:
            row = s.get(DatasetRow, name)
        if row is None:
            prefix = f"{field}: " if field != "name" else ""
            raise NotFound(f"{prefix}dataset {name} not found")
        return row

    def create_dataset(self, project: str, dataset_id: str, config: dict[str, Any]) -> DatasetRow:
        """Load a file the server can read. `config` mirrors DatasetConfig (snake_case keys)."""
        if config.get("data_source") or config.get("query"):
            raise Unimplemented("config.data_source: registered data sources and SQL queries are not implemented yet; "
                                "give config.source_uri")
        source = config.get("source_uri", "")
        if not source:
            raise InvalidArgument.field("config.source_uri", "is required: a path or file:// URI the server can read",
                                        "REQUIRED")
        dataset_type = config.get("type") or "tabular"
        if dataset_type != "tabular":
            raise Unimplemented(f"config.type: {dataset_type} datasets are not implemented yet; use TABULAR")
        fmt = detect_format(source, config.get("format", ""))
        name = self._new_name(project, dataset_id, "dataset_id")
        dest = self._dir(name) / "data.parquet"
        schema = config.get("schema")
        try:
            result = ingest_file(
                source, str(dest), fmt=fmt, label_column=config.get("label_column", ""),
                schema=DataSchema.from_dict(schema) if schema else None, field_prefix="config",
            )
        except BaseException:
            shutil.rmtree(self._dir(name), ignore_errors=True)
            raise
        return self._insert(name, project, result, config, source_uri=source,
                            lineage={"parents": [], "operation": "load", "parameters": {"format": fmt}})

    def upload_path(self) -> Path:
        """A fresh temporary file for an incoming upload."""
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        return self.uploads_dir / names.new_id("upload")

    def check_upload_size(self, received: int) -> None:
        if received > self.max_upload_bytes:
            raise ResourceExhausted(
                f"upload exceeds the server's limit of {self.max_upload_bytes} bytes: split the file, or raise "
                "--max-upload-bytes on the server"
            )

    def create_from_upload(self, project: str, metadata: dict[str, Any], tmp_path: Path) -> DatasetRow:
        """Turn an uploaded file into a dataset; always removes `tmp_path`."""
        try:
            fmt = metadata.get("format", "")
            if not fmt:
                raise InvalidArgument.field("metadata.format", "is required for uploads: CSV, PARQUET or JSONL",
                                            "REQUIRED")
            fmt = detect_format("upload", fmt, field_prefix="metadata")
            name = self._new_name(project, metadata.get("dataset_id", ""), "metadata.dataset_id")
            dest = self._dir(name) / "data.parquet"
            schema = metadata.get("schema")
            try:
                result = ingest_file(str(tmp_path), str(dest), fmt=fmt, label_column=metadata.get("label_column", ""),
                                     schema=DataSchema.from_dict(schema) if schema else None, field_prefix="metadata")
            except BaseException:
                shutil.rmtree(self._dir(name), ignore_errors=True)
                raise
            return self._insert(name, project, result, metadata, source_uri="upload",
                                lineage={"parents": [], "operation": "upload", "parameters": {"format": fmt}})
        finally:
            tmp_path.unlink(missing_ok=True)

    def split(self, name: str, ratios: list[float], *, seed: int, stratify_column: str, shuffle: bool,
              dataset_ids: Iterable[str]) -> list[DatasetRow]:
        parent = self.get(name)
        verify(parent.path, parent.sha256)
        project = names.project_of(name)
        ids = list(dataset_ids)
        base = names.short_id(name)
        if ids and len(ids) != len(ratios):
            raise InvalidArgument.field("dataset_ids", f"give one id per ratio ({len(ratios)}), or none")
        if not ids:
            suffixes = ["train", "validation", "test"] if len(ratios) == 3 else (
                ["train", "test"] if len(ratios) == 2 else [f"part-{i}" for i in range(len(ratios))])
            ids = [f"{base}-{suffix}"[:63] for suffix in suffixes]
        new_names = [self._new_name(project, i, f"dataset_ids[{k}]") for k, i in enumerate(ids)]
        if len(set(new_names)) != len(new_names):
            raise InvalidArgument.field("dataset_ids", "ids must be distinct")
        dests = [str(self._dir(n) / "data.parquet") for n in new_names]
        try:
            results = split_table(parent.path, dests, list(ratios), seed=seed, stratify_column=stratify_column,
                                  shuffle=shuffle, label_column=parent.label_column,
                                  schema=DataSchema.from_dict(parent.schema))
        except BaseException:
            for n in new_names:
                shutil.rmtree(self._dir(n), ignore_errors=True)
            raise
        rows = []
        for part, (new_name, result) in enumerate(zip(new_names, results)):
            params = {"ratios": list(ratios), "seed": seed, "stratify_column": stratify_column, "shuffle": shuffle,
                      "part": part}
            rows.append(self._insert(
                new_name, project, result,
                {"display_name": f"{parent.display_name or base} ({ids[part]})", "type": parent.type,
                 "label_column": parent.label_column, "labels": parent.labels},
                source_uri=parent.source_uri, version=parent.version + 1,
                lineage={"parents": [name], "operation": "split", "parameters": params},
            ))
        return rows

    def records(self, name: str, offset: int, limit: int, columns: list[str]) -> tuple[list[dict], int]:
        row = self.get(name)
        if limit > 10_000:
            raise InvalidArgument.field("limit", f"must be at most 10000, got {limit}")
        return read_records(row.path, offset, limit or 100, columns or None)

    def list(self, project: str, page_size: int, page_token: str, filter_: str) -> tuple[list[DatasetRow], str]:
        terms = parse_filter(filter_, {"type"})
        offset, limit = page_bounds(page_size, page_token)
        query = select(DatasetRow).where(DatasetRow.project == project)
        if "type" in terms:
            query = query.where(DatasetRow.type == terms["type"].lower().removeprefix("dataset_type_"))
        with self._db.session() as s:
            rows = list(s.scalars(query.order_by(DatasetRow.create_time.desc(), DatasetRow.name)))
        for key, value in terms.items():
            if key.startswith("label."):
                rows = [r for r in rows if (r.labels or {}).get(key[6:]) == value]
        page = rows[offset: offset + limit]
        return page, next_token(offset, limit, len(page), offset + limit < len(rows))

    def delete(self, name: str) -> None:
        with self._db.session() as s:
            row = s.get(DatasetRow, name)
            if row is None:
                raise NotFound(f"dataset {name} not found")
            s.delete(row)
        shutil.rmtree(self._dir(name), ignore_errors=True)

    def _insert(self, name: str, project: str, result: IngestResult, config: dict[str, Any], *, source_uri: str,
                lineage: dict[str, Any], version: int = 1) -> DatasetRow:
        dataset_type = config.get("type") or "tabular"
        if dataset_type not in DATASET_TYPES:
            raise InvalidArgument.field("config.type", f"one of {', '.join(DATASET_TYPES)}")
        row = DatasetRow(
            name=name,
            project=project,
            display_name=config.get("display_name", ""),
            type=dataset_type,
            source_uri=source_uri,
            label_column=config.get("label_column", ""),
            path=result.path,
            sha256=result.sha256,
            size_bytes=result.size_bytes,
            row_count=result.row_count,
            version=version,
            schema=result.schema.to_dict(),
            statistics=result.statistics.to_dict(),
            lineage=lineage,
            labels=dict(config.get("labels") or {}),
            create_time=datetime.now(timezone.utc),
        )
        with self._db.session() as s:
            s.add(row)
        return row
