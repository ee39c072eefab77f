"""A regression job's metrics, and `forge-training serve` as a real process (SIGTERM)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from forge.training import Client, common_pb2


def test_regression_reports_rmse_mae_r2(client, tmp_path):
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame
    path = tmp_path / "diabetes.parquet"
    frame.to_parquet(path)
    ds = client.create_dataset(str(path), dataset_id="diabetes", label_column="target")
    train, test = client.split_dataset(ds.name, [0.8, 0.2], seed=3)
    job = client.start_training({
        "modelType": "regression",
        "modelConfig": {"framework": "sklearn", "architecture": "random_forest"},
        "trainingConfig": {"epochs": 4, "seed": 3},
        "dataConfig": {"trainDataset": train.name, "testDataset": test.name, "labelColumn": "target"},
    })
    points = list(client.watch_metrics(job.name))
    assert [p.epoch for p in points] == [1, 2, 3, 4]
    for p in points:
        assert p.HasField("rmse") and p.HasField("mae") and p.HasField("r2")
        assert not p.HasField("accuracy")
        assert 20 < p.rmse < 100 and p.mae < p.rmse
    done = client.wait(job.name, timeout=60)
    assert done.state == common_pb2.JOB_STATE_COMPLETED
    assert 0.2 < done.test_metrics["r2"] < 1
    assert done.test_metrics["rmse"] > 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_process_stops_on_sigterm_within_seconds(tmp_path):
    port = _free_port()
    env = {**os.environ, "FORGE_TRAINING_DATA_DIR": str(tmp_path / "data")}
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--address", f"127.0.0.1:{port}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=60)
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status
            assert status == health_pb2.HealthCheckResponse.SERVING
        with Client(f"127.0.0.1:{port}") as c:
            assert list(c.list_jobs()) == []
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 0, output
        assert time.monotonic() - started < 15
        assert "serving on 127.0.0.1" in output and "stopped" in output
        assert (tmp_path / "data" / "forge.db").exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.mark.parametrize("flag", ["--max-concurrent-jobs=0"])
def test_serve_rejects_bad_flags(flag, tmp_path):
    result = subprocess.run([sys.executable, "-m", "server", "serve", flag, "--data-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "--max-concurrent-jobs must be at least 1" in result.stderr
