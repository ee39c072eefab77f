"""Column statistics: exact values on tiny inputs, and no NaN anywhere in the output."""

from __future__ import annotations

import json
import math

import pandas as pd
import pyarrow as pa
import pytest

from engine.data.statistics import DataStatistics, ValueCount, compute_statistics
from engine.errors import InvalidArgument


def test_numeric_column_summary_matches_hand_computed_values():
    stats = compute_statistics(pa.table({"x": [1, 2, 3, 4, None]}))
    assert stats.row_count == 5
    x = stats.column("x")
    assert (x.null_count, x.distinct_count, x.min, x.max, x.mean) == (1, 4, 1.0, 4.0, 2.5)
    assert x.std == pytest.approx(math.sqrt(5 / 3))  # sample std of 1..4
    assert [(q.quantile, q.value) for q in x.quantiles] == [(0.25, 1.75), (0.5, 2.5), (0.75, 3.25)]
    assert len(x.histogram.bin_edges) == 11 and len(x.histogram.counts) == 10
    assert x.histogram.bin_edges[0] == 1.0 and x.histogram.bin_edges[-1] == 4.0
    assert x.histogram.counts[0] == 1 and x.histogram.counts[-1] == 1 and sum(x.histogram.counts) == 4


def test_nan_and_infinity_never_reach_the_output():
    table = pa.table({"f": [1.0, float("nan"), float("inf"), 3.0, None], "empty": pa.array([None] * 5, pa.float64())})
    stats = compute_statistics(table)
    f = stats.column("f")
    assert f.null_count == 2  # NaN counts as missing, like None
    assert (f.min, f.max, f.mean) == (1.0, 3.0, 2.0)  # inf left out of the numeric summary
    assert sum(f.histogram.counts) == 2
    empty = stats.column("empty")
    assert (empty.null_count, empty.distinct_count, empty.min, empty.mean, empty.std, empty.histogram) == (5, 0, None, None, None, None)
    assert [q.value for q in empty.quantiles] == [None, None, None]
    json.dumps(stats.to_dict(), allow_nan=False)  # raises ValueError on any NaN/inf


def test_single_value_has_no_std():
    x = compute_statistics(pa.table({"x": [7.0]})).column("x")
    assert (x.min, x.max, x.mean, x.std) == (7.0, 7.0, 7.0, None)


def test_bool_and_string_columns_get_counts_but_no_numeric_summary():
    stats = compute_statistics(pa.table({"b": [True, True, False, None], "s": ["x", "y", "x", "x"]}))
    b, s = stats.column("b"), stats.column("s")
    assert (b.min, b.max, b.mean, b.histogram, b.quantiles) == (None, None, None, None, [])
    assert b.top_values == [ValueCount("true", 2), ValueCount("false", 1)]
    assert (s.distinct_count, s.top_values) == (2, [ValueCount("x", 3), ValueCount("y", 1)])


def test_top_values_keep_the_ten_most_frequent_with_ties_by_value():
    values = [v for v in range(12) for _ in range(12 - v)] + [11] * 5  # 11 appears 6 times
    top = compute_statistics(pa.table({"v": values})).column("v").top_values
    assert len(top) == 10
    assert top[0] == ValueCount("0", 12)
    assert [t.count for t in top] == sorted((t.count for t in top), reverse=True)
    # 6 (count 6) and 11 (count 6) tie: the smaller value comes first.
    assert [t.value for t in top][6:8] == ["6", "11"]


def test_label_distribution_counts_every_class_and_skips_continuous_labels():
    table = pa.table({"y": ["a", "b", "a", None], "r": [float(i) for i in range(3)] + [None]})
    assert compute_statistics(table, "y").label_distribution == [ValueCount("a", 2), ValueCount("b", 1)]
    many = pa.table({"r": [float(i) for i in range(51)]})
    assert compute_statistics(many, "r").label_distribution == []
    assert compute_statistics(table, None).label_distribution == []


def test_unknown_label_column_is_invalid_argument():
    with pytest.raises(InvalidArgument) as err:
        compute_statistics(pa.table({"a": [1]}), "target")
    assert err.value.violations[0].field == "label_column"
    assert "available columns: a" in err.value.message


def test_dataframe_and_table_give_the_same_statistics():
    frame = pd.DataFrame({"x": [1.5, 2.5, None], "s": ["a", None, "a"]})
    assert compute_statistics(frame, "s") == compute_statistics(pa.Table.from_pandas(frame, preserve_index=False), "s")


def test_empty_table_and_json_round_trip():
    empty = compute_statistics(pa.table({"x": pa.array([], pa.int64())}))
    assert empty.row_count == 0 and empty.column("x").min is None and empty.column("x").top_values == []

    stats = compute_statistics(pa.table({"x": [1, 2, 2], "y": ["a", "b", "b"]}), "y")
    assert DataStatistics.from_dict(json.loads(json.dumps(stats.to_dict()))) == stats
