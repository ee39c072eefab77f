"""A full disk during a checkpoint: the write fails for real (ENOSPC on a tiny tmpfs), the
previous checkpoint is left intact, no partial file is left behind, and the job fails saying
what happened and where."""

from __future__ import annotations

import hashlib
import subprocess

import grpc
import pytest

from engine.storage import checkpoint
from forge.training import common_pb2


@pytest.fixture
def tiny_disk(server, client, breast_cancer_csv):
    """(dataset, sub-path, mountpoint): a 1 MiB tmpfs mounted at the checkpoints.path sub-path of the
    default project, so jobs that name it checkpoint onto a disk that can really fill up."""
    data = client.upload_dataset(breast_cancer_csv, dataset_id="bc-disk-full", label_column="target")
    project = data.name.split("/")[1]
    sub = "tiny-disk"
    mountpoint = server.engine.trainer.settings.data_dir / "checkpoints" / project / sub
    mountpoint.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield data, sub, mountpoint
    finally:
        if subprocess.run(["umount", str(mountpoint)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mountpoint)], check=True)  # busy: detach it now, free it later


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one_and_fails_the_job(server, client, tiny_disk):
    data, sub, mountpoint = tiny_disk
    # Every epoch checkpointed and all of them kept: the job's own checkpoints fill the disk
    # within a few hundred epochs, and nothing frees space once it is full.
    spec = {"modelType": "classification",
            "modelConfig": {"framework": "sklearn", "architecture": "sgd"},
            "trainingConfig": {"epochs": 3000, "seed": 7,
                               "checkpoints": {"enabled": True, "everyNEpochs": 1, "keepLast": 3000, "path": sub}},
            "dataConfig": {"trainDataset": data.name, "labelColumn": "target"}}
    job = client.start_training(spec, training_job_id="disk-full")
    failed = client.wait(job.name, timeout=60)
    assert failed.state == common_pb2.JOB_STATE_FAILED
    assert failed.error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    previous = failed.checkpoint_epoch
    assert 0 < previous < 3000
    directory = mountpoint / "disk-full"
    assert failed.error.message == (
        f"no space left on device while writing the checkpoint of epoch {previous + 1} to {directory}; the previous "
        f"checkpoint (epoch {previous}) is intact; free space there and start the job again")
    # The checkpoint the job recorded last is on disk, whole, with the checksum recorded for it.
    recorded = server.engine.trainer.get_job(job.name).checkpoint
    blob = (directory / f"epoch-{previous:06d}.ckpt").read_bytes()
    assert hashlib.sha256(blob).hexdigest() == recorded["sha256"]
    assert checkpoint.unpack(blob)[0]["epoch"] == previous
    # The failed write left no partial file: only whole checkpoints, one per epoch up to the previous.
    assert sorted(p.name for p in directory.iterdir()) == [f"epoch-{e:06d}.ckpt" for e in range(1, previous + 1)]
    # The epoch whose checkpoint failed had its metrics recorded; none after it.
    points = list(client.watch_metrics(job.name, follow=False))
    assert [p.epoch for p in points] == list(range(1, previous + 2))
