"""A corrupted or truncated checkpoint is detected by its checksum and the previous good one is used."""

from __future__ import annotations

import time
from pathlib import Path

from forge.training import common_pb2


def test_a_truncated_checkpoint_falls_back_to_the_previous_one(client, server, breast_cancer_csv):
    data = client.upload_dataset(breast_cancer_csv, dataset_id="bc-bad-checkpoint", label_column="target")
    spec = {"modelType": "classification",
            "modelConfig": {"framework": "sklearn", "architecture": "sgd"},
            "trainingConfig": {"epochs": 1500, "seed": 6, "checkpoints": {"enabled": True, "everyNEpochs": 1}},
            "dataConfig": {"trainDataset": data.name, "labelColumn": "target"}}
    job = client.start_training(spec, training_job_id="bad-checkpoint")
    while client.get_job(job.name).current_epoch < 10:
        time.sleep(0.05)
    paused = client.pause(job.name, wait=True, timeout=60)
    epoch = paused.checkpoint_epoch
    # The checkpoint the job would resume from, cut in half (as a crash mid-copy would leave it).
    latest = Path(server.engine.trainer.get_job(job.name).checkpoint["path"])
    assert latest.name == f"epoch-{epoch:06d}.ckpt"
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])

    client.resume(job.name)
    done = client.wait(job.name, timeout=240)
    assert done.state == common_pb2.JOB_STATE_COMPLETED, done.state_message
    logs = [e.message for e in client.stream_logs(job.name, follow=False)]
    assert any(f"checkpoint of epoch {epoch} cannot be used" in m for m in logs)
    assert any("resuming from the older checkpoint of epoch" in m for m in logs)
    points = list(client.watch_metrics(job.name, follow=False))
    assert [p.epoch for p in points] == list(range(1, 1501))  # the replayed epoch is recorded once

