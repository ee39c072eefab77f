"""Reading rows back out of a stored Parquet dataset.

Pages of records are read from the row groups that hold them, never the whole file, so
browsing a large dataset stays cheap. Rows come back as JSON-safe Python values.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import os
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from engine.errors import DataLoss, InvalidArgument


def json_safe(value: Any) -> Any:
    """A value JSON can carry: NaN/inf -> None, timestamps -> ISO 8601, bytes -> base64."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (dt.datetime, dt.date, dt.time)):  # pandas.Timestamp is a datetime
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, decimal.Decimal):
        return json_safe(float(value))
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return str(value)


def _rows(table: pa.Table | pa.RecordBatch) -> list[dict[str, Any]]:
    return [{k: json_safe(v) for k, v in row.items()} for row in table.to_pylist()]


def _open(parquet_path: str) -> pq.ParquetFile:
    if not os.path.isfile(parquet_path):
        raise DataLoss(f"dataset file {os.path.basename(parquet_path)} is missing")
    return pq.ParquetFile(parquet_path)


def _check_columns(available: list[str], columns: list[str] | None) -> list[str] | None:
    """`columns` unchanged when all exist; an empty list means all columns, like None."""
    if not columns:
        return None
    unknown = [c for c in columns if c not in available]
    if unknown:
        raise InvalidArgument.field(
            "columns",
            f"unknown column(s) {', '.join(map(repr, unknown))}; available columns: {', '.join(available)}",
        )
    return list(columns)


def _check_non_negative(name: str, value: int) -> None:
    if value < 0:
        raise InvalidArgument.field(name, f"must be 0 or more; got {value}")


def _first_group(parquet: pq.ParquetFile, offset: int) -> tuple[int, int]:
    """(index of the row group holding row `offset`, row number where that group starts)."""
    start = 0
    for group in range(parquet.metadata.num_row_groups):
        rows = parquet.metadata.row_group(group).num_rows
        if offset < start + rows:
            return group, start
        start += rows
    return parquet.metadata.num_row_groups, start


def read_records(
    parquet_path: str, offset: int, limit: int, columns: list[str] | None = None
) -> tuple[list[dict[str, Any]], int]:
    """Rows [offset, offset + limit) as dicts, and the dataset's total row count.

    `limit` 0 returns no rows (choosing a default page size is the caller's business);
    an offset past the end returns no rows, not an error, so paging stops naturally.
    """
    _check_non_negative("offset", offset)
    _check_non_negative("limit", limit)
    with _open(parquet_path) as parquet:
        columns = _check_columns(parquet.schema_arrow.names, columns)
        total = parquet.metadata.num_rows
        if limit == 0 or offset >= total:
            return [], total
        group, group_start = _first_group(parquet, offset)
        groups, covered = [], group_start
        while group < parquet.metadata.num_row_groups and covered < offset + limit:
            groups.append(group)
            covered += parquet.metadata.row_group(group).num_rows
            group += 1
        table = parquet.read_row_groups(groups, columns=columns)
    return _rows(table.slice(offset - group_start, limit)), total


def _check_batch_arguments(
    parquet_path: str, batch_size: int, offset: int, columns: list[str] | None
) -> list[str] | None:
    """`columns` checked against the file (see `_check_columns`), after batch_size and offset."""
    if batch_size <= 0:
        raise InvalidArgument.field("batch_size", f"must be greater than 0; got {batch_size}")
    _check_non_negative("offset", offset)
    with _open(parquet_path) as parquet:
        return _check_columns(parquet.schema_arrow.names, columns)


def iter_record_batches(
    parquet_path: str, batch_size: int, offset: int = 0, columns: list[str] | None = None
) -> Iterator[list[dict[str, Any]]]:
    """Rows from `offset` to the end in lists of exactly `batch_size` (the last may be shorter).

    Arguments are checked now, not at the first `next()`, so a bad request fails where it is made.
    """
    columns = _check_batch_arguments(parquet_path, batch_size, offset, columns)
    return (_rows(batch) for _, batch in _arrow_batches(parquet_path, batch_size, offset, columns))


def iter_arrow_batches(
    parquet_path: str, batch_size: int, offset: int = 0, columns: list[str] | None = None
) -> Iterator[tuple[int, bytes]]:
    """(index of the first row, Arrow IPC stream) for rows from `offset` on, `batch_size` rows each.

    Each stream is complete on its own, the schema followed by one record batch, so a client
    reads any message with `pyarrow.ipc.open_stream(data).read_all()`. Batches are cut as in
    `iter_record_batches`; arguments are checked at the call, like there.
    """
    columns = _check_batch_arguments(parquet_path, batch_size, offset, columns)
    return ((first, _ipc_stream(batch)) for first, batch in _arrow_batches(parquet_path, batch_size, offset, columns))


def _ipc_stream(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    # The Parquet file's schema metadata (pandas' index description and the like) is dropped:
    # it would be repeated in every message and describes the file, not these rows.
    schema = batch.schema.remove_metadata()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_batch(batch.replace_schema_metadata(None))
    return sink.getvalue().to_pybytes()


def _arrow_batches(
    parquet_path: str, batch_size: int, offset: int, columns: list[str] | None
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """(index of the first row, record batch) of exactly `batch_size` rows (the last may be shorter).

    The file is read a Parquet batch at a time from the row group holding `offset`, so at
    most about two batches are in memory whatever the file's size.
    """
    with _open(parquet_path) as parquet:
        group, group_start = _first_group(parquet, offset)
        if group >= parquet.metadata.num_row_groups:
            return
        skip = offset - group_start
        first = offset
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        batches = parquet.iter_batches(
            batch_size=batch_size, row_groups=range(group, parquet.metadata.num_row_groups), columns=columns
        )
        for batch in batches:
            if skip >= batch.num_rows:
                skip -= batch.num_rows
                continue
            batch, skip = batch.slice(skip), 0
            pending.append(batch)
            pending_rows += batch.num_rows
            # Parquet batches stop at row-group ends, so they are re-cut to exactly batch_size.
            while pending_rows >= batch_size:
                whole = pa.Table.from_batches(pending).combine_chunks()
                yield first, _one_batch(whole.slice(0, batch_size))
                first += batch_size
                rest = whole.slice(batch_size)
                pending, pending_rows = rest.to_batches(), rest.num_rows
        if pending_rows:
            yield first, _one_batch(pa.Table.from_batches(pending))


def _one_batch(table: pa.Table) -> pa.RecordBatch:
    return table.combine_chunks().to_batches()[0]


def load_frame(parquet_path: str, columns: list[str] | None = None) -> pd.DataFrame:
    """The dataset (or some of its columns) as a pandas DataFrame, for training code.

    Integer columns with nulls come back as float64 with NaN, pandas' default conversion.
    """
    with _open(parquet_path) as parquet:
        columns = _check_columns(parquet.schema_arrow.names, columns)
        return parquet.read(columns=columns).to_pandas()
