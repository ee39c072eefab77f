"""export: a 500 MB model through ExportModel, against raw grpc.aio streaming the same amount.

The service side is a real `forge-training serve` process holding a 500 MB ONNX model
registered with LoadModel (an x @ W MatMul with random, incompressible weights: a big model
without minutes of training). The baseline is a bare grpc.aio server in its own process that
streams as many bytes, from memory, in 1 MiB ExportModelResponse messages: no file, no hash,
no interceptors, nothing but gRPC.

Both are read by the same clients in this process (never the servers'), one transfer at a time,
alternating, each several times (medians):
- "stream": the SDK's own reading code (`copy_export`: metadata first, contiguous offsets,
  sha256 of every byte) with the bytes discarded, so only the wire and the servers are timed;
- "sdk": `Client.export_model`, which also writes the file and fsyncs it, as a user sees it.
The target is on the stream figure (the service's MB/s over the baseline's); the SDK figures and
their ratio are reported beside it. The server hashes a local artifact whole on its first export
and again only once the file changes (ArtifactStore.verified_before), so the timed runs are the
repeated exports of an unchanged model; one that hashes (the file's ctime moved on first) is
reported on its own (`hashing_export`). Memory: the server's peak RSS during the transfers may grow
by at most a few chunks (EXPORT_RSS_GROWTH_LIMIT), never with the model.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import re
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import ResourceSampler, raw_process, result, serve_process, start_raw_server  # noqa: E402

MIB = 1 << 20
CHUNK = MIB
MODEL_BYTES = 500 * MIB
QUICK_MODEL_BYTES = 16 * MIB
RUNS = 5
QUICK_RUNS = 1
TARGET_RATIO = 0.8
# What the server's peak RSS may grow by while exporting: a few chunks in flight, not the model
# (the same bound as tests/integration/test_large_export.py).
EXPORT_RSS_GROWTH_LIMIT = 64 * MIB


# ---------------------------------------------------------------------------
# The model the service exports
# ---------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field_header(number: int, length: int) -> bytes:
    """A length-delimited protobuf field's tag and length (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(length)


def write_matmul_onnx(path: Path, width: int) -> str:
    """An ONNX model nobody trained, x [n, 4] @ W [4, width] with random float32 W (seeded,
    incompressible; 16 * width bytes of weights); returns the file's sha256. The model
    tests/conftest.py's `write_matmul_onnx` makes, written without holding W in memory.

    onnx.save would hold W four times over (array, tensor, graph, serialized bytes), which took
    17 s for 500 MB on a busy 2-core machine. Protobuf merges a message field that appears twice,
    so the file is the model without W followed by a second `graph` field holding only the W
    initializer, whose raw_data (its last field) is streamed 1 MiB at a time."""
    import numpy as np
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["variable"])], "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, width])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    weights = TensorProto(name="W", dims=[4, width], data_type=TensorProto.FLOAT).SerializeToString()
    raw_bytes = 4 * width * 4
    raw_header = _field_header(9, raw_bytes)  # TensorProto.raw_data
    tensor_bytes = len(weights) + len(raw_header) + raw_bytes
    initializer = _field_header(5, tensor_bytes)  # GraphProto.initializer
    head = (model.SerializeToString() + _field_header(7, len(initializer) + tensor_bytes)  # ModelProto.graph
            + initializer + weights + raw_header)
    rng = np.random.default_rng(0)
    digest = hashlib.sha256(head)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        out.write(head)
        for start in range(0, raw_bytes, CHUNK):
            block = rng.standard_normal(min(CHUNK, raw_bytes - start) // 4, dtype=np.float32).tobytes()
            out.write(block)
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------
# The baseline: a bare grpc.aio server streaming bytes from memory
# ---------------------------------------------------------------------------


def _raw_blocks(total: int) -> tuple[bytes, str]:
    """The 1 MiB block the raw server repeats, and the sha256 of `total` bytes of it."""
    block = os.urandom(CHUNK)
    digest = hashlib.sha256()
    for offset in range(0, total, CHUNK):
        digest.update(block[: min(CHUNK, total - offset)])
    return block, digest.hexdigest()


async def _serve_raw(total: int) -> None:
    import grpc

    from forge.training.v1 import model_pb2, trainer_service_pb2 as pb

    block, sha256 = _raw_blocks(total)
    metadata = model_pb2.ExportMetadata(size_bytes=total, sha256=sha256, filename="model.onnx")

    async def export(request, context):
        for offset in range(0, total, CHUNK):
            message = pb.ExportModelResponse(data=block[: min(CHUNK, total - offset)], offset=offset)
            if offset == 0:
                message.metadata.CopyFrom(metadata)
            yield message

    server = await start_raw_server({"ExportModel": grpc.unary_stream_rpc_method_handler(
        export, request_deserializer=pb.ExportModelRequest.FromString,
        response_serializer=pb.ExportModelResponse.SerializeToString)})
    await server.wait_for_termination()


@contextlib.contextmanager
def raw_server(total: int, log_path: Path) -> Iterator[int]:
    """The baseline server as a process of its own; yields its port."""
    with raw_process([str(Path(__file__).resolve()), "--serve-raw", str(total)], log_path) as (_, port):
        yield port


# ---------------------------------------------------------------------------
# The clients
# ---------------------------------------------------------------------------


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)


