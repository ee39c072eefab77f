"""Storing a dataset batch by batch, for inputs too large (or too scattered) to hold whole.

`write_batches` is the streaming twin of `ingest.write_table`: every batch is brought to
canonical types (and to the declared schema, when there is one), appended to a Parquet
file that gets its final name only once complete (with its sha256), and summarised on the
way. The schema it infers is the one `infer_schema` infers from the whole table.

Statistics of streamed data (`IngestResult.statistics_sample_rows` says whether any were
estimated):
- always exact: the row count, null counts, and min, max, mean and std of numeric columns;
- exact while a column has at most EXACT_DISTINCT_LIMIT distinct values: its distinct
  count, top values, schema categories and, for the label, the label distribution;
- for columns past EXACT_DISTINCT_LIMIT: the distinct count, estimated over every row
  with a HyperLogLog sketch (about 1% standard error);
- from a uniform sample of STATS_SAMPLE_ROWS rows, and so exact when the data has no more
  rows than that: quantiles; histogram counts (bin edges span the exact min and max, counts
  are scaled to the column's real count); and top values of columns past
  EXACT_DISTINCT_LIMIT: those seen at least MIN_SAMPLED_COUNT times in the sample, with
  counts scaled up (rarer ones would be noise, so a near-unique column lists none).
Binary columns (images) are counted by digest and list no top values: those would be the bytes.

`ingest_large_csv` feeds a CSV file through `write_batches` a piece of text at a time, giving
the columns the types `pyarrow.csv.read_csv` would give them (see `_LOOSER`).
"""

from __future__ import annotations

import collections
import hashlib
import math
import queue
import re
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from engine.data.ingest import (
    ROW_GROUP_ROWS,
    IngestLimits,
    IngestResult,
    _check_label,
    _STRADDLING,
    _check_read,
    _compressed,
    _field,
    _in_blocks,
    _read_error,
    expanded_stream,
    repeating_columns,
)
from engine.data.schema import (
    MAX_LISTED_CATEGORIES,
    ColumnSchema,
    DataSchema,
    _is_int_categorical,
    canonical_table,
    data_type_of,
    enforce_schema,
    format_value,
)
from engine.data.statistics import (
    histogram,
    TOP_VALUES,
    ColumnStatistics,
    DataStatistics,
    Histogram,
    ValueCount,
    compute_statistics,
)
from engine.errors import InvalidArgument
from engine.storage.files import write_atomic_hashed

# A row group is cut at ROW_GROUP_ROWS rows like `write_table`'s, or earlier at this many
# bytes, so that a group of large values (images) never makes one page read huge.
ROW_GROUP_BYTES = 64 * 1024 * 1024
# Row-group writes that may wait for the Parquet writer's thread (`write_batches`).
WRITE_BEHIND_GROUPS = 2
STATS_SAMPLE_ROWS = 100_000
# `ingest_large_csv` parses text in pieces of this many record limits (16 MiB by default): large
# enough for pyarrow to spread one over every core in 1 MiB blocks, small enough to hold a few.
PIECE_RECORDS = 2
EXACT_DISTINCT_LIMIT = 10_000
# A sampled count of 10 is within about 30% of the truth (Poisson); fewer says little.
MIN_SAMPLED_COUNT = 10


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


class _Reservoir:
    """A uniform sample of at most `size` rows: each row gets a random key, the smallest keys stay.

    Candidates are buffered and trimmed only when twice the size has piled up, so keeping
    the sample costs O(1) amortised per row; the seed makes the sample reproducible.
    """

    def __init__(self, size: int):
        self.size = size
        self.rng = np.random.default_rng(0)
        self.tables: list[pa.Table] = []
        self.keys: list[np.ndarray] = []
        self.held = 0
        self.threshold = 1.0  # rows with a key at or above it can no longer enter

    def add(self, table: pa.Table) -> None:
        keys = self.rng.random(table.num_rows)
        keep = keys < self.threshold
        if not keep.all():
            table, keys = table.filter(pa.array(keep)), keys[keep]
        if len(keys):
            self.tables.append(table)
            self.keys.append(keys)
            self.held += len(keys)
            if self.held >= 2 * self.size:
                self._trim()

    def _trim(self) -> None:
        table, keys = pa.concat_tables(self.tables), np.concatenate(self.keys)
        if len(keys) > self.size:
            kept = np.sort(np.argpartition(keys, self.size - 1)[: self.size])  # sorted: rows keep their order
            table, keys = table.take(pa.array(kept)), keys[kept]
            self.threshold = float(keys.max())
        self.tables, self.keys, self.held = [table], [keys], len(keys)

    def sample(self) -> pa.Table | None:
        if not self.tables:
            return None
        self._trim()
        return self.tables[0]


