"""The engine's one reading of a TrainingRequest dict (engine/jobs/request.py): the same spec
and the same refusals whether the request came over gRPC or from a Python application."""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import FieldDescriptor

from engine.errors import InvalidArgument
from engine.jobs import request as engine_request
from engine.jobs.request import spec_from_request
from forge.training.v1 import training_job_pb2
from server.convert import spec_from_request_dict

FULL = {
    "displayName": "churn", "modelType": "classification", "modelId": "churn-model", "labels": {"team": "ml"},
    "modelConfig": {"framework": " PyTorch ", "architecture": "MLP", "hyperparameters": {"hidden": [8, 4]},
                    "inputShape": [3], "pretrainedPath": "base-job", "frozenLayers": ["1"]},
    "trainingConfig": {"epochs": 7, "batchSize": 16, "learningRate": 0.01, "optimizer": "Adam",
                       "optimizerConfig": {"betas": [0.9, 0.99]}, "lossFunction": "cross_entropy", "seed": "42",
                       "gradientAccumulationSteps": 2, "mixedPrecision": True,
                       "regularization": {"l2": 0.1, "dropout": 0.2, "batchNorm": True, "gradientClipNorm": 1.0},
                       "earlyStopping": {"enabled": True, "patience": 3, "metric": "val_loss", "mode": "MIN",
                                         "minDelta": 0.001, "restoreBest": True},
                       "lrScheduler": {"type": "step", "stepSize": 2, "gamma": 0.5},
                       "checkpoints": {"enabled": True, "saveBest": True, "everyNEpochs": 2, "keepLast": 2,
                                       "path": "churn/v1"},
                       "retryPolicy": {"maxRetries": 2}},
    "dataConfig": {"trainDataset": "train", "validationDataset": "val", "labelColumn": "churned",
                   "featureColumns": ["a", "b"], "validation": {"requiredColumns": ["a"], "minRows": "10",
                                                                "constraints": [{"column": "a", "min": 0,
                                                                                 "dataType": "float64"}]}},
    "resources": {"cpu": "2", "memory": "1Gi", "gpu": 1, "timeout": "90s", "priority": 3},
    "validation": {"crossValidation": {"enabled": True, "folds": 4, "shuffle": True, "seed": "9",
                                       "finalModel": "best_fold", "metric": "accuracy"}},
    "callbacks": [{"name": "target", "type": "metric_threshold", "priority": 2,
                   "config": {"metric": "accuracy", "above": 0.95}},
                  {"name": "budget", "type": "Time_Budget", "config": {"duration": "10m"}}],
}


@pytest.mark.parametrize("request_dict", [
    FULL,
    {"model_type": "MODEL_TYPE_REGRESSION", "model_config": {"framework": "sklearn", "architecture": "ridge"},
     "data_config": {"train_dataset": "d", "label_column": "y", "no_validation": True}},
    {"modelType": 4, "modelConfig": {"framework": "xgboost", "architecture": "regressor"},
     "trainingConfig": {"epochs": 0}, "resources": {"timeout": "0.5s", "workers": 2}},
    {},
])
def test_a_request_reads_the_same_in_process_as_through_its_proto(request_dict):
    """The server parses the request into its message and hands the engine the message's JSON
    form (ints for int64, full enum names, snake_case, durations as strings); an application
    hands the engine its dict as written. Both must give the same spec."""
    assert spec_from_request(request_dict) == spec_from_request_dict(request_dict)


def test_a_full_request_becomes_the_spec_it_says():
    spec = spec_from_request(FULL)
    assert (spec.framework, spec.architecture, spec.model_type, spec.seed) == ("pytorch", "mlp", "classification", 42)
    assert spec.resources.timeout_seconds == 90 and spec.early_stopping.mode == "min"
    assert spec.data.validation["constraints"][0]["data_type"] == "float64" and spec.data.validation_fraction == 0.15
    assert spec.checkpoints.every_n_epochs == 2 and spec.retry_policy.max_retries == 2
    assert (spec.cross_validation.folds, spec.cross_validation.seed, spec.cross_validation.final_model) == (
        4, 9, "best_fold")
    defaults = spec_from_request({})
    assert (defaults.epochs, defaults.batch_size, defaults.checkpoints.monitor_metric) == (10, 32, "val_loss")


