"""Fine-tuning through the server and the SDK: a job starts from an earlier job's model, a
registered model version or a checkpoint file; XGBoost adds boosting rounds after the
parent's, a PyTorch network keeps its frozen layers as they were; lineage names the parent;
and every way a parent can be wrong is refused, naming model_config.pretrained_path."""

from __future__ import annotations

import json

import pytest
import torch

from forge.training import ForgeTrainingError, common_pb2

COMPLETED, FAILED = common_pb2.JOB_STATE_COMPLETED, common_pb2.JOB_STATE_FAILED


@pytest.fixture(scope="module")
def parts(client, breast_cancer_csv):
    ds = client.upload_dataset(breast_cancer_csv, dataset_id="ft-bc", label_column="target")
    return [p.name for p in client.split_dataset(ds.name, [0.4, 0.3, 0.15, 0.15], seed=11,
                                                 stratify_column="target")]


def _request(framework: str, architecture: str, train: str, val: str, epochs: int, **extra) -> dict:
    model = {"framework": framework, "architecture": architecture, **extra.pop("model", {})}
    return {"modelType": "classification", "modelConfig": model,
            "trainingConfig": {"epochs": epochs, "seed": 5, **extra.pop("training", {})},
            "dataConfig": {"trainDataset": train, "validationDataset": val, "labelColumn": "target"}, **extra}


def _done(client, request: dict, job_id: str):
    job = client.wait(client.start_training(request, training_job_id=job_id).name, timeout=180)
    assert job.state == COMPLETED, job.state_message
    return job


@pytest.fixture(scope="module")
def xgb_parent(client, parts):
    return _done(client, _request("xgboost", "classifier", parts[0], parts[2], 10), "ft-xgb-parent")


@pytest.fixture(scope="module")
def torch_parent(client, parts):
    return _done(client, _request("pytorch", "mlp", parts[0], parts[2], 4, model={
        "hyperparameters": {"hidden_units": [16, 8]}}, training={"learningRate": 0.01, "checkpoints": {
            "enabled": True}}), "ft-torch-parent")


def _trees(client, job: str, tmp_path) -> int:
    client.export_model(job, "xgboost_json", tmp_path / f"{job.rsplit('/', 1)[-1]}.json")
    model = json.loads((tmp_path / f"{job.rsplit('/', 1)[-1]}.json").read_text())
    return int(model["learner"]["gradient_booster"]["model"]["gbtree_model_param"]["num_trees"])


def test_xgboost_adds_boosting_rounds_after_the_parents(client, parts, xgb_parent, tmp_path):
    child = _done(client, _request("xgboost", "classifier", parts[1], parts[2], 5, training={"learningRate": 0.05},
                                   model={"pretrainedPath": "ft-xgb-parent"}), "ft-xgb-child")
    assert child.spec.model_config.pretrained_path == xgb_parent.name  # resolved to the full name
    assert child.current_epoch == 5 and _trees(client, child.name, tmp_path) == 15
    assert any("continuing the 10 boosting rounds of the model it fine-tunes with 5 more" in e.message
               for e in client.get_logs(child.name))
    assert client.get_model(child.model_version).parent_model == xgb_parent.name

    # From the parent's registered version, paused and resumed on the way: still 10 + 400 rounds.
    request = _request("xgboost", "classifier", parts[1], parts[2], 400,
                       model={"pretrainedPath": xgb_parent.model_version})
    job = client.start_training(request, training_job_id="ft-xgb-version")
    next(iter(client.watch_metrics(job.name)))
    paused = client.pause(job.name, wait=True, timeout=60)
    assert paused.state == common_pb2.JOB_STATE_PAUSED and 0 < paused.checkpoint_epoch < 400
    client.resume(job.name)
    job = client.wait(job.name, timeout=120)
    assert job.state == COMPLETED and _trees(client, job.name, tmp_path) == 410
    assert client.get_model(job.model_version).parent_model == xgb_parent.model_version


def _weights(client, job: str, tmp_path) -> dict:
    client.export_model(job, "torch", tmp_path / f"{job.rsplit('/', 1)[-1]}.pt")
    return torch.load(tmp_path / f"{job.rsplit('/', 1)[-1]}.pt", weights_only=True)["state_dict"]


def test_a_network_starts_from_its_parent_with_frozen_layers(client, parts, torch_parent, tmp_path):
    parent = _weights(client, torch_parent.name, tmp_path)
    layers = [name for name in parent if name.endswith(".weight")]
    first = layers[0].rsplit(".", 1)[0]
    request = _request("pytorch", "mlp", parts[1], parts[2], 3, model={
        "pretrainedPath": torch_parent.name, "frozenLayers": [first]}, training={"learningRate": 0.01})
    child = _done(client, request, "ft-torch-child")
    weights = _weights(client, child.name, tmp_path)
    assert torch.equal(weights[f"{first}.weight"], parent[f"{first}.weight"])  # frozen: as the parent left it
    assert not torch.equal(weights[layers[-1]], parent[layers[-1]])  # the rest trained on
    logs = [e.message for e in client.get_logs(child.name)]
    assert f"fine-tuning {torch_parent.name}, layers {first} frozen" in logs
    assert any(m.startswith(f"frozen: {first} (") for m in logs)

    # Its first epoch starts where the parent ended, not where a network from scratch does.
    scratch = _done(client, _request("pytorch", "mlp", parts[1], parts[2], 1, model={
        "hyperparameters": {"hidden_units": [16, 8]}}, training={"learningRate": 0.01}), "ft-torch-scratch")
    fine_tuned_first = client.metric_history(child.name)[0].validation_loss
    assert fine_tuned_first < client.metric_history(scratch.name)[0].validation_loss
    assert client.get_model(child.model_version).parent_model == torch_parent.name