class _DistinctSketch:
    """HyperLogLog (Flajolet et al. 2007) over 64-bit hashes: 2^14 one-byte registers, ~0.8% error."""

    BITS = 14

    def __init__(self) -> None:
        self.registers = np.zeros(1 << self.BITS, dtype=np.uint8)

    def add(self, hashes: np.ndarray) -> None:
        floor = min(int(self.registers.min()), 64 - self.BITS)
        if floor:
            # Every register is at least `floor`, so only hashes of a higher rank can change one:
            # those whose `floor` bits after the index bits are all zero. On a large column that
            # is a small fraction, and the passes below run on it alone.
            hashes = hashes[(hashes & np.uint64(((1 << floor) - 1) << (64 - self.BITS - floor))) == 0]
        index = (hashes >> np.uint64(64 - self.BITS)).astype(np.intp)
        rest = (hashes << np.uint64(self.BITS)) | np.uint64(1 << (self.BITS - 1))  # never 0
        # rank = leading zeros of `rest` + 1 = 64 - floor(log2(rest)), and floor(log2) is the
        # exponent field of `rest` as a float64 (read directly: np.frexp took 4 times as long).
        exponent = rest.astype(np.float64).view(np.uint64) >> np.uint64(52)
        rank = (np.int64(64 + 1023) - exponent.astype(np.int64)).astype(np.uint8)
        np.maximum.at(self.registers, index, rank)

    def estimate(self) -> int:
        m = len(self.registers)
        raw = 0.7213 / (1 + 1.079 / m) * m * m / np.sum(np.ldexp(1.0, -self.registers.astype(np.int64)))
        zeros = int(np.count_nonzero(self.registers == 0))
        if raw <= 2.5 * m and zeros:
            return int(round(m * math.log(m / zeros)))  # linear counting: better for small counts
        return int(round(raw))


def _hashes(values: pa.Array | pa.ChunkedArray, binary: bool, scratch: _Scratch | None = None) -> np.ndarray:
    """64-bit hashes of non-null values; binary values arrive as their sha256 digests already.
    With `scratch`, numbers are hashed in its buffers (valid until its next use)."""
    if binary:
        return np.frombuffer(b"".join(v[:8] for v in values.to_pylist()), dtype=np.uint64)
    array = values.to_numpy(zero_copy_only=False)
    if array.dtype.itemsize == 8 and array.dtype.kind in "iufM":  # int64, float64, timestamps
        return _mix64(array, scratch or _Scratch())
    return pd.util.hash_array(array)


class _Scratch:
    """Two uint64 buffers reused by every column and batch of one summary: a fresh 1 MB
    temporary per step of the hash costs its page faults each time, which doubled its time."""

    def __init__(self) -> None:
        self._out = self._tmp = np.empty(0, np.uint64)

    def buffers(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        if len(self._out) < size:
            self._out, self._tmp = np.empty(size, np.uint64), np.empty(size, np.uint64)
        return self._out[:size], self._tmp[:size]


_MIX_SHIFT, _MIX_1, _MIX_2 = np.uint64(33), np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)


def _mix64(array: np.ndarray, scratch: _Scratch) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser of each 8-byte value: every input bit moves every output
    bit, which is what a HyperLogLog needs, at a third of the cost of pandas' hash_array."""
    hashes, shifted = scratch.buffers(len(array))
    np.copyto(hashes, array.view(np.uint64))
    for multiplier in (_MIX_1, _MIX_2):
        np.bitwise_xor(hashes, np.right_shift(hashes, _MIX_SHIFT, out=shifted), out=hashes)
        np.multiply(hashes, multiplier, out=hashes)
    np.bitwise_xor(hashes, np.right_shift(hashes, _MIX_SHIFT, out=shifted), out=hashes)
    return hashes


