"""Ingesting CSV / Parquet / JSONL files into stored Parquet datasets."""

from __future__ import annotations

import gzip
import json
import os

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from engine.data.ingest import (
    IngestLimits,
    IngestResult,
    _first_record_fields,
    _read_error,
    detect_format,
    ingest_file,
    write_table,
)
from engine.data.schema import ColumnSchema, DataSchema
from engine.errors import InvalidArgument
from engine.storage.files import sha256_file

CSV = "id,score,city,active\n1,0.5,Oslo,true\n2,,Rome,false\n3,2.5,Oslo,\n4,1.0,,true\n"


def _write(path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("data.csv", "csv"), ("DATA.CSV.GZ", "csv"), ("a.parquet", "parquet"), ("a.pq", "parquet"),
        ("a.jsonl", "jsonl"), ("a.ndjson", "jsonl"), ("file:///x/y/a.jsonl", "jsonl"),
    ],
)
def test_detect_format_from_extension(name, expected):
    assert detect_format(name) == expected


def test_explicit_format_wins_and_unknown_ones_are_refused():
    assert detect_format("upload.bin", "PARQUET") == "parquet"
    with pytest.raises(InvalidArgument) as err:
        detect_format("a.csv", "xlsx")
    assert err.value.violations[0].field == "config.format"
    assert "csv, parquet, jsonl" in err.value.message
    with pytest.raises(InvalidArgument) as err:
        detect_format("data.txt")
    assert err.value.violations[0].field == "config.format" and ".csv" in err.value.message


def test_ingest_csv_writes_parquet_with_checksum_schema_and_statistics(tmp_path):
    source = _write(tmp_path / "in.csv", CSV)
    dest = tmp_path / "store" / "ds.parquet"
    result = ingest_file(source, str(dest), label_column="city")

    assert result.path == str(dest)
    assert result.row_count == 4
    assert result.size_bytes == os.path.getsize(dest)
    assert result.sha256 == sha256_file(dest)
    assert [(c.name, c.data_type, c.nullable) for c in result.schema.columns] == [
        ("id", "int64", False), ("score", "float64", True), ("city", "string", True), ("active", "bool", True),
    ]
    stored = pq.read_table(dest)
    assert stored.column("score").to_pylist() == [0.5, None, 2.5, 1.0]
    assert stored.column("city").to_pylist() == ["Oslo", "Rome", "Oslo", None]  # empty cell -> null
    assert result.statistics.column("score").mean == pytest.approx(4.0 / 3)
    assert [(v.value, v.count) for v in result.statistics.label_distribution] == [("Oslo", 2), ("Rome", 1)]
    assert [p.name for p in dest.parent.iterdir()] == ["ds.parquet"]  # no temporary file left behind


def test_result_round_trips_through_json(tmp_path):
    result = ingest_file(_write(tmp_path / "in.csv", CSV), str(tmp_path / "o.parquet"))
    assert IngestResult.from_dict(json.loads(json.dumps(result.to_dict(), allow_nan=False))) == result


def test_ingest_accepts_file_uri_gzip_jsonl_and_parquet(tmp_path):
    gz = tmp_path / "in.csv.gz"
    gz.write_bytes(gzip.compress(CSV.encode()))
    from_gz = ingest_file(f"file://{gz}", str(tmp_path / "a.parquet"))
    assert from_gz.row_count == 4

    lines = "\n".join(json.dumps({"id": i, "name": f"n{i}", "v": i / 2}) for i in range(5)) + "\n"
    from_jsonl = ingest_file(_write(tmp_path / "in.jsonl", lines), str(tmp_path / "b.parquet"))
    assert from_jsonl.row_count == 5
    assert [c.data_type for c in from_jsonl.schema.columns] == ["int64", "string", "float64"]

    frame = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]}, index=[10, 20, 30])
    frame.to_parquet(tmp_path / "in.parquet")  # pandas stores the non-default index as a column
    from_parquet = ingest_file(str(tmp_path / "in.parquet"), str(tmp_path / "c.parquet"))
    assert pq.read_table(tmp_path / "c.parquet").to_pandas().index.tolist() == [0, 1, 2]
    assert from_parquet.row_count == 3


