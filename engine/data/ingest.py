"""Turning a user's CSV / Parquet / JSONL file into a stored Parquet dataset.

The stored file always has canonical column types (see `schema.canonical_table`) and is
written atomically, so a dataset record in the database never points at a torn file.

Files are read whole, except CSV files above `CSV_STREAM_THRESHOLD_BYTES` and compressed
CSV files: those are converted batch by batch (`engine.data.streaming`) so memory stays
bounded. `IngestLimits` refuse, before pyarrow sees them, files whose shape alone would
cost memory out of proportion to their size: too many columns, one record too long, a
compressed file that expands too far.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from engine.data.locations import local_path_of
from engine.data.schema import DataSchema, canonical_table, enforce_schema, infer_schema
from engine.data.statistics import DataStatistics, compute_statistics
from engine.errors import InvalidArgument
from engine.storage.files import write_atomic_hashed

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
# A column is dictionary-encoded when its distinct values are at most this fraction of its values.
DICTIONARY_MAX_DISTINCT_FRACTION = 0.5
# CSV files larger than this are converted batch by batch (engine/data/streaming.py) instead
# of read whole: Arrow arrays of a CSV take a few times its size.
CSV_STREAM_THRESHOLD_BYTES = 256 * 1024 * 1024
# The header line is looked at in pieces of this size first; a longer one is read up to the record limit.
_HEADER_PROBE_BYTES = 64 * 1024
_COMPRESSED = (".gz", ".bz2", ".lz4", ".zst", ".zstd")  # what pyarrow's compression="detect" decompresses
# pyarrow's default block: files whose records all fit are parsed in blocks of this size in parallel.
_PARALLEL_BLOCK_BYTES = 1 << 20
# What pyarrow's CSV and JSON readers say of a record longer than their block.
_STRADDLING = "straddling object straddles two block boundaries"


@dataclass(frozen=True)
class IngestLimits:
    """What a file must stay within to become a dataset; each is checked before the bytes it guards are parsed."""

    #: Columns of a CSV header or a Parquet schema. pyarrow spends about 10 KB per column
    #: whatever the row count (a 0.9 MB CSV of 100k columns took 1 GB to read), and every
    #: column gets statistics; 10k columns cost about a tenth of that.
    max_columns: int = 10_000
    #: Bytes of one CSV or JSON Lines record (a line, or a quoted value spanning lines). A
    #: record must fit in one parser block, and refusing a longer one costs about five blocks
    #: of memory (measured: 40-50 MB at 8 MiB). 8 MiB is the block the streaming CSV reader
    #: always used: long text cells fit, a 100 MB field does not.
    max_record_bytes: int = 8 * 1024 * 1024
    #: Bytes a compressed file (.csv.gz, ...) may expand to: the default upload limit, so a
    #: compressed file holds no more than an uncompressed upload may, whatever its ratio.
    max_expanded_bytes: int = 1 << 30

    def __post_init__(self) -> None:
        for name in ("max_columns", "max_record_bytes", "max_expanded_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")


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
    path = local_path_of(source, source_field)
    if not os.path.exists(path):
        raise InvalidArgument.field(source_field, f"no such file: {path}")
    if os.path.isdir(path):
        raise InvalidArgument.field(source_field, f"{path} is a directory; give a single file")
    return path


def _read(path: str, fmt: str, source_field: str, limits: IngestLimits) -> pa.Table:
    try:
        if fmt == "csv":
            # Empty cells are missing values, as pandas and spreadsheets treat them,
            # not empty strings.
            convert = pa_csv.ConvertOptions(strings_can_be_null=True)
            return _in_blocks(lambda block, threads: pa_csv.read_csv(
                path, read_options=pa_csv.ReadOptions(block_size=block, use_threads=threads),
                convert_options=convert), limits)
        if fmt == "parquet":
            return pq.read_table(path)

        def read_json(block: int, threads: bool) -> pa.Table:
            options = pa_json.ReadOptions(block_size=block, use_threads=threads)
            if not _compressed(path):
                return pa_json.read_json(path, read_options=options)
            with expanded_stream(path, source_field, limits) as stream:
                return pa_json.read_json(stream, read_options=options)

        return _in_blocks(read_json, limits)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OSError) as exc:
        raise _read_error(exc, path, fmt, source_field, limits) from None


def _in_blocks(read: Callable[[int, bool], pa.Table], limits: IngestLimits) -> pa.Table:
    """read(block_size, use_threads): first in pyarrow's usual blocks on every core; when a
    record is longer than one, again in blocks of the record limit on one thread. pyarrow
    holds a few blocks per reading thread, so long blocks on every core would multiply."""
    first = min(_PARALLEL_BLOCK_BYTES, limits.max_record_bytes)
    try:
        return read(first, True)
    except pa.ArrowInvalid as exc:
        if _STRADDLING not in str(exc) or first == limits.max_record_bytes:
            raise
    return read(limits.max_record_bytes, False)


def repeating_columns(columns: list[tuple[str, int, int]]) -> list[str]:
    """Of (name, distinct values, non-null values), the columns whose values repeat (distinct
    values at most DICTIONARY_MAX_DISTINCT_FRACTION of the non-null ones): only those gain from
    Parquet's dictionary encoding. On a near-unique column (an id, a measurement) building the
    dictionary is wasted work: with 64k-row groups it tripled the time to write float columns."""
    return [name for name, distinct, non_null in columns if distinct <= DICTIONARY_MAX_DISTINCT_FRACTION * non_null]


def _write(table: pa.Table, dest: str, statistics: DataStatistics) -> tuple[int, str]:
    dictionary = repeating_columns([(c.name, c.distinct_count, statistics.row_count - c.null_count)
                                    for c in statistics.columns])
    return write_atomic_hashed(dest, lambda out: pq.write_table(table, out, row_group_size=ROW_GROUP_ROWS,
                                                                use_dictionary=dictionary))


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
    size_bytes, sha256 = _write(table, dest, statistics)
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
    limits: IngestLimits | None = None,
) -> IngestResult:
    """Read a CSV / Parquet / JSONL file (path or file:// URI) and store it as Parquet at `dest`.

    `source_field` names the request field that supplied the bytes in errors about them
    (default `<field_prefix>.source_uri`; uploads pass their own). A file beyond `limits`
    (default IngestLimits()) is refused on `source_field`, naming the limit.

    Errors are InvalidArgument on `<field_prefix>.source_uri` (missing, unreadable, empty
    or unsupported file), `.format`, `.label_column` or `.schema.columns[i]`. Errors about
    the file's contents name the line (1-based, as an editor shows it) and the column when
    they can be found: rows with too many or too few fields, bytes that are not UTF-8,
    malformed JSON, duplicate column names, a file with no data rows.
    """
    source_field = source_field or _field(field_prefix, "source_uri")
    limits = limits or IngestLimits()
    path = local_path(source, source_field)
    fmt = detect_format(path, fmt, field_prefix=field_prefix)
    if os.path.getsize(path) == 0:
        raise InvalidArgument.field(
            source_field, f"{Path(path).name} is empty (0 bytes); upload a file with {_WANTED[fmt]}"
        )
    if fmt == "csv":
        _check_csv_header(path, source_field, limits)
    elif fmt == "parquet":
        _check_parquet_columns(path, source_field, limits)
    # A compressed file's size says nothing of what it expands to, so it is always streamed.
    if fmt == "csv" and (os.path.getsize(path) > CSV_STREAM_THRESHOLD_BYTES or _compressed(path)):
        from engine.data.streaming import ingest_large_csv  # imported here: streaming builds on this module

        return ingest_large_csv(path, dest, label_column=label_column, schema=schema, field_prefix=field_prefix,
                                source_field=source_field, limits=limits)
    table = _read(path, fmt, source_field, limits)
    _check_read(table, path, fmt, source_field)
    return write_table(table, dest, label_column=label_column, schema=schema, field_prefix=field_prefix)


# ---- Limits checked before parsing -------------------------------------------------------


def _compressed(path: str) -> bool:
    return path.lower().endswith(_COMPRESSED)


class _Expanded:
    """A compressed file's decompressed bytes as a file object that stops at `limit` bytes:
    pyarrow reads it block by block, so a bomb is refused once it passes the limit."""

    def __init__(self, stream: pa.NativeFile, limit: int, name: str, source_field: str):
        self._stream, self._limit, self._name, self._field = stream, limit, name, source_field
        self._read = 0
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        want = self._limit + 1 - self._read
        data = self._stream.read(want if size is None or size < 0 else min(size, want))
        self._read += len(data)
        if self._read > self._limit:
            raise InvalidArgument.field(
                self._field,
                f"{self._name} expands to more than {self._limit} bytes when decompressed, the server's limit "
                "(--max-expanded-bytes); split the file, or upload it uncompressed",
            )
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True
        self._stream.close()

    def __enter__(self) -> "_Expanded":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def expanded_stream(path: str, source_field: str, limits: IngestLimits) -> _Expanded:
    """The decompressed bytes of the compressed file at `path`, refused past limits.max_expanded_bytes."""
    return _Expanded(pa.input_stream(path, compression="detect"), limits.max_expanded_bytes, Path(path).name,
                     source_field)


def _first_record_fields(head: bytes) -> tuple[int, bool]:
    """(fields of the first CSV record in `head`, whether that record ends within `head`).

    Splitting on double quotes leaves the quoted text at odd indexes (an escaped quote, "",
    leaves an empty piece between), so commas and line ends count only at even ones."""
    head = head.lstrip(b"\r\n")  # pyarrow skips blank lines before the header
    fields = 1
    for index, piece in enumerate(head.split(b'"')):
        if index % 2:
            continue
        ends = [i for i in (piece.find(b"\n"), piece.find(b"\r")) if i >= 0]
        if ends:
            return fields + piece.count(b",", 0, min(ends)), True
        fields += piece.count(b",")
    return fields, False


def _check_csv_header(path: str, source_field: str, limits: IngestLimits) -> None:
    """Refuse a CSV whose header line is too long or has too many columns, reading no more
    than the record limit of it (decompressed, for a compressed file)."""
    name = Path(path).name
    try:
        with pa.input_stream(path, compression="detect") as stream:
            head = stream.read(min(_HEADER_PROBE_BYTES, limits.max_record_bytes + 1))
            fields, complete = _first_record_fields(head)
            if not complete and len(head) == _HEADER_PROBE_BYTES:
                head += stream.read(limits.max_record_bytes + 1 - len(head))
                fields, complete = _first_record_fields(head)
    except (OSError, pa.ArrowInvalid):
        return  # unreadable or not really compressed: the read that follows explains it
    if not complete and len(head) > limits.max_record_bytes:
        raise InvalidArgument.field(
            source_field, f"{name}: the header line is longer than {limits.max_record_bytes} bytes, the server's "
                          "limit on one record (--max-record-bytes); the first line must hold the column names",
        )
    _check_columns(fields, name, source_field, limits)


def _check_parquet_columns(path: str, source_field: str, limits: IngestLimits) -> None:
    try:
        columns = pq.ParquetFile(path).metadata.num_columns  # the footer only, not the data
    except (OSError, pa.ArrowInvalid):
        return  # the read that follows explains it
    _check_columns(columns, Path(path).name, source_field, limits)


def _check_columns(columns: int, name: str, source_field: str, limits: IngestLimits) -> None:
    if columns > limits.max_columns:
        raise InvalidArgument.field(
            source_field, f"{name} has {columns} columns, more than the server's limit of {limits.max_columns} "
                          "(--max-columns); keep the columns the model needs, or split the file",
        )


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


def _read_error(exc: BaseException, path: str, fmt: str, source_field: str,
                limits: IngestLimits | None = None) -> InvalidArgument:
    """The InvalidArgument for a file pyarrow could not read, naming the line when it can be found."""
    name = Path(path).name
    message = str(exc)
    if message.startswith(("Empty CSV file", "Empty JSON file")):  # e.g. a .gz holding nothing
        return InvalidArgument.field(source_field, f"{name} holds no data; upload a file with {_WANTED[fmt]}")
    if _STRADDLING in message:
        # pyarrow met a record longer than its block. No scan for the line: it would read that record whole.
        limit = (limits or IngestLimits()).max_record_bytes
        record = "a record (a line, or a quoted value spanning lines)" if fmt == "csv" else "a line"
        return InvalidArgument.field(
            source_field, f"cannot read {name} as {fmt}: {record} is longer than {limit} bytes, the server's limit "
                          "on one record (--max-record-bytes); shorten the longest values, or store large objects "
                          "elsewhere and keep their paths",
        )
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