class _ColumnTally:
    """What is counted exactly about one column while its batches go by."""

    def __init__(self, name: str, arrow_type: pa.DataType):
        self.name = name
        self.data_type = data_type_of(arrow_type)
        self.numeric = self.data_type in ("int64", "float64")
        self.nulls = 0
        # value (a digest for binary) -> count; None once past EXACT_DISTINCT_LIMIT values,
        # when the sketch takes over (seeded with every value counted so far)
        self.counts: dict[Any, int] | None = {}
        self.arrow_type = arrow_type
        self.sketch: _DistinctSketch | None = None
        # finite numeric values: count, mean and sum of squared deviations (Chan et al.'s
        # pairwise update, stable where a running sum of squares is not), min and max
        self.n, self.mean, self.m2 = 0, 0.0, 0.0
        self.min, self.max = math.inf, -math.inf

    def update(self, column: pa.ChunkedArray, scratch: _Scratch | None = None) -> None:
        self.nulls += column.null_count
        values = column.drop_null()
        if not len(values):
            return
        binary = self.data_type == "binary"
        if binary:
            values_or_digests = pa.array([hashlib.sha256(v).digest() for v in values.to_pylist()], pa.binary())
        else:
            values_or_digests = values
        if self.counts is not None:
            counted = pc.value_counts(values_or_digests)
            if len(counted) <= EXACT_DISTINCT_LIMIT:
                for value, count in zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist()):
                    self.counts[value] = self.counts.get(value, 0) + count
            if len(counted) > EXACT_DISTINCT_LIMIT or len(self.counts) > EXACT_DISTINCT_LIMIT:
                # Past the limit: the values counted so far seed the sketch. A batch that is past it
                # alone is hashed in Arrow's hands, never turned into Python objects.
                value_type = pa.binary() if binary else self.arrow_type
                self.sketch = _DistinctSketch()
                self.sketch.add(_hashes(pa.array(list(self.counts), value_type), binary))
                self.sketch.add(_hashes(counted.field("values"), binary))
                self.counts = None
        else:
            self.sketch.add(_hashes(values_or_digests, binary, scratch))
        if self.numeric:
            array = values.cast(pa.float64(), safe=False).to_numpy()
            if not np.isfinite(array).all():  # ±inf: rare, and left out of the numeric summaries
                array = array[np.isfinite(array)]
            if array.size:
                mean = float(array.mean())
                m2 = float(array.var()) * array.size
                total = self.n + array.size
                delta = mean - self.mean
                self.mean += delta * array.size / total
                self.m2 += m2 + delta * delta * self.n * array.size / total
                self.n = total
                self.min = min(self.min, float(array.min()))
                self.max = max(self.max, float(array.max()))

    def distinct(self) -> int:
        if self.counts is not None:
            return len(self.counts)
        return max(self.sketch.estimate(), EXACT_DISTINCT_LIMIT + 1)  # more than the limit, for sure

    def schema(self, row_count: int) -> ColumnSchema:
        """The column as `infer_schema` describes it, from the exact counts."""
        categorical, categories = False, []
        if self.data_type in ("string", "bool", "int64"):
            distinct = self.distinct()
            categorical = self.data_type != "int64" or _is_int_categorical(distinct, row_count - self.nulls)
            if categorical and 0 < distinct <= MAX_LISTED_CATEGORIES:
                # Python's order matches Arrow's sort here: UTF-8 byte order is code point order.
                categories = [format_value(v) for v in sorted(self.counts)]
        return ColumnSchema(self.name, self.data_type, nullable=self.nulls > 0, categorical=categorical,
                            categories=categories)


def _ranked(counts: dict[Any, int], limit: int | None) -> list[ValueCount]:
    """Most frequent first, ties by value: the order `compute_statistics` uses."""
    order = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [ValueCount(value=format_value(v), count=int(c)) for v, c in order[:limit]]


