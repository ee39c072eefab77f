"""Races and bad input found in review: each test pins one fix."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import grpc
import pytest

from forge.training import Client, ForgeTrainingError, common_pb2, data_service_pb2, trainer_service_pb2


def _sgd(dataset: str, epochs: int = 5000, **resources) -> dict:
    return {
        "modelType": "classification",
        "modelConfig": {"framework": "sklearn", "architecture": "sgd"},
        "trainingConfig": {"epochs": epochs, "seed": 1},
        "dataConfig": {"trainDataset": dataset, "labelColumn": "target"},
        "resources": resources,
    }


@pytest.fixture(scope="module")
def bc(client, breast_cancer_csv):
    return client.upload_dataset(breast_cancer_csv, dataset_id="bc-hardening", label_column="target")


def _first_points(client, job, n=2):
    for i, _ in enumerate(client.watch_metrics(job), start=1):
        if i == n:
            return


@pytest.mark.parametrize("delay", [0.0, 0.05])
def test_cancel_right_after_pause_ends_cancelled(client, bc, delay):
    job = client.start_training(_sgd(bc.name))
    _first_points(client, job.name)
    client.pause(job.name)
    time.sleep(delay)
    client.cancel(job.name)
    assert client.wait(job.name, timeout=30).state == common_pb2.JOB_STATE_CANCELLED


def test_timeout_fails_a_job_that_reports_often(client, bc):
    job = client.start_training(_sgd(bc.name, timeout="1.5s"))
    done = client.wait(job.name, timeout=60)
    assert done.state == common_pb2.JOB_STATE_FAILED
    assert done.error.code == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert "timeout of 1.5 seconds" in done.error.message


def test_deleting_the_dataset_of_a_queued_job_fails_that_job_only(start_server, tmp_path, breast_cancer_csv):
    server = start_server(tmp_path / "wedge", max_concurrent_jobs=1)
    with Client(server.target) as c:
        kept = c.upload_dataset(breast_cancer_csv, dataset_id="kept", label_column="target")
        doomed = c.upload_dataset(breast_cancer_csv, dataset_id="doomed", label_column="target")
        blocker = c.start_training(_sgd(kept.name), training_job_id="blocker")
        c.wait(blocker.name, states=["running"], timeout=30)
        orphan = c.start_training(_sgd(doomed.name), training_job_id="orphan")
        after = c.start_training(_sgd(kept.name, epochs=3), training_job_id="after")
        c.delete_dataset(doomed.name)
        c.cancel(blocker.name, wait=True, timeout=30)
        failed = c.wait(orphan.name, timeout=30)
        assert failed.state == common_pb2.JOB_STATE_FAILED
        assert "failed before it started" in failed.state_message and "not found" in failed.error.message
        assert c.wait(after.name, timeout=60).state == common_pb2.JOB_STATE_COMPLETED


def test_concurrent_creates_with_one_id_give_one_dataset_and_already_exists(client, breast_cancer_csv):
    outcomes: list[str] = []

    def create():
        try:
            client.create_dataset(str(breast_cancer_csv), dataset_id="raced", label_column="target")
            outcomes.append("OK")
        except ForgeTrainingError as err:
            outcomes.append(err.code.name)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ALREADY_EXISTS"] * 3 + ["OK"]
    rows, total = client.get_records("raced", limit=1)
    assert total == 569 and rows


def test_unknown_enum_values_and_bad_settings_are_invalid_argument(server, bc):
    with grpc.insecure_channel(server.target) as channel:
        start = channel.unary_unary(
            "/forge.training.v1.TrainerService/StartTraining",
            request_serializer=trainer_service_pb2.StartTrainingRequest.SerializeToString,
            response_deserializer=trainer_service_pb2.StartTrainingResponse.FromString,
        )
        request = trainer_service_pb2.StartTrainingRequest()
        request.spec.model_type = 99
        with pytest.raises(grpc.RpcError) as err:
            start(request, timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "model_type: 99 is not a ModelType: use one of classification" in err.value.details()
    with Client(server.target) as c:
        spec = _sgd(bc.name, epochs=5)
        spec["trainingConfig"]["earlyStopping"] = {"enabled": True, "minDelta": -1}
        with pytest.raises(ForgeTrainingError) as err:
            c.start_training(spec)
        assert err.value.field_violations[0].field == "training_config.early_stopping.min_delta"
        spec["trainingConfig"]["earlyStopping"] = {"enabled": True, "metric": "val_acc"}
        with pytest.raises(ForgeTrainingError) as err:
            c.start_training(spec)
        assert err.value.field_violations[0].field == "training_config.early_stopping.metric"


def test_upload_checks_metadata_first_and_names_upload_fields(server):
    with Client(server.target) as c:
        with pytest.raises(ForgeTrainingError) as err:
            c.upload_dataset(b"a,b\n", format="csv", label_column="a")
        assert err.value.field_violations[0].field == "chunk"
        assert "uploaded.csv has no data rows" in err.value.message
    with grpc.insecure_channel(server.target) as channel:
        upload = channel.stream_unary(
            "/forge.training.v1.DataService/UploadDataset",
            request_serializer=data_service_pb2.UploadDatasetRequest.SerializeToString,
            response_deserializer=data_service_pb2.UploadDatasetResponse.FromString,
        )

        def endless():
            meta = data_service_pb2.UploadDatasetRequest()
            meta.metadata.format = 1
            meta.metadata.size_bytes = 1 << 40
            yield meta
            while True:  # never sent: the server answers after the metadata
                time.sleep(0.05)
                yield data_service_pb2.UploadDatasetRequest(chunk=b"x" * 1024)

        with pytest.raises(grpc.RpcError) as err:
            upload(endless(), timeout=20)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_datasets_cannot_be_read_from_the_data_dir(client, server):
    with pytest.raises(ForgeTrainingError) as err:
        client.create_dataset(str(server.engine.settings.data_dir / "forge.db"), format="csv")
    assert err.value.field_violations[0].field == "config.source_uri"
    assert "data directory" in err.value.message


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ctrl_c_on_the_process_group_pauses_running_jobs(tmp_path, breast_cancer_csv, start_server, database_flags):
    port = _free_port()
    data_dir = tmp_path / "ctrl-c"
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--address", f"127.0.0.1:{port}", "--data-dir", str(data_dir),
         *database_flags(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=60)
        with Client(f"127.0.0.1:{port}") as c:
            ds = c.upload_dataset(breast_cancer_csv, dataset_id="bc", label_column="target")
            job = c.start_training(_sgd(ds.name), training_job_id="interrupted")
            _first_points(c, job.name, 3)
        os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        output, _ = process.communicate(timeout=60)
        assert process.returncode == 0, output
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    restarted = start_server(data_dir)
    with Client(restarted.target) as c:
        job = c.get_job("interrupted")
        assert job.state == common_pb2.JOB_STATE_PAUSED, job.state_message
        assert job.checkpoint_epoch >= 3
