"""Turning a user's CSV / Parquet / JSONL file into a stored Parquet dataset.

The stored file always has canonical column types (see `schema.canonical_table`) and is
written atomically, so a dataset record in the database never points at a torn file.

Files are read whole, except CSV files above `CSV_STREAM_THRESHOLD_BYTES`: those are
converted batch by batch (`engine.data.streaming`) so memory stays bounded.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator
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
# CSV files larger than this are converted batch by batch (engine/data/streaming.py) instead
# of read whole: Arrow arrays of a CSV take a few times its size.
CSV_STREAM_THRESHOLD_BYTES = 256 * 1024 * 1024


@dataclass
class IngestResult:
    path: str
    row_count: int
    size_bytes: int
    sha256: str
    schema: DataSchema
    statistics: DataStatistics
    # 0: every statistic is exact. Otherwise the data was streamed and had more rows than
    # this: some statistics were estimated from a uniform sample of this many rows (which
    # ones: engine/data/streaming.py); row and null counts, min, max, mean and std are exact.
    statistics_sample_rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "row_count": self.row_count,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "schema": self.schema.to_dict(),
            "statistics": self.statistics.to_dict(),
            "statistics_sample_rows": self.statistics_sample_rows,
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
            statistics_sample_rows=int(data.get("statistics_sample_rows", 0)),
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
        raise _read_error(exc, path, fmt, source_field) from None


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
    or unsupported file), `.format`, `.label_column` or `.schema.columns[i]`. Errors about
    the file's contents name the line (1-based, as an editor shows it) and the column when
    they can be found: rows with too many or too few fields, bytes that are not UTF-8,
    malformed JSON, duplicate column names, a file with no data rows.
    """
    source_field = source_field or _field(field_prefix, "source_uri")
    path = local_path(source, source_field)
    fmt = detect_format(path, fmt, field_prefix=field_prefix)
    if os.path.getsize(path) == 0:
        raise InvalidArgument.field(
            source_field, f"{Path(path).name} is empty (0 bytes); upload a file with {_WANTED[fmt]}"
        )
    if fmt == "csv" and os.path.getsize(path) > CSV_STREAM_THRESHOLD_BYTES:
        from engine.data.streaming import ingest_large_csv  # imported here: streaming builds on this module

        return ingest_large_csv(path, dest, label_column=label_column, schema=schema, field_prefix=field_prefix,
                                source_field=source_field)
    table = _read(path, fmt, source_field)
    _check_read(table, path, fmt, source_field)
    return write_table(table, dest, label_column=label_column, schema=schema, field_prefix=field_prefix)


# ---- Explaining files that cannot be ingested -------------------------------------------
# pyarrow's read errors say what is wrong but rarely where: CSV errors name no line (and
# count columns from 0), and JSON errors count rows from the start of an internal block,
# not of the file. So when a read fails, the file is scanned once more in Python to find
# the first offending line, and the error names it. The scans run only after a failure;
# readable files pay nothing for them.

_WANTED = {
    "csv": "a header line and at least one data row",
    "parquet": "at least one row",
    "jsonl": "one JSON object per line",
}
_UTF8_FIX = "re-save the file with UTF-8 encoding"
_CSV_UTF8_FIX = _UTF8_FIX + ' (in Excel: Save As > "CSV UTF-8")'
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_CSV_CONVERSION = re.compile(r"In CSV column #(\d+): CSV conversion error to (\w+): invalid value '(.*)'", re.S)


def _read_error(exc: BaseException, path: str, fmt: str, source_field: str) -> InvalidArgument:
    """The InvalidArgument for a file pyarrow could not read, naming the line when it can be found."""
    name = Path(path).name
    message = str(exc)
    if message.startswith(("Empty CSV file", "Empty JSON file")):  # e.g. a .gz holding nothing
        return InvalidArgument.field(source_field, f"{name} holds no data; upload a file with {_WANTED[fmt]}")
    where = None
    if fmt == "csv":
        where = _csv_problem(path, message)
    elif fmt == "jsonl":
        where = _jsonl_problem(path)
    return InvalidArgument.field(source_field, f"cannot read {name} as {fmt}: {where or message}")


def _check_read(table: pa.Table, path: str, fmt: str, source_field: str) -> None:
    """Refuse a table pyarrow read without complaint but that is still not a usable dataset."""
    name = Path(path).name
    try:
        names = table.column_names
    except UnicodeDecodeError:  # pyarrow keeps a CSV header's bytes as they are and decodes them here
        where = (_csv_problem(path, "") if fmt == "csv" else None) or f"the column names are not UTF-8; {_UTF8_FIX}"
        raise InvalidArgument.field(source_field, f"cannot read {name} as {fmt}: {where}") from None
    first_index: dict[str, int] = {}
    for index, column in enumerate(names):
        if column in first_index:
            where = " in the header line" if fmt == "csv" else ""
            raise InvalidArgument.field(
                source_field,
                f"{name}: columns {first_index[column] + 1} and {index + 1} are both named {column!r}{where}; "
                "rename one so that every column name is unique",
            )
        first_index[column] = index
    # pyarrow reads CSV cells that are not UTF-8 as a binary column instead of failing, and
    # JSON strings without checking them at all, so bad bytes would be stored silently.
    binary = [f.name for f in table.schema if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]
    if fmt == "csv" and binary:
        where = _csv_problem(path, "") or f"column {binary[0]!r} has bytes that are not UTF-8; {_CSV_UTF8_FIX}"
        raise InvalidArgument.field(source_field, f"cannot read {name} as csv: {where}")
    if fmt == "jsonl":
        try:
            table.validate(full=True)
        except pa.ArrowInvalid:
            where = _jsonl_problem(path) or f"it holds text that is not UTF-8; {_UTF8_FIX}"
            raise InvalidArgument.field(source_field, f"cannot read {name} as jsonl: {where}") from None
    if table.num_rows == 0:
        what = "no data rows below its header line" if fmt == "csv" and table.num_columns else "no data rows"
        raise InvalidArgument.field(source_field, f"{name} has {what}; upload a file with {_WANTED[fmt]}")
    if table.num_columns == 0:
        raise InvalidArgument.field(source_field, f"{name} has no columns")


