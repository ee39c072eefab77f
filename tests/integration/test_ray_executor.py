"""`--executor ray`: jobs run as Ray tasks on a cluster (a local head here: FORGE_TEST_RAY_ADDRESS,
which .ci/run starts, or one the ray_address fixture starts), and a user sees exactly what a
local worker gives: the same metric and log streams with the same sequences, the exported
model, pause, resume and cancel, and a killed worker resumed from its checkpoint."""

from __future__ import annotations

import os
import re
import signal
import time

import grpc
import numpy as np
import psutil
import pytest

from forge.training import ForgeTrainingError, common_pb2
from forge.training.inference import Model


@pytest.fixture(scope="module")
def ray_server(module_server, ray_address):
    return module_server(executor="ray", ray_address=ray_address)


@pytest.fixture(scope="module")
def ray_client(ray_server):
    from forge.training import Client

    with Client(ray_server.target) as c:
        yield c


@pytest.fixture(scope="module")
def bc(ray_client, breast_cancer_csv):
    return ray_client.upload_dataset(breast_cancer_csv, dataset_id="bc-ray", label_column="target")


def _spec(dataset: str, framework: str = "sklearn", architecture: str = "sgd", epochs: int = 5,
          checkpoint_every: int = 0, max_retries: int = 0, **resources) -> dict:
    training = {"epochs": epochs, "seed": 4, "retryPolicy": {"maxRetries": max_retries}}
    if checkpoint_every:
        training["checkpoints"] = {"enabled": True, "everyNEpochs": checkpoint_every}
    return {"modelType": "classification", "modelConfig": {"framework": framework, "architecture": architecture},
            "trainingConfig": training, "dataConfig": {"trainDataset": dataset, "labelColumn": "target"},
            "resources": resources}


def _assert_the_export_predicts(client, job: str, tmp_path, frame, accuracy: float) -> None:
    """The job's ONNX export, downloaded whole (size and sha256 checked by the SDK), labels the
    first 60 rows of the data with at least `accuracy`."""
    path = tmp_path / "model.onnx"
    meta = client.export_model(job, "onnx", path)
    assert meta.size_bytes == path.stat().st_size > 0
    predicted = np.asarray(Model.from_file(path).predict(frame.drop(columns=["target"]).head(60)))
    assert np.mean(predicted == frame["target"].head(60).astype(str).to_numpy()) >= accuracy


def _logs(client, name: str) -> list[str]:
    return [e.message for e in client.stream_logs(name, follow=False)]


def test_an_xgboost_job_runs_as_a_ray_task_and_exports_a_working_model(ray_client, bc, tmp_path, worker_pid,
                                                                       breast_cancer_frame):
    job = ray_client.start_training(_spec(bc.name, "xgboost", "classifier", epochs=8), training_job_id="on-ray")
    points = list(ray_client.watch_metrics(job.name))  # live, until the job ends
    done = ray_client.get_job(job.name)
    assert done.state == common_pb2.JOB_STATE_COMPLETED, done.state_message
    assert [p.epoch for p in points] == list(range(1, 9))
    assert [p.sequence for p in points] == list(range(1, 9))
    assert all(p.validation_loss > 0 for p in points) and points[-1].accuracy > 0.9

    # The worker was a Ray worker process, not a process of the server's.
    pid = worker_pid(ray_client, job.name)
    assert pid not in {p.pid for p in psutil.Process().children(recursive=True)}
    logs = _logs(ray_client, job.name)
    assert [m for m in logs if m.startswith("epoch 8/8")], logs

    _assert_the_export_predicts(ray_client, job.name, tmp_path, breast_cancer_frame, 0.9)


