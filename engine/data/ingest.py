"""Turning a user's CSV / Parquet / JSONL file into a stored Parquet dataset.

The stored file always has canonical column types (see `schema.canonical_table`) and is
written atomically, so a dataset record in the database never points at a torn file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from engine.data.schema import DataSchema, canonical_table, enforce_schema, infer_schema
from engine.data.statistics import DataStatistics, compute_statistics
from engine.errors import InvalidArgument
from engine.storage.files import write_atomic

FORMATS = ("csv", "parquet", "jsonl")
# Longest suffixes first so ".csv.gz" is not mistaken for an unknown ".gz".
_EXTENSIONS = (
    (".csv.gz", "csv"),
    (".csv", "csv"),
    (".parquet", "parquet"),
    (".pq", "parquet"),
    (".jsonl", "jsonl"),
    (".ndjson", "jsonl"),
)
# Row groups are the unit `records.read_records` reads; 64k rows keeps a page read small
# without making the file's footer large.
ROW_GROUP_ROWS = 64 * 1024


@dataclass
class IngestResult:
    path: str
    row_count: int
    size_bytes: int
    sha256: str
    schema: DataSchema
    statistics: DataStatistics

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "row_count": self.row_count,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "schema": self.schema.to_dict(),
            "statistics": self.statistics.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "IngestResult":
        return cls(
            path=data["path"],
            row_count=int(data["row_count"]),
            size_bytes=int(data["size_bytes"]),
            sha256=data["sha256"],
            schema=DataSchema.from_dict(data["schema"]),
            statistics=DataStatistics.from_dict(data["statistics"]),
        )


def _field(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def detect_format(path_or_name: str, fmt: str = "", *, field_prefix: str = "config") -> str:
    """"csv" | "parquet" | "jsonl", from `fmt` when given, otherwise from the file extension."""
    if fmt:
        normalized = fmt.strip().lower()
        if normalized in FORMATS:
            return normalized
        raise InvalidArgument.field(
            _field(field_prefix, "format"), f"format {fmt!r} is not supported; use one of: {', '.join(FORMATS)}"
        )
    name = urlparse(path_or_name).path if "://" in path_or_name else path_or_name
    lowered = name.lower()
    for suffix, detected in _EXTENSIONS:
        if lowered.endswith(suffix):
            return detected
    suffixes = ", ".join(s for s, _ in _EXTENSIONS)
    raise InvalidArgument.field(
        _field(field_prefix, "format"),
        f"cannot tell the format of {Path(name).name or path_or_name!r} from its extension; set format to one of "
        f"{', '.join(FORMATS)} or name the file with one of {suffixes}",
    )


def local_path(source: str, source_field: str) -> str:
    """The local file behind `source` (a path or a file:// URI), which must exist."""
    if "://" in source:
        parsed = urlparse(source)
        if parsed.scheme != "file":
            raise InvalidArgument.field(
                source_field, f"scheme {parsed.scheme!r} is not supported; give a local path or a file:// URI"
            )
        if parsed.netloc not in ("", "localhost"):
            raise InvalidArgument.field(
                source_field, f"file URI host {parsed.netloc!r} is not supported; use file:///absolute/path"
            )
        path = unquote(parsed.path)
    else:
        path = source
    if not path:
        raise InvalidArgument.field(source_field, "is empty; give a local path or a file:// URI")
    if not os.path.exists(path):
        raise InvalidArgument.field(source_field, f"no such file: {path}")
    if os.path.isdir(path):
        raise InvalidArgument.field(source_field, f"{path} is a directory; give a single file")
    return path


def _read(path: str, fmt: str, source_field: str) -> pa.Table:
    try:
        if fmt == "csv":
            # Empty cells are missing values, as pandas and spreadsheets treat them,
            # not empty strings. Compressed files (.gz) are detected from the extension.
            return pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(strings_can_be_null=True))
        if fmt == "parquet":
            return pq.read_table(path)
        return pa_json.read_json(path)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OSError) as exc:
        raise InvalidArgument.field(source_field, f"cannot read {Path(path).name} as {fmt}: {exc}") from None


def _write(table: pa.Table, dest: str) -> tuple[int, str]:
    return write_atomic(dest, lambda tmp: pq.write_table(table, tmp, row_group_size=ROW_GROUP_ROWS))


def _check_label(table: pa.Table, label_column: str, field_prefix: str) -> None:
    if label_column and label_column not in table.column_names:
        raise InvalidArgument.field(
            _field(field_prefix, "label_column"),
            f"column {label_column!r} is not in the data; available columns: {', '.join(table.column_names)}",
        )


def write_table(
    table: pa.Table,
    dest: str,
    *,
    label_column: str = "",
    schema: DataSchema | None = None,
    field_prefix: str = "config",
) -> IngestResult:
    """Store `table` as Parquet at `dest` atomically and describe it.

    With `schema`, the table is cast to it and the result carries that schema unchanged
    (declared categories and descriptions survive); without, the schema is inferred. Empty
    tables are written as they are; it is `ingest_file` that refuses them as uploads.
    """
    table = canonical_table(table, blame_field=_field(field_prefix, "source_uri"))
    if schema is not None:
        table = enforce_schema(table, schema, field_prefix=field_prefix)
    else:
        schema = infer_schema(table, blame_field=_field(field_prefix, "source_uri"))
    _check_label(table, label_column, field_prefix)
    statistics = compute_statistics(table, label_column or None)
    size_bytes, sha256 = _write(table, dest)
    return IngestResult(
        path=str(dest),
        row_count=table.num_rows,
        size_bytes=size_bytes,
        sha256=sha256,
        schema=DataSchema.from_dict(schema.to_dict()),  # a copy: the caller's object stays theirs
        statistics=statistics,
    )


def ingest_file(
    source: str,
    dest: str,
    *,
    fmt: str = "",
    label_column: str = "",
    schema: DataSchema | None = None,
    field_prefix: str = "config",
    source_field: str = "",
) -> IngestResult:
    """Read a CSV / Parquet / JSONL file (path or file:// URI) and store it as Parquet at `dest`.

    `source_field` names the request field that supplied the bytes in errors about them
    (default `<field_prefix>.source_uri`; uploads pass their own).

    Errors are InvalidArgument on `<field_prefix>.source_uri` (missing, unreadable, empty
    or unsupported file), `.format`, `.label_column` or `.schema.columns[i]`.
    """
    source_field = source_field or _field(field_prefix, "source_uri")
    path = local_path(source, source_field)
    table = _read(path, detect_format(path, fmt, field_prefix=field_prefix), source_field)
    if table.num_columns == 0:
        raise InvalidArgument.field(source_field, f"{Path(path).name} has no columns")
    if table.num_rows == 0:
        raise InvalidArgument.field(source_field, f"{Path(path).name} has no data rows; upload a file with at least one row")
    return write_table(table, dest, label_column=label_column, schema=schema, field_prefix=field_prefix)
