"""kill -9 of one worker: its job fails with a clear error; the other jobs are unaffected."""

from __future__ import annotations

import os
import re
import signal
import time

from forge.training import common_pb2


def test_a_killed_worker_fails_only_its_own_job(client, breast_cancer_csv):
    data = client.upload_dataset(breast_cancer_csv, dataset_id="bc-worker-crash", label_column="target")

    def spec(epochs: int) -> dict:
        return {"modelType": "classification",
                "modelConfig": {"framework": "sklearn", "architecture": "sgd"},
                "trainingConfig": {"epochs": epochs, "seed": 2},
                "dataConfig": {"trainDataset": data.name, "labelColumn": "target"}}

    victim = client.start_training(spec(5000), training_job_id="victim")
    bystander = client.start_training(spec(1500), training_job_id="bystander")
    deadline = time.monotonic() + 60
    pid = None
    while pid is None and time.monotonic() < deadline:  # the worker says its pid in its first log line
        for entry in client.stream_logs(victim.name, follow=False):
            found = re.match(r"worker (\d+) started", entry.message)
            if found:
                pid = int(found.group(1))
        time.sleep(0.05)
    assert pid, "the victim's worker never started"
    while client.get_job(victim.name).current_epoch < 2 or client.get_job(bystander.name).current_epoch < 2:
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    running = client.get_job(bystander.name)
    assert running.state == common_pb2.JOB_STATE_RUNNING  # it was training when the other worker died

    failed = client.wait(victim.name, timeout=60)
    assert failed.state == common_pb2.JOB_STATE_FAILED
    assert "killed by SIGKILL" in failed.error.message and "out of memory" in failed.error.message
    done = client.wait(bystander.name, timeout=120)
    assert done.state == common_pb2.JOB_STATE_COMPLETED and done.current_epoch == 1500
    # The server is fine: new work runs.
    after = client.wait(client.start_training(spec(2)).name, timeout=60)
    assert after.state == common_pb2.JOB_STATE_COMPLETED