def test_pause_resume_and_cancel_reach_the_ray_task(ray_client, ray_server, bc, worker_pid, wait_for_epoch):
    job = ray_client.start_training(_spec(bc.name, epochs=4000, checkpoint_every=10), training_job_id="ray-pause")
    wait_for_epoch(ray_client, job.name, 15)
    # Monitoring (/metrics): the task's processes are not on this machine, so no CPU time;
    # its memory is what the worker measured with its last epoch.
    running = {w.job: w for w in ray_server.engine.trainer.worker_resources()}[job.name]
    assert running.cpu_seconds is None and running.memory_bytes > 10 * 2**20
    paused = ray_client.pause(job.name, wait=True, timeout=120)
    assert paused.state == common_pb2.JOB_STATE_PAUSED, paused.state_message
    at = paused.current_epoch

    ray_client.resume(job.name)
    second = worker_pid(ray_client, job.name, attempt=2)
    assert second != worker_pid(ray_client, job.name, attempt=1)
    wait_for_epoch(ray_client, job.name, at + 10)
    assert f"resumed from the checkpoint of epoch {at}" in _logs(ray_client, job.name)

    cancelled = ray_client.cancel(job.name, wait=True, timeout=120)
    assert cancelled.state == common_pb2.JOB_STATE_CANCELLED, cancelled.state_message
    points = list(ray_client.watch_metrics(job.name, follow=False))
    assert [p.sequence for p in points] == list(range(1, len(points) + 1))
    assert [p.epoch for p in points] == list(range(1, cancelled.current_epoch + 1))


def test_a_killed_ray_worker_resumes_from_its_checkpoint_on_another(ray_client, bc, worker_pid, wait_for_epoch):
    job = ray_client.start_training(_spec(bc.name, epochs=600, checkpoint_every=5, max_retries=1),
                                    training_job_id="ray-killed")
    first = worker_pid(ray_client, job.name)
    wait_for_epoch(ray_client, job.name, 12)
    os.kill(first, signal.SIGKILL)

    second = worker_pid(ray_client, job.name, attempt=2)
    assert second != first
    retried = [m for m in _logs(ray_client, job.name) if m.startswith("worker died")]
    found = re.fullmatch(r"worker died \(SIGKILL\); retrying from checkpoint epoch (\d+) \(retry 1 of 1\)",
                         retried[0]) if len(retried) == 1 else None
    assert found, retried
    done = ray_client.wait(job.name, timeout=300)
    assert done.state == common_pb2.JOB_STATE_COMPLETED, done.state_message
    assert done.attempt_count == 2 and done.current_epoch == 600
    assert f"resumed from the checkpoint of epoch {found.group(1)}" in _logs(ray_client, job.name)
    points = list(ray_client.watch_metrics(job.name, follow=False))
    assert [p.epoch for p in points] == list(range(1, 601))  # each epoch once, no gap
    assert [p.sequence for p in points] == list(range(1, 601))


def test_a_killed_server_takes_its_ray_tasks_with_it_and_the_restarted_one_resumes(serve_processes, ray_address,
                                                                                   tmp_path, breast_cancer_csv,
                                                                                   worker_pid, wait_for_epoch):
    from forge.training import Client

    data_dir = tmp_path / "data"
    flags = ("--executor", "ray", "--ray-address", ray_address)
    process, port = serve_processes(data_dir, *flags)
    with Client(f"127.0.0.1:{port}") as c:
        data = c.upload_dataset(breast_cancer_csv, dataset_id="bc", label_column="target")
        job = c.start_training(_spec(data.name, epochs=400, checkpoint_every=5), training_job_id="outlived")
        worker = worker_pid(c, job.name)
        wait_for_epoch(c, job.name, 12)
    process.kill()
    process.wait(30)
    # The task belonged to the server's Ray driver: Ray stops it, so no orphan trains on
    # beside the job's next worker.
    deadline = time.monotonic() + 60
    while psutil.pid_exists(worker) and psutil.Process(worker).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the killed server's Ray task is still running"
        time.sleep(0.2)

    process, port = serve_processes(data_dir, *flags)
    with Client(f"127.0.0.1:{port}") as c:
        done = c.wait(job.name, timeout=300)
        assert done.state == common_pb2.JOB_STATE_COMPLETED, done.state_message
        assert done.current_epoch == 400
        assert [m for m in _logs(c, job.name) if m.startswith("resumed from the checkpoint of epoch")]
        points = list(c.watch_metrics(job.name, follow=False))
        assert [p.epoch for p in points] == list(range(1, 401))
        assert [p.sequence for p in points] == list(range(1, 401))