def _apportion(counts: np.ndarray, total: int) -> list[int]:
    """`counts` scaled to sum to `total`, by largest remainder (so the sum is exact)."""
    if counts.sum() == 0:
        return [0] * len(counts)
    shares = counts * (total / counts.sum())
    scaled = np.floor(shares).astype(np.int64)
    order = np.argsort(-(shares - scaled), kind="stable")
    scaled[order[: total - int(scaled.sum())]] += 1
    return [int(c) for c in scaled]


class _StreamSummary:
    """Exact tallies of every column plus a row sample, combined into DataStatistics at the end."""

    def __init__(self, schema: pa.Schema):
        self.tallies = [_ColumnTally(f.name, f.type) for f in schema]
        # Binary columns stay out of the sample: 100k images would not fit in memory.
        self.sampled_names = [t.name for t in self.tallies if t.data_type != "binary"]
        self.reservoir = _Reservoir(STATS_SAMPLE_ROWS)
        self.rows = 0
        self.scratch = _Scratch()

    def update(self, table: pa.Table) -> None:
        self.rows += table.num_rows
        for tally, column in zip(self.tallies, table.columns):
            tally.update(column, self.scratch)
        self.reservoir.add(table.select(self.sampled_names))

    @property
    def sampled(self) -> bool:
        return self.rows > STATS_SAMPLE_ROWS

    def repeating_columns(self) -> list[str]:
        """The columns whose values repeat in the rows seen so far (see ingest.repeating_columns)."""
        return repeating_columns([(t.name, t.distinct(), self.rows - t.nulls) for t in self.tallies])

    def schema(self) -> DataSchema:
        return DataSchema(columns=[t.schema(self.rows) for t in self.tallies])

    def statistics(self, label_column: str) -> DataStatistics:
        sample = self.reservoir.sample()
        label_in_sample = label_column if label_column in self.sampled_names else None
        # Without sampling the sample is the whole data, so this is exactly `write_table`'s summary.
        base = compute_statistics(sample, label_in_sample) if sample is not None and sample.num_columns else None
        columns = []
        for tally in self.tallies:
            if tally.data_type == "binary":
                stats = ColumnStatistics(name=tally.name, null_count=tally.nulls, distinct_count=tally.distinct())
                columns.append(stats)
                continue
            stats = base.column(tally.name)
            if self.sampled:
                self._correct(stats, tally, sample.column(tally.name), self.rows)
            columns.append(stats)
        distribution = base.label_distribution if base is not None and label_in_sample else []
        if self.sampled and label_column:
            tally = next(t for t in self.tallies if t.name == label_column)
            distinct = tally.distinct()
            distribution = _ranked(tally.counts, None) if distinct <= MAX_LISTED_CATEGORIES else []
        return DataStatistics(row_count=self.rows, columns=columns, label_distribution=distribution)

    @staticmethod
    def _correct(stats: ColumnStatistics, tally: _ColumnTally, sampled: pa.ChunkedArray, rows: int) -> None:
        """Replace what the sample estimated by the exact tallies, and scale the rest up."""
        stats.null_count = tally.nulls
        stats.distinct_count = tally.distinct()
        if tally.counts is not None:
            stats.top_values = _ranked(tally.counts, TOP_VALUES)
        else:
            in_sample = len(sampled) - sampled.null_count
            factor = (rows - tally.nulls) / in_sample if in_sample else 1.0
            stats.top_values = [ValueCount(v.value, int(round(v.count * factor))) for v in stats.top_values
                                if v.count >= MIN_SAMPLED_COUNT]
        if not tally.numeric or tally.n == 0:
            return
        stats.min, stats.max, stats.mean = tally.min, tally.max, _finite(tally.mean)
        stats.std = _finite(math.sqrt(tally.m2 / (tally.n - 1))) if tally.n > 1 else None
        array = sampled.drop_null().cast(pa.float64(), safe=False).to_numpy()
        array = array[np.isfinite(array)]
        sampled_histogram = histogram(array, tally.min, tally.max)
        stats.histogram = Histogram(bin_edges=sampled_histogram.bin_edges,
                                    counts=_apportion(np.asarray(sampled_histogram.counts), tally.n))


