"""Data sources: files, large CSV streaming, image and text folders, SQL databases, object stores."""

from __future__ import annotations

import os
import socket
import sqlite3
from pathlib import Path
from urllib.parse import quote_plus

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.data import ingest, sources, streaming
from engine.data.ingest import IngestLimits, ingest_file
from engine.data.schema import ColumnSchema, DataSchema
from engine.data.sources import check_query, load_source
from engine.errors import InvalidArgument
from engine.storage.files import sha256_file


# pyarrow parses a block of max_record_bytes at a time: small blocks make a small file stream in many batches.
SMALL_BLOCKS = IngestLimits(max_record_bytes=2048)


def _field(err: pytest.ExceptionInfo) -> str:
    return err.value.violations[0].field


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_file_source_reads_a_file_uri_through_ingest(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("a,b\n1,x\n2,y\n")
    result = load_source({"type": "file", "uri": path.as_uri(), "format": ""}, str(tmp_path / "out.parquet"))
    assert result.row_count == 2 and result.sha256 == sha256_file(tmp_path / "out.parquet")
    assert pq.read_table(result.path).to_pydict() == {"a": [1, 2], "b": ["x", "y"]}
    with pytest.raises(InvalidArgument) as err:
        load_source({"type": "ftp", "uri": "x"}, str(tmp_path / "o.parquet"))
    assert _field(err) == "config.data_source" and "file, sql, object_store" in err.value.message


# ---- Large CSV files -------------------------------------------------------------------------


def _tricky_csv(path: Path, rows: int = 3000) -> None:
    """Columns whose type only shows late in the file, so a first-block guess is wrong."""
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({
        "id": np.arange(rows),
        "score": np.round(rng.normal(size=rows), 3),
        "city": rng.choice(["Oslo", "Rome", "Lima", ""], rows),
        "active": rng.choice(["true", "false", ""], rows),
        "late_ints": [""] * (rows - 100) + [str(i) for i in range(100)],   # null, then int64
        "late_float": [str(i) for i in range(rows - 1)] + ["2.5"],          # int64, then float64
        "late_text": ["1"] * (rows - 1) + ["n/a?"],                          # int64, then string
        "when": pd.date_range("2021-01-01", periods=rows, freq="min").strftime("%Y-%m-%d %H:%M:%S"),
    })
    frame.loc[10, "score"] = np.nan
    frame.to_csv(path, index=False)


def _in_memory(path: Path, dest: Path, **kwargs):
    assert os.path.getsize(path) <= ingest.CSV_STREAM_THRESHOLD_BYTES
    return ingest_file(str(path), str(dest), **kwargs)


def test_large_csv_streams_to_the_same_rows_schema_and_statistics(tmp_path, monkeypatch):
    path = tmp_path / "big.csv"
    _tricky_csv(path)
    whole = _in_memory(path, tmp_path / "whole.parquet", label_column="city")
    monkeypatch.setattr(ingest, "CSV_STREAM_THRESHOLD_BYTES", 4096)
    monkeypatch.setattr(ingest, "_read", lambda *a, **k: pytest.fail("a large CSV was read whole"))
    streamed = ingest_file(str(path), str(tmp_path / "streamed.parquet"), label_column="city", limits=SMALL_BLOCKS)

    expected, actual = pq.read_table(whole.path), pq.read_table(streamed.path)
    assert actual.schema == expected.schema and actual.equals(expected)
    assert [str(t) for t in actual.schema.types] == [
        "int64", "double", "string", "bool", "int64", "double", "string", "timestamp[ms]"]  # Parquet has no seconds
    assert streamed.schema.to_dict() == whole.schema.to_dict()
    assert streamed.sha256 == sha256_file(streamed.path) and streamed.row_count == 3000
    assert streamed.statistics_sample_rows == 0  # fewer rows than the sample: all exact
    assert streamed.statistics.to_dict() == whole.statistics.to_dict()
    assert pq.ParquetFile(streamed.path).metadata.num_row_groups == pq.ParquetFile(whole.path).metadata.num_row_groups


def test_large_csv_statistics_past_the_sample_are_exact_where_promised(tmp_path, monkeypatch):
    path = tmp_path / "big.csv"
    _tricky_csv(path, rows=4000)
    whole = _in_memory(path, tmp_path / "whole.parquet", label_column="active")
    monkeypatch.setattr(ingest, "CSV_STREAM_THRESHOLD_BYTES", 4096)
    monkeypatch.setattr(streaming, "STATS_SAMPLE_ROWS", 500)
    monkeypatch.setattr(streaming, "EXACT_DISTINCT_LIMIT", 100)
    streamed = ingest_file(str(path), str(tmp_path / "streamed.parquet"), label_column="active")

    assert streamed.statistics_sample_rows == 500
    assert streamed.schema.to_dict() == whole.schema.to_dict()  # the schema never comes from the sample
    s, w = streamed.statistics, whole.statistics
    assert s.row_count == w.row_count == 4000
    assert s.label_distribution == w.label_distribution
    for name in ("id", "score", "late_float"):
        a, b = s.column(name), w.column(name)
        assert (a.null_count, a.min, a.max) == (b.null_count, b.min, b.max)
        assert (a.mean, a.std) == (pytest.approx(b.mean), pytest.approx(b.std))
        assert sum(a.histogram.counts) == sum(b.histogram.counts) and a.histogram.bin_edges == b.histogram.bin_edges
        spread = b.max - b.min
        for qa, qb in zip(a.quantiles, b.quantiles):
            assert abs(qa.value - qb.value) < 0.1 * spread  # a 500-row sample lands near the true quartiles
    city, ident = s.column("city"), s.column("id")
    assert (city.distinct_count, city.top_values) == (w.column("city").distinct_count, w.column("city").top_values)
    assert abs(ident.distinct_count - 4000) < 0.03 * 4000  # past the exact limit: HyperLogLog's estimate


def test_large_csv_schema_errors_count_rows_from_the_start_of_the_file(tmp_path, monkeypatch):
    path = tmp_path / "big.csv"
    _tricky_csv(path)
    declared = DataSchema(columns=[
        ColumnSchema("id", "int64", False), ColumnSchema("score", "float64", True),
        ColumnSchema("city", "string", True), ColumnSchema("active", "bool", True),
        ColumnSchema("late_ints", "int64", True), ColumnSchema("late_float", "float64", True),
        ColumnSchema("late_text", "int64", True), ColumnSchema("when", "timestamp", False),
    ])
    with pytest.raises(InvalidArgument) as whole:
        _in_memory(path, tmp_path / "whole.parquet", schema=declared)
    monkeypatch.setattr(ingest, "CSV_STREAM_THRESHOLD_BYTES", 4096)
    with pytest.raises(InvalidArgument) as streamed:
        ingest_file(str(path), str(tmp_path / "streamed.parquet"), schema=declared, limits=SMALL_BLOCKS)
    assert "row 2999" in whole.value.message
    assert streamed.value.message == whole.value.message
    assert not list(tmp_path.glob("streamed.parquet*")) and not list(tmp_path.glob(".streamed*"))


def test_large_csv_with_a_ragged_row_names_its_line(tmp_path, monkeypatch):
    path = tmp_path / "big.csv"
    path.write_text("a,b\n" + "1,2\n" * 3000 + "1,2,3\n")
    monkeypatch.setattr(ingest, "CSV_STREAM_THRESHOLD_BYTES", 4096)
    with pytest.raises(InvalidArgument) as err:
        ingest_file(str(path), str(tmp_path / "out.parquet"), limits=SMALL_BLOCKS)
    assert _field(err) == "config.source_uri" and "big.csv" in err.value.message
    assert not (tmp_path / "out.parquet").exists()


# ---- Image and text folders ------------------------------------------------------------------


def _png(path: Path, size: tuple[int, int], color: str) -> bytes:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path.read_bytes()


def test_image_folder_rows_carry_bytes_label_path_and_size(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "BATCH_BYTES", 1)  # one image per batch: the streamed path
    root = tmp_path / "images"
    cat = _png(root / "cat" / "1.png", (3, 2), "red")
    _png(root / "cat" / "2.PNG", (4, 4), "blue")
    _png(root / "dog" / "a.png", (5, 1), "green")
    (root / "dog" / "notes.md").write_text("not an image")
    result = load_source({"type": "file", "uri": str(root), "format": "image_folder"},
                         str(tmp_path / "out.parquet"), label_column="label")
    table = pq.read_table(result.path)
    assert table.column_names == ["image", "label", "path", "width", "height"]
    assert table.column("path").to_pylist() == ["cat/1.png", "cat/2.PNG", "dog/a.png"]
    assert table.column("label").to_pylist() == ["cat", "cat", "dog"]
    assert list(zip(table.column("width").to_pylist(), table.column("height").to_pylist())) == [(3, 2), (4, 4), (5, 1)]
    assert table.column("image")[0].as_py() == cat
    assert [(v.value, v.count) for v in result.statistics.label_distribution] == [("cat", 2), ("dog", 1)]
    assert result.statistics.column("image").top_values == []  # never the image bytes


def test_image_folder_refuses_broken_images_and_empty_folders(tmp_path):
    root = tmp_path / "images"
    _png(root / "cat" / "ok.png", (2, 2), "red")
    (root / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(InvalidArgument) as err:
        load_source({"type": "file", "uri": str(root), "format": "image_folder"}, str(tmp_path / "o.parquet"))
    assert _field(err) == "config.source_uri" and "cat/broken.png" in err.value.message
    assert not (tmp_path / "o.parquet").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidArgument) as err:
        load_source({"type": "file", "uri": str(tmp_path / "empty"), "format": "image_folder"},
                    str(tmp_path / "o.parquet"))
    assert "holds no images" in err.value.message


def test_text_folder_with_labels_and_single_file_with_one_document_per_line(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "BATCH_BYTES", 1)  # one document per batch
    root = tmp_path / "texts"
    (root / "pos").mkdir(parents=True)
    (root / "neg").mkdir()
    (root / "pos" / "a.txt").write_text("great film", encoding="utf-8")
    (root / "neg" / "b.txt").write_bytes(b"\xef\xbb\xbfdull \xc3\xa9t\xc3\xa9")  # BOM, then UTF-8
    result = load_source({"type": "file", "uri": str(root), "format": "text"}, str(tmp_path / "f.parquet"))
    assert pq.read_table(result.path).to_pydict() == {
        "text": ["dull été", "great film"], "label": ["neg", "pos"], "path": ["neg/b.txt", "pos/a.txt"]}

    single = tmp_path / "docs.txt"
    single.write_bytes(b"first doc\r\n\nsecond doc\nthird\n")
    result = load_source({"type": "file", "uri": single.as_uri(), "format": "text"}, str(tmp_path / "s.parquet"))
    assert pq.read_table(result.path).to_pydict() == {"text": ["first doc", "second doc", "third"]}


def test_text_that_is_not_utf8_is_refused_with_file_and_byte_offset(tmp_path):
    single = tmp_path / "docs.txt"
    single.write_bytes(b"fine\ncaf\xe9\n")
    with pytest.raises(InvalidArgument) as err:
        load_source({"type": "file", "uri": str(single), "format": "text"}, str(tmp_path / "s.parquet"))
    assert _field(err) == "config.source_uri"
    assert "docs.txt" in err.value.message and "byte offset 8" in err.value.message
    root = tmp_path / "texts"
    root.mkdir()
    (root / "x.txt").write_bytes(b"ab\xff")
    with pytest.raises(InvalidArgument) as err:
        load_source({"type": "file", "uri": str(root), "format": "text"}, str(tmp_path / "f.parquet"))
    assert "x.txt" in err.value.message and "byte offset 2" in err.value.message


# ---- SQL ---------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_db(tmp_path) -> Path:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE orders (id INTEGER, amount REAL, customer TEXT, note TEXT, paid BOOLEAN)")
        db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", [
            (i, i * 1.5, "ann" if i % 2 else "bob", None if i < 25 else f"n{i}", i % 3 == 0) for i in range(30)])
    db.close()
    return path