def test_missing_file_names_the_source_field(tmp_path):
    with pytest.raises(InvalidArgument) as err:
        ingest_file(str(tmp_path / "nope.csv"), str(tmp_path / "o.parquet"), field_prefix="dataset")
    assert err.value.violations[0].field == "dataset.source_uri"
    assert "no such file" in err.value.message
    with pytest.raises(InvalidArgument, match="scheme 's3' is not supported"):
        ingest_file("s3://bucket/a.csv", str(tmp_path / "o.parquet"))


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("bad.jsonl", "{\"a\": 1}\nnot json at all\n", "cannot read bad.jsonl as jsonl"),
        ("bad.parquet", "this is not parquet", "cannot read bad.parquet as parquet"),
        ("ragged.csv", "a,b\n1,2\n3,4,5\n", "cannot read ragged.csv as csv: line 3 has 3 fields"),
        ("header.csv", "a,b\n", "has no data rows below its header line"),
        ("nested.jsonl", "{\"a\": {\"b\": 1}}\n", "'a' has type struct"),
    ],
)
def test_unreadable_or_empty_files_are_invalid_and_nothing_is_written(tmp_path, name, content, needle):
    dest = tmp_path / "out" / "o.parquet"
    with pytest.raises(InvalidArgument) as err:
        ingest_file(_write(tmp_path / name, content), str(dest))
    assert err.value.violations[0].field == "config.source_uri"
    assert needle in err.value.message
    assert not dest.exists()


def test_missing_label_column_lists_the_available_ones(tmp_path):
    with pytest.raises(InvalidArgument) as err:
        ingest_file(_write(tmp_path / "in.csv", CSV), str(tmp_path / "o.parquet"), label_column="target")
    assert err.value.violations[0].field == "config.label_column"
    assert "available columns: id, score, city, active" in err.value.message


def test_declared_schema_is_enforced_and_returned_unchanged(tmp_path):
    schema = DataSchema(
        columns=[
            ColumnSchema("id", "string", False, description="row id"),
            ColumnSchema("score", "float64", True),
            ColumnSchema("city", "string", True, True, ["Oslo", "Rome", "Paris"]),
            ColumnSchema("active", "bool", True),
        ]
    )
    result = ingest_file(_write(tmp_path / "in.csv", CSV), str(tmp_path / "o.parquet"), schema=schema)
    assert result.schema == schema
    assert pq.read_table(tmp_path / "o.parquet").column("id").to_pylist() == ["1", "2", "3", "4"]

    schema.columns[1] = ColumnSchema("score", "float64", False)
    with pytest.raises(InvalidArgument) as err:
        ingest_file(_write(tmp_path / "in.csv", CSV), str(tmp_path / "p.parquet"), schema=schema)
    assert err.value.violations[0].field == "config.schema.columns[1]"
    assert "row 1 is empty" in err.value.message


def test_write_table_stores_any_arrow_table(tmp_path):
    table = pa.table({"x": pa.array([3, 1], pa.int16()), "y": ["a", "b"]})
    result = write_table(table, str(tmp_path / "t.parquet"), label_column="y")
    assert result.row_count == 2 and result.sha256 == sha256_file(tmp_path / "t.parquet")
    assert pq.read_schema(tmp_path / "t.parquet").field("x").type == pa.int64()  # canonical type
    assert [(v.value, v.count) for v in result.statistics.label_distribution] == [("a", 1), ("b", 1)]