def _utf16(path: str) -> str | None:
    with pa.input_stream(path, compression="detect") as stream:
        if stream.read(2) in _UTF16_BOMS:
            return f"it is UTF-16 encoded; {_UTF8_FIX}"
    return None


def _fields(count: int) -> str:
    return "1 field" if count == 1 else f"{count} fields"


def _bad_byte(text: str) -> int | None:
    """The first byte that was not UTF-8, from the lone surrogate `surrogateescape` decoded it to."""
    return next((ord(c) - 0xDC00 for c in text if "\udc80" <= c <= "\udcff"), None)


def _csv_records(path: str) -> Iterator[tuple[int, list[str]]]:
    """(line the record starts on, its fields) for each non-blank record, as pyarrow splits them.

    Bytes that are not UTF-8 decode to lone surrogates instead of stopping the scan, so the
    caller can tell which line and field hold them.
    """
    with io.TextIOWrapper(
        pa.input_stream(path, compression="detect"), encoding="utf-8", errors="surrogateescape", newline=""
    ) as text:
        reader = csv.reader(text)
        next_line = 1
        for record in reader:
            # A quoted field may span lines; the record started right after the previous one.
            line, next_line = next_line, reader.line_num + 1
            if record:  # pyarrow skips blank lines, so they do not count as rows
                yield line, record


def _csv_problem(path: str, message: str) -> str | None:
    """The first line of the CSV at `path` that pyarrow cannot read, described, or None."""
    conversion = _CSV_CONVERSION.search(message)
    header: list[str] | None = None
    header_line = 1
    try:
        if utf16 := _utf16(path):
            return utf16
        for line, record in _csv_records(path):
            for index, cell in enumerate(record):
                if (byte := _bad_byte(cell)) is not None:
                    column = f"column {header[index]!r}" if header and index < len(header) else f"column {index + 1}"
                    return f"line {line}, {column} has byte 0x{byte:02X}, which is not UTF-8; {_CSV_UTF8_FIX}"
            if header is None:
                header, header_line = record, line
            elif len(record) != len(header):
                return (
                    f"line {line} has {_fields(len(record))} but the header (line {header_line}) has {len(header)}; "
                    "give every row one value per column, and put values that contain a comma in double quotes"
                )
            elif conversion and record[int(conversion[1])] == conversion[3]:
                return (
                    f"line {line}, column {header[int(conversion[1])]!r}: {conversion[3]!r} is not a valid "
                    f"{conversion[2]} like the values above it; correct the value"
                )
    except (OSError, ValueError, csv.Error):  # an unreadable or odd file: keep pyarrow's message
        return None
    if conversion and header and int(conversion[1]) < len(header):
        return (
            f"column {header[int(conversion[1])]!r}: {conversion[3]!r} is not a valid {conversion[2]} "
            "like the values above it; correct the value"
        )
    return None


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _json_kind(value: object) -> str | None:
    """The JSON type name pyarrow's reader distinguishes (ints and floats are both numbers)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object" if isinstance(value, dict) else "array"


def _json_fields(value: dict, prefix: str = "") -> Iterator[tuple[str, object]]:
    """(dotted path, value) of every field, nested objects included."""
    for key, item in value.items():
        path = f"{prefix}.{key}" if prefix else key
        yield path, item
        if isinstance(item, dict):
            yield from _json_fields(item, path)


def _jsonl_problem(path: str) -> str | None:
    """The first line of the JSONL file at `path` that pyarrow cannot read, described, or None."""
    seen: dict[str, tuple[str, int]] = {}  # field -> (its JSON type, the line that set it)
    try:
        if utf16 := _utf16(path):
            return utf16
        with io.BufferedReader(pa.input_stream(path, compression="detect")) as lines:
            offset = 0
            for line, raw in enumerate(lines, start=1):
                start, offset = offset, offset + len(raw)
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    return (
                        f"line {line} (byte offset {start + err.start}) has byte 0x{raw[err.start]:02X}, "
                        f"which is not UTF-8; {_UTF8_FIX}"
                    )
                if not text.strip():
                    continue
                try:
                    value = json.loads(text, object_pairs_hook=_unique_keys)
                except _DuplicateKey as dup:
                    return f"line {line}: key {dup.key!r} appears twice in one object; keep one of them"
                except json.JSONDecodeError as err:
                    return (
                        f"line {line} is not valid JSON ({err.msg} at character {err.colno}); "
                        "every line must hold one complete JSON object"
                    )
                if not isinstance(value, dict):
                    return (
                        f"line {line} is a JSON {_json_kind(value) or 'null'}, not an object; "
                        'every line must hold one object such as {"column": value}'
                    )
                for field, item in _json_fields(value):
                    kind = _json_kind(item)
                    if kind is None:
                        continue
                    first_kind, first_line = seen.setdefault(field, (kind, line))
                    if kind != first_kind:
                        return (
                            f"line {line}, column {field!r}: a {kind} where line {first_line} has a {first_kind}; "
                            "give every value of a column the same JSON type (or null)"
                        )
    except (OSError, ValueError):  # an unreadable or odd file: keep pyarrow's message
        return None
    return None
