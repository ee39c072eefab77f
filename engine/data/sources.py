"""Loading a dataset from a data source: local files and folders, SQL queries, object stores.

`load_source` takes the DataSource message as a dict of its snake_case fields, with enums
as lower-case names:

    {"type": "file" | "sql" | "object_store",
     "uri": str,          # file: a path or file:// URI (a folder for image_folder / text)
                          # sql: a SQLAlchemy URL; object_store: an fsspec URI (s3://, gs://, memory://)
     "format": "csv" | "parquet" | "jsonl" | "image_folder" | "text" | "",  # "": from the extension
     "query": str,        # sql: one SELECT (or WITH ... SELECT) statement
     "options": {str: str},      # object_store: fsspec storage options, e.g. {"endpoint_url": ...}
     "credentials": {str: str}}  # sql: {"username", "password"}; object_store: {"key", "secret"} or {"token"}

and writes a Parquet dataset at `dest`, returning its IngestResult. Credentials are secrets:
they go into the connection and nowhere else, and every error message is scrubbed of them.

Error fields (InvalidArgument), with `p` the field_prefix: `p.source_uri` for the place the
data is (missing file, folder or object, unreadable content), `p.format`, `p.query` for a
refused or failing query, `p.data_source` for a database that cannot be reached (bad URL,
missing driver, refused connection or login) and for an unknown source type, plus the
`p.label_column` / `p.schema.columns[i]` errors of `ingest.write_table`.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pyarrow as pa

from engine.data.ingest import IngestLimits, IngestResult, _field, detect_format, ingest_file
from engine.data.locations import check_object_uri, inside, local_path_of
from engine.data.schema import DataSchema, canonical_table, data_type_of
from engine.data.streaming import write_batches
from engine.errors import InvalidArgument

SOURCE_TYPES = ("file", "sql", "object_store")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
# Folder sources are written in batches of about this many bytes of file content.
BATCH_BYTES = 32 * 1024 * 1024
# Rows fetched from a database per round trip and written per batch.
SQL_CHUNK_ROWS = 10_000
# A column that is NULL in every row fetched so far has no type yet; batches are held back
# (up to this many rows) until every column has shown a value, so the stored type is real.
SQL_TYPE_WAIT_ROWS = 100_000


def load_source(
    source: dict[str, Any],
    dest: str,
    *,
    field_prefix: str = "config",
    label_column: str = "",
    schema: DataSchema | None = None,
    limits: IngestLimits | None = None,
) -> IngestResult:
    """Read `source` (see the module docstring for its shape) into a Parquet dataset at `dest`.
    Whether the server may read it at all is `locations.check_source`'s question, asked first."""
    kind = (source.get("type") or "").strip().lower()
    fmt = (source.get("format") or "").strip().lower()
    uri = source.get("uri") or ""
    common = {"label_column": label_column, "schema": schema, "field_prefix": field_prefix}
    if kind == "file":
        if fmt == "image_folder":
            return _load_images(_existing_path(uri, _field(field_prefix, "source_uri")), dest, **common)
        if fmt == "text":
            return _load_text(_existing_path(uri, _field(field_prefix, "source_uri")), dest, **common)
        return ingest_file(uri, dest, fmt=fmt, limits=limits, **common)
    if kind == "sql":
        return _load_sql(uri, source.get("query") or "", source.get("credentials") or {}, dest, **common)
    if kind == "object_store":
        return _load_object(uri, fmt, source.get("options") or {}, source.get("credentials") or {}, dest,
                            limits=limits, **common)
    raise InvalidArgument.field(
        _field(field_prefix, "data_source"),
        f"source type {source.get('type')!r} is not supported; use one of: {', '.join(SOURCE_TYPES)}",
    )


# ---- Folders of images and of text files -----------------------------------------------


def _existing_path(uri: str, field: str) -> Path:
    """The local file or folder behind a path or file:// URI, which must exist."""
    path = local_path_of(uri, field)
    if not os.path.exists(path):
        raise InvalidArgument.field(field, f"no such file or folder: {path}")
    return Path(path)


