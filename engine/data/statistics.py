"""Per-column summaries of a dataset, computed with Arrow kernels.

The result is stored as JSON and shown to users, so it never holds NaN or infinity
(JSON has neither): anything undefined is None. NaN cells count as nulls, and ±inf
values are left out of the numeric summaries (mean, std, quantiles, histogram, min, max).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from engine.data.schema import MAX_LISTED_CATEGORIES, format_value
from engine.errors import InvalidArgument

QUANTILES = (0.25, 0.5, 0.75)
TOP_VALUES = 10
HISTOGRAM_BINS = 10


@dataclass
class Quantile:
    quantile: float
    value: float | None


@dataclass
class ValueCount:
    value: str
    count: int


@dataclass
class Histogram:
    """`bin_edges` has one more entry than `counts`; the last bin includes its right edge."""

    bin_edges: list[float]
    counts: list[int]


@dataclass
class ColumnStatistics:
    name: str
    null_count: int
    distinct_count: int
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: list[Quantile] = field(default_factory=list)
    top_values: list[ValueCount] = field(default_factory=list)
    histogram: Histogram | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ColumnStatistics":
        histogram = data.get("histogram")
        return cls(
            name=data["name"],
            null_count=int(data["null_count"]),
            distinct_count=int(data["distinct_count"]),
            min=data.get("min"),
            max=data.get("max"),
            mean=data.get("mean"),
            std=data.get("std"),
            quantiles=[Quantile(**q) for q in data.get("quantiles", [])],
            top_values=[ValueCount(**v) for v in data.get("top_values", [])],
            histogram=Histogram(**histogram) if histogram else None,
        )


@dataclass
class DataStatistics:
    row_count: int
    columns: list[ColumnStatistics] = field(default_factory=list)
    label_distribution: list[ValueCount] = field(default_factory=list)

    def column(self, name: str) -> ColumnStatistics | None:
        return next((c for c in self.columns if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "row_count": self.row_count,
            "columns": [c.to_dict() for c in self.columns],
            "label_distribution": [asdict(v) for v in self.label_distribution],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DataStatistics":
        return cls(
            row_count=int(data["row_count"]),
            columns=[ColumnStatistics.from_dict(c) for c in data.get("columns", [])],
            label_distribution=[ValueCount(**v) for v in data.get("label_distribution", [])],
        )


def _finite(value: Any) -> float | None:
    """A plain float, or None for missing/NaN/inf: the only numbers JSON can carry."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _is_numeric(arrow_type: pa.DataType) -> bool:
    # Bools are integers to numpy but not quantities: min/max/mean of a flag mislead.
    return (pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type))


def _value_counts(values: pa.ChunkedArray, limit: int | None) -> list[ValueCount]:
    """Counts of non-null values, most frequent first; ties ordered by value, for stable output."""
    if len(values) == 0:
        return []
    counts = pc.value_counts(values)
    counted = pa.table({"value": counts.field("values"), "count": counts.field("counts")})
    # Sorted by Arrow, not Python: a near-unique column has as many counts as rows, and only
    # `limit` of them leave Arrow. Arrow orders text by UTF-8 bytes, which is code point order.
    order = pc.sort_indices(counted, sort_keys=[("count", "descending"), ("value", "ascending")])
    top = counted.take(order if limit is None else order[:limit])
    return [ValueCount(value=format_value(v), count=int(c))
            for v, c in zip(top.column("value").to_pylist(), top.column("count").to_pylist())]


def _numeric_summary(stats: ColumnStatistics, values: pa.ChunkedArray) -> None:
    """Fill min/max/mean/std/quantiles/histogram from the non-null values of a numeric column."""
    array = values.cast(pa.float64(), safe=False).to_numpy() if len(values) else np.empty(0)
    array = array[np.isfinite(array)]
    stats.quantiles = [Quantile(quantile=q, value=None) for q in QUANTILES]
    if array.size == 0:
        return
    stats.min = _finite(array.min())
    stats.max = _finite(array.max())
    stats.mean = _finite(array.mean())
    # Sample standard deviation (ddof=1), as pandas' describe() reports; undefined for one value.
    stats.std = _finite(array.std(ddof=1)) if array.size > 1 else None
    stats.quantiles = [Quantile(quantile=q, value=_finite(v)) for q, v in zip(QUANTILES, np.quantile(array, QUANTILES))]
    stats.histogram = histogram(array, float(array.min()), float(array.max()))


def histogram(array: np.ndarray, low: float, high: float) -> Histogram:
    """HISTOGRAM_BINS bins over [low, high]; one bin when the values are (numerically) constant,
    where numpy cannot split a range narrower than the float spacing of large values."""
    try:
        counts, edges = np.histogram(array, bins=HISTOGRAM_BINS, range=(low, high))
    except ValueError:
        counts, edges = np.array([array.size]), np.array([low, high])
    return Histogram(bin_edges=[float(e) for e in edges], counts=[int(c) for c in counts])


def _cleaned(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Dictionary columns decoded and NaN turned into null, so NaN is counted as missing."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_floating(column.type) and len(column) > column.null_count:
        column = pc.if_else(pc.fill_null(pc.is_nan(column), False), pa.scalar(None, column.type), column)
    return column


def _column_statistics(name: str, column: pa.ChunkedArray) -> ColumnStatistics:
    column = _cleaned(column)
    values = column.drop_null()
    stats = ColumnStatistics(
        name=name,
        null_count=int(column.null_count),
        distinct_count=int(pc.count_distinct(values).as_py()) if len(values) else 0,
        # Raw bytes (images) repeated as "top values" say nothing and bloat every GetDataset.
        top_values=[] if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)
        else _value_counts(values, TOP_VALUES),
    )
    if _is_numeric(column.type):
        _numeric_summary(stats, values)
    return stats


def compute_statistics(data: pa.Table | pd.DataFrame, label_column: str | None = None) -> DataStatistics:
    """Summarise every column of `data` and, when given, the distribution of its label.

    The label distribution counts each non-null label value (most frequent first) when the
    label has at most 50 distinct values; a label with more (a regression target) gets an
    empty distribution, its shape being in the column's histogram.
    """
    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    if label_column and label_column not in table.column_names:
        raise InvalidArgument.field(
            "label_column",
            f"column {label_column!r} is not in the data; available columns: {', '.join(table.column_names)}",
        )
    columns = [_column_statistics(name, column) for name, column in zip(table.column_names, table.columns)]
    distribution: list[ValueCount] = []
    if label_column:
        label_stats = next(c for c in columns if c.name == label_column)
        if label_stats.distinct_count <= MAX_LISTED_CATEGORIES:
            distribution = _value_counts(_cleaned(table.column(label_column)).drop_null(), None)
    return DataStatistics(row_count=table.num_rows, columns=columns, label_distribution=distribution)