def test_sqlite_query_is_read_in_chunks_into_parquet(tmp_path, sqlite_db, monkeypatch):
    monkeypatch.setattr(sources, "SQL_CHUNK_ROWS", 4)  # `note` is NULL in the first chunks
    source = {"type": "sql", "uri": f"sqlite:///{sqlite_db}", "format": "",
              "query": "SELECT id, amount, customer, note FROM orders WHERE id >= 2 AND customer LIKE '%' ORDER BY id;",
              "options": {}, "credentials": {}}
    result = load_source(source, str(tmp_path / "out.parquet"), label_column="customer")
    table = pq.read_table(result.path)
    assert table.num_rows == result.row_count == 28
    assert [str(t) for t in table.schema.types] == ["int64", "double", "string", "string"]
    assert table.column("note").to_pylist()[-6:] == [None, "n25", "n26", "n27", "n28", "n29"]
    assert [(v.value, v.count) for v in result.statistics.label_distribution] == [("ann", 14), ("bob", 14)]
    with sqlite3.connect(sqlite_db) as db:  # read only: nothing created next to the data
        assert db.execute("SELECT count(*) FROM sqlite_master").fetchone() == (1,)


def test_sqlite_columns_typed_per_value_get_one_type_or_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "loose.db"
    with sqlite3.connect(path) as db:  # SQLite keeps each value's own type, whatever the column says
        db.execute("CREATE TABLE t (n, mixed)")
        db.executemany("INSERT INTO t VALUES (?, ?)", [(1, 1), (2, "two"), (3, 3.5), (4.5, 4)])
    db.close()
    monkeypatch.setattr(sources, "SQL_CHUNK_ROWS", 2)  # every column has a value in the first chunk: types fixed
    source = {"type": "sql", "uri": f"sqlite:///{path}", "query": "SELECT mixed FROM t ORDER BY rowid"}
    result = load_source(source, str(tmp_path / "ok.parquet"))
    assert pq.read_table(result.path).to_pydict() == {"mixed": ["1", "two", "3.5", "4"]}
    with pytest.raises(InvalidArgument) as err:
        load_source({**source, "query": "SELECT n FROM t ORDER BY rowid"}, str(tmp_path / "bad.parquet"))
    assert _field(err) == "config.query"
    assert "'n' holds int64 values before row 2 and float64 values from there on" in err.value.message
    assert not (tmp_path / "bad.parquet").exists()