def _files(root: Path, suffixes: tuple[str, ...], field: str) -> list[Path]:
    """Files under `root` with one of `suffixes` (any case), hidden ones skipped, in path order.

    A symlink that leads out of the folder is refused: the folder passed the server's
    location checks, the places its links point to did not."""
    found = []
    for path in root.rglob("*"):
        relative = path.relative_to(root).parts
        if path.suffix.lower() in suffixes and path.is_file() and not any(p.startswith(".") for p in relative):
            if not inside(path, root):
                raise InvalidArgument.field(field, f"{path.relative_to(root).as_posix()} is a link to a file outside "
                                                   f"{root}; copy the file into the folder instead")
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _label_of(relative: str) -> str | None:
    """The top-level sub-folder a file is in (its class), or None for a file at the root."""
    return relative.split("/", 1)[0] if "/" in relative else None


def _image_size(data: bytes, name: str, field: str) -> tuple[int, int]:
    from PIL import Image  # imported here: only image folders need Pillow

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # decode fully: a truncated file opens fine and fails only here
            return image.size
    except Exception as exc:  # noqa: BLE001 - Pillow signals bad files with many exception types
        raise InvalidArgument.field(
            field, f"image {name} cannot be read ({type(exc).__name__}: {exc}); replace or remove the file"
        ) from None


_IMAGE_SCHEMA = pa.schema([("image", pa.binary()), ("label", pa.string()), ("path", pa.string()),
                           ("width", pa.int64()), ("height", pa.int64())])


def _load_images(root: Path, dest: str, *, label_column: str, schema: DataSchema | None,
                 field_prefix: str) -> IngestResult:
    """One row per image: its bytes, label (sub-folder name), relative path, width and height."""
    field = _field(field_prefix, "source_uri")
    if not root.is_dir():
        raise InvalidArgument.field(field, f"{root} is not a folder; an image_folder source is a folder with one "
                                           "sub-folder of images per label")
    files = _files(root, IMAGE_EXTENSIONS, field)
    if not files:
        raise InvalidArgument.field(
            field, f"{root} holds no images ({', '.join(IMAGE_EXTENSIONS)}); put them in one sub-folder per label"
        )

    def batches() -> Iterator[pa.Table]:
        rows: dict[str, list] = {name: [] for name in _IMAGE_SCHEMA.names}
        held = 0
        for path in files:
            relative = path.relative_to(root).as_posix()
            data = path.read_bytes()
            width, height = _image_size(data, relative, field)
            for name, value in zip(_IMAGE_SCHEMA.names, (data, _label_of(relative), relative, width, height)):
                rows[name].append(value)
            held += len(data)
            if held >= BATCH_BYTES:
                yield pa.table(rows, schema=_IMAGE_SCHEMA)
                rows, held = {name: [] for name in _IMAGE_SCHEMA.names}, 0
        if rows["path"]:
            yield pa.table(rows, schema=_IMAGE_SCHEMA)

    return write_batches(batches(), dest, label_column=label_column, schema=schema, field_prefix=field_prefix,
                         source_name=str(root))