def test_resources_become_ray_requests_and_impossible_ones_are_refused_at_once(ray_client, bc):
    with pytest.raises(ForgeTrainingError) as refused:
        ray_client.start_training(_spec(bc.name, cpu="64"), training_job_id="too-big")
    assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "no node of the Ray cluster has 64 CPUs" in refused.value.message
    assert "resources.cpu" in refused.value.message

    with pytest.raises(ForgeTrainingError) as bad:
        ray_client.start_training(_spec(bc.name, cpu="two"), training_job_id="bad-cpu")
    assert bad.value.code == grpc.StatusCode.INVALID_ARGUMENT and "resources.cpu" in bad.value.message

    fits = ray_client.start_training(_spec(bc.name, cpu="500m", memory="256Mi"), training_job_id="fits")
    done = ray_client.wait(fits.name, timeout=180)
    assert done.state == common_pb2.JOB_STATE_COMPLETED, done.state_message


def test_a_pytorch_job_trains_on_two_data_parallel_ray_workers(ray_client, bc, tmp_path, breast_cancer_frame,
                                                              wait_for_epoch):
    spec = _spec(bc.name, "pytorch", "mlp", epochs=40, checkpoint_every=2)
    spec["resources"]["workers"] = 2
    spec["trainingConfig"]["batchSize"] = 32
    job = ray_client.start_training(spec, training_job_id="ddp")
    wait_for_epoch(ray_client, job.name, 3, timeout=300)
    # Pause and resume reach both workers at the same epoch (rank 0's command, broadcast).
    paused = ray_client.pause(job.name, wait=True, timeout=180)
    assert paused.state == common_pb2.JOB_STATE_PAUSED, paused.state_message
    ray_client.resume(job.name)
    done = ray_client.wait(job.name, timeout=300)
    assert done.state == common_pb2.JOB_STATE_COMPLETED, done.state_message
    logs = _logs(ray_client, job.name)
    assert "training on 2 data-parallel workers (DistributedDataParallel)" in logs
    assert f"resumed from the checkpoint of epoch {paused.current_epoch}" in logs

    points = list(ray_client.watch_metrics(job.name, follow=False))
    assert [p.epoch for p in points] == list(range(1, 41))
    assert [p.sequence for p in points] == list(range(1, 41))
    # Each worker took half of the training rows: 8 batches of 32, not the 16 of one worker.
    training_rows = int(logs[[m.startswith("data: ") for m in logs].index(True)].split()[1])
    assert points[-1].extra["batches"] == -(-(training_rows // 2) // 32)
    assert points[-1].validation_loss < points[0].validation_loss

    _assert_the_export_predicts(ray_client, job.name, tmp_path, breast_cancer_frame, 0.85)


def test_a_data_parallel_job_that_loses_a_worker_resumes_from_its_checkpoint(ray_client, bc, wait_for_epoch):
    spec = _spec(bc.name, "pytorch", "mlp", epochs=120, checkpoint_every=5, max_retries=1)
    spec["resources"]["workers"] = 2
    job = ray_client.start_training(spec, training_job_id="ddp-lost")
    wait_for_epoch(ray_client, job.name, 12, timeout=300)
    workers = [p for p in psutil.process_iter(["cmdline"])
               if any("RayTrainWorker" in part for part in (p.info["cmdline"] or []))]
    assert len(workers) == 2, workers
    workers[1].kill()

    done = ray_client.wait(job.name, timeout=300)
    assert done.state == common_pb2.JOB_STATE_COMPLETED, done.state_message
    assert done.attempt_count == 2 and done.current_epoch == 120
    logs = _logs(ray_client, job.name)
    retried = [m for m in logs if m.startswith("worker died")]
    found = re.fullmatch(r"worker died \(SIGKILL\); retrying from checkpoint epoch (\d+) \(retry 1 of 1\)",
                         retried[0]) if len(retried) == 1 else None
    assert found, retried
    assert f"resumed from the checkpoint of epoch {found.group(1)}" in logs
    points = list(ray_client.watch_metrics(job.name, follow=False))
    assert [p.epoch for p in points] == list(range(1, 121))


def test_an_xgboost_job_trains_on_two_data_parallel_ray_workers(ray_client, bc, tmp_path, breast_cancer_frame):
    spec = _spec(bc.name, "xgboost", "classifier", epochs=20, checkpoint_every=5)
    spec["resources"]["workers"] = 2
    job = ray_client.start_training(spec, training_job_id="xgb-ddp")
    done = ray_client.wait(job.name, timeout=300)
    assert done.state == common_pb2.JOB_STATE_COMPLETED, done.state_message
    logs = _logs(ray_client, job.name)
    assert "training on 2 data-parallel workers (XGBoost's collective)" in logs
    # Rank 0 reports its own share: half of the training rows (the other worker has the rest).
    single = ray_client.start_training(_spec(bc.name, "xgboost", "classifier", epochs=20), training_job_id="xgb-one")
    assert ray_client.wait(single.name, timeout=300).state == common_pb2.JOB_STATE_COMPLETED
    rows = {name: int(next(m for m in _logs(ray_client, name) if m.startswith("data: ")).split()[1])
            for name in (job.name, single.name)}
    assert rows[job.name] == -(-rows[single.name] // 2)
    assert f"training rows (this worker's share of {rows[single.name]})," in \
        next(m for m in logs if m.startswith("data: "))

    points = list(ray_client.watch_metrics(job.name, follow=False))
    assert [p.epoch for p in points] == list(range(1, 21))
    one = list(ray_client.watch_metrics(single.name, follow=False))
    # Histograms summed over both workers: the same data, so nearly the same model as one worker's.
    assert abs(points[-1].validation_loss - one[-1].validation_loss) < 0.05
    assert points[-1].validation_loss < points[0].validation_loss

    _assert_the_export_predicts(ray_client, job.name, tmp_path, breast_cancer_frame, 0.9)


def test_data_parallel_requests_are_checked_naming_the_field(ray_client, client, bc, breast_cancer_csv):
    spec = _spec(bc.name, "pytorch", "mlp")
    with pytest.raises(ForgeTrainingError) as too_many:
        ray_client.start_training({**spec, "resources": {"workers": 3, "cpu": "1"}}, training_job_id="ddp-too-many")
    assert too_many.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "resources.workers: the Ray cluster has room for 2 workers of 1 CPU each, not 3" in too_many.value.message

    with pytest.raises(ForgeTrainingError) as other_framework:
        ray_client.start_training({**_spec(bc.name), "resources": {"workers": 2}}, training_job_id="ddp-sklearn")
    assert other_framework.value.code == grpc.StatusCode.UNIMPLEMENTED
    assert "resources.workers" in other_framework.value.message
    assert "implemented for PyTorch and XGBoost, not for sklearn" in other_framework.value.message

    with pytest.raises(ForgeTrainingError) as negative:
        ray_client.start_training({**spec, "resources": {"workers": -1}}, training_job_id="ddp-negative")
    assert negative.value.code == grpc.StatusCode.INVALID_ARGUMENT and "resources.workers" in negative.value.message

    # A server with local workers (the session's) cannot spread a job over several.
    local = client.upload_dataset(breast_cancer_csv, dataset_id="bc-ddp-local", label_column="target")
    with pytest.raises(ForgeTrainingError) as not_on_ray:
        client.start_training({**_spec(local.name, "pytorch", "mlp"), "resources": {"workers": 2}},
                              training_job_id="ddp-local")
    assert not_on_ray.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "need a server on a Ray cluster (forge-training serve --executor ray" in not_on_ray.value.message
