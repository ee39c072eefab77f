"""DataManager: datasets as resources, as the seed's DataManager and Dataset.

A dataset is immutable: its rows are stored once as Parquet under the data dir with
their sha256, and every operation (split, ...) creates new datasets whose lineage
names their parents. File work happens in engine/data's pure functions; this class
keeps the metadata rows.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from engine import names
from engine.data.ingest import IngestLimits, IngestResult, detect_format, ingest_file
from engine.data.locations import check_source, local_path_of
from engine.data.operations import filter_table, merge_tables
from engine.data.processing import apply_to_table, fit_processing, process_table
from engine.data.records import load_frame, read_records
from engine.data.sources import load_source
from engine.data.validation import validate as validate_rules
from engine.data.schema import DataSchema
from engine.data.splits import split_table
from engine.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted, Unavailable
from engine.paging import next_token, page_bounds, parse_filter
from engine.storage.artifacts import ArtifactStore
from engine.storage.files import verify
from engine.store.database import Database
from engine.store.models import DataPipelineRow, DataSourceRow, DatasetRow

log = logging.getLogger("forge.data")

DATASET_TYPES = ("tabular", "image", "text", "time_series")
DEFAULT_MAX_UPLOAD_BYTES = 1 << 30


class DataManager:
    def __init__(self, db: Database, data_dir: Path, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES, *,
                 data_roots: tuple[str, ...] | None = None, limits: IngestLimits | None = None,
                 store: ArtifactStore | None = None):
        self._db = db
        # An object store (s3, gcs, azure) keeps a copy of every dataset file, so a server
        # with an empty data dir (or a Ray node without it) fetches what it needs; local
        # storage keeps none: the data dir is the dataset's one home.
        self.store = store if store is not None and not store.local else None
        self._data_dir = data_dir
        self._root = data_dir / "datasets"
        self.uploads_dir = data_dir / "uploads"
        self.max_upload_bytes = max_upload_bytes
        # Folders local sources may read (None: any path; see engine/data/locations.py).
        self.data_roots = data_roots
        self.limits = limits or IngestLimits()
        # Called with each dataset once it is created (pipelines' dataset_created triggers).
        self.on_created: list[Callable[[DatasetRow], Any]] = []

    def _dir(self, name: str) -> Path:
        return self._root / names.project_of(name) / names.short_id(name)

    @staticmethod
    def _key(name: str) -> str:
        """Where a dataset's file lives in the object store: the data dir's own layout."""
        return f"datasets/{names.project_of(name)}/{names.short_id(name)}/data.parquet"

    def stored(self, row: DatasetRow) -> dict[str, Any] | None:
        """The object store's copy of `row`'s file ({uri, sha256, size_bytes}); None without one."""
        if self.store is None:
            return None
        return {"uri": self.store.uri(self._key(row.name)), "sha256": row.sha256, "size_bytes": row.size_bytes}

    def local_file(self, row: DatasetRow) -> str:
        """The path of `row`'s file on this machine, fetched from the object store (and its
        sha256 checked) when the data dir lacks it."""
        if self.store is not None:
            self.store.restore(self.stored(row), row.path)
        return row.path

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
        """Load data the server can reach. `config` mirrors DatasetConfig (snake_case keys): a
        registered data_source (with an optional query), a path, or a file://, s3://, gs://
        URI; CSV, Parquet, JSON Lines, a folder of images or of text files."""
        source = self._source_of(project, config)
        self._check_type(config.get("type"), "config.type")
        name = self._new_name(project, dataset_id, "dataset_id")
        schema = config.get("schema")
        result, directory = self._staged(lambda dest: load_source(
            source, dest, field_prefix="config", label_column=config.get("label_column", ""),
            schema=DataSchema.from_dict(schema) if schema else None, limits=self.limits))
        if config.get("validation", {}).get("fail_on_violation"):
            try:
                self._refuse_invalid(result.path, config["validation"], "config.validation")
            except BaseException:
                shutil.rmtree(directory, ignore_errors=True)
                raise
        shown_uri = source.get("data_source") or source["uri"]
        kind = config.get("type") or {"image_folder": "image", "text": "text"}.get(source["format"], "tabular")
        return self._publish(name, directory, project, result, {**config, "type": kind}, source_uri=shown_uri,
                             lineage={"parents": [], "operation": "load",
                                      "parameters": {"format": source["format"], "type": source["type"],
                                                     "query": source.get("query", "")}})

    def _source_of(self, project: str, config: dict[str, Any]) -> dict[str, Any]:
        """The source to load: a registered one (credentials included, server side only) or the URI."""
        if config.get("data_source"):
            ref = names.resolve(config["data_source"], "dataSources", "config.data_source", project)
            with self._db.session() as s:
                row = s.get(DataSourceRow, ref)
            if row is None:
                raise NotFound(f"config.data_source: data source {ref} not found")
            if config.get("source_uri"):
                # The source's credentials must only ever go to the source's own address.
                raise InvalidArgument.field("config.source_uri", "leave it empty when config.data_source is set: "
                                                                 "the registered source says where the data is")
            if config.get("query") and row.type != "sql":
                raise InvalidArgument.field("config.query", f"{ref} is a {row.type} source; only SQL sources take "
                                                            "a query")
            if config.get("format") and row.type == "sql":
                raise InvalidArgument.field("config.format", "a SQL source reads a query result; leave it unset")
            source = {"data_source": ref, "type": row.type, "uri": row.uri,
                      "format": config.get("format") or row.format, "query": config.get("query") or row.query,
                      "options": dict(row.options or {}), "credentials": dict(row.credentials or {})}
            # Checked again at each load: the server's data roots may have changed since registration.
            self._check_location(source, "config.data_source")
            return source
        uri = config.get("source_uri", "")
        if not uri:
            raise InvalidArgument.field("config.source_uri", "is required: a path or URI the server can read, or "
                                                             "set config.data_source", "REQUIRED")
        if config.get("query"):
            raise InvalidArgument.field("config.query", "needs a SQL data source: register one with "
                                                        "RegisterDataSource and set config.data_source")
        if "://" in uri and "@" in uri.split("://", 1)[1].split("/", 1)[0]:
            raise InvalidArgument.field("config.source_uri", "holds credentials: register a data source with "
                                                             "them in data_source.credentials instead")
        scheme = uri.split("://", 1)[0].lower() if "://" in uri else "file"
        kind = "file" if scheme == "file" else "object_store"
        fmt = config.get("format", "")
        # Before anything looks at the file: whether a path outside the roots exists is not for the client to learn.
        self._check_location({"type": kind, "uri": uri, "format": fmt}, "config.source_uri")
        if not fmt and kind == "file" and Path(local_path_of(uri, "config.source_uri")).is_dir():
            raise InvalidArgument.field("config.format", "is required for a folder: IMAGE_FOLDER or TEXT",
                                        "REQUIRED")
        if fmt not in ("image_folder", "text"):
            fmt = detect_format(uri, fmt)
        return {"type": kind, "uri": uri, "format": fmt, "query": "", "options": {}, "credentials": {}}

    def _check_location(self, source: dict[str, Any], field: str) -> None:
        """Refuse a source the server must not read: inside its data directory, outside its data
        roots, or through a scheme that reads around them (engine/data/locations.py)."""
        check_source(source, field, data_dir=self._data_dir, roots=self.data_roots)

    # ----- registered data sources

    def register_source(self, project: str, source_id: str, source: dict[str, Any]) -> DataSourceRow:
        kind = source.get("type", "")
        if kind not in ("file", "sql", "object_store"):
            raise InvalidArgument.field("data_source.type", "is required: FILE, SQL or OBJECT_STORE", "REQUIRED")
        if not source.get("uri"):
            raise InvalidArgument.field("data_source.uri", "is required: a path, URI or SQLAlchemy URL", "REQUIRED")
        source = _secrets_out_of_uri(source)
        self._check_location(source, "data_source.uri")
        source_id = names.validate_id(source_id, "data_source_id") if source_id else names.new_id("src")
        name = names.make(project, "dataSources", source_id)
        row = DataSourceRow(
            name=name, project=project, display_name=source.get("display_name", ""), type=kind,
            uri=source["uri"], format=source.get("format", ""), query=source.get("query", ""),
            options=dict(source.get("options") or {}), credentials=dict(source.get("credentials") or {}),
            create_time=datetime.now(timezone.utc),
        )
        try:
            with self._db.session() as s:
                if s.get(DataSourceRow, name) is not None:
                    raise AlreadyExists(f"data source {name} already exists: choose another data_source_id")
                s.add(row)
        except IntegrityError:
            raise AlreadyExists(f"data source {name} already exists: choose another data_source_id") from None
        return row

    def get_source(self, name: str) -> DataSourceRow:
        with self._db.session() as s:
            row = s.get(DataSourceRow, name)
        if row is None:
            raise NotFound(f"data source {name} not found")
        return row

    def list_sources(self, project: str, page_size: int, page_token: str) -> tuple[list[DataSourceRow], str]:
        offset, limit = page_bounds(page_size, page_token)
        with self._db.session() as s:
            rows = list(s.scalars(select(DataSourceRow).where(DataSourceRow.project == project)
                                  .order_by(DataSourceRow.create_time.desc(), DataSourceRow.name)))
        page = rows[offset: offset + limit]
        return page, next_token(offset, limit, len(page), offset + limit < len(rows))

    # ----- derived datasets

    def sweep(self) -> None:
        """Remove what a crash left half-done: staged datasets and partial uploads."""
        shutil.rmtree(self._root / ".staging", ignore_errors=True)
        shutil.rmtree(self.uploads_dir, ignore_errors=True)

    def transform(self, name: str, processing: dict[str, Any], dataset_id: str,
                  field: str = "processing") -> DatasetRow:
        """Fit `processing` on the dataset and apply it: a new dataset recording the fitted steps."""
        parent = self._readable(name)
        project = names.project_of(name)
        new_name = self._new_name(project, dataset_id, "dataset_id")
        holder: dict[str, Any] = {}

        def produce(dest: str) -> IngestResult:
            result, holder["fitted"] = process_table(parent.path, dest, processing,
                                                     label_column=parent.label_column, field=field)
            return result

        result, directory = self._staged(produce)
        return self._publish(new_name, directory, project, result, self._derived_config(parent),
                             source_uri=parent.source_uri, version=parent.version + 1,
                             lineage={"parents": [name], "operation": "transform",
                                      "parameters": {"processing": processing, "fitted": holder["fitted"]}})

    def filter(self, name: str, expression: str, dataset_id: str) -> DatasetRow:
        parent = self._readable(name)
        project = names.project_of(name)
        new_name = self._new_name(project, dataset_id, "dataset_id")
        result, directory = self._staged(lambda dest: filter_table(parent.path, dest, expression, field="expression",
                                                                   label_column=parent.label_column,
                                                                   schema=DataSchema.from_dict(parent.schema)))
        return self._publish(new_name, directory, project, result, self._derived_config(parent),
                             source_uri=parent.source_uri, version=parent.version + 1,
                             lineage={"parents": [name], "operation": "filter",
                                      "parameters": {"expression": expression}})

    def merge(self, project: str, dataset_names: list[str], dataset_id: str) -> DatasetRow:
        if len(dataset_names) < 2:
            raise InvalidArgument.field("datasets", "give at least two datasets to merge")
        parents = [self._readable(n) for n in dataset_names]
        new_name = self._new_name(project, dataset_id, "dataset_id")
        first = parents[0]
        result, directory = self._staged(lambda dest: merge_tables([p.path for p in parents], dest, field="datasets",
                                                                   label_column=first.label_column))
        return self._publish(new_name, directory, project, result, self._derived_config(first),
                             source_uri=first.source_uri, version=max(p.version for p in parents) + 1,
                             lineage={"parents": list(dataset_names), "operation": "merge", "parameters": {}})

    def validate(self, name: str, rules: dict[str, Any]) -> dict[str, Any]:
        return validate_rules(self._readable(name).path, rules, field_prefix="rules")

    def _refuse_invalid(self, path: str, rules: dict[str, Any], field: str) -> None:
        report = validate_rules(path, rules, field_prefix=field)
        if not report["valid"]:
            summary = "; ".join(f"{i['rule']} {i.get('column') or ''}: {i['message']}".strip()
                                for i in report["issues"][:3])
            raise FailedPrecondition(f"{field}: the data fails {len(report['issues'])} validation rule(s): {summary}")

    def refuse_invalid(self, name: str, rules: dict[str, Any], field: str) -> None:
        """FAILED_PRECONDITION with the first issues when dataset `name` fails `rules`."""
        self._refuse_invalid(self._readable(name).path, rules, field)

    # ----- data pipelines: processing fitted once, applied to any dataset

    def create_pipeline(self, project: str, pipeline_id: str, pipeline: dict[str, Any]) -> DataPipelineRow:
        if not pipeline.get("fit_dataset"):
            raise InvalidArgument.field("data_pipeline.fit_dataset", "is required: the dataset to fit the steps on "
                                                                     "(the training split)", "REQUIRED")
        fit_name = names.resolve(pipeline["fit_dataset"], "datasets", "data_pipeline.fit_dataset", project)
        fit = self._readable(fit_name, field="data_pipeline.fit_dataset")
        pipeline_id = names.validate_id(pipeline_id, "data_pipeline_id") if pipeline_id else names.new_id("dp")
        name = names.make(project, "dataPipelines", pipeline_id)
        with self._db.session() as s:
            if s.get(DataPipelineRow, name) is not None:
                raise AlreadyExists(f"data pipeline {name} already exists: choose another data_pipeline_id")
        if pipeline.get("validation"):
            self._refuse_invalid(fit.path, pipeline["validation"], "data_pipeline.validation")
        processing = dict(pipeline.get("processing") or {})
        if fit.label_column:  # the label is never scaled, encoded or dropped by the steps
            engineering = dict(processing.get("feature_engineering") or {})
            engineering.setdefault("label_column", fit.label_column)
            processing["feature_engineering"] = engineering
        fitted = fit_processing(load_frame(fit.path), processing, field="data_pipeline.processing")
        row = DataPipelineRow(name=name, project=project, display_name=pipeline.get("display_name", ""),
                              validation=pipeline.get("validation") or {}, processing=pipeline.get("processing") or {},
                              fit_dataset=fit_name, fitted=fitted, create_time=datetime.now(timezone.utc))
        try:
            with self._db.session() as s:
                s.add(row)
        except IntegrityError:
            raise AlreadyExists(f"data pipeline {name} already exists: choose another data_pipeline_id") from None
        return row

    def get_pipeline(self, name: str) -> DataPipelineRow:
        with self._db.session() as s:
            row = s.get(DataPipelineRow, name)
        if row is None:
            raise NotFound(f"data pipeline {name} not found")
        return row

    def run_pipeline(self, name: str, dataset: str, output_id: str) -> DatasetRow:
        pipeline = self.get_pipeline(name)
        project = names.project_of(name)
        dataset = names.resolve(dataset, "datasets", "dataset", project)
        parent = self._readable(dataset, field="dataset")
        if pipeline.validation:
            self._refuse_invalid(parent.path, pipeline.validation, "dataset")
        new_name = self._new_name(project, output_id, "output_dataset_id")
        # On its own fitting data a pipeline samples and augments, as TransformDataset does.
        fitting = dataset == pipeline.fit_dataset
        result, directory = self._staged(lambda dest: apply_to_table(parent.path, dest, pipeline.fitted,
                                                                     label_column=parent.label_column,
                                                                     fitting=fitting))
        return self._publish(new_name, directory, project, result, self._derived_config(parent),
                             source_uri=parent.source_uri, version=parent.version + 1,
                             lineage={"parents": [dataset], "operation": "data_pipeline",
                                      "parameters": {"data_pipeline": name, "fit_dataset": pipeline.fit_dataset}})

    def _readable(self, name: str, field: str = "name") -> DatasetRow:
        row = self.get(name, field=field)
        verify(self.local_file(row), row.sha256)
        return row

    @staticmethod
    def _derived_config(parent: DatasetRow) -> dict[str, Any]:
        return {"display_name": parent.display_name, "type": parent.type, "label_column": parent.label_column,
                "labels": parent.labels}

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
                source_field="chunk", limits=self.limits))
            return self._publish(name, directory, names.project_of(name), result, metadata, source_uri="upload",
                                 lineage={"parents": [], "operation": "upload", "parameters": {"format": fmt}})
        finally:
            shutil.rmtree(tmp_path.parent, ignore_errors=True)

    @staticmethod
    def _check_type(dataset_type: str | None, field: str) -> None:
        if dataset_type and dataset_type not in DATASET_TYPES:
            raise InvalidArgument.field(field, f"one of {', '.join(t.upper() for t in DATASET_TYPES)}")

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
        if self.store is not None:
            try:
                self.store.put_file(result.path, self._key(name), result.size_bytes, result.sha256)
            except Exception as exc:  # the store refused or cannot be reached: nothing is recorded
                shutil.rmtree(final, ignore_errors=True)
                raise Unavailable(f"could not store dataset {name} in {self.store.config.describe()}: {exc}; "
                                  "nothing was created, try again once the store answers") from exc
        try:
            return self._insert(name, project, result, config, source_uri=source_uri, lineage=lineage,
                                version=version)
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)
            if self.store is not None:
                self.store.discard(self.store.uri(self._key(name)))
            raise

    def split(self, name: str, ratios: list[float], *, seed: int, stratify_column: str, shuffle: bool,
              dataset_ids: Iterable[str], group_column: str = "", time_column: str = "") -> list[DatasetRow]:
        parent = self._readable(name)
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
                                  schema=DataSchema.from_dict(parent.schema), group_column=group_column,
                                  time_column=time_column)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        rows: list[DatasetRow] = []
        try:
            for part, (new_name, result) in enumerate(zip(new_names, results)):
                params = {"ratios": list(ratios), "seed": seed, "stratify_column": stratify_column,
                          "shuffle": shuffle, "group_column": group_column, "time_column": time_column,
                          "part": part}
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
        return read_records(self.local_file(row), offset, limit or 100, columns or None)

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
        if self.store is not None:
            self.store.discard(self.store.uri(self._key(name)))

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
        for listener in self.on_created:
            try:
                listener(row)
            except Exception:  # what others do with a new dataset never fails its creation
                log.exception("a listener of new datasets failed on %s", name)
        return row


def _secrets_out_of_uri(source: dict[str, Any]) -> dict[str, Any]:
    """Move a password written into a source's URI into its credentials, so the stored and
    returned URI never holds one."""
    source = {**source, "credentials": dict(source.get("credentials") or {})}
    uri = source.get("uri", "")
    if source.get("type") == "sql":
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(uri)
        except (ArgumentError, ValueError):  # ArgumentError: not a URL at all; ValueError: a bad port
            raise InvalidArgument.field("data_source.uri", "is not a SQLAlchemy database URL such as "
                                                           "postgresql://host:5432/name") from None
        password = url.password or url.query.get("password")
        if password:
            source["credentials"].setdefault("password", str(password))
            # URL.set treats None as "unchanged"; URL is a named tuple, so replace the field itself.
            url = url._replace(password=None).difference_update_query(["password"])
        source["uri"] = url.render_as_string(hide_password=False)
    elif "://" in uri and "@" in uri.split("://", 1)[1].split("/", 1)[0]:
        raise InvalidArgument.field("data_source.uri", "holds credentials: put them in data_source.credentials "
                                                       "(key, secret, token) and leave them out of the URI")
    return source