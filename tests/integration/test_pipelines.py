"""PipelineService through the SDK on a real server: the seed's PipelineManager and beyond."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import pytest

from engine.errors import InvalidArgument
from forge.training import Client, ForgeTrainingError, common_pb2, model_pb2
from forge.training.client import _normalize, training_request
from forge.training.v1 import dataset_pb2, pipeline_pb2, training_job_pb2
from server.convert import full_enum_names

COMPLETED = common_pb2.JOB_STATE_COMPLETED
SUCCEEDED, SKIPPED, FAILED = pipeline_pb2.STAGE_STATE_SUCCEEDED, pipeline_pb2.STAGE_STATE_SKIPPED, \
    pipeline_pb2.STAGE_STATE_FAILED


class Flaky:
    """A custom stage function that fails its first `failures` calls."""

    def __init__(self, failures: int):
        self.failures = failures
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, parameters: dict, context) -> dict:
        with self.lock:
            self.calls += 1
            if self.calls <= self.failures:
                raise RuntimeError(f"transient failure {self.calls}")
        return {"value": parameters.get("value", 0) * 2, "calls": self.calls}


def _sleep(parameters: dict, context) -> dict:
    """Waits `seconds`, stopping early (as a stage must) when cancelled or out of time."""
    from engine.pipelines.stages import StageCancelled

    if context.cancelled.wait(parameters.get("seconds", 30)):
        raise StageCancelled("stopped")
    return {"slept": True}


@pytest.fixture(scope="module")
def flaky():
    return Flaky(failures=2)


@pytest.fixture(scope="module")
def pipeline_server(module_server, flaky):
    return module_server(max_concurrent_jobs=2,
                         pipeline_functions={"double": flaky, "echo": lambda params, ctx: dict(params),
                                             "sleep": _sleep})


@pytest.fixture(scope="module")
def pclient(pipeline_server):
    with Client(pipeline_server.target) as c:
        yield c


@pytest.fixture(scope="module")
def cancer(pclient, breast_cancer_csv):
    return pclient.upload_dataset(breast_cancer_csv, dataset_id="bc-pipeline", label_column="target")


def _training(dataset_ref: str, epochs: int = 3) -> dict:
    return {"request": {"model_type": "MODEL_TYPE_CLASSIFICATION",
                        "model_config": {"framework": "sklearn", "architecture": "logistic_regression"},
                        "training_config": {"epochs": epochs, "seed": 4},
                        "data_config": {"train_dataset": dataset_ref, "label_column": "target"}}}


def test_the_seed_workflow_runs_end_to_end(pclient, pipeline_server, cancer):
    pipeline = pclient.create_pipeline({
        "displayName": "cancer screening",
        "stages": [
            {"id": "prepare", "type": "data_preparation",
             "parameters": {"dataset": cancer.name, "split": {"ratios": [0.8, 0.2], "seed": 2,
                                                              "stratify_column": "target"}}},
            {"id": "check", "type": "data_validation", "dependencies": ["prepare"],
             "parameters": {"dataset": "${prepare.train_dataset}",
                            "rules": {"required_columns": ["target"], "min_rows": 100}}},
            {"id": "features", "type": "feature_extraction", "dependencies": ["prepare", "check"],
             "parameters": {"dataset": "${prepare.train_dataset}",
                            "processing": {"normalization": {"method": "standard"}}}},
            {"id": "train", "type": "model_training", "dependencies": ["features"],
             "parameters": _training("${features.dataset}")},
            {"id": "evaluate", "type": "model_evaluation", "dependencies": ["train", "prepare"],
             "parameters": {"model": "${train.model_version}", "dataset": "${prepare.test_dataset}"}},
            {"id": "deploy", "type": "model_deployment", "dependencies": ["evaluate", "train"],
             "condition": "evaluate.accuracy >= 0.9",
             "parameters": {"model": "${train.model_version}", "stage": "production", "format": "onnx",
                            "destination": "deployed/cancer.onnx"}},
            {"id": "celebrate", "type": "custom", "custom_function": "echo", "dependencies": ["evaluate"],
             "condition": "evaluate.accuracy > 1.5", "parameters": {"message": "impossible"}},
        ],
    }, pipeline_id="screening")
    assert [s.id for s in pipeline.stages][0] == "prepare"
    execution = pclient.execute_pipeline(pipeline.name, {"note": "first run"})
    assert execution.state == common_pb2.JOB_STATE_RUNNING  # returned at once
    events = list(pclient.watch_execution(execution.name))
    done = pclient.get_execution(execution.name)
    assert done.state == COMPLETED, done.state_message
    stages = {s.stage_id: s for s in done.stages}
    assert all(stages[s].state == SUCCEEDED for s in ("prepare", "check", "features", "train", "evaluate", "deploy"))
    assert stages["celebrate"].state == SKIPPED and "evaluate.accuracy" in stages["celebrate"].skip_reason
    version = stages["train"].outputs["model_version"]
    assert pclient.get_model(version).stage == model_pb2.MODEL_STAGE_PRODUCTION
    deployed = Path(pipeline_server.engine.storage.uri("models/deployed/cancer.onnx"))
    assert deployed.is_file() and stages["deploy"].outputs["sha256"]
    assert stages["evaluate"].outputs["accuracy"] >= 0.9
    assert done.output["train"]["training_job"] == stages["train"].outputs["training_job"]

    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    kinds = [(pipeline_pb2.ExecutionEventType.Name(e.type), e.stage_id) for e in events]
    started = [s for k, s in kinds if k == "EXECUTION_EVENT_TYPE_STAGE_STARTED"]
    assert started.index("prepare") < started.index("features") < started.index("train") < started.index("deploy")
    assert ("EXECUTION_EVENT_TYPE_STAGE_METRICS", "train") in kinds  # the training stage's epochs
    assert kinds[-1][0] == "EXECUTION_EVENT_TYPE_EXECUTION_STATE"

    # The same inputs again: stages reuse their outputs instead of running.
    again = pclient.wait_execution(pclient.execute_pipeline(pipeline.name).name, timeout=120)
    cached = {s.stage_id: s.cached for s in again.stages}
    assert again.state == COMPLETED and cached["prepare"] and cached["train"]
    assert {s.stage_id: s.outputs for s in again.stages}["train"]["model_version"] == version
    listed = list(pclient.list_executions(pipeline.name))
    assert {e.name for e in listed} >= {execution.name, again.name}

    # A cached stage whose job was deleted since runs again instead of pointing at nothing.
    pclient.update_model_stage(version, "none")
    pclient.delete_job(stages["train"].outputs["training_job"])
    third = pclient.wait_execution(pclient.execute_pipeline(pipeline.name).name, timeout=120)
    trained = {s.stage_id: s for s in third.stages}["train"]
    assert third.state == COMPLETED and not trained.cached
    assert pclient.get_job(trained.outputs["training_job"]).state == COMPLETED


def test_retries_with_backoff_then_success(pclient, flaky):
    pipeline = pclient.create_pipeline({"stages": [
        {"id": "flaky", "type": "custom", "custom_function": "double", "parameters": {"value": 21},
         "retry": {"max_attempts": 3, "backoff": "exponential", "initial_delay": "0.1s", "max_delay": "1s"}},
        {"id": "after", "type": "custom", "custom_function": "echo", "dependencies": ["flaky"],
         "parameters": {"doubled": "${flaky.value}"}},
    ]})
    execution = pclient.execute_pipeline(pipeline.name)
    events = list(pclient.watch_execution(execution.name))
    done = pclient.get_execution(execution.name)
    assert done.state == COMPLETED
    stages = {s.stage_id: s for s in done.stages}
    assert stages["flaky"].attempt == 3 and stages["after"].outputs["doubled"] == 42
    retried = [e for e in events if e.type == pipeline_pb2.EXECUTION_EVENT_TYPE_STAGE_RETRIED]
    assert [e.attempt for e in retried] == [1, 2] and "transient failure 1" in retried[0].message


def test_failures_skip_dependents_and_time_limits_apply(pclient):
    pipeline = pclient.create_pipeline({"stages": [
        {"id": "slow", "type": "model_training", "parameters": _training("missing-dataset")},
        {"id": "later", "type": "custom", "custom_function": "echo", "dependencies": ["slow"]},
    ]})
    done = pclient.wait_execution(pclient.execute_pipeline(pipeline.name).name, timeout=60)
    stages = {s.stage_id: s for s in done.stages}
    assert done.state == common_pb2.JOB_STATE_FAILED and stages["slow"].state == FAILED
    assert "missing-dataset" in stages["slow"].error.message and "slow" in done.error.message
    assert stages["later"].state == SKIPPED and "slow" in stages["later"].skip_reason


def test_cancel_stops_running_training(pclient, pipeline_server, cancer):
    pipeline = pclient.create_pipeline({"stages": [
        {"id": "train", "type": "model_training", "disable_cache": True,
         "parameters": {**_training(cancer.name), "request": {**_training(cancer.name)["request"],
                        "model_config": {"framework": "sklearn", "architecture": "sgd"},
                        "training_config": {"epochs": 5000, "seed": 1}}}},
    ]})
    execution = pclient.execute_pipeline(pipeline.name)
    for event in pclient.watch_execution(execution.name):
        if event.type == pipeline_pb2.EXECUTION_EVENT_TYPE_STAGE_METRICS:
            break
    pclient.cancel_execution(execution.name)
    done = pclient.wait_execution(execution.name, timeout=60)
    assert done.state == common_pb2.JOB_STATE_CANCELLED
    job = {s.stage_id: s for s in done.stages}["train"]
    assert job.state == pipeline_pb2.STAGE_STATE_CANCELLED


def test_bad_pipelines_name_the_problem(pclient):
    cases = [
        ([{"id": "a", "type": "custom", "custom_function": "echo"},
          {"id": "a", "type": "custom", "custom_function": "echo"}], "a"),
        ([{"id": "a", "type": "custom", "custom_function": "echo", "dependencies": ["ghost"]}], "ghost"),
        ([{"id": "a", "type": "custom", "custom_function": "echo", "dependencies": ["b"]},
          {"id": "b", "type": "custom", "custom_function": "echo", "dependencies": ["a"]}], "a -> b"),
        ([{"id": "a", "type": "custom", "custom_function": "rm_rf"}], "rm_rf"),
    ]
    for stages, needle in cases:
        with pytest.raises(ForgeTrainingError) as err:
            pclient.create_pipeline({"stages": stages})
        assert err.value.code.name == "INVALID_ARGUMENT" and needle in err.value.message, err.value.message
        assert err.value.field_violations[0].field.startswith("pipeline.stages")


def test_templates_check_their_parameters(pclient, cancer):
    template = pclient.create_template({
        "displayName": "train one model",
        "stages": [{"id": "train", "type": "model_training",
                    "parameters": {"request": {**_training("${params.dataset}")["request"],
                                               "training_config": {"epochs": "${params.epochs}", "seed": 1}}}}],
        "parameters": [{"name": "dataset", "type": "string", "required": True},
                       {"name": "epochs", "type": "integer", "defaultValue": 2}],
    }, template_id="train-one")
    assert [p.name for p in template.parameters] == ["dataset", "epochs"]
    for config, needle in (({}, "dataset"), ({"dataset": cancer.name, "epochs": "two"}, "epochs"),
                           ({"dataset": cancer.name, "colour": "red"}, "colour")):
        with pytest.raises(ForgeTrainingError) as err:
            pclient.create_from_template(template.name, config)
        assert err.value.code.name == "INVALID_ARGUMENT" and needle in err.value.message
    pipeline = pclient.create_from_template(template.name, {"dataset": cancer.name})
    assert pipeline.template == template.name
    done = pclient.wait_execution(pclient.execute_pipeline(pipeline.name).name, timeout=120)
    assert done.state == COMPLETED
    assert pclient.get_job(done.output["train"]["training_job"]).spec.training_config.epochs == 2


def test_a_training_stage_reads_short_enum_names_as_the_sdk_does(pclient, cancer):
    """A stage's request travels in a Struct, so the server parses it: short enum names work there
    as they do where the SDK builds a TrainingRequest itself; a wrong one names its path and the
    accepted values."""
    request = {"modelType": "classification",
               "modelConfig": {"framework": "sklearn", "architecture": "logistic_regression"},
               "trainingConfig": {"epochs": 2, "seed": 4},
               "dataConfig": {"trainDataset": cancer.name, "labelColumn": "target",
                              "validation": {"constraints": [{"column": "mean_radius", "dataType": "Float64"}]}}}
    pipeline = pclient.create_pipeline({"stages": [{"id": "train", "type": "model_training",
                                                    "parameters": {"request": request}}]})
    done = pclient.wait_execution(pclient.execute_pipeline(pipeline.name).name, timeout=120)
    assert done.state == COMPLETED, done.state_message
    spec = pclient.get_job(done.output["train"]["training_job"]).spec
    assert spec.model_type == common_pb2.MODEL_TYPE_CLASSIFICATION
    assert spec.data_config.validation.constraints[0].data_type == dataset_pb2.DATA_TYPE_FLOAT64

    typo = pclient.create_pipeline({"stages": [{"id": "train", "type": "model_training",
                                                "parameters": {"request": {**request, "modelType": "clasification"}}}]})
    failed = pclient.wait_execution(pclient.execute_pipeline(typo.name).name, timeout=60)
    train = failed.stages[0]
    assert failed.state == common_pb2.JOB_STATE_FAILED and train.state == FAILED
    assert train.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert train.error.message.startswith(
        "stages[train].parameters.request.modelType: 'clasification' is not a ModelType: use one of classification, "
        "regression, anomaly_detection, forecasting, recommendation"), train.error.message


def test_the_server_reads_enum_names_exactly_as_the_sdk_does():
    """The SDK keeps its own reading (it builds typed messages, also for older servers): the two
    must accept the same spellings, or a request would work in one place and not the other."""
    descriptor = training_job_pb2.TrainingRequest.DESCRIPTOR
    fields = {"modelType": common_pb2.ModelType.DESCRIPTOR, "dataType": dataset_pb2.DataType.DESCRIPTOR}
    prefixes = {"modelType": "MODEL_TYPE_", "dataType": "DATA_TYPE_"}

    def request(model_type, data_type) -> dict:
        return {"modelType": model_type, "data_config": {"validation": {"constraints": [{"dataType": data_type}]}}}

    for key, enum in fields.items():
        for value in enum.values:
            short = value.name.removeprefix(prefixes[key])
            for spelled in (value.name, short.lower(), short, f" {short.title()} ", short.lower().replace("_", "-"),
                            value.number, float(value.number)):
                given = request(spelled, "int64") if key == "modelType" else request("regression", spelled)
                server = full_enum_names(given, descriptor)
                assert server == _normalize(given, descriptor), (key, spelled)
                assert training_request(server) == training_request(given)
    for key in fields:
        given = request("clasification", "int64") if key == "modelType" else request("regression", "decimal")
        with pytest.raises(ValueError):
            training_request(given)
        with pytest.raises(InvalidArgument) as err:
            full_enum_names(given, descriptor)
        assert err.value.violations[0].field == (
            "modelType" if key == "modelType" else "data_config.validation.constraints[0].dataType")


def test_executions_are_listed_by_pipeline_id_name_or_project(pclient):
    pipeline = pclient.create_pipeline({"stages": [{"id": "tick", "type": "custom", "custom_function": "echo"}]},
                                       pipeline_id="listed")
    first = pclient.wait_execution(pclient.execute_pipeline("listed").name, timeout=30)
    second = pclient.wait_execution(pclient.execute_pipeline("listed").name, timeout=30)
    newest_first = [second.name, first.name]
    assert [e.name for e in pclient.list_executions("listed")] == newest_first  # a bare id: the caller's project
    assert [e.name for e in pclient.list_executions(pipeline.name)] == newest_first
    assert [e.name for e in pclient.list_executions("listed", page_size=1)] == newest_first  # paged
    for project in ("", "projects/default"):  # every pipeline's
        assert set(newest_first) <= {e.name for e in pclient.list_executions(project)}

    with pytest.raises(ForgeTrainingError) as err:
        list(pclient.list_executions("lisetd"))
    assert err.value.code.name == "NOT_FOUND" and "projects/default/pipelines/lisetd" in err.value.message
    with pytest.raises(ForgeTrainingError) as err:
        list(pclient.list_executions("projects/default/trainingJobs/listed"))
    assert err.value.code.name == "INVALID_ARGUMENT" and err.value.field_violations[0].field == "parent"

    pclient.delete_pipeline("listed")  # executions outlive their pipeline, and still list by its id
    assert [e.name for e in pclient.list_executions("listed")] == newest_first


def test_interval_schedules_execute_by_themselves(pclient):
    pipeline = pclient.create_pipeline({
        "stages": [{"id": "tick", "type": "custom", "custom_function": "echo", "parameters": {"when": "${input.when}"}}],
        "schedule": {"interval": "1s", "input": {"when": "scheduled"}},
    })
    assert pipeline.schedule.HasField("next_run_time")
    deadline = time.monotonic() + 20
    runs = []
    while time.monotonic() < deadline and len(runs) < 2:
        runs = [e for e in pclient.list_executions(pipeline.name) if e.trigger == "schedule"]
        time.sleep(0.3)
    assert len(runs) >= 2
    done = pclient.wait_execution(runs[-1].name, timeout=30)
    assert done.state == COMPLETED and done.output["tick"]["when"] == "scheduled"


def test_an_execution_carries_on_after_a_restart(start_server, breast_cancer_csv, tmp_path):
    data_dir = tmp_path / "restart"
    calls: list[str] = []
    functions = {"mark": lambda params, ctx: calls.append(ctx.stage_id) or {"marked": True}}
    first = start_server(data_dir, pipeline_functions=functions)
    with Client(first.target) as client:
        data = client.upload_dataset(breast_cancer_csv, dataset_id="bc-restart-pipeline", label_column="target")
        pipeline = client.create_pipeline({"stages": [
            {"id": "mark", "type": "custom", "custom_function": "mark"},
            {"id": "train", "type": "model_training", "dependencies": ["mark"],
             "parameters": {"request": {**_training(data.name)["request"],
                                        "model_config": {"framework": "sklearn", "architecture": "sgd"},
                                        "training_config": {"epochs": 400, "seed": 1,
                                                            "checkpoints": {"enabled": True}}}}},
        ]})
        execution = client.execute_pipeline(pipeline.name)
        for event in client.watch_execution(execution.name):
            if event.type == pipeline_pb2.EXECUTION_EVENT_TYPE_STAGE_METRICS:
                break  # training is under way
    first.stop()

    second = start_server(data_dir, pipeline_functions=functions)
    with Client(second.target) as client:
        done = client.wait_execution(execution.name, timeout=180)
        assert done.state == COMPLETED, done.state_message
        stages = {s.stage_id: s for s in done.stages}
        assert calls == ["mark"]  # the completed stage did not run again
        job = client.get_job(stages["train"].outputs["training_job"])
        assert job.state == COMPLETED and job.attempt_count >= 2  # the same job, resumed
        events = list(client.watch_execution(execution.name, follow=False))
        assert any(e.message == "resumed after a restart" for e in events)


def test_stage_and_pipeline_time_limits(pclient):
    stage_limit = pclient.create_pipeline({"stages": [
        {"id": "nap", "type": "custom", "custom_function": "sleep", "parameters": {"seconds": 30},
         "timeout": "0.5s", "retry": {"max_attempts": 2, "initial_delay": "0.1s"}},
    ]})
    done = pclient.wait_execution(pclient.execute_pipeline(stage_limit.name).name, timeout=30)
    nap = done.stages[0]
    assert done.state == common_pb2.JOB_STATE_FAILED and nap.state == FAILED and nap.attempt == 2
    assert "timed out after 0.5 s" in nap.error.message

    pipeline_limit = pclient.create_pipeline({"timeout": "1s", "stages": [
        {"id": "nap", "type": "custom", "custom_function": "sleep", "parameters": {"seconds": 30}},
        {"id": "after", "type": "custom", "custom_function": "echo", "dependencies": ["nap"]},
    ]})
    started = time.monotonic()
    done = pclient.wait_execution(pclient.execute_pipeline(pipeline_limit.name).name, timeout=30)
    assert done.state == common_pb2.JOB_STATE_FAILED and "timeout" in done.state_message
    assert time.monotonic() - started < 10
    assert [s.state for s in done.stages] == [pipeline_pb2.STAGE_STATE_CANCELLED] * 2