def _decode(data: bytes, name: str, start: int, field: str) -> str:
    """`data` as UTF-8, or an error naming the file and the offset of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArgument.field(
            field,
            f"{name} is not valid UTF-8: byte 0x{data[exc.start]:02X} at byte offset {start + exc.start} cannot be "
            "decoded; save the file as UTF-8",
        ) from None


_BOM = b"\xef\xbb\xbf"


def _load_text(path: Path, dest: str, *, label_column: str, schema: DataSchema | None,
               field_prefix: str) -> IngestResult:
    """A folder of .txt files (one row per file; sub-folder names as labels) or one file (a row per line)."""
    field = _field(field_prefix, "source_uri")
    if path.is_file():
        return write_batches(_text_lines(path, field), dest, label_column=label_column, schema=schema,
                             field_prefix=field_prefix, source_name=path.name)
    files = _files(path, (".txt",), field)
    if not files:
        raise InvalidArgument.field(field, f"{path} holds no .txt files; put one document per file, in one "
                                           "sub-folder per label if the documents have labels")
    relatives = [f.relative_to(path).as_posix() for f in files]
    labelled = any(_label_of(r) is not None for r in relatives)
    names = ["text", "label", "path"] if labelled else ["text", "path"]
    table_schema = pa.schema([(name, pa.string()) for name in names])

    def batches() -> Iterator[pa.Table]:
        rows: dict[str, list] = {name: [] for name in names}
        held = 0
        for file, relative in zip(files, relatives):
            data = file.read_bytes()
            skip = len(_BOM) if data.startswith(_BOM) else 0
            rows["text"].append(_decode(data[skip:], relative, skip, field))
            rows["path"].append(relative)
            if labelled:
                rows["label"].append(_label_of(relative))
            held += len(data)
            if held >= BATCH_BYTES:
                yield pa.table(rows, schema=table_schema)
                rows, held = {name: [] for name in names}, 0
        if rows["path"]:
            yield pa.table(rows, schema=table_schema)

    return write_batches(batches(), dest, label_column=label_column, schema=schema, field_prefix=field_prefix,
                         source_name=str(path))


def _text_lines(path: Path, field: str) -> Iterator[pa.Table]:
    """One document per line; line endings are dropped and blank lines skipped (they hold no document)."""
    texts: list[str] = []
    held = offset = 0
    with open(path, "rb") as f:
        for raw in f:
            start = offset
            offset += len(raw)
            if start == 0 and raw.startswith(_BOM):
                raw, start = raw[len(_BOM):], len(_BOM)
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            texts.append(_decode(line, path.name, start, field))
            held += len(line)
            if held >= BATCH_BYTES:
                yield pa.table({"text": pa.array(texts, pa.string())})
                texts, held = [], 0
    if texts:
        yield pa.table({"text": pa.array(texts, pa.string())})


# ---- SQL ---------------------------------------------------------------------------------

# Comments, string literals and quoted identifiers are skipped (their words are data, not
# SQL); words and semicolons are what the query check looks at.
_SQL_TOKEN = re.compile(
    r"""(?P<skip>--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|"(?:[^"]|"")*"|`[^`]*`|\$(?P<tag>[A-Za-z_]*)\$.*?\$(?P=tag)\$)
      | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
      | (?P<semicolon>;)""",
    re.S | re.X,
)
# Words that make a SELECT write: data-modifying CTEs (WITH d AS (DELETE ... RETURNING *)),
# SELECT ... INTO a new table, row locks, and statements some drivers run inside one call.
# The session is also made read-only where the database allows (_make_read_only), which
# stops what a word list cannot see, such as functions with side effects.
_WRITING_WORDS = frozenset({
    "insert", "update", "delete", "merge", "upsert", "drop", "alter", "create", "truncate", "grant", "revoke",
    "into", "copy", "call", "attach", "detach", "pragma", "vacuum", "lock",
})


def check_query(query: str, field: str) -> None:
    """Refuse anything but a single SELECT (or WITH ... SELECT) statement, on `field`."""
    if not query.strip():
        raise InvalidArgument.field(field, "is required for a SQL source: a SELECT statement", "REQUIRED")
    words: list[str] = []
    ended = False
    for token in _SQL_TOKEN.finditer(query):
        if token["semicolon"]:
            ended = True
        elif token["word"]:
            if ended:
                raise InvalidArgument.field(field, "holds more than one statement; give a single SELECT statement")
            words.append(token["word"].lower())
    if not words or words[0] not in ("select", "with"):
        first = words[0].upper() if words else query.strip()[:20]
        raise InvalidArgument.field(
            field, f"must be a SELECT (or WITH ... SELECT) statement that only reads; it starts with {first!r}"
        )
    writing = next((w for w in words if w in _WRITING_WORDS), None)
    if writing:
        raise InvalidArgument.field(
            field,
            f"only queries that read are allowed, and {writing.upper()} writes or locks data; remove it (put a "
            "column of that name in double quotes)",
        )


def _scrub(text: str, secrets: list[str]) -> str:
    """`text` with every secret, also as it appears URL-encoded, replaced by ***."""
    variants = {v for s in secrets if s for v in (s, quote_plus(s), quote(s, safe=""))}
    for secret in sorted(variants, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _driver_message(exc: BaseException) -> str:
    """The database driver's own words (SQLAlchemy's wrapper adds the SQL and a help link)."""
    return str(getattr(exc, "orig", None) or exc).strip()


def _make_read_only(connection: Any) -> None:
    """Make the transaction the query runs in read-only, where the database supports it."""
    dialect = connection.dialect.name
    if dialect == "sqlite":
        connection.exec_driver_sql("PRAGMA query_only = ON")
    elif dialect in ("postgresql", "mysql", "mariadb"):
        # PostgreSQL: the transaction this statement opens; MySQL: the next one, the query's.
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")


def _column_array(values: tuple) -> pa.Array:
    """Arrow's reading of one column's values; text for what Arrow or the engine cannot hold
    (UUIDs, times of day, intervals, JSON documents, columns mixing numbers and text)."""
    try:
        array = pa.array(values)
        if pa.types.is_timestamp(array.type) and array.type.tz:
            # The zone is the session's display setting (e.g. Etc/UTC), not data: store instants in UTC.
            array = array.cast(pa.timestamp(array.type.unit, "UTC"))
        if data_type_of(array.type) is not None:
            return array
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        pass

    def text(value: Any) -> str | None:
        if value is None:
            return None
        return json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)

    return pa.array([text(v) for v in values], pa.string())


def _chunk_table(names: list[str], rows: list, field: str) -> pa.Table:
    """Fetched rows as a table of canonical types; columns still without a value stay null-typed."""
    table = pa.Table.from_arrays([_column_array(values) for values in zip(*rows)], names=names)
    typed = [name for name, column in zip(names, table.columns) if not pa.types.is_null(column.type)]
    canonical = canonical_table(table.select(typed), blame_field=field)
    return pa.Table.from_arrays([canonical.column(n) if n in typed else table.column(n) for n in names], names=names)


def _unified(types: set[pa.DataType]) -> pa.DataType:
    """One type for a column that showed `types` in the rows held back (SQLite types per value)."""
    if len(types) == 1:
        return next(iter(types))
    if types == {pa.int64(), pa.float64()}:
        return pa.float64()
    return pa.string()  # no type holds them all; text does (and none shown: NULL everywhere)


def _in_types(table: pa.Table, types: list[pa.DataType], offset: int, field: str) -> pa.Table:
    columns = []
    for name, column, target in zip(table.column_names, table.columns, types):
        if column.type != target:
            if pa.types.is_null(column.type):
                column = pa.nulls(len(column), target)
            elif target == pa.string() or (target == pa.float64() and column.type == pa.int64()):
                try:
                    column = column.cast(target)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    raise InvalidArgument.field(field, f"column {name!r} cannot be stored as text; CAST it to a text "
                                                       "type in the query") from None
            else:
                raise InvalidArgument.field(
                    field,
                    f"column {name!r} holds {data_type_of(target)} values before row {offset} and "
                    f"{data_type_of(column.type)} values from there on; CAST it in the query so that every row has "
                    "one type",
                )
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)


def _sql_tables(result: Any, names: list[str], field: str, secrets: list[str]) -> Iterator[pa.Table]:
    """The query's rows in batches of one set of types.

    Batches are held back until every column has shown a non-NULL value (or
    SQL_TYPE_WAIT_ROWS rows came), so the column types are those of real values.
    """
    from sqlalchemy.exc import SQLAlchemyError

    held: list[pa.Table] = []
    seen: list[set[pa.DataType]] = [set() for _ in names]
    types: list[pa.DataType] | None = None
    offset = 0
    while True:
        try:
            rows = result.fetchmany(SQL_CHUNK_ROWS)
        except SQLAlchemyError as exc:
            raise InvalidArgument.field(field, f"the query failed: {_scrub(_driver_message(exc), secrets)}") from None
        if not rows:
            break
        held.append(_chunk_table(names, rows, field))
        if types is None:
            for types_seen, column in zip(seen, held[-1].columns):
                if not pa.types.is_null(column.type):
                    types_seen.add(column.type)
            if not all(seen) and sum(t.num_rows for t in held) < SQL_TYPE_WAIT_ROWS:
                continue
            types = [_unified(s) for s in seen]
        for table in held:
            yield _in_types(table, types, offset, field)
            offset += table.num_rows
        held = []
    if held:
        types = [_unified(s) for s in seen]
        for table in held:
            yield _in_types(table, types, offset, field)
            offset += table.num_rows


def _database_url(uri: str, credentials: dict[str, str], field: str) -> tuple[Any, list[str]]:
    """The SQLAlchemy URL with the credentials merged in, and every secret to keep out of messages."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    unknown = sorted(set(credentials) - {"username", "password"})
    if unknown:
        raise InvalidArgument.field(
            field, f"credentials {', '.join(map(repr, unknown))} are not used by SQL sources; give username and password"
        )
    try:
        url = make_url(uri)
    except (ArgumentError, ValueError):  # make_url raises ValueError for a bad port or address
        # Not echoed: the text may hold a password.
        raise InvalidArgument.field(field, "the URI is not a SQLAlchemy database URL such as "
                                           "postgresql://host:5432/name or sqlite:////absolute/path.db") from None
    secrets = [url.password or "", *credentials.values()]
    if url.get_backend_name() == "sqlite":
        # A SQLite file has no users, so there is nothing to log in with (and SQLAlchemy
        # refuses a SQLite URL that carries a password): the credentials are not used.
        if url.database and url.database != ":memory:" and not url.database.startswith("file:") \
                and not os.path.isfile(url.database):
            # SQLite would create an empty database file there and read nothing from it.
            raise InvalidArgument.field(field, f"no such SQLite database file: {url.database}")
        return url, [str(s) for s in secrets if s]
    if credentials.get("username"):
        url = url.set(username=credentials["username"])
    if credentials.get("password"):
        url = url.set(password=credentials["password"])
    return url, [str(s) for s in secrets if s]