_SHIFTED_ROW = re.compile(r"(?<=\bat row )\d+|(?<=\bbut row )\d+")


def _enforce(table: pa.Table, schema: DataSchema, field_prefix: str, offset: int) -> pa.Table:
    """`enforce_schema` on one batch, with row numbers in its errors counted from the data's start."""
    try:
        return enforce_schema(table, schema, field_prefix=field_prefix)
    except InvalidArgument as exc:
        if not offset or not exc.violations:
            raise
        violation = exc.violations[0]
        description = _SHIFTED_ROW.sub(lambda m: str(int(m[0]) + offset), violation.description)
        raise InvalidArgument.field(violation.field, description, violation.reason) from None


def _conform(table: pa.Table, target: pa.Schema, offset: int, blame_field: str) -> pa.Table:
    """A later batch in the first batch's types: only an all-null column may differ."""
    if table.column_names != target.names:
        raise InvalidArgument.field(blame_field, f"the columns change at row {offset}: {table.column_names} "
                                                 f"instead of {target.names}")
    columns = []
    for field, column in zip(target, table.columns):
        if column.type != field.type:
            if column.null_count != len(column):
                raise InvalidArgument.field(
                    blame_field,
                    f"column {field.name!r} holds {data_type_of(field.type)} values up to row {offset} but "
                    f"{data_type_of(column.type)} values after it; give every row of a column the same type",
                )
            column = pa.nulls(len(column), field.type)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=target)


def write_batches(
    batches: Iterable[pa.Table | pa.RecordBatch],
    dest: str,
    *,
    label_column: str = "",
    schema: DataSchema | None = None,
    field_prefix: str = "config",
    blame_field: str = "",
    source_name: str = "the data",
) -> IngestResult:
    """Store `batches` (one column set, in order) as Parquet at `dest` atomically and describe them.

    Same contract as `ingest.write_table` (canonical types; `schema` enforced and returned
    unchanged, else inferred; errors on `<field_prefix>.label_column` and
    `.schema.columns[i]` with rows counted from the first batch), except that data without
    rows is refused: InvalidArgument on `blame_field` (default `<field_prefix>.source_uri`)
    naming `source_name`. Nothing is left at `dest` when anything fails, including the
    iterator itself.
    """
    blame_field = blame_field or _field(field_prefix, "source_uri")
    summary: _StreamSummary | None = None

    def write(out: BinaryIO) -> None:
        nonlocal summary
        writer: pq.ParquetWriter | None = None
        target: pa.Schema | None = None
        pending: list[pa.Table] = []
        rows = 0

        def flush(everything: bool) -> None:
            table = pa.concat_tables(pending)
            pending.clear()
            whole = table.num_rows if everything else table.num_rows - table.num_rows % ROW_GROUP_ROWS
            if whole:
                # Parquet encodes in a thread of its own, beside the next batch's summary; at
                # most WRITE_BEHIND_GROUPS writes wait, so memory stays bounded.
                while len(writing) >= WRITE_BEHIND_GROUPS:
                    writing.popleft().result()
                writing.append(behind.submit(writer.write_table, table.slice(0, whole), row_group_size=ROW_GROUP_ROWS))
            if whole < table.num_rows:
                pending.append(table.slice(whole))

        writing: collections.deque[Future] = collections.deque()
        try:
            with ThreadPoolExecutor(1, thread_name_prefix="parquet-writer") as behind:  # waits for its writes on leaving
                for batch in batches:
                    table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
                    table = canonical_table(table, blame_field=blame_field)
                    if schema is not None:
                        table = _enforce(table, schema, field_prefix, rows)
                    if target is None:
                        _check_label(table, label_column, field_prefix)
                        target = table.schema
                        summary = _StreamSummary(target)
                    elif table.schema != target:
                        table = _conform(table, target, rows, blame_field)
                    summary.update(table)
                    if writer is None:  # the first batch tells which columns are worth a dictionary
                        writer = pq.ParquetWriter(out, target, use_dictionary=summary.repeating_columns())
                    rows += table.num_rows
                    pending.append(table)
                    held = sum(t.num_rows for t in pending)
                    if held >= ROW_GROUP_ROWS or sum(t.nbytes for t in pending) >= ROW_GROUP_BYTES:
                        flush(everything=held < ROW_GROUP_ROWS)
                if pending:
                    flush(everything=True)
                for done in writing:
                    done.result()  # a write that failed fails the whole
        finally:
            if writer is not None:
                writer.close()
        if rows == 0:
            raise InvalidArgument.field(blame_field, f"{source_name} has no data rows; give a source with at least one row")

    size_bytes, sha256 = write_atomic_hashed(dest, write)
    inferred = summary.schema()
    return IngestResult(
        path=str(dest),
        row_count=summary.rows,
        size_bytes=size_bytes,
        sha256=sha256,
        schema=DataSchema.from_dict((schema or inferred).to_dict()),  # a copy: the caller's object stays theirs
        statistics=summary.statistics(label_column),
        statistics_sample_rows=STATS_SAMPLE_ROWS if summary.sampled else 0,
    )


