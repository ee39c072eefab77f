"""One configuration, as a user meets it: `forge-training serve --config forge.yaml` (the seed's
TrainingConfiguration) and a server with training disabled."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap

import grpc
import psutil
import pytest

from forge.training import Client, ForgeTrainingError, common_pb2

SKLEARN_JOB = {
    "modelType": "classification",
    "modelConfig": {"framework": "sklearn", "architecture": "sgd"},
    "trainingConfig": {"epochs": 3, "seed": 1, "checkpoints": {"enabled": True, "saveLatest": True}},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_runs_from_the_seeds_configuration_file(tmp_path, breast_cancer_csv):
    port = _free_port()
    config = tmp_path / "forge.yaml"
    config.write_text(textwrap.dedent(f"""\
        enabled: true
        data_path: {tmp_path / 'data'}
        checkpoint_path: {tmp_path / 'checkpoints'}
        model_path: {tmp_path / 'training-storage'}
        max_concurrent_jobs: 1
        default_resources:
          cpu: 1
          gpu: 0
          timeout: 10m
          priority: 3
        storage:
          type: local
        server:
          address: 127.0.0.1:{port}
          warm_workers: 0
          observability:
            log_format: json
        """))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_TRAINING_")}
    env["FORGE_TRAINING_MAX_CONCURRENT_JOBS"] = "2"  # the environment overrides the file
    process = subprocess.Popen([sys.executable, "-m", "server", "serve", "--config", str(config)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with Client(f"127.0.0.1:{port}") as client:
            grpc.channel_ready_future(client._base_channel).result(timeout=60)
            data = client.upload_dataset(breast_cancer_csv, dataset_id="bc-config", label_column="target")
            job = client.start_training({**SKLEARN_JOB, "dataConfig": {"trainDataset": data.name,
                                                                        "labelColumn": "target"}})
            # The job records the defaults it was given.
            assert (job.spec.resources.cpu, job.spec.resources.priority) == ("1", 3)
            done = client.wait(job.name, timeout=120)
            assert done.state == common_pb2.JOB_STATE_COMPLETED, done.error
            assert done.checkpoint_epoch == 3
        checkpoints = list((tmp_path / "checkpoints").rglob("*.ckpt"))
        assert checkpoints and all("default" in c.parts for c in checkpoints)
        assert not (tmp_path / "data" / "checkpoints").exists()
        assert list((tmp_path / "training-storage" / "artifacts").rglob("*.onnx"))  # model_path
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
        assert process.returncode == 0, output
        assert f"serving on 127.0.0.1:{port}" in output and f"configuration from {config}" in output
        assert "2 concurrent jobs" in output  # FORGE_TRAINING_MAX_CONCURRENT_JOBS over the file's 1
        assert output.lstrip().startswith("{")  # observability.log_format: json
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_a_bad_configuration_file_stops_serve_with_one_line(tmp_path):
    config = tmp_path / "forge.yaml"
    config.write_text("default_resources:\n  memory: lots\n")
    result = subprocess.run([sys.executable, "-m", "server", "serve", "--config", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"(set by default_resources.memory in {config})" in result.stderr


def test_with_training_disabled_nothing_trains_and_no_worker_starts(start_server, breast_cancer_csv):
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    server = start_server(training_enabled=False)
    assert {p.pid for p in psutil.Process().children(recursive=True)} - before == set()
    with Client(server.target) as client:
        data = client.upload_dataset(breast_cancer_csv, dataset_id="bc-no-training", label_column="target")
        request = {**SKLEARN_JOB, "dataConfig": {"trainDataset": data.name, "labelColumn": "target"}}
        with pytest.raises(ForgeTrainingError) as refused:
            client.start_training(request)
        assert refused.value.code == grpc.StatusCode.UNAVAILABLE
        assert "training is disabled on this server" in refused.value.message
        with pytest.raises(ForgeTrainingError) as refused:
            client.start_tuning({"baseRequest": request, "parameters": [
                {"path": "training_config.learning_rate", "doubleRange": {"min": 0.01, "max": 0.1}}],
                "objectiveMetric": "val_loss", "maxTrials": 2})
        assert refused.value.code == grpc.StatusCode.UNAVAILABLE
        pipeline = client.create_pipeline({"stages": [{"id": "train", "type": "model_training",
                                                       "parameters": {"request": request}}]})
        with pytest.raises(ForgeTrainingError) as refused:
            client.execute_pipeline(pipeline.name)
        assert refused.value.code == grpc.StatusCode.UNAVAILABLE
        # What needs no worker still works.
        assert [d.name for d in client.list_datasets()] == [data.name] and list(client.list_jobs()) == []
    assert {p.pid for p in psutil.Process().children(recursive=True)} - before == set()