def _load_sql(uri: str, query: str, credentials: dict[str, str], dest: str, *, label_column: str,
              schema: DataSchema | None, field_prefix: str) -> IngestResult:
    import sqlalchemy as sa
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    source_field, query_field = _field(field_prefix, "data_source"), _field(field_prefix, "query")
    check_query(query, query_field)
    url, secrets = _database_url(uri, credentials, source_field)
    shown = url._replace(username=None, password=None).render_as_string()  # set() cannot clear them
    try:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    except ArgumentError as exc:  # a URL the dialect refuses, e.g. a malformed SQLite path
        raise InvalidArgument.field(
            source_field, f"the database URL is not valid: {_scrub(str(exc), secrets)}"
        ) from None
    except (NoSuchModuleError, ImportError) as exc:
        raise InvalidArgument.field(
            source_field, f"the database driver for {url.drivername!r} is not installed on the server "
                          f"({_scrub(str(exc), secrets)}); supported: sqlite and postgresql (psycopg)"
        ) from None
    try:
        try:
            connection = engine.connect()
            _make_read_only(connection)
        except (SQLAlchemyError, OSError) as exc:
            raise InvalidArgument.field(
                source_field,
                f"cannot connect to {shown}: {_scrub(_driver_message(exc), secrets)}; check that the database is "
                "running and reachable and that the URL and credentials are right",
            ) from None
        with connection:
            try:
                # no_parameters: the query goes to the driver as written, so a % or : in it is just text.
                result = connection.execution_options(stream_results=True, no_parameters=True).exec_driver_sql(query)
            except SQLAlchemyError as exc:
                raise InvalidArgument.field(
                    query_field, f"the query failed: {_scrub(_driver_message(exc), secrets)}"
                ) from None
            if not result.returns_rows:
                raise InvalidArgument.field(query_field, "returns no rows; give a SELECT statement")
            names = list(result.keys())
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise InvalidArgument.field(
                    query_field, f"returns several columns named {', '.join(map(repr, repeated))}; name each one "
                                 "differently with AS"
                )
            return write_batches(_sql_tables(result, names, query_field, secrets), dest, label_column=label_column,
                                 schema=schema, field_prefix=field_prefix, blame_field=query_field,
                                 source_name="the query's result")
    finally:
        engine.dispose()


