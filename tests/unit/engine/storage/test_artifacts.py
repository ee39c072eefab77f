"""ArtifactStore on a local directory, and where user-given model paths may point."""

from __future__ import annotations

import hashlib
import time

import pytest

from engine.errors import DataLoss, InvalidArgument, PermissionDenied
from engine.storage.artifacts import ArtifactStore, StorageConfig, location, resolve_model_path


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(StorageConfig(), tmp_path / "data")


def _put(store, tmp_path, key: str, data: bytes) -> dict:
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    return store.put_file(source, key, len(data), hashlib.sha256(data).hexdigest())


def test_put_copy_read_and_verify(store, tmp_path):
    info = _put(store, tmp_path, "artifacts/p/job/model.onnx", b"x" * 3_000_000)
    assert info["uri"] == store.uri("artifacts/p/job/model.onnx") and info["size_bytes"] == 3_000_000
    store.verify(info)
    assert b"".join(store.iter_chunks(location(info), offset=2_999_990)) == b"x" * 10
    copy = store.copy(info, "models/team/model.onnx")
    assert copy["sha256"] == info["sha256"] and store.exists(copy["uri"])
    assert store.key_of(copy["uri"]) == "models/team/model.onnx"
    with open(location(info), "r+b") as f:
        f.write(b"y")
    with pytest.raises(DataLoss, match="corrupted"):
        store.verify(info)
    store.delete(store.uri("artifacts/p/job"))
    with pytest.raises(DataLoss, match="missing"):
        store.verify(info)


def test_records_from_before_storage_backends_still_read(store, tmp_path):
    info = _put(store, tmp_path, "artifacts/p/old/model.pkl", b"pickle bytes")
    legacy = {"path": info["uri"], "sha256": info["sha256"], "size_bytes": info["size_bytes"]}
    store.verify(legacy)
    assert store.fetch(legacy, tmp_path / "unused") == tmp_path / "data" / "artifacts/p/old/model.pkl"


def test_model_paths_stay_under_the_allowed_roots(store, tmp_path):
    models = store.uri("models")
    assert resolve_model_path(store, "team/a.pkl", "path") == f"{models}/team/a.pkl"
    assert resolve_model_path(store, f"{models}/team/a.pkl", "path") == f"{models}/team/a.pkl"
    extra = tmp_path / "incoming"
    assert resolve_model_path(store, str(extra / "m.onnx"), "path", (str(extra),)) == str(extra / "m.onnx")
    for bad in ("/etc/passwd", str(tmp_path / "data" / "forge.db"), f"{models}/../forge.db"):
        with pytest.raises(PermissionDenied, match="outside the allowed model roots"):
            resolve_model_path(store, bad, "path")
    for bad in ("../forge.db", "", "a\x00b"):
        with pytest.raises(InvalidArgument) as err:
            resolve_model_path(store, bad, "path")
        assert err.value.violations[0].field == "path"


def test_remote_stores_name_their_uris_and_check_containment():
    s3 = ArtifactStore(StorageConfig(type="s3", bucket="b", prefix="/team/"))
    assert s3.root == "s3://b/team" and s3.uri("models/x.onnx") == "s3://b/team/models/x.onnx"
    assert s3.contains("s3://b/team/models/x.onnx", "models")
    assert not s3.contains("s3://b/team/models/../artifacts/x", "models")
    assert not s3.contains("s3://b/other/models/x.onnx", "models")
    assert ArtifactStore(StorageConfig(type="gcs", bucket="g")).root == "gs://g"
    with pytest.raises(ValueError, match="bucket"):
        ArtifactStore(StorageConfig(type="s3"))
    with pytest.raises(ValueError, match="storage type"):
        ArtifactStore(StorageConfig(type="ftp", bucket="x"))
    azure = ArtifactStore(StorageConfig(type="azure", bucket="models", prefix="team", account="acct"))
    assert azure.root == "az://models/team"
    with pytest.raises(ValueError, match="--storage-account"):
        ArtifactStore(StorageConfig(type="azure", bucket="x"))


def test_a_verified_local_file_is_trusted_until_it_changes(store, tmp_path, monkeypatch):
    from engine.storage import artifacts

    info = _put(store, tmp_path, "artifacts/p/job/model.onnx", b"a" * 1000)
    hashed = []
    real_hash = store.hash
    monkeypatch.setattr(store, "hash", lambda uri: hashed.append(uri) or real_hash(uri))
    store.verify(info)  # just written: hashed, not remembered (a write in the same clock tick would not show)
    monkeypatch.setattr(artifacts, "UNCHANGED_FOR_NS", 0)
    store.verify(info)
    store.verify(info)  # unchanged since it was hashed whole: not hashed again
    assert len(hashed) == 2
    path = location(info)
    time.sleep(0.05)  # past the file clock's tick
    with open(path, "r+b") as f:  # the same size, other bytes: its ctime moves on
        f.write(b"b")
    with pytest.raises(DataLoss):
        store.verify(info)
    with pytest.raises(DataLoss):  # a failed check is never remembered
        store.verify(info)
    assert len(hashed) == 4
    assert not store.verified_before(path, info["sha256"], store.fingerprint(path))


def test_object_stores_are_never_trusted_without_hashing():
    s3 = ArtifactStore(StorageConfig(type="s3", bucket="b"))
    assert s3.fingerprint("s3://b/model.onnx") is None
    assert not s3.verified_before("s3://b/model.onnx", "0" * 64, None)