def test_a_checkpoint_file_starts_a_job_that_pauses_and_resumes(client, parts, torch_parent):
    request = _request("pytorch", "mlp", parts[1], parts[2], 12, model={
        "pretrainedPath": "ft-torch-parent/epoch-000002.ckpt"}, training={"learningRate": 0.01})
    job = client.start_training(request, training_job_id="ft-torch-ckpt")
    next(iter(client.watch_metrics(job.name)))
    client.pause(job.name, wait=True, timeout=60)
    client.resume(job.name)  # the resumed run is the parent's network, from the job's own checkpoint
    job = client.wait(job.name, timeout=120)
    assert job.state == COMPLETED and job.current_epoch == 12, job.state_message
    assert client.get_model(job.model_version).parent_model == "checkpoint:ft-torch-parent/epoch-000002.ckpt"


def test_a_keras_network_fine_tunes_with_its_parents_layers_after_a_pause(client, parts):
    parent = _done(client, _request("tensorflow", "mlp", parts[0], parts[2], 3, model={
        "hyperparameters": {"hidden_units": [12, 6]}}, training={"learningRate": 0.01}),
        "ft-keras-parent")
    # No hyperparameters given: the network is the parent's (12, 6), not the default one.
    request = _request("tensorflow", "mlp", parts[1], parts[2], 8, model={
        "pretrainedPath": parent.name, "frozenLayers": ["dense_0"]}, training={"learningRate": 0.005})
    job = client.start_training(request, training_job_id="ft-keras-child")
    next(iter(client.watch_metrics(job.name)))
    client.pause(job.name, wait=True, timeout=60)
    client.resume(job.name)
    job = client.wait(job.name, timeout=180)
    assert job.state == COMPLETED and job.current_epoch == 8, job.state_message
    logs = [e.message for e in client.get_logs(job.name)]
    assert any(m.startswith("frozen: dense_0 (") for m in logs) and f"fine-tuning {parent.name}, layers dense_0 " \
        "frozen" in logs
    # Measured on the same validation rows, its first epoch starts where the parent's training ended.
    first = client.metric_history(job.name)[0].validation_loss
    assert first < client.metric_history(parent.name)[0].validation_loss
    assert client.get_model(job.model_version).parent_model == parent.name


def test_a_wrong_layer_or_wrong_data_fails_the_job_saying_why(client, parts, torch_parent, breast_cancer_frame,
                                                              tmp_path):
    request = _request("pytorch", "mlp", parts[1], parts[2], 2, model={
        "pretrainedPath": torch_parent.name, "frozenLayers": ["encoder"]})
    job = client.wait(client.start_training(request).name, timeout=120)
    assert job.state == FAILED and job.error.code == 3  # INVALID_ARGUMENT
    assert "'encoder' is not a layer of this mlp: its layers with weights are" in job.error.message

    narrow = tmp_path / "narrow.csv"
    breast_cancer_frame.drop(columns=["mean_radius"]).to_csv(narrow, index=False)
    other = client.upload_dataset(narrow, dataset_id="ft-narrow", label_column="target").name
    job = client.wait(client.start_training(_request("pytorch", "mlp", other, parts[2], 2, model={
        "pretrainedPath": torch_parent.name})).name, timeout=120)
    assert job.state == FAILED and "was trained on the features" in job.error.message


@pytest.mark.parametrize("model, code, words", [
    ({"framework": "sklearn", "architecture": "sgd", "pretrainedPath": "ft-xgb-parent"}, "UNIMPLEMENTED",
     "fine-tuning is implemented for pytorch, tensorflow and xgboost models, not sklearn"),
    ({"framework": "pytorch", "architecture": "mlp", "pretrainedPath": "ft-xgb-parent"}, "INVALID_ARGUMENT",
     "is a xgboost framework model; this job trains pytorch"),
    ({"framework": "xgboost", "architecture": "classifier", "pretrainedPath": "ft-xgb-parent",
      "frozenLayers": ["0"]}, "INVALID_ARGUMENT", "xgboost models have no layers to freeze"),
    ({"framework": "xgboost", "architecture": "classifier", "pretrainedPath": "no-such-job"}, "NOT_FOUND",
     "training job projects/default/trainingJobs/no-such-job not found"),
    ({"framework": "xgboost", "architecture": "classifier", "pretrainedPath": "../../etc/passwd"},
     "INVALID_ARGUMENT", "is not a training job, a model version or a checkpoint"),
    ({"framework": "xgboost", "architecture": "classifier", "pretrainedPath": "ft-xgb-parent/none.ckpt"},
     "NOT_FOUND", "no checkpoint file"),
    ({"framework": "pytorch", "architecture": "mlp", "frozenLayers": ["0"]}, "INVALID_ARGUMENT",
     "set model_config.pretrained_path too"),
])
def test_a_wrong_parent_is_refused_before_the_job_exists(client, parts, xgb_parent, model, code, words):
    request = _request(model.pop("framework"), model.pop("architecture"), parts[1], parts[2], 2, model=model)
    with pytest.raises(ForgeTrainingError) as err:
        client.start_training(request)
    assert err.value.code.name == code and words in err.value.message


def test_an_unfinished_parent_is_refused(client, parts):
    running = client.start_training(_request("xgboost", "classifier", parts[0], parts[2], 5000))
    try:
        with pytest.raises(ForgeTrainingError) as err:
            client.start_training(_request("xgboost", "classifier", parts[1], parts[2], 2,
                                           model={"pretrainedPath": running.name}))
        assert err.value.code.name == "FAILED_PRECONDITION" and "a job fine-tunes a completed job's model" in \
            err.value.message
    finally:
        client.cancel(running.name)