# ---- Large CSV files -------------------------------------------------------------------
# `read_csv` types a column with the first of these (Arrow's inference order, with the two
# zone variants of each timestamp kind) that parses every value in the file. Read a piece at
# a time, types are inferred from the first piece only, and a later piece fails when it holds
# a value that type cannot parse; the column is then loosened one step and the file read
# again, which ends on the type `read_csv` gives. Restarts are rare (a column whose type
# changes deep in the file) and usually fail fast, on the first piece.
_LOOSER = (
    pa.null(), pa.int64(), pa.bool_(), pa.date32(), pa.time32("s"), pa.timestamp("s"), pa.timestamp("s", "UTC"),
    pa.timestamp("ns"), pa.timestamp("ns", "UTC"), pa.float64(), pa.string(), pa.binary(),
)
_CONVERSION_COLUMN = re.compile(r"In CSV column #(\d+): CSV conversion error")


def _loosened(exc: pa.ArrowInvalid, types: list[pa.DataType]) -> bool:
    """Loosen the column `exc` reports a conversion error in; False when it cannot be."""
    match = _CONVERSION_COLUMN.search(str(exc))
    if not match or int(match[1]) >= len(types):
        return False
    index = int(match[1])
    current = types[index]
    if current == pa.binary():
        return False
    types[index] = _LOOSER[_LOOSER.index(current) + 1] if current in _LOOSER else pa.string()
    return True


