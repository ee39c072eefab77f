"""Dataset splits: sizes, stratification, determinism and validation."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import load_breast_cancer

from engine.data.ingest import write_table
from engine.data.schema import ColumnSchema, DataSchema
from engine.data.splits import split_table
from engine.errors import DataLoss, InvalidArgument

RATIOS = [0.7, 0.15, 0.15]


@pytest.fixture(scope="module")
def breast_cancer(tmp_path_factory):
    """The bundled breast-cancer data (569 rows, 212/357 classes) with a row id to track rows."""
    frame = load_breast_cancer(as_frame=True).frame
    frame.insert(0, "row_id", range(len(frame)))
    path = tmp_path_factory.mktemp("bc") / "source.parquet"
    write_table(pa.Table.from_pandas(frame, preserve_index=False), str(path), label_column="target")
    return str(path), frame


def _split(source, tmp_path, tag, **kwargs):
    dests = [str(tmp_path / f"{tag}-{i}.parquet") for i in range(3)]
    results = split_table(source, dests, RATIOS, **kwargs)
    return results, [pq.read_table(d).to_pandas() for d in dests]


def test_stratified_split_of_breast_cancer(breast_cancer, tmp_path):
    source, frame = breast_cancer
    results, parts = _split(source, tmp_path, "a", seed=42, stratify_column="target", label_column="target")
    n = len(frame)

    for ratio, part, result in zip(RATIOS, parts, results):
        assert abs(len(part) - ratio * n) <= 1
        assert result.row_count == len(part)
    whole = frame["target"].mean()
    for part in parts:
        assert abs(part["target"].mean() - whole) <= 0.02
    ids = [set(p["row_id"]) for p in parts]
    assert sum(len(s) for s in ids) == n  # no row twice ...
    assert set().union(*ids) == set(range(n))  # ... and none lost
    # Rows keep their values: the split moved whole rows, not columns independently.
    merged = parts[1].merge(frame, on="row_id", suffixes=("", "_orig"))
    assert (merged["mean radius"] == merged["mean radius_orig"]).all()
    assert [v.value for v in results[0].statistics.label_distribution] == ["1", "0"]

    again, same = _split(source, tmp_path, "b", seed=42, stratify_column="target", label_column="target")
    assert [list(p["row_id"]) for p in same] == [list(p["row_id"]) for p in parts]
    assert [r.sha256 for r in again] == [r.sha256 for r in results]

    _, other = _split(source, tmp_path, "c", seed=43, stratify_column="target")
    assert [set(p["row_id"]) for p in other] != ids


def test_unstratified_split_sizes_and_shuffled_order(breast_cancer, tmp_path):
    source, frame = breast_cancer
    _, parts = _split(source, tmp_path, "u", seed=7)
    assert [len(p) for p in parts] == [398, 86, 85]  # 398.3 / 85.35 / 85.35, largest remainder
    assert list(parts[0]["row_id"]) != sorted(parts[0]["row_id"])


def test_unshuffled_split_is_contiguous_slices_in_file_order(breast_cancer, tmp_path):
    source, _ = breast_cancer
    _, parts = _split(source, tmp_path, "s", shuffle=False)
    assert list(parts[0]["row_id"]) == list(range(0, 398))
    assert list(parts[1]["row_id"]) == list(range(398, 484))
    assert list(parts[2]["row_id"]) == list(range(484, 569))


def test_stratification_hands_leftover_rows_to_different_parts(tmp_path):
    # 7 classes of 11 rows split 50/50: each class must give one part 6 rows and the other 5.
    # Always breaking the tie the same way would make the parts 42/35; balancing keeps 39/38.
    table = pa.table({"c": [f"k{i % 7}" for i in range(77)], "row": list(range(77))})
    source = str(tmp_path / "s.parquet")
    pq.write_table(table, source)
    results = split_table(source, [str(tmp_path / "p0.parquet"), str(tmp_path / "p1.parquet")], [0.5, 0.5],
                          seed=3, stratify_column="c")
    assert sorted(r.row_count for r in results) == [38, 39]
    for r in results:
        assert {v.count for v in r.statistics.column("c").top_values} <= {5, 6}
        assert len(r.statistics.column("c").top_values) == 7


def test_declared_schema_is_carried_to_every_part(tmp_path):
    source = str(tmp_path / "s.parquet")
    pq.write_table(pa.table({"x": [1, 2, 3, 4]}), source)
    schema = DataSchema(columns=[ColumnSchema("x", "float64", False, description="a number")])
    results = split_table(source, [str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")], [0.5, 0.5], schema=schema)
    assert all(r.schema == schema for r in results)
    assert pq.read_schema(tmp_path / "a.parquet").field("x").type == pa.float64()


@pytest.mark.parametrize(
    ("ratios", "kwargs", "field", "needle"),
    [
        ([1.0], {}, "ratios", "at least 2 ratios"),
        ([0.5, 0.0, 0.5], {}, "ratios", "ratios[1] is 0.0"),
        ([0.5, -0.1, 0.6], {}, "ratios", "ratios[1] is -0.1"),
        ([0.5, 0.4], {}, "ratios", "they sum to 0.9"),
        ([0.5, 0.5], {"stratify_column": "nope"}, "stratify_column", "available columns: x, y"),
        ([0.5, 0.5], {"stratify_column": "y", "shuffle": False}, "stratify_column", "set shuffle to true"),
        ([0.5, 0.5], {"label_column": "nope"}, "label_column", "available columns: x, y"),
        ([0.7, 0.2, 0.1], {}, "ratios", "part 2 would get no rows"),
        ([0.5, 0.5], {"group_column": "y", "stratify_column": "y"}, "group_column",
         "choose one of stratify_column and group_column"),
        ([0.5, 0.5], {"group_column": "nope"}, "group_column", "available columns: x, y"),
        ([0.4, 0.3, 0.3], {"group_column": "y"}, "group_column",
         "has 2 distinct value(s) (groups) but the split has 3"),
        ([0.5, 0.5], {"time_column": "nope"}, "time_column", "available columns: x, y"),
        ([0.5, 0.5], {"time_column": "x", "stratify_column": "y"}, "time_column",
         "choose one of time_column and stratify_column"),
        ([0.5, 0.5], {"time_column": "x", "group_column": "y"}, "time_column",
         "choose one of time_column and group_column"),
    ],
)
def test_invalid_split_requests(tmp_path, ratios, kwargs, field, needle):
    source = str(tmp_path / "s.parquet")
    pq.write_table(pa.table({"x": [1, 2, 3], "y": ["a", "b", "a"]}), source)
    dests = [str(tmp_path / f"p{i}.parquet") for i in range(len(ratios))]
    with pytest.raises(InvalidArgument) as err:
        split_table(source, dests, ratios, **kwargs)
    assert err.value.violations[0].field == field
    assert needle in err.value.message
    assert not any((tmp_path / f"p{i}.parquet").exists() for i in range(len(ratios)))


def test_missing_source_is_data_loss(tmp_path):
    with pytest.raises(DataLoss):
        split_table(str(tmp_path / "gone.parquet"), ["a", "b"], [0.5, 0.5])


@pytest.fixture(scope="module")
def customers(tmp_path_factory):
    """80 customers with 1 to 12 rows each (uneven on purpose), one row id per row."""
    sizes = np.random.default_rng(0).integers(1, 13, size=80)
    customer = np.repeat([f"c{i}" for i in range(80)], sizes)
    order = np.random.default_rng(1).permutation(len(customer))  # customers' rows interleaved
    table = pa.table({"row_id": np.arange(len(customer)), "customer": customer[order]})
    path = tmp_path_factory.mktemp("groups") / "source.parquet"
    pq.write_table(table, path)
    return str(path), table.to_pandas(), int(sizes.max())


def test_grouped_split_keeps_groups_whole_and_sizes_close_to_ratios(customers, tmp_path):
    source, frame, largest = customers
    results, parts = _split(source, tmp_path, "g", seed=5, group_column="customer")
    assert [r.row_count for r in results] == [len(p) for p in parts]
    assert sum(r.row_count for r in results) == len(frame)
    for ratio, result in zip(RATIOS, results):
        # Whole groups can miss a target by up to one group's rows, never by more.
        assert abs(result.row_count - ratio * len(frame)) < largest
    owners = [set(p["customer"]) for p in parts]
    assert all(not (owners[a] & owners[b]) for a in range(3) for b in range(a + 1, 3))
    assert set().union(*owners) == set(frame["customer"])
    assert sorted(i for p in parts for i in p["row_id"]) == list(range(len(frame)))

    _, same = _split(source, tmp_path, "h", seed=5, group_column="customer")
    assert [list(p["row_id"]) for p in same] == [list(p["row_id"]) for p in parts]
    _, other = _split(source, tmp_path, "i", seed=6, group_column="customer")
    assert [set(p["customer"]) for p in other] != owners


def test_grouped_split_without_shuffle_keeps_file_order(customers, tmp_path):
    source, frame, _ = customers
    _, parts = _split(source, tmp_path, "n", group_column="customer", shuffle=False)
    for part in parts:
        assert list(part["row_id"]) == sorted(part["row_id"])


def test_grouped_split_gives_every_part_a_group_even_when_one_part_is_owed_them_all(tmp_path):
    # Two groups of 10 rows split 90/10: by size both would go to the first part.
    source = str(tmp_path / "s.parquet")
    pq.write_table(pa.table({"g": ["a"] * 10 + ["b"] * 10}), source)
    results = split_table(source, [str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")], [0.9, 0.1],
                          group_column="g")
    assert [r.row_count for r in results] == [10, 10]


def test_time_split_cuts_contiguous_parts_oldest_first(tmp_path):
    start = dt.datetime(2024, 1, 1)
    days = [5, 1, 9, 3, 3, 7, 0, 8, 2, 6, 4, 3]  # three rows on day 3, in file rows 3, 4 and 11
    table = pa.table({"row": list(range(12)), "when": [start + dt.timedelta(days=d) for d in days]})
    source = str(tmp_path / "s.parquet")
    pq.write_table(table, source)
    dests = [str(tmp_path / f"t{i}.parquet") for i in range(3)]
    results = split_table(source, dests, [0.5, 0.25, 0.25], seed=9, time_column="when")  # shuffle ignored
    rows = [pq.read_table(d).column("row").to_pylist() for d in dests]
    assert rows == [[6, 1, 8, 3, 4, 11], [10, 0, 9], [5, 7, 2]]  # day order; ties keep file order
    assert [r.row_count for r in results] == [6, 3, 3]


@pytest.mark.parametrize("values", [[3.0, 1.0, None, 2.0], [3.0, 1.0, float("nan"), 2.0]])
def test_time_split_refuses_rows_without_a_time(tmp_path, values):
    source = str(tmp_path / "s.parquet")
    pq.write_table(pa.table({"t": pa.array(values, pa.float64())}), source)
    with pytest.raises(InvalidArgument) as err:
        split_table(source, [str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")], [0.5, 0.5], time_column="t")
    assert err.value.violations[0].field == "time_column"
    assert "empty at row 2" in err.value.message
    assert not (tmp_path / "a.parquet").exists()
