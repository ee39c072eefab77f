"""Reading pages and batches of JSON-safe records from stored Parquet files."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from engine.data.records import iter_arrow_batches, iter_record_batches, load_frame, read_records
from engine.errors import DataLoss, InvalidArgument

ROWS = 95


@pytest.fixture()
def grouped(tmp_path):
    """95 rows in row groups of 10, so pages cross group boundaries."""
    path = tmp_path / "g.parquet"
    pq.write_table(pa.table({"i": list(range(ROWS)), "sq": [i * i for i in range(ROWS)]}), path, row_group_size=10)
    assert pq.ParquetFile(path).metadata.num_row_groups == 10
    return str(path)


def test_read_records_returns_the_page_and_total(grouped):
    rows, total = read_records(grouped, 18, 5)
    assert total == ROWS
    assert rows == [{"i": i, "sq": i * i} for i in range(18, 23)]
    assert read_records(grouped, 90, 50)[0] == [{"i": i, "sq": i * i} for i in range(90, 95)]
    assert read_records(grouped, 95, 10) == ([], ROWS)
    assert read_records(grouped, 0, 0) == ([], ROWS)
    assert read_records(grouped, 3, 2, columns=["sq"])[0] == [{"sq": 9}, {"sq": 16}]


def test_read_records_reads_only_the_row_groups_it_needs(grouped, monkeypatch):
    requested = []
    original = pq.ParquetFile.read_row_groups

    def spy(self, row_groups, *args, **kwargs):
        requested.append(list(row_groups))
        return original(self, row_groups, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", spy)
    rows, _ = read_records(grouped, 18, 5)
    assert requested == [[1, 2]]  # rows 18..22 live in groups 1 (10-19) and 2 (20-29)
    assert [r["i"] for r in rows] == [18, 19, 20, 21, 22]


def test_values_come_back_json_safe(tmp_path):
    path = tmp_path / "v.parquet"
    stamp = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)
    table = pa.table(
        {
            "f": [float("nan"), 1.5, float("inf")],
            "t": pa.array([stamp, None, stamp], pa.timestamp("us", tz="UTC")),
            "b": pa.array([b"\x00\xff", b"hi", None], pa.binary()),
            "d": pa.array([dt.date(2024, 1, 2)] * 3, pa.date32()),
        }
    )
    pq.write_table(table, path)
    rows, _ = read_records(str(path), 0, 3)
    assert rows[0] == {"f": None, "t": "2024-05-06T07:08:09+00:00", "b": base64.b64encode(b"\x00\xff").decode(), "d": "2024-01-02"}
    assert rows[1]["f"] == 1.5 and rows[1]["t"] is None and rows[2]["f"] is None
    json.dumps(rows, allow_nan=False)


@pytest.mark.parametrize(("offset", "limit", "field"), [(-1, 10, "offset"), (0, -5, "limit")])
def test_negative_offset_or_limit_is_invalid(grouped, offset, limit, field):
    with pytest.raises(InvalidArgument) as err:
        read_records(grouped, offset, limit)
    assert err.value.violations[0].field == field


def test_unknown_columns_list_the_available_ones(grouped):
    with pytest.raises(InvalidArgument) as err:
        read_records(grouped, 0, 1, columns=["i", "cube"])
    assert err.value.violations[0].field == "columns"
    assert "'cube'" in err.value.message and "available columns: i, sq" in err.value.message
    with pytest.raises(InvalidArgument):
        load_frame(grouped, columns=["cube"])


def test_iter_record_batches_rebatches_across_row_groups(grouped):
    batches = list(iter_record_batches(grouped, 7, offset=13, columns=["i"]))
    assert [len(b) for b in batches] == [7] * 11 + [5]  # 82 rows from 13 to 94
    assert [r["i"] for b in batches for r in b] == list(range(13, ROWS))
    assert list(iter_record_batches(grouped, 7, offset=ROWS)) == []


def test_iter_record_batches_checks_arguments_before_iterating(grouped):
    with pytest.raises(InvalidArgument) as err:
        iter_record_batches(grouped, 0)  # raises at the call, not at the first next()
    assert err.value.violations[0].field == "batch_size"
    with pytest.raises(InvalidArgument) as err:
        iter_record_batches(grouped, 5, offset=-1)
    assert err.value.violations[0].field == "offset"


def test_load_frame_and_missing_file(grouped, tmp_path):
    frame = load_frame(grouped, columns=["sq"])
    assert list(frame.columns) == ["sq"] and len(frame) == ROWS and int(frame["sq"].iloc[9]) == 81
    with pytest.raises(DataLoss):
        read_records(str(tmp_path / "gone.parquet"), 0, 1)


def test_iter_arrow_batches_yields_self_contained_ipc_streams(tmp_path):
    path = tmp_path / "typed.parquet"
    stamp = dt.datetime(2024, 5, 6, tzinfo=dt.timezone.utc)
    table = pa.table(
        {
            "i": list(range(25)),
            "name": [None if i % 4 == 0 else f"n{i}" for i in range(25)],
            "x": [i / 2 for i in range(25)],
            "t": pa.array([stamp + dt.timedelta(hours=i) for i in range(25)], pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(table, path, row_group_size=6)  # batches straddle row groups
    batches = list(iter_arrow_batches(str(path), 10, offset=3))
    assert [first for first, _ in batches] == [3, 13, 23]
    read = [ipc.open_stream(data).read_all() for _, data in batches]
    assert [t.num_rows for t in read] == [10, 10, 2]
    assert all(t.schema == table.schema for t in read)
    assert pa.concat_tables(read).equals(table.slice(3))

    (first, data), = iter_arrow_batches(str(path), 100, offset=20, columns=["t", "i"])
    assert first == 20
    only = ipc.open_stream(data).read_all()
    assert only.column_names == ["t", "i"] and only.column("i").to_pylist() == [20, 21, 22, 23, 24]
    assert list(iter_arrow_batches(str(path), 5, offset=25)) == []


def test_iter_arrow_batches_reads_batch_by_batch_and_checks_arguments(grouped, monkeypatch):
    def whole_file(*args, **kwargs):
        raise AssertionError("read the whole file")

    monkeypatch.setattr(pq.ParquetFile, "read", whole_file)
    monkeypatch.setattr(pq, "read_table", whole_file)
    assert sum(ipc.open_stream(d).read_all().num_rows for _, d in iter_arrow_batches(grouped, 30)) == ROWS
    for kwargs, field in (({"batch_size": 0}, "batch_size"), ({"batch_size": 5, "offset": -1}, "offset"),
                          ({"batch_size": 5, "columns": ["cube"]}, "columns")):
        with pytest.raises(InvalidArgument) as err:
            iter_arrow_batches(grouped, **kwargs)  # raises at the call, not at the first next()
        assert err.value.violations[0].field == field