def test_sql_errors_name_the_query_or_the_data_source(tmp_path, sqlite_db):
    base = {"type": "sql", "uri": f"sqlite:///{sqlite_db}"}
    with pytest.raises(InvalidArgument) as err:
        load_source({**base, "query": "SELECT nope FROM orders"}, str(tmp_path / "o.parquet"))
    assert _field(err) == "config.query" and "nope" in err.value.message
    with pytest.raises(InvalidArgument) as err:
        load_source({**base, "query": "SELECT * FROM orders WHERE id < 0"}, str(tmp_path / "o.parquet"))
    assert _field(err) == "config.query" and "no data rows" in err.value.message
    with pytest.raises(InvalidArgument) as err:
        load_source({**base, "uri": f"sqlite:///{tmp_path / 'missing.db'}", "query": "SELECT 1"},
                    str(tmp_path / "o.parquet"))
    assert _field(err) == "config.data_source" and not (tmp_path / "missing.db").exists()
    assert not (tmp_path / "o.parquet").exists()


@pytest.mark.parametrize("query", [
    "DELETE FROM orders",
    "SELECT 1; DROP TABLE orders",
    "select * from orders;\n-- harmless\n; delete from orders",
    "WITH gone AS (DELETE FROM orders RETURNING *) SELECT * FROM gone",
    "SELECT * INTO copy_of_orders FROM orders",
    "PRAGMA table_info(orders)",
    "   ",
])
def test_queries_that_are_not_a_single_select_are_refused(tmp_path, sqlite_db, query):
    with pytest.raises(InvalidArgument) as err:
        load_source({"type": "sql", "uri": f"sqlite:///{sqlite_db}", "query": query}, str(tmp_path / "o.parquet"),
                    field_prefix="metadata")
    assert _field(err) == "metadata.query"
    with sqlite3.connect(sqlite_db) as db:
        assert db.execute("SELECT count(*) FROM orders").fetchone() == (30,)


