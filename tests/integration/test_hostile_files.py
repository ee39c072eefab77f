"""Hostile paths and files, through a real server and the SDK: each is refused with an error that
names the field (and the limit, and the fix) before anything outside the server's allowed places
is read or written, and a hostile file costs the server bounded memory.

The path fields: CreateDataset.config.source_uri and .data_source, RegisterDataSource
data_source.uri (file, object store and SQLite sources), a pipeline's data_preparation
source_uri and model_deployment destination, SaveModel.path, LoadModel.path (and the external
data paths inside an ONNX file it loads), training_config.checkpoints.path and
model_config.pretrained_path. ExportModel, UploadDataset and every resource name carry no path:
names are checked as ids (engine/names.py).
"""

from __future__ import annotations

import gzip
import os
import re
import struct
import tarfile
import zlib
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.rpc import code_pb2

from engine.data.ingest import IngestLimits
from forge.training import Client, ForgeTrainingError, common_pb2, data_service_pb2, dataset_pb2, from_rpc_error

REFUSED = ("INVALID_ARGUMENT", "PERMISSION_DENIED")
# What a server's peak memory may grow by while it refuses a 100 MB field, 100k columns and
# archive bombs declaring gigabytes: about five parser blocks of the 8 MiB record limit and the
# upload's buffers (measured: about 60 MiB in all), not the files. Finding the line of the long
# field, as the server did before the record limit, held it whole: 200 MiB more.
ALLOWED_GROWTH = 96 * 1024 * 1024


def _refused(call, field: str | None, codes: tuple[str, ...] = REFUSED, why: str = "") -> ForgeTrainingError:
    """The error `call` fails with, after checking its code, that it names `field` (when one is
    given) and that its message says `why`: a parse error on the right field is no refusal."""
    with pytest.raises(ForgeTrainingError) as err:
        call()
    error = err.value
    assert error.code.name in codes, (field, error.code.name, error.message)
    if field is not None:
        assert field in error.message or any(v.field == field for v in error.field_violations), (field, error.message)
    assert why in error.message, (why, error.message)
    return error


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and mtime: proof that nothing there was written."""
    return {str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in folder.rglob("*")}


def _stub(method, request):
    """A call the SDK has no method for, failing with a ForgeTrainingError as SDK calls do."""
    try:
        return method(request, timeout=30)
    except grpc.RpcError as exc:
        raise from_rpc_error(exc) from None


def _register(client: Client, source_id: str, kind: int, uri: str):
    return _stub(client.data.RegisterDataSource, data_service_pb2.RegisterDataSourceRequest(
        data_source_id=source_id, data_source=dataset_pb2.DataSource(type=kind, uri=uri))).data_source


def _places(tmp_path: Path) -> tuple[Path, Path]:
    """An allowed data root with a CSV, a text folder and links out of it, and an outside folder
    holding secrets in readable formats."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    (allowed / "docs" / "pos").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.csv").write_text("secret\n42\n")
    (outside / "secret.txt").write_text("aws_secret_access_key=xyz\n")
    (allowed / "ok.csv").write_text("x,label\n1,a\n2,b\n3,a\n")
    (allowed / "docs" / "pos" / "a.txt").write_text("a fine document\n")
    os.symlink(outside / "secret.txt", allowed / "docs" / "pos" / "b.txt")
    os.symlink(outside / "secret.csv", allowed / "link.csv")
    return allowed, outside


