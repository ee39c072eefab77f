"""Callbacks in a TrainingRequest, through a real server and the SDK: the built-in ones
(metric thresholds that stop or fail a job, a time budget, early stopping, checkpoint), the
server's registered ones named by type, their priority order, and the refusals."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from forge.training import Client, ForgeTrainingError, common_pb2

COMPLETED, FAILED = common_pb2.JOB_STATE_COMPLETED, common_pb2.JOB_STATE_FAILED
REGISTERED = {"stop_at": "callbacks_for_tests:StopAtEpoch", "broken": "callbacks_for_tests:Broken"}


@pytest.fixture(scope="module")
def forge(module_server):
    # The operator's module must be importable by the server and its workers, as an installed package is.
    here = str(Path(__file__).parent)
    sys.path.insert(0, here)
    try:
        server = module_server(callbacks=REGISTERED)
        with Client(server.target) as client:
            yield client
    finally:
        sys.path.remove(here)


@pytest.fixture(scope="module")
def train(forge, breast_cancer_csv):
    return forge.upload_dataset(breast_cancer_csv, dataset_id="callbacks-bc", label_column="target").name


def _request(train: str, callbacks: list[dict], epochs: int = 8, **training) -> dict:
    return {"modelType": "classification", "modelConfig": {"framework": "sklearn", "architecture": "sgd"},
            "trainingConfig": {"epochs": epochs, "seed": 3, **training},
            "dataConfig": {"trainDataset": train, "labelColumn": "target"}, "callbacks": callbacks}


def _run(client, train: str, callbacks: list[dict], **kwargs):
    job = client.start_training(_request(train, callbacks, **kwargs))
    return client.wait(job.name, timeout=120)


def test_a_metric_threshold_stops_a_job_that_reached_its_target(forge, train):
    job = _run(forge, train, [{"name": "good-enough", "type": "metric_threshold",
                               "config": {"metric": "accuracy", "above": 0.5, "min_epoch": 2}}])
    assert job.state == COMPLETED and job.current_epoch == 2, job.state_message
    assert "callback 'good-enough': accuracy" in job.state_message and "is above 0.5 at epoch 2" in job.state_message
    assert job.model_version and forge.get_job(job.name).export_formats  # a completed job, its model kept
    spec = job.spec.callbacks[0]
    assert (spec.name, spec.type, dict(spec.config)) == ("good-enough", "metric_threshold",
                                                         {"metric": "accuracy", "above": 0.5, "min_epoch": 2.0})


def test_a_metric_threshold_fails_a_job_keeping_its_metrics(forge, train):
    job = _run(forge, train, [{"name": "diverged", "type": "metric_threshold",
                               "config": {"metric": "val_loss", "above": 0.0001, "action": "fail", "patience": 2}}])
    assert job.state == FAILED and job.error.code == 10  # ABORTED
    assert job.error.message.startswith("callback 'diverged': val_loss ") and "for 2 epochs at epoch 2" in \
        job.error.message
    assert [p.epoch for p in forge.metric_history(job.name)] == [1, 2]  # the failing epoch's point is kept
    assert not job.model_version


def test_a_time_budget_ends_the_job_completed_before_it_runs_over(forge, train):
    job = _run(forge, train, [{"name": "budget", "type": "time_budget", "config": {"duration": "1ms"}}], epochs=50)
    assert job.state == COMPLETED and job.current_epoch == 1, job.state_message
    assert "callback 'budget':" in job.state_message and "training budget spent" in job.state_message


def test_callbacks_run_in_priority_order_and_registered_ones_by_name(forge, train):
    # Both want to stop after epoch 3: the first to run (the lower priority) gives the reason.
    callbacks = [{"name": "mine", "type": "stop_at", "priority": 5, "config": {"epoch": 3, "note": "custom"}},
                 {"name": "threshold", "type": "metric_threshold", "priority": -1,
                  "config": {"metric": "accuracy", "above": 0.0, "min_epoch": 3}}]
    job = _run(forge, train, callbacks)
    assert job.state == COMPLETED and job.current_epoch == 3 and "callback 'threshold'" in job.state_message
    callbacks[0]["priority"] = -2
    job = _run(forge, train, callbacks)
    assert job.current_epoch == 3 and "StopAtEpoch(custom): saw epochs [1, 2, 3]" in job.state_message


def test_a_registered_callback_keeps_its_state_across_a_pause(forge, train):
    job = forge.start_training(_request(train, [{"name": "mine", "type": "stop_at", "config": {"epoch": 30}}],
                                        epochs=40, checkpoints={"enabled": True}))
    next(iter(forge.watch_metrics(job.name)))  # an epoch done
    forge.pause(job.name, wait=True, timeout=60)
    paused_at = forge.get_job(job.name).current_epoch
    forge.resume(job.name)
    done = forge.wait(job.name, timeout=120)
    assert done.state == COMPLETED and done.current_epoch == 30
    assert f"saw epochs {list(range(1, 31))}" in done.state_message and 0 < paused_at < 30


def test_a_failing_registered_callback_fails_its_job_naming_it(forge, train):
    job = _run(forge, train, [{"name": "oops", "type": "broken"}])
    assert job.state == FAILED and job.error.message == "callback 'oops' raised KeyError: 'no_such_metric'"
    assert any("Traceback" in e.message for e in forge.get_logs(job.name, min_level="error"))


def test_checkpoint_and_early_stopping_callbacks(forge, train):
    job = _run(forge, train, [
        {"name": "ckpt", "type": "checkpoint", "config": {"everyNEpochs": 2, "keepLast": 1}},
        {"name": "patience", "type": "early_stopping", "config": {"metric": "accuracy", "patience": 0,
                                                                  "min_delta": 1.0}}], epochs=6)
    # No epoch improves accuracy by 1.0 on the first: stopped after epoch 2, checkpointed at 2.
    assert job.state == COMPLETED and job.current_epoch == 2 and "early stopping: accuracy" in job.state_message
    assert job.checkpoint_epoch == 2
    checkpoints = job.spec.training_config.checkpoints
    assert (checkpoints.enabled, checkpoints.every_n_epochs, checkpoints.keep_last) == (True, 2, 1)
    assert [c.name for c in job.spec.callbacks] == ["patience"]  # the checkpoint callback is its section


@pytest.mark.parametrize("callbacks, field, words", [
    ([{"name": "x", "type": "slack"}], "callbacks[0].type", "this server registers broken, stop_at"),
    ([{"name": "x", "type": "stop_at", "config": {"epochs": 3}}], "callbacks[0].config.epochs",
     "is not a setting of stop_at: use epoch, note"),
    ([{"name": "x", "type": "metric_threshold", "config": {"metric": "accuracy"}}], "callbacks[0].config.above",
     "give exactly one of above and below"),
    ([{"name": "x", "type": "metric_threshold", "config": {"metric": "rmse", "below": 1}}],
     "callbacks[0].config.metric", "'rmse' is not reported for classification"),
    ([{"name": "x", "type": "time_budget", "config": {"duration": "soon"}}], "callbacks[0].config.duration",
     "is not a duration"),
    ([{"name": "x", "type": "early_stopping", "config": {"mode": "up"}}], "callbacks[0].config",
     "pass mode='min' or mode='max'"),
])
def test_a_bad_callback_is_refused_before_the_job_exists(forge, train, callbacks, field, words):
    with pytest.raises(ForgeTrainingError) as err:
        forge.start_training(_request(train, callbacks))
    assert err.value.code.name == "INVALID_ARGUMENT" and err.value.field_violations[0].field == field
    assert words in err.value.message
