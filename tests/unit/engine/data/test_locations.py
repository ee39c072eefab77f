"""Where a data source may read from: engine/data/locations.py, and the folder readers that rely on it."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pytest

from engine.data.locations import check_source, local_path_of
from engine.data.sources import load_source
from engine.errors import InvalidArgument, PermissionDenied


@pytest.fixture
def places(tmp_path):
    """An allowed root holding a CSV, a secret CSV outside it, and a data dir outside both."""
    allowed, outside, data = tmp_path / "allowed", tmp_path / "outside", tmp_path / "forge-data"
    for folder in (allowed, outside, data):
        folder.mkdir()
    (allowed / "ok.csv").write_text("a\n1\n")
    (outside / "secret.csv").write_text("secret\n42\n")
    (data / "forge.db").write_text("x")
    return allowed, outside, data


def _check(uri: str, data: Path, roots=None, kind: str = "file", fmt: str = "") -> None:
    check_source({"type": kind, "uri": uri, "format": fmt}, "config.source_uri", data_dir=data, roots=roots)


def test_local_paths_outside_the_roots_are_refused_however_they_are_spelled(places):
    allowed, outside, data = places
    roots = (str(allowed),)
    _check(str(allowed / "ok.csv"), data, roots)
    _check((allowed / "ok.csv").as_uri(), data, roots)
    os.symlink(outside / "secret.csv", allowed / "link.csv")
    spellings = [
        str(outside / "secret.csv"),
        f"{allowed}/../outside/secret.csv",
        f"file://{allowed}/..%2Foutside%2Fsecret.csv",  # file URIs are percent-decoded before they are read
        f"file://localhost{outside}/secret.csv",
        str(allowed / "link.csv"),  # a symlink is judged by where it leads
        "/etc/passwd",
        "../../etc/passwd",
        str(outside / "does-not-exist.csv"),  # refused the same way: no existence oracle outside the roots
    ]
    for uri in spellings:
        with pytest.raises(PermissionDenied) as err:
            _check(uri, data, roots)
        assert err.value.violations[0].field == "config.source_uri", uri
        assert "outside the server's data roots" in err.value.message and "--data-root" in err.value.message
    with pytest.raises(PermissionDenied) as err:
        _check(str(allowed / "ok.csv"), data, roots=())
    assert "this server reads no local files" in err.value.message
    _check(str(outside / "secret.csv"), data, roots=None)  # no roots: any path the server's user can read


def test_the_data_dir_is_refused_with_or_without_roots_and_nul_everywhere(places):
    allowed, _, data = places
    for uri in (str(data / "forge.db"), f"file://localhost{data}/forge.db",
                "file://" + quote(f"{data}/forge.db"), f"{allowed}/../forge-data/forge.db"):
        for roots in (None, (str(data.parent),)):
            with pytest.raises(InvalidArgument) as err:
                _check(uri, data, roots)
            assert "data directory" in err.value.message, uri
    # A folder source that holds the data dir would read it too.
    with pytest.raises(InvalidArgument) as err:
        _check(str(data.parent), data, fmt="text")
    assert "data directory" in err.value.message
    for uri in ("/etc/passwd\x00.csv", "file:///etc/passwd%00.csv", f"{allowed}/ok.csv\x00"):
        with pytest.raises(InvalidArgument) as err:
            _check(uri, data)
        assert "NUL" in err.value.message
    with pytest.raises(InvalidArgument, match="NUL"):
        local_path_of("file:///x%00", "f")


def test_sqlite_databases_are_local_files_too(places):
    allowed, outside, data = places
    with pytest.raises(PermissionDenied):
        _check(f"sqlite:///{outside}/x.db", data, (str(allowed),), kind="sql")
    with pytest.raises(InvalidArgument, match="data directory"):
        _check(f"sqlite:///{data}/forge.db", data, None, kind="sql")
    # SQLite decodes a "file:" name's %-escapes after SQLAlchemy decoded the URL's: "%252F" is "/" to it.
    with pytest.raises(PermissionDenied):
        _check(f"sqlite:///file:{allowed}/..%252Foutside%252Fx.db?uri=true", data, (str(allowed),), kind="sql")
    with pytest.raises(InvalidArgument, match="NUL"):
        _check(f"sqlite:///file:{allowed}/x.db%2500?uri=true", data, (str(allowed),), kind="sql")
    _check(f"sqlite:///{allowed}/x.db", data, (str(allowed),), kind="sql")
    _check(f"sqlite:///file:{allowed}/x.db?mode=ro&uri=true", data, (str(allowed),), kind="sql")
    _check("postgresql://db.internal/x", data, (str(allowed),), kind="sql")  # no local file


@pytest.mark.parametrize("uri", [
    "file:///etc/passwd", "local:///etc/passwd", "simplecache::file:///etc/passwd",
    "zip://member.csv::s3://bucket/a.zip", "tar://x.csv", "http://169.254.169.254/latest/meta-data",
    "github://org:repo@main/data.csv", "/etc/passwd",
])
def test_object_stores_read_only_object_store_schemes(places, uri):
    _, _, data = places
    with pytest.raises(InvalidArgument) as err:
        _check(uri, data, kind="object_store")
    assert err.value.violations[0].field == "config.source_uri"


def test_object_store_schemes_pass(places):
    _, _, data = places
    for uri in ("s3://bucket/a.csv", "gs://bucket/a.parquet", "memory://b/a.csv"):
        _check(uri, data, roots=(), kind="object_store")


def test_a_folder_source_does_not_follow_links_out_of_the_folder(tmp_path):
    folder, outside = tmp_path / "docs", tmp_path / "outside"
    (folder / "pos").mkdir(parents=True)
    outside.mkdir()
    (folder / "pos" / "a.txt").write_text("fine")
    (outside / "credentials.txt").write_text("aws_secret_access_key=xyz")
    os.symlink(outside / "credentials.txt", folder / "pos" / "b.txt")
    with pytest.raises(InvalidArgument) as err:
        load_source({"type": "file", "uri": str(folder), "format": "text"}, str(tmp_path / "o.parquet"))
    assert "pos/b.txt is a link to a file outside" in err.value.message
    assert not (tmp_path / "o.parquet").exists()
    (folder / "pos" / "b.txt").unlink()
    os.symlink(folder / "pos" / "a.txt", folder / "pos" / "b.txt")  # a link inside the folder is fine
    loaded = load_source({"type": "file", "uri": str(folder), "format": "text"}, str(tmp_path / "o.parquet"))
    assert loaded.row_count == 2