# ---- Object stores -------------------------------------------------------------------------

_CREDENTIAL_ALIASES = {"aws_access_key_id": "key", "aws_secret_access_key": "secret", "aws_session_token": "token"}
# Options that s3fs expects inside client_kwargs (they configure the boto client).
_S3_CLIENT_OPTIONS = ("endpoint_url", "region_name")


def _storage_options(protocol: str, options: dict[str, str], credentials: dict[str, str]) -> dict[str, Any]:
    """fsspec storage options: `options` (strings "true"/"false" as booleans) plus the credentials."""
    result: dict[str, Any] = {}
    for key, value in options.items():
        lowered = value.strip().lower() if isinstance(value, str) else value
        result[key] = {"true": True, "false": False}.get(lowered, value) if isinstance(lowered, str) else value
    if protocol in ("s3", "s3a"):
        if "region" in result:
            result["region_name"] = result.pop("region")
        client = {k: result.pop(k) for k in _S3_CLIENT_OPTIONS if k in result}
        if client:
            result["client_kwargs"] = client
    for key, value in credentials.items():
        result[_CREDENTIAL_ALIASES.get(key, key)] = value
    # A fresh filesystem per load: no listing cached by an earlier load, no other load's credentials.
    result["skip_instance_cache"] = True
    return result


