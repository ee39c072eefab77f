"""Where a client may have the server read data from: the checks a source's location passes first.

A client names data by a local path or file:// URI, an object store URI, or a SQLAlchemy URL
(SQLite's names a local file). Before anything is read, `check_source`:
- refuses NUL characters anywhere (a C library would cut the path short at one);
- resolves a local path the way the reader opens it (a file:// URI's percent-escapes
  decoded, every symlink followed) and refuses it inside the server's data directory, which
  holds every project's datasets, the metadata database and the sources' credentials, and,
  when the server has data roots, anywhere outside them. Without data roots (None) any
  path the server's user can read may be named: right for a server only its own user
  reaches, wrong for one that faces a network;
- accepts only the object store schemes of OBJECT_STORE_SCHEMES: fsspec also reads local
  files (local://), archives (zip://, tar://), caches and chains (simplecache::file://...)
  and web addresses, each of which would read around the rules above.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from engine.errors import FieldViolation, InvalidArgument, PermissionDenied

OBJECT_STORE_SCHEMES = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory")


def local_path_of(uri: str, field: str) -> str:
    """The local path a path or file:// URI names, percent-escapes decoded; it need not exist."""
    _refuse_nul(uri, field)
    if "://" not in uri:
        path = uri
    else:
        parsed = urlparse(uri)
        if parsed.scheme.lower() != "file":
            raise InvalidArgument.field(
                field, f"scheme {parsed.scheme!r} is not supported; give a local path or a file:// URI")
        if parsed.netloc not in ("", "localhost"):
            raise InvalidArgument.field(
                field, f"file URI host {parsed.netloc!r} is not supported; use file:///absolute/path")
        path = unquote(parsed.path)
        _refuse_nul(path, field)  # "%00" decodes to one
    if not path:
        raise InvalidArgument.field(field, "is empty; give a local path or a file:// URI", "REQUIRED")
    return path


def check_source(source: dict[str, Any], field: str, *, data_dir: Path,
                 roots: Sequence[str] | None = None) -> None:
    """Refuse a source (`{"type", "uri", "format"}`, as `sources.load_source` takes it) whose
    location the server must not read; `field` names the request field that gave it."""
    uri = source.get("uri") or ""
    _refuse_nul(uri, field)
    kind = source.get("type")
    if kind == "object_store":
        check_object_uri(uri, field)
        return
    for target in _local_targets(kind, uri, field):
        resolved = Path(target).resolve()
        data = data_dir.resolve()
        if resolved.is_relative_to(data) or (source.get("format") in ("image_folder", "text")
                                             and resolved.is_dir() and data.is_relative_to(resolved)):
            raise InvalidArgument.field(field, "points inside the server's data directory: give data outside it, or "
                                               "derive datasets with SplitDataset, FilterDataset or TransformDataset")
        if roots is not None and not any(resolved.is_relative_to(Path(root).resolve()) for root in roots):
            allowed = ", ".join(str(r) for r in roots) or "none: this server reads no local files"
            description = (f"{uri!r} is outside the server's data roots ({allowed}); upload the file with "
                           "UploadDataset, or start the server with --data-root naming a folder that holds it")
            raise PermissionDenied(f"{field}: {description}",
                                   violations=[FieldViolation(field, description, "OUTSIDE_DATA_ROOTS")])


def _refuse_nul(value: str, field: str) -> None:
    if "\x00" in value:
        raise InvalidArgument.field(field, "contains a NUL character; give the path without it")


def _local_targets(kind: str | None, uri: str, field: str) -> list[str]:
    """The local file or folder a file or SQL source reads, if it reads one."""
    if kind != "sql":
        return [local_path_of(uri, field)]
    from sqlalchemy.engine import make_url

    try:
        url = make_url(uri)  # decodes the URL's own %-escapes
    except ValueError:
        return []  # refused with a clear message when the source is loaded
    database = url.database or ""
    _refuse_nul(database, field)
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return []
    if not (database.startswith("file:") and str(url.query.get("uri", "")).lower() in ("true", "1", "yes", "on")):
        return [database]
    # With uri=true SQLite reads the name as a URI, decoding its %-escapes once more.
    parsed = urlparse(database)
    if parsed.netloc not in ("", "localhost"):
        raise InvalidArgument.field(field, f"SQLite file URI host {parsed.netloc!r} is not supported")
    decoded = unquote(parsed.path)
    _refuse_nul(decoded, field)
    return [decoded]


def check_object_uri(uri: str, field: str) -> None:
    """Refuse an object store URI whose scheme is not one of OBJECT_STORE_SCHEMES."""
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    # The URI is not repeated in these messages: a chained one may carry credentials further on.
    if "::" in uri:
        raise InvalidArgument.field(field, "chains filesystems ('::'); give one object URI such as s3://bucket/key")
    if scheme in ("file", "local", ""):
        raise InvalidArgument.field(field, "is not an object store URI; read a local file as a FILE source (a path "
                                           "or file:// URI)")
    if scheme not in OBJECT_STORE_SCHEMES:
        raise InvalidArgument.field(field, f"scheme {scheme!r} is not an object store this server reads; use "
                                           f"one of {', '.join(s + '://' for s in OBJECT_STORE_SCHEMES)}")


def inside(path: Path, folder: Path) -> bool:
    """Whether `path`, every symlink followed, lies inside `folder` (resolved too)."""
    try:
        return Path(os.path.realpath(path)).is_relative_to(Path(os.path.realpath(folder)))
    except (OSError, ValueError):
        return False