def test_dataset_locations_outside_the_data_roots_are_refused_before_anything_is_read(start_server, tmp_path):
    allowed, outside = _places(tmp_path)
    running = start_server(data_roots=(str(allowed),))  # --data-root
    data_dir = running.engine.settings.data_dir
    before = _tree(outside)
    roots, nul, data = "outside the server's data roots", "NUL character", "inside the server's data directory"
    traversals = [
        ("../../etc/passwd", roots), ("/etc/passwd", roots), ("file:///etc/passwd", roots),
        ("models/../../x.csv", roots),
        (f"{allowed}/../outside/secret.csv", roots), (str(allowed / "link.csv"), roots),
        (f"file://{allowed}/..%2Foutside%2Fsecret.csv", roots), (f"file://localhost{outside}/secret.csv", roots),
        (str(outside / "no-such-file.csv"), roots),  # no existence oracle: read like an existing one
        (f"{allowed}/ok.csv\x00.txt", nul), ("file:///etc/passwd%00.csv", nul),
        (f"{data_dir}/forge.db", data), ("file://" + str(data_dir).replace("-", "%2D") + "/forge.db", data),
    ]
    with Client(running.target) as client:
        for uri, why in traversals:
            _refused(lambda: client.create_dataset(uri, format="csv"), "config.source_uri", why=why)
            _refused(lambda: _register(client, "src", dataset_pb2.DATA_SOURCE_TYPE_FILE, uri), "data_source.uri",
                     why=why)
        for uri, why in (("local:///etc/passwd", "not an object store URI"),
                         ("file:///etc/passwd", "not an object store URI"),
                         ("simplecache::file:///etc/passwd", "chains filesystems"),
                         ("zip://secret.csv::file:///tmp/x.zip", "chains filesystems"),
                         ("http://169.254.169.254/latest/meta-data", "not an object store this server reads")):
            _refused(lambda: _register(client, "obj", dataset_pb2.DATA_SOURCE_TYPE_OBJECT_STORE, uri),
                     "data_source.uri", ("INVALID_ARGUMENT",), why)
            if not uri.startswith("file:"):
                _refused(lambda: client.create_dataset(uri, format="csv"), "config.source_uri", ("INVALID_ARGUMENT",),
                         why)
        _refused(lambda: _register(client, "db", dataset_pb2.DATA_SOURCE_TYPE_SQL, f"sqlite:///{outside}/x.db"),
                 "data_source.uri", ("PERMISSION_DENIED",), roots)
        # A folder may not link out of itself; one that holds the data dir is refused whole.
        _refused(lambda: client.create_dataset(str(allowed / "docs"), format="text"), "config.source_uri",
                 why="pos/b.txt is a link to a file outside")
        _refused(lambda: client.create_dataset(str(tmp_path), format="text"), "config.source_uri", why=data)
        error = _refused(lambda: client.create_dataset(str(outside / "secret.csv")), "config.source_uri",
                         ("PERMISSION_DENIED",), roots)
        assert "--data-root" in error.message
        # Inside the roots all works, and a registered source is checked again at each load.
        assert client.create_dataset(str(allowed / "ok.csv"), dataset_id="ok", label_column="label").row_count == 3
        _register(client, "inside", dataset_pb2.DATA_SOURCE_TYPE_FILE, str(allowed / "ok.csv"))
        running.engine.data.data_roots = ()
        _refused(lambda: _stub(client.data.CreateDataset, data_service_pb2.CreateDatasetRequest(
            config=dataset_pb2.DatasetConfig(data_source="inside"))), "config.data_source", ("PERMISSION_DENIED",),
                 roots)
        running.engine.data.data_roots = (str(allowed),)
        # A pipeline's data_preparation stage loads through the same checks.
        pipeline = client.create_pipeline({"stages": [{"id": "prepare", "type": "data_preparation",
                                                       "parameters": {"source_uri": str(outside / "secret.csv")}}]})
        done = client.wait_execution(client.execute_pipeline(pipeline.name).name, timeout=60)
        assert done.state == common_pb2.JOB_STATE_FAILED
        stage = done.stages[0].error
        assert stage.code == code_pb2.PERMISSION_DENIED
        assert "source_uri" in stage.message and "data roots" in stage.message
        assert [d.name for d in client.list_datasets()] == ["projects/default/datasets/ok"]
    assert _tree(outside) == before