def _load_object(uri: str, fmt: str, options: dict[str, str], credentials: dict[str, str], dest: str, *,
                 label_column: str, schema: DataSchema | None, field_prefix: str,
                 limits: IngestLimits | None = None) -> IngestResult:
    """Copy the object to a local file next to `dest` (streamed, never whole in memory), then ingest it."""
    import fsspec

    field = _field(field_prefix, "source_uri")
    secrets = [str(v) for v in credentials.values() if v]
    if fmt in ("image_folder", "text"):
        raise InvalidArgument.field(_field(field_prefix, "format"),
                                    f"{fmt} is not supported for object store sources; use csv, parquet or jsonl")
    fmt = detect_format(uri, fmt, field_prefix=field_prefix)
    protocol = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if not protocol:
        raise InvalidArgument.field(field, f"{uri!r} has no scheme; give an object URI such as s3://bucket/key")
    check_object_uri(uri, field)
    try:
        fs, path = fsspec.core.url_to_fs(uri, **_storage_options(protocol, options, credentials))
    except ImportError as exc:
        raise InvalidArgument.field(field, f"the {protocol}:// scheme needs a package the server lacks: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise InvalidArgument.field(
            field, f"cannot use {protocol}:// with these options: {_scrub(str(exc), secrets)}; check the options"
        ) from None
    Path(dest).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=Path(dest).parent) as folder:
        # Keep the object's name: its extension (.csv.gz) tells the reader about compression.
        local = os.path.join(folder, path.rstrip("/").rsplit("/", 1)[-1] or "object")
        try:
            with fs.open(path, "rb") as remote, open(local, "wb") as out:
                shutil.copyfileobj(remote, out, 1024 * 1024)
        except (FileNotFoundError, IsADirectoryError):
            raise InvalidArgument.field(field, f"no such object: {uri}; check the bucket and key") from None
        except PermissionError as exc:
            raise InvalidArgument.field(
                field, f"access to {uri} was denied ({_scrub(str(exc), secrets)}); check the credentials"
            ) from None
        except Exception as exc:  # noqa: BLE001 - each fsspec backend raises its own client errors
            raise InvalidArgument.field(
                field, f"cannot read {uri}: {_scrub(f'{type(exc).__name__}: {exc}', secrets)}"
            ) from None
        return ingest_file(local, dest, fmt=fmt, label_column=label_column, schema=schema,
                           field_prefix=field_prefix, source_field=field, limits=limits)
