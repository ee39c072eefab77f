"""kill -9 of the server during training: after the restart every job is there, jobs with a
checkpoint resume from it by themselves, and metric history continues without gaps or repeats."""

from __future__ import annotations

import os
import signal
import time

from forge.training import Client, common_pb2


def _spec(dataset: str, epochs: int, checkpoints: bool) -> dict:
    return {
        "modelType": "classification",
        "modelConfig": {"framework": "sklearn", "architecture": "sgd"},
        "trainingConfig": {"epochs": epochs, "seed": 3,
                           **({"checkpoints": {"enabled": True, "everyNEpochs": 5}} if checkpoints else {})},
        "dataConfig": {"trainDataset": dataset, "labelColumn": "target"},
    }


def _wait_for_epoch(client: Client, name: str, epoch: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while client.get_job(name).current_epoch < epoch:
        assert time.monotonic() < deadline, f"{name} did not reach epoch {epoch}"
        time.sleep(0.05)


def test_jobs_survive_a_killed_server(serve_processes, breast_cancer_csv, tmp_path):
    data_dir = tmp_path / "data"
    process, port = serve_processes(data_dir)
    with Client(f"127.0.0.1:{port}") as client:
        data = client.upload_dataset(breast_cancer_csv, dataset_id="bc-crash", label_column="target")
        resumable = client.start_training(_spec(data.name, 3000, checkpoints=True), training_job_id="resumable")
        fragile = client.start_training(_spec(data.name, 3000, checkpoints=False), training_job_id="fragile")
        _wait_for_epoch(client, resumable.name, 23)
        _wait_for_epoch(client, fragile.name, 3)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)

    _, port = serve_processes(data_dir)
    with Client(f"127.0.0.1:{port}") as client:
        lost = client.get_job("fragile")
        assert lost.state == common_pb2.JOB_STATE_FAILED and "no checkpoint" in lost.error.message
        done = client.wait(resumable.name, timeout=240)
        assert done.state == common_pb2.JOB_STATE_COMPLETED, done.state_message
        assert done.attempt_count == 2
        points = list(client.watch_metrics(resumable.name, follow=False))
        assert [p.epoch for p in points] == list(range(1, 3001))  # every epoch once
        assert [p.sequence for p in points] == list(range(1, 3001))  # no gaps, no repeats
        logs = [e.message for e in client.stream_logs(resumable.name, follow=False)]
        assert any(m.startswith("the server stopped while it ran: resuming after the checkpoint of epoch")
                   for m in logs)
        assert any(m.startswith("resumed from the checkpoint of epoch") for m in logs)
        assert any("no checkpoint to resume from" in e.message for e in client.stream_logs(lost.name, follow=False))
