"""DataManager: datasets as resources, as the seed's DataManager and Dataset.

A dataset is immutable: its rows are stored once as Parquet under the data dir with
their sha256, and every operation (split, ...) creates new datasets whose lineage
names their parents. File work happens in engine/data's pure functions; this class
keeps the metadata rows.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from engine import names
from engine.data.ingest import IngestResult, detect_format, ingest_file, local_path
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
        self._data_dir = data_dir
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
        self._check_type(config.get("type"), "config.type")
        path = Path(local_path(source, "config.source_uri")).resolve()
        if path.is_relative_to(self._data_dir.resolve()):
            # The data dir holds every project's stored data and the metadata database.
            raise InvalidArgument.field("config.source_uri", "points inside the server's data directory: give a "
                                                             "file outside it, or use SplitDataset on a dataset")
        fmt = detect_format(source, config.get("format", ""))
        name = self._new_name(project, dataset_id, "dataset_id")
        schema = config.get("schema")
        result, directory = self._staged(lambda dest: ingest_file(
            str(path), dest, fmt=fmt, label_column=config.get("label_column", ""),
            schema=DataSchema.from_dict(schema) if schema else None, field_prefix="config"))
        return self._publish(name, directory, project, result, config, source_uri=source,
                             lineage={"parents": [], "operation": "load", "parameters": {"format": fmt}})

    def check_upload(self, project: str, metadata: dict[str, Any]) -> str:
        """Check an upload's metadata before its bytes arrive; returns the new dataset's name."""
        fmt = metadata.get("format", "")
        if not fmt:
            raise InvalidArgument.field("metadata.format", "is required for uploads: CSV, PARQUET or JSONL",
                                        "REQUIRED")
        detect_format("upload", fmt, field_prefix="metadata")
        self._check_type(metadata.get("type"), "metadata.type")
        if metadata.get("size_bytes", 0) > self.max_upload_bytes:
            self.check_upload_size(metadata["size_bytes"])
        return self._new_name(project, metadata.get("dataset_id", ""), "metadata.dataset_id")

    def upload_path(self, fmt: str) -> Path:
        """A fresh file for an incoming upload, in a directory of its own (removed by create_from_upload)."""
        directory = self.uploads_dir / names.new_id("upload")
        directory.mkdir(parents=True)
        return directory / f"uploaded.{fmt}"

    def check_upload_size(self, received: int) -> None:
        if received > self.max_upload_bytes:
            raise ResourceExhausted(
                f"upload exceeds the server's limit of {self.max_upload_bytes} bytes: split the file, or raise "
                "--max-upload-bytes on the server"
            )

    def create_from_upload(self, name: str, metadata: dict[str, Any], tmp_path: Path) -> DatasetRow:
        """Turn an uploaded file into the dataset `name` (from check_upload); always removes `tmp_path`."""
        try:
            fmt = detect_format("upload", metadata["format"], field_prefix="metadata")
            schema = metadata.get("schema")
            result, directory = self._staged(lambda dest: ingest_file(
                str(tmp_path), dest, fmt=fmt, label_column=metadata.get("label_column", ""),
                schema=DataSchema.from_dict(schema) if schema else None, field_prefix="metadata",
                source_field="chunk"))
            return self._publish(name, directory, names.project_of(name), result, metadata, source_uri="upload",
                                 lineage={"parents": [], "operation": "upload", "parameters": {"format": fmt}})
        finally:
            shutil.rmtree(tmp_path.parent, ignore_errors=True)

    @staticmethod
    def _check_type(dataset_type: str | None, field: str) -> None:
        if dataset_type and dataset_type != "tabular":
            raise Unimplemented(f"{field}: {dataset_type} datasets are not implemented yet; use TABULAR")

    def _staged(self, produce) -> tuple[IngestResult, Path]:
        """Run `produce(dest)` into a private staging directory; returns its result and the directory.

        Concurrent requests for the same dataset id never write into each other's files: each
        stages privately and only one can move its directory into place (_publish)."""
        directory = self._root / ".staging" / names.new_id("stage")
        directory.mkdir(parents=True)
        try:
            return produce(str(directory / "data.parquet")), directory
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise

    def _publish(self, name: str, staged: Path, project: str, result: IngestResult, config: dict[str, Any], *,
                 source_uri: str, lineage: dict[str, Any], version: int = 1) -> DatasetRow:
        final = self._dir(name)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(staged, final)  # atomic; fails when another request already owns the name
        except OSError:
            shutil.rmtree(staged, ignore_errors=True)
            raise AlreadyExists(f"dataset {name} already exists: choose another id") from None
        result.path = str(final / "data.parquet")
        try:
            return self._insert(name, project, result, config, source_uri=source_uri, lineage=lineage,
                                version=version)
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)
            raise

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
        staging = self._root / ".staging" / names.new_id("split")
        dests = [str(staging / str(k) / "data.parquet") for k in range(len(new_names))]
        try:
            results = split_table(parent.path, dests, list(ratios), seed=seed, stratify_column=stratify_column,
                                  shuffle=shuffle, label_column=parent.label_column,
                                  schema=DataSchema.from_dict(parent.schema))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        rows: list[DatasetRow] = []
        try:
            for part, (new_name, result) in enumerate(zip(new_names, results)):
                params = {"ratios": list(ratios), "seed": seed, "stratify_column": stratify_column,
                          "shuffle": shuffle, "part": part}
                rows.append(self._publish(
                    new_name, staging / str(part), project, result,
                    {"display_name": f"{parent.display_name or base} ({ids[part]})", "type": parent.type,
                     "label_column": parent.label_column, "labels": parent.labels},
                    source_uri=parent.source_uri, version=parent.version + 1,
                    lineage={"parents": [name], "operation": "split", "parameters": params},
                ))
        except BaseException:  # all parts or none
            for row in rows:
                self.delete(row.name)
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
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
        try:
            with self._db.session() as s:
                s.add(row)
        except IntegrityError:
            raise AlreadyExists(f"dataset {name} already exists: choose another id") from None
        return row
