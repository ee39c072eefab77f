"""FilterDataset and MergeDatasets over stored Parquet files."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.data.ingest import write_table
from engine.data.operations import filter_table, merge_tables
from engine.data.schema import ColumnSchema, DataSchema
from engine.errors import DataLoss, InvalidArgument


def _store(tmp_path, name, columns):
    path = str(tmp_path / f"{name}.parquet")
    write_table(pa.table(columns), path)
    return path


@pytest.fixture
def people(tmp_path):
    return _store(
        tmp_path,
        "people",
        {
            "age": [12, 30, None, 45, 18],
            "country": ["NL", "NL", "DE", "NL", "BE"],
            "label": [0, 1, 1, 0, 1],
        },
    )


def test_filter_keeps_matching_rows_in_order(people, tmp_path):
    dest = str(tmp_path / "adults.parquet")
    result = filter_table(people, dest, "age >= 18 and country == 'NL'", label_column="label")
    table = pq.read_table(dest)
    assert table.to_pydict() == {"age": [30, 45], "country": ["NL", "NL"], "label": [1, 0]}
    assert table.schema.field("age").type == pa.int64()  # kept rows never went through pandas
    assert result.row_count == 2 and result.path == dest
    assert [(v.value, v.count) for v in result.statistics.label_distribution] == [("0", 1), ("1", 1)]
    assert result.schema.names == ["age", "country", "label"]


def test_filter_leaves_out_rows_whose_value_is_null(people, tmp_path):
    dest = str(tmp_path / "young.parquet")
    filter_table(people, dest, "not age >= 18")
    assert pq.read_table(dest).column("age").to_pylist() == [12]


def test_filter_with_parent_schema_keeps_declared_columns(people, tmp_path):
    schema = DataSchema(columns=[
        ColumnSchema("age", "float64", nullable=True, description="years"),
        ColumnSchema("country", "string", nullable=False),
        ColumnSchema("label", "int64", nullable=False),
    ])
    result = filter_table(people, str(tmp_path / "f.parquet"), "country in ['DE', 'BE']", schema=schema)
    assert result.schema.column("age").description == "years"
    assert pq.read_table(tmp_path / "f.parquet").schema.field("age").type == pa.float64()


@pytest.mark.parametrize(
    "expression, fragment",
    [
        ("age > 100", "'age > 100' matches no rows (of 5)"),
        ("height > 1", "unknown column 'height'"),
        ("age.real > 1", "attribute access"),
        ("country > 1", "cannot compare text with a number"),
    ],
)
def test_filter_errors_name_the_expression_field(people, tmp_path, expression, fragment):
    dest = tmp_path / "out.parquet"
    with pytest.raises(InvalidArgument) as info:
        filter_table(people, str(dest), expression, field="filter.expression")
    assert info.value.violations[0].field == "filter.expression"
    assert fragment in info.value.message
    assert not dest.exists() and os.listdir(tmp_path) == ["people.parquet"]  # nothing half-written


def test_filter_of_a_missing_file_is_data_loss(tmp_path):
    with pytest.raises(DataLoss):
        filter_table(str(tmp_path / "gone.parquet"), str(tmp_path / "out.parquet"), "True")


def test_merge_stacks_datasets_in_order_and_widens_int_to_float(tmp_path):
    first = _store(tmp_path, "a", {"x": [1, 2], "name": ["p", "q"], "y": [None, None]})
    second = _store(tmp_path, "b", {"name": ["r"], "x": [2.5], "y": [7]})  # other column order, y typed here
    dest = str(tmp_path / "merged.parquet")
    result = merge_tables([first, second], dest, label_column="name")
    table = pq.read_table(dest)
    assert table.column_names == ["x", "name", "y"]
    assert table.to_pydict() == {"x": [1.0, 2.0, 2.5], "name": ["p", "q", "r"], "y": [None, None, 7]}
    assert table.schema.field("y").type == pa.int64()  # the all-empty column took the other's type
    assert result.row_count == 3
    assert [v.value for v in result.statistics.label_distribution] == ["p", "q", "r"]


def test_merge_needs_two_datasets(tmp_path):
    only = _store(tmp_path, "a", {"x": [1]})
    with pytest.raises(InvalidArgument) as info:
        merge_tables([only], str(tmp_path / "m.parquet"))
    assert info.value.violations[0].field == "datasets"
    assert "at least 2" in info.value.message


def test_merge_refuses_different_columns(tmp_path):
    first = _store(tmp_path, "a", {"x": [1], "y": [2]})
    second = _store(tmp_path, "b", {"x": [1], "y": [2]})
    third = _store(tmp_path, "c", {"x": [1], "z": [2]})
    with pytest.raises(InvalidArgument) as info:
        merge_tables([first, second, third], str(tmp_path / "m.parquet"))
    assert info.value.violations[0].field == "datasets[2]"
    assert "dataset 2 lacks 'y' and has extra 'z'" in info.value.message


def test_merge_refuses_incompatible_types_naming_both(tmp_path):
    first = _store(tmp_path, "a", {"x": [1], "when": pa.array([0], pa.timestamp("us"))})
    second = _store(tmp_path, "b", {"x": ["one"], "when": pa.array([0], pa.timestamp("us"))})
    dest = tmp_path / "m.parquet"
    with pytest.raises(InvalidArgument) as info:
        merge_tables([first, second], str(dest), field="merge.datasets")
    assert info.value.violations[0].field == "merge.datasets[1]"
    assert "column 'x' is string in dataset 1 but int64 in dataset 0" in info.value.message
    assert not dest.exists()

    aware = _store(tmp_path, "c", {"x": [2], "when": pa.array([0], pa.timestamp("us", tz="UTC"))})
    with pytest.raises(InvalidArgument, match=r"column 'when' is timestamp\[us, tz=UTC\] in dataset 1 but timestamp\[us\]"):
        merge_tables([first, aware], str(dest))


def test_merge_of_a_missing_file_is_data_loss(tmp_path):
    first = _store(tmp_path, "a", {"x": [1]})
    with pytest.raises(DataLoss):
        merge_tables([first, str(tmp_path / "gone.parquet")], str(tmp_path / "m.parquet"))