def stream_seconds(client, name: str) -> float:
    """Read one whole export with the SDK's reading and checking code, bytes discarded."""
    from forge.training.client import check_export, copy_export, export_format
    from forge.training.v1 import trainer_service_pb2

    hasher = hashlib.sha256()
    started = time.perf_counter()
    call = client.trainer.ExportModel(trainer_service_pb2.ExportModelRequest(name=name, format=export_format("onnx")))
    try:
        metadata, written = copy_export(name, call, _Discard(), hasher)
    finally:
        call.cancel()
    check_export(name, metadata, written, hasher)
    return time.perf_counter() - started


def sdk_seconds(client, name: str, path: Path) -> float:
    """Client.export_model into a file (written, fsynced, checked), as a user runs it."""
    started = time.perf_counter()
    client.export_model(name, "onnx", path)
    elapsed = time.perf_counter() - started
    path.unlink()
    return elapsed


def _peak_rss(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM): exact, where sampling may miss a spike."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024


def _mb_per_s(size: int, seconds: list[float]) -> dict:
    median = statistics.median(seconds)
    return {"mb_per_s": round(size / MIB / median, 1), "median_seconds": round(median, 3),
            "seconds": [round(s, 3) for s in seconds]}


def run(scratch: Path, quick: bool) -> list[dict]:
    from forge.training import Client

    size = QUICK_MODEL_BYTES if quick else MODEL_BYTES
    runs = QUICK_RUNS if quick else RUNS
    data_dir = scratch / "data"
    started = time.monotonic()
    sha256 = write_matmul_onnx(data_dir / "models" / "big.onnx", size // 16)
    setup = {"write_model_seconds": round(time.monotonic() - started, 1)}
    service = {"stream": [], "sdk": []}
    baseline = {"stream": [], "sdk": []}
    with serve_process(data_dir, scratch / "server.log", []) as (process, port), \
            raw_server(size, scratch / "raw-server.log") as raw_port, \
            Client(f"127.0.0.1:{port}", timeout=None) as client, \
            Client(f"127.0.0.1:{raw_port}", timeout=None) as raw_client:
        started = time.monotonic()
        version = client.load_model("big.onnx", "bench-export")
        setup["load_model_seconds"] = round(time.monotonic() - started, 1)
        if version.artifact_sha256 != sha256:
            raise RuntimeError(f"LoadModel recorded sha256 {version.artifact_sha256}, the file has {sha256}")
        model_bytes = (data_dir / "models" / "big.onnx").stat().st_size
        # One transfer each before the runs: the file into the page cache, both channels connected.
        # The service's is made to hash the file whole, as a first export after a restart does:
        # a chmod moves the file's ctime on, so the server's memory of having verified it (when
        # LoadModel hashed it) no longer holds. It is reported on its own; the timed runs export
        # the unchanged file (ArtifactStore.verified_before).
        model_path = data_dir / "models" / "big.onnx"
        model_path.chmod(model_path.stat().st_mode)
        first_export = stream_seconds(client, version.name)
        stream_seconds(raw_client, "raw")
        hwm_before = _peak_rss(process.pid)
        with ResourceSampler(process.pid, interval=0.05) as sampler:
            for _ in range(runs):
                service["stream"].append(stream_seconds(client, version.name))
                baseline["stream"].append(stream_seconds(raw_client, "raw"))
                service["sdk"].append(sdk_seconds(client, version.name, scratch / "out.onnx"))
                baseline["sdk"].append(sdk_seconds(raw_client, "raw", scratch / "out.onnx"))
        hwm_growth = _peak_rss(process.pid) - hwm_before
        resources = sampler.report()  # while the server lives: the report asks it its niceness
    measured = {"what": f"ExportModel of a {model_bytes / MIB:.0f} MiB ONNX model registered with LoadModel, from a "
                        "`forge-training serve` process",
                "model_bytes": model_bytes,
                "stream": _mb_per_s(model_bytes, service["stream"]),
                "hashing_export": _mb_per_s(model_bytes, [first_export]),
                "sdk": _mb_per_s(model_bytes, service["sdk"]),
                "server_rss_peak_growth_mib": round(hwm_growth / MIB, 1),
                "server_rss_sampled_peak_over_start_mib": round((sampler.peak_rss - sampler.start_rss) / MIB, 1),
                "server": resources["server"], "machine": resources["machine"], "setup": setup}
    base = {"what": f"a bare grpc.aio server in its own process streaming {size / MIB:.0f} MiB from memory in "
                    "1 MiB ExportModelResponse messages",
            "bytes": size,
            "stream": _mb_per_s(size, baseline["stream"]),
            "sdk": _mb_per_s(size, baseline["sdk"])}
    ratio = measured["stream"]["mb_per_s"] / base["stream"]["mb_per_s"]
    sdk_ratio = measured["sdk"]["mb_per_s"] / base["sdk"]["mb_per_s"]
    bounded = hwm_growth < EXPORT_RSS_GROWTH_LIMIT
    return [result("export", measured, base, ratio,
                   f"MB/s >= {TARGET_RATIO} x raw grpc.aio; server peak RSS growth < {EXPORT_RSS_GROWTH_LIMIT // MIB} MiB",
                   ratio >= TARGET_RATIO and bounded, sdk_ratio=round(sdk_ratio, 4),
                   memory_bounded=bounded, runs=runs)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve-raw", type=int, metavar="BYTES", help="run the baseline server (internal)")
    args = parser.parse_args(argv)
    if args.serve_raw:
        asyncio.run(_serve_raw(args.serve_raw))
        return 0
    parser.error("run it through bench/run.py --only export")
    return 2


if __name__ == "__main__":
    sys.exit(main())