def test_words_inside_strings_comments_and_quotes_do_not_count():
    check_query("""/* report */ WITH t AS (SELECT 'drop table; delete' AS "update") SELECT * FROM t; -- into""", "q")


def test_credentials_never_reach_an_error_message(tmp_path):
    port = _free_port()  # nothing listens there
    secret = "s3cr3t/p@ss word"
    for uri, credentials in [
        (f"postgresql+psycopg://alice:{quote_plus(secret)}@127.0.0.1:{port}/db", {}),
        (f"postgresql+psycopg://127.0.0.1:{port}/db", {"username": "alice-the-user", "password": secret}),
    ]:
        with pytest.raises(InvalidArgument) as err:
            load_source({"type": "sql", "uri": uri, "query": "SELECT 1", "credentials": credentials},
                        str(tmp_path / "o.parquet"))
        text = f"{err.value.message} {err.value.violations}"
        assert _field(err) == "config.data_source" and str(port) in text
        assert secret not in text and quote_plus(secret) not in text and "alice" not in text


def test_postgresql_query(tmp_path, postgres_url):
    # postgres_url (tests/conftest.py): skipped without FORGE_TEST_POSTGRES_URL, failed in CI.
    import sqlalchemy as sa

    full = sa.engine.make_url(postgres_url)
    engine = sa.create_engine(full, poolclass=sa.pool.NullPool)
    table = f"forge_sources_{os.getpid()}"
    with engine.begin() as db:
        db.exec_driver_sql(f"CREATE TABLE {table} (id int, price numeric(8, 2), name text, at timestamptz, "
                           "tag uuid, doc jsonb)")
        db.exec_driver_sql(f"CREATE SEQUENCE {table}_seq")
        db.exec_driver_sql(f"INSERT INTO {table} SELECT i, i * 1.25, CASE WHEN mod(i, 2) = 0 THEN 'even' END, "
                           "timestamptz '2024-01-01 00:00:00+00' + i * interval '1 hour', gen_random_uuid(), "
                           "jsonb_build_object('i', i) FROM generate_series(1, 50) AS i")
    try:
        # The credentials travel separately, as a registered data source keeps them.
        source = {"type": "sql", "uri": full._replace(username=None, password=None).render_as_string(hide_password=False),
                  "query": f"SELECT * FROM {table} WHERE name LIKE 'ev%' OR name IS NULL ORDER BY id",
                  "credentials": {k: v for k, v in (("username", full.username), ("password", full.password)) if v}}
        result = load_source(source, str(tmp_path / "pg.parquet"))
        stored = pq.read_table(result.path)
        assert stored.num_rows == 50
        assert [str(t) for t in stored.schema.types] == [
            "int64", "double", "string", "timestamp[us, tz=UTC]", "string", "string"]
        assert stored.column("price").to_pylist()[:2] == [1.25, 2.5]
        assert stored.column("doc").to_pylist()[0] == '{"i": 1}'
        # Read only: a function that writes fails even though the query is a SELECT.
        with pytest.raises(InvalidArgument) as err:
            load_source({**source, "query": f"SELECT nextval('{table}_seq')"}, str(tmp_path / "w.parquet"))
        assert _field(err) == "config.query" and "read-only" in err.value.message
    finally:
        with engine.begin() as db:
            db.exec_driver_sql(f"DROP TABLE {table}")
            db.exec_driver_sql(f"DROP SEQUENCE {table}_seq")
        engine.dispose()


