"""TensorBoard: a job's metric points, as event files under the data dir, in the directory the job names."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from forge.training import common_pb2


def _scalars(directory: str) -> dict[str, list[tuple[int, float]]]:
    """What `tensorboard --logdir` shows for the directory: {tag: [(step, value)]}."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not Path(directory).is_dir():  # nothing recorded yet
        return {}
    accumulator = EventAccumulator(directory, size_guidance={"scalars": 0})
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


def test_every_epoch_is_charted_where_the_job_says(client, server, breast_cancer_csv):
    data = client.upload_dataset(breast_cancer_csv, dataset_id="bc-tensorboard", label_column="target")
    train, validation = client.split_dataset(data.name, [0.8, 0.2], seed=4, stratify_column="target")
    job = client.start_training({
        "modelType": "classification",
        "modelConfig": {"framework": "pytorch", "architecture": "mlp", "hyperparameters": {"hidden_units": [8]}},
        "trainingConfig": {"epochs": 3, "seed": 3, "batchSize": 64, "learningRate": 0.01,
                           "lrScheduler": {"type": "step", "stepSize": 2, "gamma": 0.5}},
        "dataConfig": {"trainDataset": train.name, "validationDataset": validation.name, "labelColumn": "target"},
    }, training_job_id="tb-mlp")
    directory = Path(server.engine.settings.data_dir).resolve() / "tensorboard" / "default" / "tb-mlp"
    points = []
    for point in client.watch_metrics(job.name):
        # Flushed per epoch: a live TensorBoard charts each epoch while the job goes on, not at its end.
        deadline = time.monotonic() + 5
        while point.epoch not in [step for step, _ in _scalars(str(directory)).get("loss/train", [])]:
            assert time.monotonic() < deadline, f"epoch {point.epoch} is not in {directory}"
            time.sleep(0.05)
        points.append(point)
    done = client.wait(job.name, timeout=120)
    assert done.state == common_pb2.JOB_STATE_COMPLETED, done.state_message
    assert done.tensorboard_log_dir == str(directory)

    charted = _scalars(done.tensorboard_log_dir)
    expected = {
        "loss/train": [p.training_loss for p in points],
        "loss/validation": [p.validation_loss for p in points],
        "metrics/accuracy": [p.accuracy for p in points],
        "metrics/f1_score": [p.f1_score for p in points],
        "learning_rate": [p.learning_rate for p in points],
        "gradient_norm": [p.gradient_norm for p in points],
        "time/epoch_seconds": [p.epoch_seconds for p in points],
        "resources/cpu_percent": [100 * p.resource_usage.cpu_usage for p in points],
        "resources/memory_mib": [p.resource_usage.memory_usage / 2**20 for p in points],
    }
    for tag, values in expected.items():
        # simple_value is a float32: what TensorBoard charts, exact to about 7 digits.
        assert charted[tag] == [(e, pytest.approx(v, rel=1e-6, abs=1e-9)) for e, v in zip([1, 2, 3], values)], tag
    assert charted["learning_rate"][2][1] == pytest.approx(charted["learning_rate"][0][1] / 2)
    assert any(tag.startswith("resources/gpu") for tag in charted) == points[0].resource_usage.gpu_present
    assert client.get_job(job.name).tensorboard_log_dir == str(directory)
    assert all(j.tensorboard_log_dir == str(directory) for j in client.list_jobs() if j.name == job.name)
