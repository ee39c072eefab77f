"""A 200 MB model leaves the server in 1 MiB chunks without the server's memory growing with it.

The server runs as its own process (`forge-training serve`), so its peak resident memory
(VmHWM) is its own and not this test's, which builds the 200 MB file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from forge.training import Client

MODEL_BYTES = 200 * 1024 * 1024
# What the server may add to its peak while exporting: a few chunks in flight, not the model.
ALLOWED_GROWTH = 64 * 1024 * 1024


def _peak_rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024


def test_a_200mb_model_exports_with_bounded_server_memory(serve_processes, write_matmul_onnx, tmp_path):
    data_dir = tmp_path / "data"
    process, port = serve_processes(data_dir)
    digest = write_matmul_onnx(data_dir / "models" / "big.onnx", MODEL_BYTES // 16)
    with Client(f"127.0.0.1:{port}") as client:
        version = client.load_model("big.onnx", "big")  # inspected in a child process
        assert version.artifact_sha256 == digest
        before = _peak_rss(process.pid)
        meta = client.export_model(version.name, "onnx", tmp_path / "out.onnx")
        after = _peak_rss(process.pid)
    assert meta.size_bytes >= MODEL_BYTES and meta.sha256 == digest
    assert (tmp_path / "out.onnx").stat().st_size == meta.size_bytes
    assert after - before < ALLOWED_GROWTH, f"server peak memory grew by {(after - before) >> 20} MiB"