def _refused(tmp_path, name: str, content: bytes, **kwargs) -> str:
    """The message of the InvalidArgument ingesting `content` raises, after checking nothing was written."""
    source = tmp_path / name
    source.write_bytes(content)
    out = tmp_path / "out"
    with pytest.raises(InvalidArgument) as err:
        ingest_file(str(source), str(out / "o.parquet"), **kwargs)
    expected = kwargs.get("source_field") or f"{kwargs.get('field_prefix', 'config')}.source_uri"
    assert err.value.violations[0].field == expected
    assert not out.exists() or list(out.iterdir()) == []  # not even a temporary file
    return err.value.message


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("empty.csv", b"", "empty.csv is empty (0 bytes); upload a file with a header line and at least one data row"),
        ("empty.jsonl", b"", "empty.jsonl is empty (0 bytes)"),
        ("empty.parquet", b"", "empty.parquet is empty (0 bytes)"),
        ("blank.csv.gz", gzip.compress(b"", mtime=0), "blank.csv.gz holds no data"),
        ("header.csv", b"a,b\n\n", "header.csv has no data rows below its header line"),
        ("blank.jsonl", b"\n\n", "blank.jsonl has no data rows"),
    ],
)
def test_files_without_data_rows_are_refused(tmp_path, name, content, needle):
    assert needle in _refused(tmp_path, name, content)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"a,b\n1,2\n3,4,5\n", "line 3 has 3 fields but the header (line 1) has 2"),
        (b"a,b\n1,2\n\n3\n", "line 4 has 1 field but the header (line 1) has 2"),  # blank line 3 still counts
        # Quoted fields span lines 2-3 and 4-5: the bad row is the one that starts on line 4.
        (b'a,b\n1,"two\nlines"\n3,"x\ny",5\n', "line 4 has 3 fields"),
    ],
)
def test_ragged_csv_rows_name_the_line_and_field_counts(tmp_path, content, needle):
    message = _refused(tmp_path, "r.csv", content)
    assert needle in message and "put values that contain a comma in double quotes" in message
    assert needle in _refused(tmp_path, "r.csv.gz", gzip.compress(content))  # found in compressed files too


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("cell.csv", b"a,b\n1,ok\n2,caf\xe9\n", "line 3, column 'b' has byte 0xE9, which is not UTF-8"),
        ("head.csv", b"a,caf\xe9\n1,2\n", "line 1, column 2 has byte 0xE9"),
        ("wide.csv", "a,b\n1,2\n".encode("utf-16"), "it is UTF-16 encoded"),
        ("cell.jsonl", b'{"a": "x"}\n{"a": "caf\xe9"}\n', "line 2 (byte offset 21) has byte 0xE9"),
    ],
)
def test_bytes_that_are_not_utf8_name_where_they_are_and_the_fix(tmp_path, name, content, needle):
    message = _refused(tmp_path, name, content)
    assert needle in message and "re-save the file with UTF-8 encoding" in message


def test_duplicate_column_names_are_refused(tmp_path):
    message = _refused(tmp_path, "d.csv", b"id,x,id\n1,2,3\n", field_prefix="dataset")
    assert "columns 1 and 3 are both named 'id' in the header line; rename one" in message
    dup = _refused(tmp_path, "d.jsonl", b'{"a": 1}\n{"a": 2, "a": 3}\n', source_field="upload.data")
    assert "line 2: key 'a' appears twice" in dup


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b'{"a": 1}\nnot json\n', "line 2 is not valid JSON (Expecting value at character 1)"),
        (b'{"a": 1}\n\n{"a": "x"}\n', "line 3, column 'a': a string where line 1 has a number"),
        (b'{"a": {"b": 1}}\n{"a": {"b": true}}\n', "line 2, column 'a.b': a boolean where line 1 has a number"),
        (b'{"a": 1}\n[1, 2]\n', "line 2 is a JSON array, not an object"),
    ],
)
def test_malformed_jsonl_names_the_file_line(tmp_path, content, needle):
    assert needle in _refused(tmp_path, "m.jsonl", content)


def test_late_csv_type_errors_name_the_line_and_column(tmp_path):
    # Reading in small blocks infers column types from the first block, as a streaming read
    # of a large file does; a value that does not fit then fails without a line number.
    path = tmp_path / "late.csv"
    path.write_text("id,n\n1,10\n2,20\n3,oops\n")
    reader = pa_csv.open_csv(path, read_options=pa_csv.ReadOptions(block_size=10))
    with pytest.raises(pa.ArrowInvalid) as raw:
        reader.read_all()
    error = _read_error(raw.value, str(path), "csv", "config.source_uri")
    assert error.violations[0].field == "config.source_uri"
    assert "line 4, column 'n': 'oops' is not a valid int64" in error.message


# ---- Limits checked before parsing -----------------------------------------------------------


