"""k-fold cross-validation through the server and the SDK: the folds' epochs, metrics and
summary in the stream and on the job, the final model trained on all the data or taken from
the best fold, time-ordered folds for forecasting, a pause in the middle, and the refusals."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import numpy as np
import pandas as pd
import pytest

from forge.training import ForgeTrainingError, common_pb2
from forge.training.cli import main

COMPLETED = common_pb2.JOB_STATE_COMPLETED


@pytest.fixture(scope="module")
def parts(client, breast_cancer_csv):
    ds = client.upload_dataset(breast_cancer_csv, dataset_id="cv-bc", label_column="target")
    return [p.name for p in client.split_dataset(ds.name, [0.8, 0.2], seed=4, stratify_column="target")]


def _request(parts, framework="sklearn", architecture="sgd", epochs=3, **cv) -> dict:
    return {"modelType": "classification", "modelConfig": {"framework": framework, "architecture": architecture},
            "trainingConfig": {"epochs": epochs, "seed": 2},
            "dataConfig": {"trainDataset": parts[0], "testDataset": parts[1], "labelColumn": "target"},
            "validation": {"crossValidation": {"enabled": True, "folds": 3, **cv}}}


def _done(client, request):
    job = client.wait(client.start_training(request).name, timeout=180)
    assert job.state == COMPLETED, job.state_message
    return job


def test_folds_then_the_final_model_on_all_the_training_rows(client, parts):
    job = _done(client, _request(parts, shuffle=True, seed=7))
    assert job.total_epochs == job.current_epoch == 12  # 3 folds of 3 epochs, then the final model's 3
    history = client.metric_history(job.name)
    assert [p.epoch for p in history] == list(range(1, 13))
    assert [int(p.extra["cv_fold"]) for p in history] == [1, 1, 1, 2, 2, 2, 3, 3, 3, 0, 0, 0]

    cv = job.cross_validation
    assert [f.fold for f in cv.folds] == [1, 2, 3] and cv.final_model == "all_data" and cv.metric == "validation_loss"
    (rows,) = {f.train_rows + f.validation_rows for f in cv.folds}  # the training rows, each in one fold
    assert sum(f.validation_rows for f in cv.folds) == rows and all(
        abs(f.validation_rows - rows / 3) <= 1 for f in cv.folds)
    accuracies = [f.metrics["accuracy"] for f in cv.folds]
    assert cv.mean["accuracy"] == pytest.approx(np.mean(accuracies)) and cv.std["accuracy"] == pytest.approx(
        np.std(accuracies))
    assert cv.best_fold == 1 + int(np.argmin([f.metrics["validation_loss"] for f in cv.folds]))
    # Each fold's last point says how it did; the last fold's also the mean and std.
    for fold in cv.folds:
        assert history[3 * fold.fold - 1].extra[f"cv.fold_{fold.fold}.accuracy"] == fold.metrics["accuracy"]
    assert history[8].extra["cv.mean.accuracy"] == pytest.approx(cv.mean["accuracy"])
    assert job.test_metrics["accuracy"] > 0.85  # the final model, trained on all the training rows
    logs = [e.message for e in client.get_logs(job.name)]
    assert any(m.startswith("cross-validation over 3 folds: ") for m in logs)
    assert "cross-validation done: training the final model on all the training rows" in logs
    assert client.get_job(job.name).spec.validation.cross_validation.folds == 3

    # The command line says which fold each epoch belongs to, and the summary.
    watched, shown = io.StringIO(), io.StringIO()
    with redirect_stdout(watched):
        main(["--target", client.target, "jobs", "watch", job.name])
    lines = watched.getvalue().splitlines()
    assert [line.split("  ")[0] for line in lines[:4]] == [
        "epoch 1/12 fold 1", "epoch 2/12 fold 1", "epoch 3/12 fold 1", "epoch 4/12 fold 2"]
    assert lines[9].startswith("epoch 10/12  ")  # the final model's
    with redirect_stdout(shown):
        main(["--target", client.target, "jobs", "show", job.name])
    assert f"; best fold {cv.best_fold} by validation_loss; final model: all_data" in shown.getvalue()


def test_the_best_fold_can_be_the_model(client, parts, tmp_path):
    job = _done(client, _request(parts, "xgboost", "classifier", epochs=4, finalModel="best_fold",
                                 metric="accuracy"))
    cv = job.cross_validation
    assert job.current_epoch == 12 and cv.final_model == "best_fold" and cv.metric == "accuracy"
    best = max(cv.folds, key=lambda f: (f.metrics["accuracy"], -f.fold))
    assert cv.best_fold == best.fold
    assert f"the job's model is fold {best.fold}'s, the best by accuracy" in [
        e.message for e in client.get_logs(job.name)]
    assert client.export_model(job.name, "onnx", tmp_path).size_bytes > 0 and job.test_metrics["accuracy"] > 0.85


def test_a_pause_in_the_middle_resumes_in_the_same_fold(client, parts):
    request = _request(parts, epochs=40)
    request["trainingConfig"]["checkpoints"] = {"enabled": True, "everyNEpochs": 5}
    job = client.start_training(request)
    for point in client.watch_metrics(job.name):
        if point.epoch >= 45:  # fold 2
            break
    client.pause(job.name, wait=True, timeout=60)
    paused = client.get_job(job.name)
    assert 40 < paused.checkpoint_epoch < 160
    client.resume(job.name)
    job = client.wait(job.name, timeout=300)
    assert job.state == COMPLETED and job.current_epoch == 160
    history = client.metric_history(job.name)
    assert [p.epoch for p in history] == list(range(1, 161))  # every epoch once, across the pause
    assert [f.fold for f in job.cross_validation.folds] == [1, 2, 3]


def test_forecasting_folds_keep_time_order(client):
    t = np.arange(300)
    frame = pd.DataFrame({"day": t, "sales": 100 + 10 * np.sin(2 * np.pi * t / 7) + 0.05 * t})
    ds = client.upload_dataset(frame.to_csv(index=False).encode(), format="csv", dataset_id="cv-sales",
                               label_column="sales")
    job = _done(client, {
        "modelType": "forecasting", "modelConfig": {"framework": "pytorch", "architecture": "lstm"},
        "trainingConfig": {"epochs": 2, "seed": 1},
        "dataConfig": {"trainDataset": ds.name, "labelColumn": "sales", "timeColumn": "day", "windowSize": 7},
        "validation": {"crossValidation": {"enabled": True, "folds": 3}}})
    folds = job.cross_validation.folds
    # An expanding window: each fold trains on everything before the rows it is measured on.
    assert folds[0].train_rows < folds[1].train_rows < folds[2].train_rows
    assert {f.validation_rows for f in folds} == {folds[0].validation_rows}
    assert {"mase", "smape"} <= set(job.cross_validation.mean)


def test_a_fine_tuning_job_starts_every_fold_from_its_parent_across_a_pause(client, parts, tmp_path):
    parent = _done(client, _request(parts, "xgboost", "classifier", epochs=10))
    request = _request(parts, "xgboost", "classifier", epochs=20, folds=2)
    request["modelConfig"]["pretrainedPath"] = parent.name
    request["trainingConfig"]["checkpoints"] = {"enabled": True}
    job = client.start_training(request)
    next(iter(client.watch_metrics(job.name)))
    client.pause(job.name, wait=True, timeout=60)
    client.resume(job.name)  # the folds after the pause start from the parent too, as the final model does
    job = client.wait(job.name, timeout=180)
    assert job.state == COMPLETED and job.current_epoch == 60
    client.export_model(job.name, "xgboost_json", tmp_path / "model.json")
    model = json.loads((tmp_path / "model.json").read_text())
    assert model["learner"]["gradient_booster"]["model"]["gbtree_model_param"]["num_trees"] == "30"


@pytest.mark.parametrize("cv, field, words", [
    ({"folds": 1}, "validation.cross_validation.folds", "between 2 and 100"),
    ({"finalModel": "worst"}, "validation.cross_validation.final_model", "use all_data or best_fold"),
    ({"metric": "rmse"}, "validation.cross_validation.metric", "not reported for classification"),
    ({"finalModel": "best_fold", "callbacks": [{"name": "t", "type": "time_budget", "config": {"seconds": 9}}]},
     "validation.cross_validation.final_model", "best_fold trains none"),
])
def test_bad_settings_are_refused_naming_the_field(client, parts, cv, field, words):
    callbacks = cv.pop("callbacks", [])
    with pytest.raises(ForgeTrainingError) as err:
        client.start_training({**_request(parts, **cv), "callbacks": callbacks})
    assert err.value.field_violations[0].field == field and words in err.value.message


def test_too_many_folds_for_the_data_fails_the_job_saying_so(client, breast_cancer_frame):
    small = client.upload_dataset(breast_cancer_frame.head(60).to_csv(index=False).encode(), format="csv",
                                  dataset_id="cv-small", label_column="target")
    for folds, words in ((40, "40 folds need at least 80 training rows; there are 51"),
                         (20, "the rarest class has 11 training rows, fewer than the 20 folds: use fewer folds")):
        job = client.wait(client.start_training(_request([small.name, small.name], folds=folds)).name, timeout=120)
        assert job.state == common_pb2.JOB_STATE_FAILED and job.error.code == 3  # INVALID_ARGUMENT
        assert job.error.message == f"validation.cross_validation.folds: {words}"
