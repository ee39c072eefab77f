"""Schema inference and enforcement over small Arrow tables."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest

from engine.data.schema import ColumnSchema, DataSchema, canonical_table, enforce_schema, infer_schema
from engine.errors import InvalidArgument


def _by_name(schema: DataSchema) -> dict[str, ColumnSchema]:
    return {c.name: c for c in schema.columns}


def test_infer_schema_maps_every_supported_type():
    table = pa.table(
        {
            "i": pa.array([1, 2, None], pa.int32()),
            "f": pa.array([1.5, None, 3.0], pa.float32()),
            "s": pa.array(["b", "a", "b"], pa.large_string()),
            "b": [True, False, True],
            "t": pa.array([dt.datetime(2024, 1, 1)] * 3, pa.timestamp("ms")),
            "d": pa.array([dt.date(2024, 1, 1)] * 3, pa.date32()),
            "y": pa.array([b"x", b"y", b"z"], pa.binary()),
            "n": pa.nulls(3),
        }
    )
    columns = _by_name(infer_schema(table))
    assert {n: c.data_type for n, c in columns.items()} == {
        "i": "int64", "f": "float64", "s": "string", "b": "bool",
        "t": "timestamp", "d": "timestamp", "y": "binary", "n": "string",
    }
    assert columns["i"].nullable and columns["f"].nullable and not columns["s"].nullable
    assert columns["s"].categorical and columns["s"].categories == ["a", "b"]
    assert columns["b"].categorical and columns["b"].categories == ["false", "true"]
    assert not columns["f"].categorical and not columns["t"].categorical and not columns["y"].categorical


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0, 1] * 5, True),  # a two-valued flag is categorical even in a tiny table
        ([1, 2, 3, 4, 5] * 40, True),  # 5 distinct in 200 rows = 2.5%
        ([1, 2, 3, 4, 5] * 10, False),  # 5 distinct in 50 rows = 10%
        (list(range(21)) * 100, False),  # more than 20 distinct values
        (list(range(500)), False),  # an id-like column
    ],
)
def test_integer_columns_are_categorical_only_with_few_repeated_values(values, expected):
    column = infer_schema(pa.table({"x": values})).columns[0]
    assert column.categorical is expected
    if expected:
        assert column.categories == [str(v) for v in sorted(set(values))]
    else:
        assert column.categories == []


def test_integer_categories_sort_numerically_not_as_text():
    column = infer_schema(pa.table({"x": [10, 2, 1] * 100})).columns[0]
    assert column.categories == ["1", "2", "10"]


def test_string_column_with_many_values_is_categorical_without_a_list():
    column = infer_schema(pa.table({"s": [f"v{i}" for i in range(51)]})).columns[0]
    assert column.categorical is True
    assert column.categories == []


def test_nested_columns_are_rejected_with_the_column_name():
    table = pa.table({"ok": [1], "nested": pa.array([[1, 2]], pa.list_(pa.int64()))})
    with pytest.raises(InvalidArgument) as err:
        canonical_table(table, blame_field="config.source_uri")
    assert err.value.violations[0].field == "config.source_uri"
    assert "'nested'" in err.value.message and "flatten" in err.value.message


def test_canonical_table_turns_nan_into_null_and_drops_pandas_metadata():
    import pandas as pd

    table = pa.Table.from_pandas(pd.DataFrame({"f": [1.0, float("nan")]}, index=[5, 6]))
    assert "__index_level_0__" in table.column_names
    out = canonical_table(table.drop_columns(["__index_level_0__"]), blame_field="f")
    assert out.schema.metadata is None
    assert out.column("f").to_pylist() == [1.0, None]


def test_schema_round_trips_through_json():
    schema = DataSchema(
        columns=[
            ColumnSchema("a", "int64", False, True, ["1", "2"], "the a"),
            ColumnSchema("b", "string", True),
        ]
    )
    assert DataSchema.from_dict(json.loads(json.dumps(schema.to_dict()))) == schema


def test_enforce_schema_casts_orders_and_keeps_only_declared_columns():
    table = pa.table({"b": ["x", "y"], "a": ["1", "2"], "t": ["2024-01-01T00:00:00Z", "2024-01-02T12:00:00+02:00"]})
    schema = DataSchema(
        columns=[
            ColumnSchema("a", "int64", False),
            ColumnSchema("b", "string", False),
            ColumnSchema("t", "timestamp", False),
        ]
    )
    out = enforce_schema(table, schema)
    assert out.column_names == ["a", "b", "t"]
    assert out.column("a").to_pylist() == [1, 2]
    assert out.schema.field("t").type == pa.timestamp("us", tz="UTC")
    assert out.column("t")[1].as_py() == dt.datetime(2024, 1, 2, 10, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("bad_row", [0, 1, 777, 1999])
def test_enforce_schema_reports_first_uncastable_row_and_value(bad_row):
    values = [str(i) for i in range(2000)]
    values[bad_row] = "twelve"
    if bad_row < 1999:
        values[1999] = "later-bad"  # a later bad value must not be the one reported
    table = pa.table({"s": ["x"] * 2000, "n": values})
    schema = DataSchema(columns=[ColumnSchema("s", "string", False), ColumnSchema("n", "int64", False)])
    with pytest.raises(InvalidArgument) as err:
        enforce_schema(table, schema)
    violation = err.value.violations[0]
    assert violation.field == "config.schema.columns[1]"
    assert f"at row {bad_row}" in violation.description
    assert "'twelve'" in violation.description and "'n'" in violation.description


def test_enforce_schema_refuses_fractional_floats_as_integers():
    schema = DataSchema(columns=[ColumnSchema("x", "int64", True)])
    assert enforce_schema(pa.table({"x": [1.0, 2.0]}), schema).column("x").to_pylist() == [1, 2]
    with pytest.raises(InvalidArgument, match="value 2.5 at row 1"):
        enforce_schema(pa.table({"x": [1.0, 2.5]}), schema)


def test_enforce_schema_missing_and_undeclared_columns():
    table = pa.table({"a": [1], "extra": [2]})
    with pytest.raises(InvalidArgument) as err:
        enforce_schema(table, DataSchema(columns=[ColumnSchema("a", "int64", False)]))
    assert err.value.violations[0].field == "config.schema.columns"
    assert "'extra'" in err.value.message

    schema = DataSchema(columns=[ColumnSchema("a", "int64", False), ColumnSchema("extra", "int64", False), ColumnSchema("gone", "string", True)])
    with pytest.raises(InvalidArgument) as err:
        enforce_schema(table, schema, field_prefix="dataset")
    assert err.value.violations[0].field == "dataset.schema.columns[2]"
    assert "available columns: a, extra" in err.value.message


def test_enforce_schema_nullability_categories_and_unknown_type():
    table = pa.table({"c": ["a", None, "z"]})
    with pytest.raises(InvalidArgument, match="row 1 is empty"):
        enforce_schema(table, DataSchema(columns=[ColumnSchema("c", "string", False)]))
    with pytest.raises(InvalidArgument, match="value 'z' at row 2 is not one of the declared categories"):
        enforce_schema(table, DataSchema(columns=[ColumnSchema("c", "string", True, True, ["a", "b"])]))
    with pytest.raises(InvalidArgument, match="data_type 'text' is not one of"):
        enforce_schema(table, DataSchema(columns=[ColumnSchema("c", "text", True)]))
    # Nulls are not category violations, and listed categories are honoured.
    out = enforce_schema(table, DataSchema(columns=[ColumnSchema("c", "string", True, True, ["a", "z"])]))
    assert out.column("c").to_pylist() == ["a", None, "z"]


def test_enforce_schema_bool_categories_use_true_false_text():
    table = pa.table({"flag": ["true", "0", "1"]})
    out = enforce_schema(table, DataSchema(columns=[ColumnSchema("flag", "bool", False, True, ["false", "true"])]))
    assert out.column("flag").to_pylist() == [True, False, True]


def test_unsigned_values_beyond_int64_are_invalid_not_a_crash():
    table = pa.table({"u": pa.array([1, 2**63 + 5], pa.uint64())})
    with pytest.raises(InvalidArgument) as err:
        canonical_table(table, blame_field="config.source_uri")
    assert "'u' cannot be stored as int64" in err.value.message