def _onnx_reading(location: str) -> bytes:
    """An ONNX model whose one weight is stored "externally" at `location`."""
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.zeros(4, dtype=np.float32), "w")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_model_and_checkpoint_paths_stay_in_their_directories(start_server, tmp_path):
    _, outside = _places(tmp_path)
    (outside / "weights.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    running = start_server(data_dir=tmp_path / "forge-data")  # models/../.. is tmp_path, beside outside/
    models = Path(running.engine.storage.uri("models"))
    models.mkdir(parents=True, exist_ok=True)
    os.symlink(outside, models / "escape")
    os.symlink(outside / "secret.csv", models / "link.pkl")
    (models / "external.onnx").write_bytes(_onnx_reading("../../outside/weights.bin"))
    before = _tree(outside)
    with Client(running.target) as client:
        data = client.upload_dataset(b"x,label\n" + b"".join(b"%d,%d\n" % (i, i % 2) for i in range(40)),
                                     format="csv", label_column="label")
        job = client.wait(client.start_training({
            "modelType": "classification", "modelConfig": {"framework": "sklearn", "architecture": "sgd"},
            "trainingConfig": {"epochs": 1}, "dataConfig": {"trainDataset": data.name, "labelColumn": "label"},
        }).name, timeout=120)
        assert job.state == common_pb2.JOB_STATE_COMPLETED, job.error
        leaves, absolute, roots = "leaves the model directory", "is not relative", "outside the allowed model roots"
        for path, why in (("../../outside/x.pkl", leaves), (str(outside / "x.pkl"), absolute),
                          (f"file://{outside}/x.pkl", absolute), ("models/../../x.pkl", leaves),
                          ("x.pkl\x00", "NUL character"), ("escape/x.pkl", roots)):
            _refused(lambda: client.save_model(job.name, path, "pickle"), "path", why=why)
        # Percent-escapes of a plain path are not decoded: this is a file of that name in models/.
        assert client.save_model(job.name, "..%2f..%2fx.pkl", "pickle").path == "..%2f..%2fx.pkl"
        assert (models / "..%2f..%2fx.pkl").is_file()
        for path, why in (("../../outside/secret.csv", leaves), ("/etc/passwd", roots), ("file:///etc/passwd", roots),
                          ("models/../../forge.db", leaves), ("x.pkl\x00", "NUL character"),
                          ("escape/secret.csv", roots), ("link.pkl", roots)):
            _refused(lambda: client.load_model(path, "escape", "pickle"), "path", why=why)
        # A path inside a file: the ONNX loader refuses external data outside the model's folder.
        _refused(lambda: client.load_model("external.onnx", "external"), "path", ("INVALID_ARGUMENT",),
                 "points outside the directory")
        for path in ("../../outside", "/tmp/checkpoints", "a/../../../outside", "ckpt\x00"):
            _refused(lambda: client.start_training({
                "modelType": "classification", "modelConfig": {"framework": "sklearn", "architecture": "sgd"},
                "trainingConfig": {"epochs": 1, "checkpoints": {"enabled": True, "path": path}},
                "dataConfig": {"trainDataset": data.name, "labelColumn": "label"}}),
                "training_config.checkpoints.path", ("INVALID_ARGUMENT",), "leaves the checkpoint directory")
        _refused(lambda: client.start_training({
            "modelType": "classification",
            "modelConfig": {"framework": "pytorch", "architecture": "mlp", "pretrainedPath": "/etc/passwd"},
            "dataConfig": {"trainDataset": data.name, "labelColumn": "label"}}),
            "pretrained_path", ("INVALID_ARGUMENT",), "is not a training job, a model version or a checkpoint "
                                                      "under the checkpoint directory")
        _refused(lambda: client.start_training({
            "modelType": "classification",
            "modelConfig": {"framework": "pytorch", "architecture": "mlp", "pretrainedPath": "../../../etc/passwd"},
            "dataConfig": {"trainDataset": data.name, "labelColumn": "label"}}),
            "pretrained_path", ("INVALID_ARGUMENT",), "is not a training job, a model version or a checkpoint")
        _refused(lambda: client.create_pipeline({"stages": [
            {"id": "deploy", "type": "model_deployment",
             "parameters": {"model": "projects/default/models/m/versions/1", "destination": "../../outside/m.onnx"}}]}),
            "destination", ("INVALID_ARGUMENT",), "leaves the model directory")
    assert _tree(outside) == before


def _peak_rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024


def _tar_bomb(path: Path, gib: int) -> None:
    """A gzipped tar whose one member declares `gib` GiB: a 1 MiB gzip member of zeros, repeated
    (concatenated gzip members are one valid stream), so the file is about 1 MB per GiB."""
    header = tarfile.TarInfo("saved_model.pb")
    header.size = (gib << 30) - 1024
    zeros = gzip.compress(bytes(1 << 20), compresslevel=9)
    with path.open("wb") as f:
        f.write(gzip.compress(header.tobuf(format=tarfile.PAX_FORMAT)))
        for _ in range(gib << 10):
            f.write(zeros)


def _zip_bomb(path: Path, mib: int) -> None:
    """A zip whose one member inflates to `mib` MiB of zeros: one deflated MiB, fully flushed so
    that it can be repeated, then an empty final block."""
    zero = bytes(1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(zero) + deflate.flush(zlib.Z_FULL_FLUSH)
    data = block * mib + b"\x03\x00"
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(zero, crc)
    name, size = b"archive/data.pkl", mib << 20
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(data), size, len(name), 0) + name
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(data), size, len(name),
                          0, 0, 0, 0, 0, 0) + name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local) + len(data), 0)
    path.write_bytes(local + data + central + end)