# ---- Object stores ---------------------------------------------------------------------------


def test_object_store_csv_and_parquet_from_s3(tmp_path, s3_endpoint):
    # s3_endpoint (tests/conftest.py): a moto S3 server on a free loopback port.
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="x", aws_secret_access_key="y",
                          region_name="us-east-1")
    client.create_bucket(Bucket="forge-data")
    client.put_object(Bucket="forge-data", Key="in/train.csv", Body=b"x,y\n1,a\n2,b\n3,\n")
    buffer = pa.BufferOutputStream()
    pq.write_table(pa.table({"x": [1.5, 2.5], "y": ["p", "q"]}), buffer)
    client.put_object(Bucket="forge-data", Key="in/train.parquet", Body=buffer.getvalue().to_pybytes())
    base = {"type": "object_store", "format": "", "options": {"endpoint_url": s3_endpoint},
            "credentials": {"key": "x", "secret": "y"}}

    csv = load_source({**base, "uri": "s3://forge-data/in/train.csv"}, str(tmp_path / "csv.parquet"))
    assert pq.read_table(csv.path).to_pydict() == {"x": [1, 2, 3], "y": ["a", "b", None]}
    parquet = load_source({**base, "uri": "s3://forge-data/in/train.parquet", "format": "parquet"},
                          str(tmp_path / "pq.parquet"))
    assert pq.read_table(parquet.path).to_pydict() == {"x": [1.5, 2.5], "y": ["p", "q"]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["csv.parquet", "pq.parquet"]  # downloads removed

    with pytest.raises(InvalidArgument) as err:
        load_source({**base, "uri": "s3://forge-data/in/missing.csv"}, str(tmp_path / "m.parquet"))
    assert _field(err) == "config.source_uri" and "no such object" in err.value.message


def test_object_store_format_and_scheme_errors(tmp_path):
    with pytest.raises(InvalidArgument) as err:
        load_source({"type": "object_store", "uri": "memory://bucket/data.bin"}, str(tmp_path / "o.parquet"))
    assert _field(err) == "config.format"
    with pytest.raises(InvalidArgument) as err:
        load_source({"type": "object_store", "uri": "nosuchscheme://b/k.csv"}, str(tmp_path / "o.parquet"))
    assert _field(err) == "config.source_uri" and "nosuchscheme" in err.value.message
