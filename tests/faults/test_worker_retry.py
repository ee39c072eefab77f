"""kill -9 of a worker (or of the server) whose job has a retry policy: the job resumes from its
last checkpoint (or starts over without one) until its retries run out; metrics stay without
gaps or repeats; other jobs are unaffected. Timeouts are never retried."""

from __future__ import annotations

import os
import re
import signal

import grpc
import pytest

from forge.training import Client, ForgeTrainingError, common_pb2


@pytest.fixture(scope="module")
def bc(client, breast_cancer_csv):
    return client.upload_dataset(breast_cancer_csv, dataset_id="bc-worker-retry", label_column="target")


def _sgd(dataset: str, epochs: int, max_retries: int, checkpoint_every: int = 0, **resources) -> dict:
    training = {"epochs": epochs, "seed": 4, "retryPolicy": {"maxRetries": max_retries}}
    if checkpoint_every:
        training["checkpoints"] = {"enabled": True, "everyNEpochs": checkpoint_every}
    return {"modelType": "classification",
            "modelConfig": {"framework": "sklearn", "architecture": "sgd"},
            "trainingConfig": training,
            "dataConfig": {"trainDataset": dataset, "labelColumn": "target"},
            "resources": resources}


def _logs(client, name: str) -> list[str]:
    return [e.message for e in client.stream_logs(name, follow=False)]


def _assert_each_epoch_once(client, name: str, last: int) -> None:
    points = list(client.watch_metrics(name, follow=False))
    assert [p.epoch for p in points] == list(range(1, last + 1))
    assert [p.sequence for p in points] == list(range(1, last + 1))


def test_a_killed_worker_resumes_from_its_checkpoint_until_its_retries_run_out(client, bc, worker_pid, wait_for_epoch):
    victim = client.start_training(_sgd(bc.name, 3000, max_retries=1, checkpoint_every=5), training_job_id="retried")
    bystander = client.start_training(_sgd(bc.name, 600, max_retries=0), training_job_id="retry-bystander")
    first = worker_pid(client, victim.name, attempt=1)
    wait_for_epoch(client, victim.name, 12)
    wait_for_epoch(client, bystander.name, 2)
    os.kill(first, signal.SIGKILL)

    second = worker_pid(client, victim.name, attempt=2)
    assert second != first
    retried = [m for m in _logs(client, victim.name) if m.startswith("worker died")]
    assert len(retried) == 1, retried
    found = re.fullmatch(r"worker died \(SIGKILL\); retrying from checkpoint epoch (\d+) \(retry 1 of 1\)", retried[0])
    assert found, retried[0]
    checkpoint = int(found.group(1))
    assert checkpoint >= 10 and checkpoint % 5 == 0
    # The new worker trains on from there, past where the first one died.
    died_at = client.get_job(victim.name).current_epoch
    wait_for_epoch(client, victim.name, died_at + 10)
    assert f"resumed from the checkpoint of epoch {checkpoint}" in _logs(client, victim.name)
    assert client.get_job(bystander.name).state == common_pb2.JOB_STATE_RUNNING

    os.kill(second, signal.SIGKILL)  # no retry left
    failed = client.wait(victim.name, timeout=60)
    assert failed.state == common_pb2.JOB_STATE_FAILED
    assert failed.error.code == grpc.StatusCode.INTERNAL.value[0]
    assert "killed by SIGKILL" in failed.error.message
    assert "retried 1 time, all that training_config.retry_policy.max_retries allows" in failed.error.message
    assert failed.attempt_count == 2
    _assert_each_epoch_once(client, victim.name, failed.current_epoch)

    done = client.wait(bystander.name, timeout=120)
    assert done.state == common_pb2.JOB_STATE_COMPLETED and done.current_epoch == 600
    assert done.attempt_count == 1


def test_a_killed_worker_without_a_checkpoint_starts_over_and_records_each_epoch_once(client, bc, worker_pid,
                                                                                     wait_for_epoch):
    job = client.start_training(_sgd(bc.name, 400, max_retries=2), training_job_id="retried-from-scratch")
    pid = worker_pid(client, job.name)
    wait_for_epoch(client, job.name, 20)
    os.kill(pid, signal.SIGKILL)

    done = client.wait(job.name, timeout=120)
    assert done.state == common_pb2.JOB_STATE_COMPLETED, done.state_message
    assert done.attempt_count == 2 and done.current_epoch == 400
    logs = _logs(client, job.name)
    assert ("worker died (SIGKILL); retrying from the first epoch (no checkpoint was written) (retry 1 of 2)"
            in logs)
    # Epochs 1..k ran twice; the second run's points for them were dropped.
    _assert_each_epoch_once(client, job.name, 400)


def test_a_killed_server_restarts_a_job_without_a_checkpoint_when_its_policy_allows(serve_processes, tmp_path,
                                                                                      breast_cancer_csv,
                                                                                      wait_for_epoch):
    data_dir = tmp_path / "data"
    process, port = serve_processes(data_dir)
    with Client(f"127.0.0.1:{port}") as c:
        data = c.upload_dataset(breast_cancer_csv, dataset_id="bc", label_column="target")
        job = c.start_training(_sgd(data.name, 400, max_retries=1), training_job_id="restarted")
        wait_for_epoch(c, job.name, 20)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)

    _, port = serve_processes(data_dir)
    with Client(f"127.0.0.1:{port}") as c:
        done = c.wait(job.name, timeout=120)
        assert done.state == common_pb2.JOB_STATE_COMPLETED, done.state_message
        assert done.attempt_count == 2
        assert ("worker died (the server stopped); retrying from the first epoch (no checkpoint was written) "
                "(retry 1 of 1)") in _logs(c, job.name)
        _assert_each_epoch_once(c, job.name, 400)


def test_a_timed_out_job_is_not_retried(client, bc):
    job = client.start_training(_sgd(bc.name, 5000, max_retries=2, timeout="1.5s"))
    done = client.wait(job.name, timeout=60)
    assert done.state == common_pb2.JOB_STATE_FAILED
    assert done.error.code == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert done.attempt_count == 1
    assert not any(m.startswith("worker died") for m in _logs(client, job.name))


def test_a_retry_policy_out_of_range_is_refused_naming_the_field(client, bc):
    with pytest.raises(ForgeTrainingError) as refused:
        client.start_training(_sgd(bc.name, 5, max_retries=11))
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    violation = refused.value.field_violations[0]
    assert violation.field == "training_config.retry_policy.max_retries"
    assert "between 0 and 10" in violation.description