class _ReadAhead:
    """Iterates `items` in a thread of its own, up to `depth` items ahead of the consumer: the
    next CSV block is parsed (pyarrow lets go of the GIL) while this one is summarised and
    written, so a file is read on one core and stored on another. Errors raised while reading
    reach the consumer at the item they stopped. Leaving the `with` block stops the thread, so
    the reader behind `items` can be closed safely."""

    _END = object()

    def __init__(self, items: Iterable[Any], depth: int = 2):
        self._items = items
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="read-ahead", daemon=True)

    def _produce(self) -> None:
        try:
            for item in self._items:
                if self._stop.is_set():
                    return
                self._queue.put((item, None))
            self._queue.put((self._END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            self._queue.put((self._END, exc))

    def __iter__(self) -> Iterator[Any]:
        while True:
            item, error = self._queue.get()
            if error is not None:
                raise error
            if item is self._END:
                return
            yield item

    def __enter__(self) -> "_ReadAhead":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        while self._thread.is_alive():
            # Make room for a put the producer may be blocked in; it then sees the stop.
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()


def _pieces(stream: Any, limits: IngestLimits) -> Iterator[memoryview]:
    """The stream's bytes in pieces of about PIECE_RECORDS * limits.max_record_bytes, each cut
    after a line end, as pyarrow cuts its blocks: every piece holds whole records. A record
    longer than the limit is refused (as pyarrow's "straddling" error, which `_read_error`
    explains), so a piece never grows past the limit and what the last line end left over."""
    size = PIECE_RECORDS * limits.max_record_bytes
    rest = b""
    while True:
        data = stream.read(size)
        if not data:
            if rest:
                yield memoryview(rest)
            return
        data = rest + data
        end = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1
        if len(data) - end > limits.max_record_bytes:
            raise pa.ArrowInvalid(f"CSV parse error: {_STRADDLING}")
        if end:
            yield memoryview(data)[:end]
        rest = data[end:]


class _CsvTables:
    """A CSV file's rows as tables, one per piece of text (`_pieces`), each piece parsed by
    `pyarrow.csv.read_csv` on every core. pyarrow's own streaming reader parses on one thread
    only, which made it the slowest part of storing a large file.

    The first piece's header names the columns and, unless `types` is given, its values type
    them; later pieces are read with those types, and a value that does not fit raises the
    ArrowInvalid that `ingest_large_csv` loosens the column for. `names` and `types` are set
    once the first piece is read."""

    def __init__(self, stream: Any, path: str, source_field: str, limits: IngestLimits,
                 names: list[str], types: list[pa.DataType] | None):
        self.stream, self.path, self.source_field, self.limits = stream, path, source_field, limits
        self.names, self.types = names, types

    def _read(self, piece: memoryview, header: bool) -> pa.Table:
        # Types go by name; repeated names never get this far, the first table's checks refuse them.
        column_types = dict(zip(self.names, self.types)) if self.types is not None else None
        convert = pa_csv.ConvertOptions(strings_can_be_null=True, column_types=column_types)
        return _in_blocks(lambda block, threads: pa_csv.read_csv(
            pa.BufferReader(pa.py_buffer(piece)), convert_options=convert,
            read_options=pa_csv.ReadOptions(block_size=block, use_threads=threads,
                                            column_names=None if header else self.names)), self.limits)

    def __iter__(self) -> Iterator[pa.Table]:
        header = True
        for piece in _pieces(self.stream, self.limits):
            table = self._read(piece, header)
            if table.num_rows:
                _check_read(table, self.path, "csv", self.source_field)  # the checks `ingest_file` makes on whole files
            if header:
                self.names, self.types, header = table.column_names, list(table.schema.types), False
            if table.num_rows:
                yield table
        if header:  # not a byte of text: pyarrow's own error says so, as for a file read whole
            self._read(memoryview(b""), header)


def ingest_large_csv(
    path: str,
    dest: str,
    *,
    label_column: str = "",
    schema: DataSchema | None = None,
    field_prefix: str = "config",
    source_field: str = "",
    limits: IngestLimits | None = None,
) -> IngestResult:
    """`ingest.ingest_file` for a local CSV file too large to read whole (or compressed): same
    rows, types and errors.

    The text is parsed a piece at a time (`_CsvTables`) in a thread of its own (`_ReadAhead`),
    while the pieces before it are summarised and written. Memory holds a few pieces (of
    PIECE_RECORDS * limits.max_record_bytes of text) and their tables, one row group and the
    statistics sample, whatever the file's size. A compressed file is refused once it expands
    past limits.max_expanded_bytes. Statistics: see the module's docstring.
    """
    source_field = source_field or _field(field_prefix, "source_uri")
    limits = limits or IngestLimits()
    names: list[str] = []
    types: list[pa.DataType] | None = None  # None: inferred from the first piece
    while True:
        stream = tables = None
        try:
            # Decompressed here rather than by pyarrow, so the expansion is counted.
            stream = expanded_stream(path, source_field, limits) if _compressed(path) else pa.input_stream(path)
            tables = _CsvTables(stream, path, source_field, limits, names, types)
            with _ReadAhead(tables) as ahead:
                return write_batches(ahead, dest, label_column=label_column, schema=schema,
                                     field_prefix=field_prefix, blame_field=source_field,
                                     source_name=Path(path).name)
        except pa.ArrowInvalid as exc:
            names, types = (tables.names, tables.types) if tables is not None else (names, types)
            if types is None or not _loosened(exc, types):
                raise _read_error(exc, path, "csv", source_field, limits) from None
        except (pa.ArrowNotImplementedError, pa.ArrowTypeError, OSError) as exc:
            raise _read_error(exc, path, "csv", source_field, limits) from None
        finally:
            if stream is not None:
                stream.close()
