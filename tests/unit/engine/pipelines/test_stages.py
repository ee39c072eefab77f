"""Pipeline stage types on a real engine: data, training (cancel, stop and re-attach),
evaluation thresholds, deployment, custom functions, and parameter errors."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest

from engine.app import Engine, EngineSettings
from engine.errors import InvalidArgument
from engine.jobs import states
from engine.models.registry import LoadPolicy
from engine.pipelines.stages import StageCancelled, StageContext, StageFailed, check_parameters, run_stage
from server.convert import spec_from_request_dict

EXECUTION = "projects/default/pipelines/churn/executions/run-1"


@pytest.fixture(scope="module")
def extra_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("extra-root")


@pytest.fixture(scope="module")
def engine(tmp_path_factory, extra_root):
    engine = Engine(EngineSettings(data_dir=tmp_path_factory.mktemp("forge-data"), max_concurrent_jobs=2,
                                   load_policy=LoadPolicy(extra_roots=(str(extra_root),))))
    engine.start()
    yield engine
    engine.shutdown(5)


class Recorder:
    def __init__(self):
        self.logs: list[str] = []
        self.metrics: list[dict[str, float]] = []
        self.handles: dict = {}

    def remember(self, handles: dict) -> None:
        self.handles.update(handles)


def context(engine, stage_id: str, recorder: Recorder | None = None, **overrides) -> StageContext:
    recorder = recorder or Recorder()
    settings = dict(engine=engine, project="default", execution=EXECUTION, stage_id=stage_id, attempt=1,
                    log=recorder.logs.append, metrics=recorder.metrics.append, make_spec=spec_from_request_dict,
                    remember=recorder.remember)
    settings.update(overrides)
    return StageContext(**settings)


def field_of(info: pytest.ExceptionInfo) -> str:
    return info.value.violations[0].field


@pytest.fixture(scope="module")
def prepared(engine, breast_cancer_csv):
    params = {"source_uri": str(breast_cancer_csv), "label_column": "target", "filter": "mean_radius > 10",
              "split": {"ratios": [0.6, 0.2, 0.2], "seed": 3.0, "stratify_column": "target"}}
    return run_stage("data_preparation", params, context(engine, "prepare"))


def request(train: str, validation: str = "", test: str = "", epochs: int = 2) -> dict:
    data = {"trainDataset": train}
    if validation:
        data["validationDataset"] = validation
    if test:
        data["testDataset"] = test
    return {"modelType": "MODEL_TYPE_CLASSIFICATION", "modelConfig": {"framework": "sklearn", "architecture": "sgd"},
            "trainingConfig": {"epochs": epochs, "seed": 7}, "dataConfig": data, "modelId": "cancer"}


@pytest.fixture(scope="module")
def trained(engine, prepared):
    recorder = Recorder()
    params = {"request": request(prepared["train_dataset"], prepared["validation_dataset"], prepared["test_dataset"])}
    outputs = run_stage("model_training", params, context(engine, "train", recorder))
    return outputs, recorder


# ----- data


def test_data_preparation_loads_filters_splits_and_reuses_on_a_retry(engine, prepared, breast_cancer_frame,
                                                                     breast_cancer_csv):
    kept = int((breast_cancer_frame["mean_radius"] > 10).sum())
    assert prepared["row_count"] == kept < len(breast_cancer_frame)
    parts = [engine.data.get(n) for n in prepared["datasets"]]
    assert [p.name for p in parts] == [prepared["train_dataset"], prepared["validation_dataset"],
                                       prepared["test_dataset"]]
    assert sum(p.row_count for p in parts) == kept
    assert engine.data.get(prepared["dataset"]).lineage["operation"] == "filter"
    loaded = engine.data.get(engine.data.get(prepared["dataset"]).lineage["parents"][0])
    assert loaded.labels["pipeline_stage"] == "prepare" and loaded.label_column == "target"

    # The same stage again (a retry, or a restart): what the first try made is reused.
    params = {"source_uri": str(breast_cancer_csv), "label_column": "target", "filter": "mean_radius > 10",
              "split": {"ratios": [0.6, 0.2, 0.2], "seed": 3, "stratify_column": "target"}}
    again = run_stage("data_preparation", params, context(engine, "prepare", attempt=2))
    assert again == prepared

    # An existing dataset, used as it is.
    used = run_stage("data_preparation", {"dataset": prepared["test_dataset"]}, context(engine, "use"))
    assert used == {"dataset": prepared["test_dataset"], "row_count": parts[2].row_count}


def test_a_fixed_dataset_id_taken_by_something_else_names_the_parameter(engine, prepared, breast_cancer_csv):
    engine.data.create_dataset("default", "taken-id", {"source_uri": str(breast_cancer_csv)})
    with pytest.raises(InvalidArgument) as info:
        run_stage("data_preparation", {"source_uri": str(breast_cancer_csv), "dataset_id": "taken-id"},
                  context(engine, "load"))
    assert field_of(info) == "stages[load].parameters.dataset_id"
    with pytest.raises(InvalidArgument) as info:
        run_stage("data_preparation", {"source_uri": str(breast_cancer_csv) + ".missing.csv"}, context(engine, "l2"))
    assert field_of(info) == "stages[l2].parameters.source_uri"
    with pytest.raises(StageFailed, match="not found"):
        run_stage("data_preparation", {"dataset": "no-such-dataset"}, context(engine, "l3"))


def test_data_validation_reports_and_fails_on_broken_rules(engine, prepared):
    ok = run_stage("data_validation", {"dataset": prepared["dataset"],
                                       "rules": {"required_columns": ["target"], "min_rows": 10.0}},
                   context(engine, "check"))
    assert ok == {"valid": True, "failed_rules": [], "report": {"valid": True, "issues": []}}
    rules = {"constraints": [{"column": "mean_radius", "max": 15}], "required_columns": ["customer"]}
    with pytest.raises(StageFailed) as info:
        run_stage("data_validation", {"dataset": prepared["dataset"], "rules": rules}, context(engine, "check"))
    assert "2 validation rule(s)" in str(info.value) and "max mean_radius" in str(info.value)
    assert "required_columns customer" in str(info.value)
    reported = run_stage("data_validation", {"dataset": prepared["dataset"], "rules": rules,
                                             "fail_on_invalid": False}, context(engine, "check"))
    assert reported["valid"] is False
    assert reported["failed_rules"] == ["required_columns customer", "max mean_radius"]
    assert reported["report"]["issues"][1]["violation_count"] > 0
    with pytest.raises(InvalidArgument) as info:
        run_stage("data_validation", {"dataset": prepared["dataset"], "rules": {"conditions": ["mean_radius >"]}},
                  context(engine, "check"))
    assert field_of(info) == "stages[check].parameters.rules.conditions[0]"


def test_feature_extraction_fits_once_and_applies_everywhere(engine, prepared):
    params = {"dataset": prepared["train_dataset"], "processing": {"normalization": {"method": "standard"}},
              "apply_to": [prepared["validation_dataset"], prepared["test_dataset"], prepared["train_dataset"]]}
    outputs = run_stage("feature_extraction", params, context(engine, "features"))
    pipeline = engine.data.get_pipeline(outputs["data_pipeline"])
    assert pipeline.fit_dataset == prepared["train_dataset"]
    assert set(outputs["datasets"]) == {prepared["train_dataset"], prepared["validation_dataset"],
                                        prepared["test_dataset"]}
    assert outputs["dataset"] == outputs["datasets"][prepared["train_dataset"]]
    for source, processed in outputs["datasets"].items():
        row = engine.data.get(processed)
        assert row.lineage["operation"] == "data_pipeline" and row.lineage["parents"] == [source]
        assert row.row_count == engine.data.get(source).row_count
    assert run_stage("feature_extraction", params, context(engine, "features", attempt=2)) == outputs
    with pytest.raises(InvalidArgument) as info:
        run_stage("feature_extraction", {"dataset": prepared["train_dataset"],
                                         "processing": {"normalization": {"method": "standard", "columns": ["nope"]}}},
                  context(engine, "features2"))
    assert field_of(info).startswith("stages[features2].parameters.processing.normalization")


# ----- training


def test_model_training_reports_epochs_and_outputs_the_model(engine, trained, prepared):
    outputs, recorder = trained
    job = engine.trainer.get_job(outputs["training_job"])
    assert job.state == states.COMPLETED and job.name.endswith("-a1")
    assert job.spec["labels"]["pipeline"] == "churn" and job.spec["labels"]["pipeline_stage"] == "train"
    assert recorder.handles["training_job"] == job.name
    assert [m["epoch"] for m in recorder.metrics] == [1.0, 2.0]
    assert "accuracy" in recorder.metrics[-1] and "sequence" not in recorder.metrics[-1]
    version = engine.models.get(outputs["model_version"])
    assert version.model_id == "cancer" and version.training_job == job.name
    assert outputs["accuracy"] == outputs["metrics"]["accuracy"] == job.latest_metrics["accuracy"]
    assert outputs["test_metrics"] and outputs["test_accuracy"] == outputs["test_metrics"]["accuracy"]
    assert "epoch" not in outputs["metrics"]


def test_a_stage_re_attaches_to_its_remembered_job(engine, trained, prepared):
    outputs, _ = trained
    before = len(engine.trainer.list_jobs("default", 1000, "", "")[0])
    recorder = Recorder()
    ctx = context(engine, "train", recorder, attempt=1, handles={"training_job": outputs["training_job"]})
    params = {"request": request(prepared["train_dataset"])}
    assert run_stage("model_training", params, ctx) == outputs
    assert len(engine.trainer.list_jobs("default", 1000, "", "")[0]) == before
    assert any("re-attached" in line for line in recorder.logs)


def _run_in_thread(ctx, params):
    box: dict = {}

    def work():
        try:
            box["outputs"] = run_stage("model_training", params, ctx)
        except BaseException as exc:  # noqa: BLE001
            box["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread, box


def _wait(condition, box, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert "error" not in box and "outputs" not in box, box
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_stopping_server_leaves_the_job_and_a_cancel_cancels_it(engine, prepared):
    # The request's fields at the top level, in snake_case.
    params = {"model_type": "MODEL_TYPE_CLASSIFICATION",
              "model_config": {"framework": "sklearn", "architecture": "sgd"},
              "training_config": {"epochs": 10000.0},  # a Struct's numbers are floats
              "data_config": {"train_dataset": prepared["train_dataset"]}}
    first = Recorder()
    ctx = context(engine, "long", first)
    thread, box = _run_in_thread(ctx, params)
    _wait(lambda: len(first.metrics) >= 2, box)
    ctx.stopping.set()  # the server stops: the stage ends, the job is left to the trainer
    ctx.cancelled.set()
    thread.join(10)
    assert isinstance(box.get("error"), StageCancelled)
    name = first.handles["training_job"]
    job = engine.trainer.get_job(name)
    assert job.state == states.RUNNING
    assert job.spec["model_id"] == "churn-long"  # without a model_id: one model per pipeline stage
    engine.trainer.pause(name)  # as a restart leaves it (the trainer's recover pauses running jobs)
    _wait(lambda: engine.trainer.get_job(name).state == states.PAUSED, {})

    # After the "restart": the stage re-attaches, resumes the job, relays only new epochs, and a
    # cancel cancels the job.
    second = Recorder()
    ctx = context(engine, "long", second, handles=dict(first.handles))
    thread, box = _run_in_thread(ctx, params)
    _wait(lambda: len(second.metrics) >= 1, box)
    assert second.metrics[0]["epoch"] > first.metrics[-1]["epoch"]
    # Epochs trained between the stop and the pause may be relayed before the resume is logged.
    _wait(lambda: any("resumed" in line for line in second.logs), box)
    ctx.cancelled.set()
    thread.join(20)
    assert isinstance(box.get("error"), StageCancelled)
    assert engine.trainer.get_job(name).state == states.CANCELLED
    assert not second.handles or second.handles["training_job"] == name


def test_a_failing_job_fails_the_stage_and_bad_requests_name_the_field(engine, prepared):
    bad = request(prepared["train_dataset"])
    bad["dataConfig"]["labelColumn"] = "no_such_column"
    with pytest.raises(InvalidArgument) as info:
        run_stage("model_training", {"request": bad}, context(engine, "t2"))
    assert field_of(info) == "stages[t2].parameters.request.data_config.label_column"
    with pytest.raises(InvalidArgument) as info:
        run_stage("model_training", {"request": {"modelTypo": 1}}, context(engine, "t3"))
    assert field_of(info) == "stages[t3].parameters.request"
    with pytest.raises(InvalidArgument) as info:
        run_stage("model_training", {"model_type": "MODEL_TYPE_CLASSIFICATION",
                                     "model_config": {"architecture": "sgd"}}, context(engine, "t4"))
    assert field_of(info) == "stages[t4].parameters.model_config.framework"


# ----- evaluation


def test_model_validation_outputs_flat_metrics_and_checks_thresholds(engine, trained, prepared):
    outputs, _ = trained
    test_rows = engine.data.get(prepared["test_dataset"]).row_count
    passed = run_stage("model_validation", {"model": outputs["training_job"].rsplit("/", 1)[-1],
                                            "dataset": prepared["test_dataset"],
                                            "thresholds": {"accuracy": 0.5, "log_loss": {"max": 100}}},
                       context(engine, "validate"))
    assert passed["row_count"] == test_rows and 0.5 <= passed["accuracy"] == passed["metrics"]["accuracy"]
    assert passed["class_labels"] == ["0", "1"] and sum(map(sum, passed["confusion_matrix"])) == test_rows
    assert [c["label"] for c in passed["per_class"]] == ["0", "1"]
    with pytest.raises(StageFailed) as info:
        run_stage("model_evaluation", {"model": outputs["model_version"], "dataset": prepared["test_dataset"],
                                       "thresholds": {"accuracy": 1.01, "log_loss": 1e-9, "f1_score": {"min": 0},
                                                      "rmse": {"max": 1}}},
                  context(engine, "evaluate"))
    message = str(info.value)
    assert "3 threshold(s)" in message and "accuracy" in message and "below the minimum 1.01" in message
    assert "log_loss" in message and "above the maximum 1e-09" in message and "rmse is not reported" in message
    assert "f1_score" not in message.split("threshold(s)")[1].split("(reported")[0]


# ----- deployment


def test_deployment_copies_the_export_and_archives_the_previous_production_version(engine, trained, extra_root):
    outputs, _ = trained
    first = outputs["model_version"]
    deployed = run_stage("model_deployment", {"model": outputs["training_job"], "destination": "churn/"},
                         context(engine, "deploy"))
    copy = Path(engine.storage.uri("models/churn/model.onnx"))
    assert deployed["model_version"] == first and deployed["stage"] == "production" and deployed["format"] == "onnx"
    assert deployed["uri"] == str(copy) and deployed["archived"] == []
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == deployed["sha256"]
    assert deployed["size_bytes"] == copy.stat().st_size
    loaded = engine.models.load("default", "churn/model.onnx", "loaded")  # trusted: written by this service
    assert loaded.training_job == outputs["training_job"]

    second = engine.models.register(engine.trainer.get_job(outputs["training_job"])).name
    promoted = run_stage("model_deployment", {"model": second, "format": "ONNX"}, context(engine, "deploy2"))
    assert promoted["archived"] == [first] and engine.models.get(first).stage == "archived"
    assert promoted["uri"] == engine.models.get(second).artifacts["onnx"]["uri"]

    outside = run_stage("model_deployment", {"model": first, "stage": "staging",
                                             "destination": str(extra_root / "m" / "model.onnx")},
                        context(engine, "deploy3"))
    assert Path(outside["uri"]).read_bytes() == copy.read_bytes() and outside["archived"] == []
    assert engine.models.get(first).stage == "staging" and engine.models.get(second).stage == "production"

    with pytest.raises(InvalidArgument) as info:
        run_stage("model_deployment", {"model": first, "destination": "/etc/forge/model.onnx"},
                  context(engine, "deploy4"))
    assert field_of(info) == "stages[deploy4].parameters.destination"
    with pytest.raises(StageFailed, match="no torch export"):
        run_stage("model_deployment", {"model": first, "format": "torch"}, context(engine, "deploy5"))


# ----- custom


def test_custom_functions(engine):
    def double(params, ctx):
        return {"value": params["x"] * 2, "stage": ctx.stage_id}

    functions = {"double": double, "broken": lambda p, c: ["not", "a", "dict"],
                 "raises": lambda p, c: 1 / 0, "opaque": lambda p, c: {"x": object()}}
    ctx = context(engine, "custom", functions=functions)
    assert run_stage("custom", {"function": "double", "x": 21}, ctx) == {"value": 42, "stage": "custom"}
    with pytest.raises(InvalidArgument) as info:
        run_stage("custom", {"function": "triple"}, ctx)
    assert field_of(info) == "stages[custom].parameters.function"
    assert "broken, double, opaque, raises" in str(info.value)
    with pytest.raises(StageFailed, match="must return a dict"):
        run_stage("custom", {"function": "broken"}, ctx)
    with pytest.raises(StageFailed, match="ZeroDivisionError"):
        run_stage("custom", {"function": "raises"}, ctx)
    with pytest.raises(StageFailed, match="not JSON"):
        run_stage("custom", {"function": "opaque"}, ctx)


def test_a_cancelled_stage_does_nothing(engine, prepared):
    ctx = context(engine, "late")
    ctx.cancelled.set()
    with pytest.raises(StageCancelled):
        run_stage("data_preparation", {"dataset": prepared["dataset"], "filter": "target == 1"}, ctx)


# ----- static checks


@pytest.mark.parametrize(("stage_type", "params", "field"), [
    ("data_preparation", {}, "dataset"),
    ("data_preparation", {"dataset": "a", "source_uri": "/x.csv"}, "source_uri"),
    ("data_preparation", {"dataset": "a", "label_column": "y"}, "label_column"),
    ("data_preparation", {"source_uri": "/x.csv", "format": "xlsx"}, "format"),
    ("data_preparation", {"dataset": "a", "filter": "age >"}, "filter"),
    ("data_preparation", {"dataset": "a", "split": {"ratios": [0.5, 0.6]}}, "split.ratios"),
    ("data_preparation", {"dataset": "a", "split": {"ratios": [1.0, "x"]}}, "split.ratios[1]"),
    ("data_preparation", {"dataset": "a", "split": {"ratio": [0.5, 0.5]}}, "split.ratio"),
    ("data_preparation", {"dataset": "a", "shuffle": True}, "shuffle"),
    ("data_validation", {"dataset": "a"}, "rules"),
    ("data_validation", {"dataset": "a", "rules": {"constraints": [{"column": "x", "min": 2, "max": 1}]}},
     "rules.constraints[0].min"),
    ("data_validation", {"dataset": "a", "rules": {}, "fail_on_invalid": "yes"}, "fail_on_invalid"),
    ("feature_extraction", {"dataset": "a", "processing": {"normalization": {"method": "zscore"}}},
     "processing.normalization.method"),
    ("feature_extraction", {"dataset": "a", "processing": {}, "apply_to": [3]}, "apply_to[0]"),
    ("model_training", {}, "request"),
    ("model_training", {"request": "not an object"}, "request"),
    ("model_training", {"request": {}, "epochs": 3}, "epochs"),
    ("model_validation", {"dataset": "a"}, "model"),
    ("model_evaluation", {"model": "a", "dataset": "b", "thresholds": {"accuracy": "high"}}, "thresholds.accuracy"),
    ("model_evaluation", {"model": "a", "dataset": "b", "thresholds": {"rmse": {"max": 1, "avg": 2}}},
     "thresholds.rmse.avg"),
    ("model_evaluation", {"model": "projects/p/models/m/versions/x", "dataset": "b"}, "model"),
    ("model_deployment", {"model": "a", "stage": "archived"}, "stage"),
    ("model_deployment", {"model": "a", "format": "zip"}, "format"),
    ("model_deployment", {"model": "a", "destination": "../../etc/model.onnx"}, "destination"),
    ("custom", {}, "function"),
])
def test_static_checks_name_the_parameter(stage_type, params, field):
    with pytest.raises(InvalidArgument) as info:
        check_parameters(stage_type, params, "pipeline.stages[s].parameters")
    assert field_of(info) == f"pipeline.stages[s].parameters.{field}"


def test_static_checks_leave_references_for_later():
    field = "pipeline.stages[s].parameters"
    check_parameters("data_preparation", {"dataset": "${prep.dataset}", "split": {"ratios": "${params.r}"},
                                          "filter": "${params.filter}"}, field)
    check_parameters("data_validation", {"dataset": "${prep.dataset}", "rules": {"min_rows": "${params.n}"}}, field)
    check_parameters("feature_extraction", {"dataset": "${prep.train_dataset}", "processing": "${params.p}",
                                            "apply_to": ["${prep.test_dataset}"]}, field)
    check_parameters("model_training", {"request": {"dataConfig": {"trainDataset": "${prep.train_dataset}"}}}, field)
    check_parameters("model_evaluation", {"model": "${train.training_job}", "dataset": "${prep.test_dataset}",
                                          "thresholds": {"accuracy": "${params.min_accuracy}"}}, field)
    check_parameters("model_deployment", {"model": "${train.model_version}", "stage": "${params.stage}"}, field)
    check_parameters("custom", {"function": "anything", "whatever": [1, 2]}, field)
    with pytest.raises(InvalidArgument) as info:
        check_parameters("model_pruning", {}, field)
    assert field_of(info) == "pipeline.stages[s].type"