def test_oversized_csv_and_archive_bombs_are_refused_within_bounded_memory(serve_processes, tmp_path):
    data_dir = tmp_path / "data"
    process, port = serve_processes(data_dir)
    long_field = tmp_path / "long_field.csv"
    with long_field.open("w") as f:  # one 100 MB field, written in chunks
        f.write("id,text\n1,")
        for _ in range(100):
            f.write("x" * (1 << 20))
        f.write("\n2,short\n")
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"c{i}" for i in range(100_000)) + "\n" + ",".join("1" * 100_000) + "\n")
    (data_dir / "models").mkdir(parents=True)
    _tar_bomb(data_dir / "models" / "bomb.savedmodel.tar", 4)
    _zip_bomb(data_dir / "models" / "bomb.pt", 1024)
    assert (data_dir / "models" / "bomb.savedmodel.tar").stat().st_size < 8 << 20
    with Client(f"127.0.0.1:{port}") as client:
        warm = client.upload_dataset(b"id,text\n1,a\n2,b\n", format="csv")  # the upload and CSV code, warmed up
        _refused(lambda: client.load_model("missing.onnx", "warm"), "missing.onnx", ("NOT_FOUND",))
        before, files = _peak_rss(process.pid), _tree(data_dir / "models")

        for call, field in ((lambda: client.upload_dataset(long_field), "chunk"),
                            (lambda: client.create_dataset(str(long_field)), "config.source_uri")):
            error = _refused(call, field, ("INVALID_ARGUMENT",))
            assert "longer than 8388608 bytes, the server's limit on one record (--max-record-bytes)" in error.message
        for call, field in ((lambda: client.upload_dataset(wide), "chunk"),
                            (lambda: client.create_dataset(str(wide)), "config.source_uri")):
            error = _refused(call, field, ("INVALID_ARGUMENT",))
            assert "has 100000 columns, more than the server's limit of 10000 (--max-columns)" in error.message
        # Archives from outside are refused before any extraction: only the service's own are loaded.
        for name, fmt in (("bomb.savedmodel.tar", "savedmodel"), ("bomb.pt", "torch")):
            error = _refused(lambda: client.load_model(name, "bomb"), None, ("FAILED_PRECONDITION",))
            assert f"{fmt} artifacts are loaded only when this service wrote them" in error.message
        after = _peak_rss(process.pid)
        assert _tree(data_dir / "models") == files  # nothing extracted beside them
        assert [d.name for d in client.list_datasets()] == [warm.name]
    assert after - before < ALLOWED_GROWTH, f"server peak memory grew by {(after - before) >> 20} MiB"


def test_a_compressed_csv_is_refused_once_it_expands_past_the_limit(start_server, tmp_path):
    running = start_server(ingest_limits=IngestLimits(max_expanded_bytes=4 << 20))  # --max-expanded-bytes
    rows = gzip.compress(b"1,2\n" * (1 << 18), compresslevel=9)  # 1 MiB of rows in about 1 kB
    bomb = tmp_path / "rows.csv.gz"
    with bomb.open("wb") as f:
        f.write(gzip.compress(b"a,b\n"))
        for _ in range(1024):  # 1 GiB of CSV, had it been read to the end
            f.write(rows)
    with Client(running.target) as client:
        error = _refused(lambda: client.create_dataset(str(bomb)), "config.source_uri", ("INVALID_ARGUMENT",))
        assert "rows.csv.gz expands to more than 4194304 bytes when decompressed" in error.message
        (tmp_path / "fine.csv.gz").write_bytes(gzip.compress(b"a,b\n" + b"1,2\n" * 1000))
        assert client.create_dataset(str(tmp_path / "fine.csv.gz")).row_count == 1000
