"""ExportModel hashes a local artifact whole the first time, and again only once the file
changed: an unchanged file is streamed (and resumed from any offset) without re-hashing, and one
changed behind the service's back, even to bytes of the same length, never leaves it whole."""

from __future__ import annotations

import time

import grpc
import pytest

from engine.storage import artifacts
from forge.training import ForgeTrainingError, export_format
from forge.training.v1 import trainer_service_pb2 as pb


def _stream(client, name: str, offset: int = 0) -> bytes:
    request = pb.ExportModelRequest(name=name, format=export_format("onnx"), offset=offset)
    return b"".join(m.data for m in client.trainer.ExportModel(request))


def test_an_unchanged_artifact_is_trusted_and_a_changed_one_is_hashed_again(client, server, write_matmul_onnx,
                                                                             tmp_path, monkeypatch):
    path = server.engine.settings.data_dir / "models" / "trust" / "matmul.onnx"
    digest = write_matmul_onnx(path, 300_000)  # ~4.8 MB: a few read blocks
    version = client.load_model("trust/matmul.onnx", "trust-matmul")
    store = server.engine.storage
    uri = str(path.resolve())
    whole = path.read_bytes()

    # Just written (whatever this machine's speed: "just" is stretched to the whole test here):
    # hashed, not yet remembered.
    monkeypatch.setattr(artifacts, "UNCHANGED_FOR_NS", 10**15)
    assert _stream(client, version.name) == whole
    assert not store.verified_before(uri, digest, store.fingerprint(uri))
    monkeypatch.setattr(artifacts, "UNCHANGED_FOR_NS", 0)
    assert _stream(client, version.name) == whole  # hashed whole, matched: remembered
    assert store.verified_before(uri, digest, store.fingerprint(uri))
    resumed_at = len(whole) - 1_234_567
    assert _stream(client, version.name, resumed_at) == whole[resumed_at:]  # read from the offset only
    meta = client.export_model(version.name, "onnx", tmp_path / "out.onnx")
    assert meta.sha256 == digest and (tmp_path / "out.onnx").read_bytes() == whole

    time.sleep(0.05)  # past the file clock's tick
    with open(path, "r+b") as f:  # the same length, one byte else
        f.seek(len(whole) // 2)
        f.write(bytes([whole[len(whole) // 2] ^ 0xFF]))
    assert not store.verified_before(uri, digest, store.fingerprint(uri))
    with pytest.raises(grpc.RpcError) as raw:
        _stream(client, version.name, resumed_at)
    assert raw.value.code() == grpc.StatusCode.DATA_LOSS
    with pytest.raises(ForgeTrainingError) as err:
        client.export_model(version.name, "onnx", tmp_path / "tampered.onnx")
    assert err.value.code.name == "DATA_LOSS" and not (tmp_path / "tampered.onnx").exists()