@pytest.mark.parametrize("header", [
    b"a,b,c\n1,2,3\n", b"\n\na,b,c\r\n1,2,3\r\n", b'"a,1",b,"c""2"\n1,2,3\n', b'"line\nbreak",b,c\n1,2,3\n',
    b'a,"b\r\n",c\n1,2,3\n',
])
def test_the_header_prescan_counts_columns_as_pyarrow_does(tmp_path, header):
    path = tmp_path / "h.csv"
    path.write_bytes(header)
    assert _first_record_fields(header) == (pa_csv.read_csv(path).num_columns, True)
    cut = header[:header.rindex(b",", 0, header.index(b"1,2,3"))]  # the header without its last column or end
    assert _first_record_fields(cut) == (2, False)


def test_too_many_columns_are_refused_before_parsing_csv_and_parquet(tmp_path):
    limits = IngestLimits(max_columns=3)
    assert ingest_file(_write(tmp_path / "ok.csv", '"x,y",b,c\n1,2,3\n'), str(tmp_path / "ok.parquet"),
                       limits=limits).row_count == 1  # the quoted comma is no column
    message = _refused(tmp_path, "wide.csv", b"a,b,c,d\n1,2,3,4\n", limits=limits)
    assert message == ("config.source_uri: wide.csv has 4 columns, more than the server's limit of 3 "
                       "(--max-columns); keep the columns the model needs, or split the file")
    assert "has 4 columns" in _refused(tmp_path, "wide.csv.gz", gzip.compress(b"a,b,c,d\n1,2,3,4\n"), limits=limits)
    wide = tmp_path / "wide.parquet"
    pq.write_table(pa.table({c: [1] for c in "abcd"}), wide)
    assert "has 4 columns" in _refused(tmp_path, "w.parquet", wide.read_bytes(), limits=limits)


def test_a_record_longer_than_the_limit_is_refused_naming_it(tmp_path):
    limits = IngestLimits(max_record_bytes=4096)
    long_value = "x" * 10_000
    for name, content, record in (("long.csv", f"a,b\n1,{long_value}\n2,y\n", "a record (a line"),
                                  ("long.jsonl", f'{{"a": "{long_value}"}}\n', "a line is longer")):
        message = _refused(tmp_path, name, content.encode(), limits=limits)
        assert record in message and "longer than 4096 bytes" in message and "--max-record-bytes" in message
    message = _refused(tmp_path, "head.csv", ("h" * 5000 + "\n1\n").encode(), limits=limits)
    assert "the header line is longer than 4096 bytes" in message
    fits = "a,b\n" + "".join(f"{i},{'y' * 3000}\n" for i in range(20))  # many blocks, each record fits
    assert ingest_file(_write(tmp_path / "fits.csv", fits), str(tmp_path / "fits.parquet"),
                       limits=limits).row_count == 20
    # Longer than pyarrow's usual 1 MiB block, within the default limit: read again in longer blocks.
    text = "z" * (3 << 19)
    for name, content in (("cell.csv", f"a,b\n1,{text}\n2,y\n"), ("cell.jsonl", f'{{"b": "{text}"}}\n{{"b": "y"}}\n')):
        result = ingest_file(_write(tmp_path / name, content), str(tmp_path / f"{name}.parquet"))
        assert pq.read_table(result.path)["b"].to_pylist() == [text, "y"]


def test_compressed_files_are_refused_once_they_expand_past_the_limit(tmp_path):
    rows = b"a,b\n" + b"1,2\n" * 5000  # 20 kB of text in a few hundred compressed bytes
    limits = IngestLimits(max_expanded_bytes=10_000)
    for name, content in (("bomb.csv.gz", gzip.compress(rows)),
                          ("bomb.jsonl.gz", gzip.compress(b'{"a": 1}\n' * 5000))):
        message = _refused(tmp_path, name, content, fmt="jsonl" if "jsonl" in name else "", limits=limits)
        assert f"{name} expands to more than 10000 bytes when decompressed" in message
        assert "--max-expanded-bytes" in message
    (tmp_path / "fine.csv.gz").write_bytes(gzip.compress(rows))
    result = ingest_file(str(tmp_path / "fine.csv.gz"), str(tmp_path / "fine.parquet"),
                         limits=IngestLimits(max_expanded_bytes=len(rows)))
    assert result.row_count == 5000


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="max_columns must be at least 1"):
        IngestLimits(max_columns=0)
