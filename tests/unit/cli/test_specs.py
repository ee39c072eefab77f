"""Spec files (forge/training/cli/specs.py): read like the SDK reads a dict spec, and each mistake
is one line naming the file, the field's path and what to write instead."""

from __future__ import annotations

import json

import pytest

from forge.training import training_request
from forge.training.cli import specs
from forge.training.cli.exit_codes import USAGE, CommandError
from forge.training.v1 import dataset_pb2, pipeline_pb2, training_job_pb2, tuning_job_pb2

Request = training_job_pb2.TrainingRequest
SPEC = {
    "modelType": "classification",
    "model_config": {"framework": "sklearn", "architecture": "sgd", "hyperparameters": {"alpha": 0.01}},
    "trainingConfig": {"epochs": 3, "seed": 7},
    "dataConfig": {"trainDataset": "cancer-train", "labelColumn": "target", "featureColumns": ["a", "b"]},
    "resources": {"timeout": "90s"},
    "labels": {"team": "fraud"},
}


def _error(data, message_type=Request) -> str:
    with pytest.raises(CommandError) as raised:
        specs.parse(data, message_type, source="job.yaml")
    assert raised.value.code == USAGE
    return str(raised.value)


def test_a_valid_spec_reads_as_the_sdk_reads_it_yaml_or_json(tmp_path):
    parsed = specs.parse(SPEC, Request, source="job.yaml")
    assert parsed == training_request(SPEC)
    assert parsed.model_type == 1 and parsed.resources.timeout.seconds == 90
    import yaml

    (tmp_path / "job.yaml").write_text(yaml.safe_dump(SPEC))
    (tmp_path / "job.json").write_text(json.dumps(SPEC))
    assert specs.load(str(tmp_path / "job.yaml"), Request) == specs.load(str(tmp_path / "job.json"), Request) == parsed


@pytest.mark.parametrize("data, message", [
    ({"trainingConfig": {"epochz": 3}}, "trainingConfig.epochz: no such field in TrainingConfig (did you mean epochs?)"),
    ({"dataConfig": {"label_colum": "y"}},
     "dataConfig.label_colum: no such field in TrainingDataConfig (did you mean label_column?)"),
    ({"zzz": 1}, "zzz: no such field in TrainingRequest; its fields: displayName, modelType, modelConfig, "
                 "trainingConfig, dataConfig, resources, validation, callbacks, labels, modelId, alerts"),
    ({"modelType": "clasification"}, "modelType: 'clasification' is not a ModelType; use one of: classification, "
                                     "regression, anomaly_detection, forecasting, recommendation"),
    ({"modelType": True}, "modelType: True is not a ModelType; use one of: classification, regression, "
                          "anomaly_detection, forecasting, recommendation"),
    ({"trainingConfig": {"epochs": "ten"}}, "trainingConfig.epochs: 'ten' is not an integer"),
    ({"trainingConfig": {"epochs": 2.5}}, "trainingConfig.epochs: 2.5 is not an integer"),
    ({"trainingConfig": {"learningRate": "fast"}}, "trainingConfig.learningRate: 'fast' is not a number"),
    ({"dataConfig": {"noValidation": "yes"}}, "dataConfig.noValidation: 'yes' is not true or false"),
    ({"labels": {"team": 7}}, "labels.team: 7 is not text; put it in quotes"),
    ({"dataConfig": {"featureColumns": "a"}}, "dataConfig.featureColumns: expected a list, got text 'a'"),
    ({"dataConfig": {"featureColumns": ["a", 2]}}, "dataConfig.featureColumns[1]: 2 is not text; put it in quotes"),
    ({"dataConfig": ["cancer"]}, "dataConfig: expected a TrainingDataConfig object (field: value pairs), got a list"),
    ({"modelConfig": {"hyperparameters": [1]}},
     "modelConfig.hyperparameters: expected an object (key: value pairs), got a list"),
    ({"resources": {"timeout": "5m"}},
     'resources.timeout: Duration must end with letter "s": 5m (expected a duration such as "30s" or "1.5s")'),
    ({"callbacks": [{"name": "stop", "tpe": "early_stopping"}]},
     "callbacks[0].tpe: no such field in CallbackConfig (did you mean type?)"),
])
def test_each_mistake_names_its_path_and_the_fix(data, message):
    assert _error(data) == f"job.yaml: {message}"


def test_other_spec_messages_are_checked_the_same_way():
    assert _error({"stages": [{"id": "a", "type": "trainer"}]}, pipeline_pb2.Pipeline) == (
        "job.yaml: stages[0].type: 'trainer' is not a StageType; use one of: data_preparation, data_validation, "
        "feature_extraction, model_training, model_validation, model_evaluation, model_deployment, custom")
    assert _error({"parameters": [{"path": "x", "intRange": {"min": "one"}}]}, tuning_job_pb2.TuningSpec) == (
        "job.yaml: parameters[0].intRange.min: 'one' is not an integer")
    assert _error({"constraints": [{"column": "age", "dataType": "float"}]}, dataset_pb2.ValidationRules) == (
        "job.yaml: constraints[0].dataType: 'float' is not a DataType; use one of: int64, float64, string, bool, "
        "timestamp, binary")
    rules = specs.parse({"constraints": [{"column": "age", "dataType": "float64", "min": 0}]},
                        dataset_pb2.ValidationRules, source="rules.yaml")
    assert rules.constraints[0].data_type == dataset_pb2.DATA_TYPE_FLOAT64 and rules.constraints[0].min == 0


def test_files_that_do_not_parse_say_where(tmp_path):
    broken = tmp_path / "job.yaml"
    broken.write_text("modelType: classification\ntrainingConfig: {epochs: 3\n")
    with pytest.raises(CommandError, match=r"job\.yaml:3:1: not valid YAML: expected ',' or '}'"):
        specs.load(str(broken), Request)
    bad_json = tmp_path / "job.json"
    bad_json.write_text('{"modelType": "classification",}')
    with pytest.raises(CommandError, match=r"job\.json:1:32: not valid JSON: Expecting property name"):
        specs.load(str(bad_json), Request)
    listing = tmp_path / "list.yaml"
    listing.write_text("- modelType: classification\n")
    with pytest.raises(CommandError, match=r"list\.yaml: expected a TrainingRequest object .*, got a list"):
        specs.load(str(listing), Request)
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(CommandError, match=r"empty\.yaml: expected a TrainingRequest object .*, got empty"):
        specs.load(str(tmp_path / "empty.yaml"), Request)
    with pytest.raises(CommandError, match=r"missing\.yaml: no such file"):
        specs.load(str(tmp_path / "missing.yaml"), Request)