@pytest.mark.parametrize("bad, field, words", [
    ({"trainingConfig": {"epocs": 3}}, "trainingConfig.epocs", "is not a field of trainingConfig"),
    ({"training_config": {"epochs": "ten"}}, "training_config.epochs", "must be an integer"),
    ({"training_config": {"epochs": 2.5}}, "training_config.epochs", "must be an integer"),
    ({"model_type": "clasification"}, "model_type", "is not a ModelType"),
    ({"resources": {"timeout": "soon"}}, "resources.timeout", "is not a duration"),
    ({"resources": {"timeout": "400d"}}, "resources.timeout", "between 0 and 366 days"),
    ({"resources": {"timeout": "-5s"}}, "resources.timeout", "between 0 and 366 days"),
    ({"data_config": {"validation": {"constraints": [{"data_type": 9}]}}},
     "data_config.validation.constraints[0].data_type", "is not a DataType: use one of int64"),
    ({"model_config": {"output_shape": [2]}}, "model_config.output_shape", "is derived from the data"),
    ({"data_config": {"validation": {"constraints": [{"dataType": "decimal"}]}}},
     "data_config.validation.constraints[0].data_type", "is not a DataType"),
    ({"labels": {"a": 1}}, "labels", "an object of strings"),
    ({"model_config": "mlp"}, "model_config", "must be an object"),
    ({"model_config": {"frozen_layers": ["0"]}}, "model_config.frozen_layers", "set model_config.pretrained_path"),
])
def test_a_bad_request_is_refused_naming_the_field(bad, field, words):
    with pytest.raises(InvalidArgument) as err:
        spec_from_request(bad)
    assert err.value.violations[0].field == field and words in err.value.message


def test_callbacks_keep_their_order_and_checkpoint_and_lr_schedule_become_their_sections():
    spec = spec_from_request(FULL)
    assert [(c["name"], c["type"], c["priority"]) for c in spec.callbacks] == [
        ("target", "metric_threshold", 2), ("budget", "time_budget", 0)]
    folded = spec_from_request({"callbacks": [
        {"name": "ckpt", "type": "checkpoint", "config": {"everyNEpochs": 3, "keepLast": 1}},
        {"name": "lr", "type": "lr_schedule", "config": {"type": "cosine", "min_lr": 0.001}}]})
    assert folded.callbacks == [] and folded.lr_scheduler.type == "cosine" and folded.lr_scheduler.min_lr == 0.001
    assert (folded.checkpoints.enabled, folded.checkpoints.every_n_epochs, folded.checkpoints.keep_last) == (True, 3, 1)


@pytest.mark.parametrize("bad, field, words", [
    ({"callbacks": [{"type": "time_budget"}]}, "callbacks[0].name", "is required"),
    ({"callbacks": [{"name": "a"}]}, "callbacks[0].type", "is required"),
    ({"callbacks": [{"name": "a", "type": "time_budget"}, {"name": "a", "type": "early_stopping"}]},
     "callbacks[1].name", "the name of an earlier callback"),
    ({"callbacks": [{"name": "a", "type": "checkpoint", "config": {"every": 2}}]},
     "callbacks[0].config.every", "is not a field of callbacks[0].config"),
    ({"trainingConfig": {"checkpoints": {"enabled": True}},
      "callbacks": [{"name": "a", "type": "checkpoint"}]}, "callbacks[0]", "keep one of them"),
    ({"callbacks": [{"name": "a", "type": "x", "config": "fast"}]}, "callbacks[0].config", "must be an object"),
])
def test_a_bad_callback_is_refused_naming_the_entry(bad, field, words):
    with pytest.raises(InvalidArgument) as err:
        spec_from_request(bad)
    assert err.value.violations[0].field == field and words in err.value.message


def _kind(field: FieldDescriptor):
    if field.message_type is not None:
        name = field.message_type.full_name
        if field.message_type.GetOptions().map_entry:
            return "labels"
        if name == "google.protobuf.Struct":
            return "struct"
        if name == "google.protobuf.Duration":
            return "duration"
        if field.is_repeated:
            return "list"
        return {f.name: _kind(f) for f in field.message_type.fields}
    if field.enum_type is not None:
        return {"ModelType": "model_type", "DataType": "data_type"}[field.enum_type.name]
    scalar = {FieldDescriptor.TYPE_STRING: "str", FieldDescriptor.TYPE_BOOL: "bool",
              FieldDescriptor.TYPE_DOUBLE: "float", FieldDescriptor.TYPE_FLOAT: "float"}.get(field.type, "int")
    return {"str": "strs", "int": "ints"}[scalar] if field.is_repeated else scalar


def test_the_engines_description_of_the_request_is_the_proto():
    expected = {f.name: _kind(f) for f in training_job_pb2.TrainingRequest.DESCRIPTOR.fields}
    # Read by their own code: the rules' constraints (a list of sections), the callbacks.
    expected["data_config"]["validation"]["constraints"] = "list"
    assert engine_request.REQUEST == expected
    constraint = training_job_pb2.TrainingDataConfig.DESCRIPTOR.fields_by_name["validation"].message_type
    assert engine_request.CONSTRAINT == {f.name: _kind(f) for f in
                                         constraint.fields_by_name["constraints"].message_type.fields}
