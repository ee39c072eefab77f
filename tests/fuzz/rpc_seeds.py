"""The resources the RPC fuzz test (test_rpc_fuzz.py) works on, and for each RPC the requests
that work on them: the starting points of its mutated requests."""

from __future__ import annotations

import hashlib
import io
import math
from pathlib import Path

from google.protobuf import json_format

from engine.data.processing import (
    AUGMENTATION_METHODS,
    ENCODING_METHODS,
    IMPUTATION_STRATEGIES,
    NORMALIZATION_METHODS,
    SAMPLING_METHODS,
)
from engine.pipelines.definition import BACKOFF_TYPES, STAGE_TYPES, TEMPLATE_TYPES
from forge.training import Client, common_pb2
from forge.training.v1 import data_service_pb2, pipeline_service_pb2, trainer_service_pb2
from rpc_messages import message_class

SERVICES = [
    trainer_service_pb2.DESCRIPTOR.services_by_name["TrainerService"],
    data_service_pb2.DESCRIPTOR.services_by_name["DataService"],
    pipeline_service_pb2.DESCRIPTOR.services_by_name["PipelineService"],
]
# The canary's own project: no seed names it, so nothing the fuzzer derives from them touches it.
CANARY_PROJECT = "canary"

# Words the engine acts on, so that generated strings also pass its first checks now and then.
DOMAIN_WORDS = (
    "sklearn", "xgboost", "pytorch", "tensorflow", "logistic_regression", "random_forest", "mlp", "lstm", "classifier",
    "accuracy", "loss", "val_loss", "max", "min", "adam", "sgd", "cosine", "step", "UTC", "Europe/Amsterdam",
    "Mars/Olympus", "*/5 * * * *", "0 3 * * *", "99 99 * * *", "sepal_length > 5", "evaluate.accuracy >= 0.9",
    *TEMPLATE_TYPES, *STAGE_TYPES, *BACKOFF_TYPES, *IMPUTATION_STRATEGIES, *NORMALIZATION_METHODS,
    *ENCODING_METHODS, *SAMPLING_METHODS, *AUGMENTATION_METHODS,
)


def echo(parameters: dict, context) -> dict:
    """The custom stage the seed pipelines run: instant, and it returns what it was given."""
    return dict(parameters)


def _iris_csv() -> bytes:
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    frame.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width", "target"]
    out = io.StringIO()
    frame.to_csv(out, index=False)
    return out.getvalue().encode()


def _message(cls, fields: dict):
    return json_format.ParseDict(fields, cls())


def _edited(cls, fields: dict, edit):
    """A request from its JSON form, then changed in a way JSON cannot say (a Duration out of range)."""
    request = _message(cls, fields)
    edit(request)
    return request


def _upload(csv: bytes, dataset_id: str, parent: str = "") -> list[data_service_pb2.UploadDatasetRequest]:
    metadata = {"parent": parent, "dataset_id": dataset_id, "format": "DATA_FORMAT_CSV", "label_column": "target",
                "size_bytes": str(len(csv)), "sha256": hashlib.sha256(csv).hexdigest()}
    half = len(csv) // 2
    return [_message(data_service_pb2.UploadDatasetRequest, {"metadata": metadata}),
            data_service_pb2.UploadDatasetRequest(chunk=csv[:half]),
            data_service_pb2.UploadDatasetRequest(chunk=csv[half:])]


def _training_spec(dataset: str, epochs: int = 2) -> dict:
    return {"model_type": "MODEL_TYPE_CLASSIFICATION",
            "model_config": {"framework": "sklearn", "architecture": "logistic_regression",
                             "hyperparameters": {"C": 1.0}},
            "training_config": {"epochs": epochs, "seed": 3, "early_stopping": {"enabled": True, "patience": 2}},
            "data_config": {"train_dataset": dataset, "label_column": "target", "validation_fraction": 0.2},
            "labels": {"suite": "fuzz"}}


class Seeds:
    """Real resources and, for each RPC, requests that work on them: the starting points of the
    mutated requests. `names` are every resource name and column, for generated strings."""

    def __init__(self, client: Client, tmp: Path):
        csv = _iris_csv()
        path = tmp / "iris.csv"
        path.write_bytes(csv)
        data, trainer, pipelines = client.data, client.trainer, client.pipelines
        ds = data.UploadDataset(iter(_upload(csv, "fuzz-iris"))).dataset.name
        # Without an id, so the uploads built from it get past the name check to their bytes.
        self.upload = _upload(csv, "")
        job = client.start_training(_training_spec(ds), training_job_id="fuzz-job")
        done = client.wait(job.name, timeout=120)
        assert done.state == common_pb2.JOB_STATE_COMPLETED, done.state_message
        version = done.model_version
        saved = trainer.SaveModel(trainer_service_pb2.SaveModelRequest(
            name=job.name, path="fuzz/model.pkl", format=common_pb2.EXPORT_FORMAT_PICKLE)).path
        source = data.RegisterDataSource(_message(data_service_pb2.RegisterDataSourceRequest, {
            "data_source_id": "fuzz-source",
            "data_source": {"type": "DATA_SOURCE_TYPE_FILE", "uri": str(path), "format": "DATA_FORMAT_CSV"}})
        ).data_source.name
        processing = {"normalization": {"method": "standard"}}
        data_pipeline = data.CreateDataPipeline(_message(data_service_pb2.CreateDataPipelineRequest, {
            "data_pipeline_id": "fuzz-prep", "data_pipeline": {"processing": processing, "fit_dataset": ds,
                                                               "validation": {"required_columns": ["target"]}}})
        ).data_pipeline.name
        stages = [{"id": "check", "type": "STAGE_TYPE_DATA_VALIDATION",
                   "parameters": {"dataset": ds, "rules": {"required_columns": ["target"], "min_rows": 10}}},
                  {"id": "say", "type": "STAGE_TYPE_CUSTOM", "custom_function": "echo", "dependencies": ["check"],
                   "parameters": {"note": "${input.note}"}}]
        create_pipeline = {"pipeline_id": "", "pipeline": {"display_name": "fuzz", "stages": stages,
                                                           "timeout": "60s", "labels": {"suite": "fuzz"}}}
        pipeline = pipelines.CreatePipeline(_message(pipeline_service_pb2.CreatePipelineRequest, {
            **create_pipeline, "pipeline_id": "fuzz-pipe"})).pipeline.name
        execution = client.wait_execution(client.execute_pipeline(pipeline, {"note": "seed"}).name, timeout=60).name
        create_template = {"template_id": "", "template": {
            "display_name": "echo", "stages": [{"id": "say", "type": "STAGE_TYPE_CUSTOM", "custom_function": "echo",
                                                "parameters": {"value": "${params.value}"}}],
            "parameters": [{"name": "value", "type": "integer", "default_value": 2}]}}
        template = pipelines.CreateTemplate(_message(pipeline_service_pb2.CreateTemplateRequest, {
            **create_template, "template_id": "fuzz-template"})).template.name
        tuning_spec = {"base_request": _training_spec(ds, epochs=1), "algorithm": "SEARCH_ALGORITHM_RANDOM",
                       "parameters": [{"path": "model_config.hyperparameters.C",
                                       "double_range": {"min": 0.01, "max": 10, "log_scale": True}}],
                       "objective_metric": "accuracy", "max_trials": 2, "parallel_trials": 1, "time_budget": "60s"}
        tuning = trainer.StartTuning(_message(trainer_service_pb2.StartTuningRequest, {
            "tuning_job_id": "fuzz-tuning", "spec": tuning_spec})).tuning_job.name
        trainer.CancelTuning(trainer_service_pb2.CancelTuningRequest(name=tuning))  # its trials would load the CPU

        self.names = sorted({ds, job.name, version, saved, source, data_pipeline, pipeline, execution, template,
                             tuning, str(path), "fuzz-iris", "fuzz-job", "target", "sepal_length", "petal_width",
                             *DOMAIN_WORDS})
        named = {"name": job.name}
        requests = {
            # TrainerService
            "StartTraining": [{"spec": _training_spec(ds, epochs=1)}],
            "GetTrainingJob": [named], "DeleteTrainingJob": [named], "PauseTraining": [named],
            "ResumeTraining": [named], "CancelTraining": [named],
            "ListTrainingJobs": [{"page_size": 2, "filter": "state=COMPLETED"}],
            "GetTrainingMetrics": [{"name": job.name, "page_size": 5}],
            "WatchTrainingMetrics": [{"name": job.name, "follow": True}],
            "GetTrainingLogs": [{"name": job.name, "page_size": 5, "min_level": "LOG_LEVEL_INFO", "contains": "epoch"}],
            "StreamTrainingLogs": [{"name": job.name, "from_sequence": 1, "follow": True}],
            "ExportTrainingMetrics": [{"name": job.name, "format": "METRICS_EXPORT_FORMAT_CSV"}],
            "ListAlertDeliveries": [{"resource": job.name, "page_size": 5}],
            "SaveModel": [{"name": job.name, "path": "fuzz/again.onnx", "format": "EXPORT_FORMAT_ONNX"}],
            "LoadModel": [{"path": saved, "model_id": "fuzz-loaded", "format": "EXPORT_FORMAT_PICKLE"}],
            "ExportModel": [{"name": job.name, "format": "EXPORT_FORMAT_ONNX"},
                            {"name": version, "format": "EXPORT_FORMAT_PICKLE", "offset": 10}],
            "ListModels": [{"page_size": 2}], "GetModel": [{"name": version}], "DeleteModel": [{"name": version}],
            "UpdateModelStage": [{"name": version, "stage": "MODEL_STAGE_STAGING"}],
            "EvaluateModel": [{"name": version, "dataset": ds}],
            "StartTuning": [{"spec": tuning_spec}],
            "GetTuningJob": [{"name": tuning}], "WatchTuningJob": [{"name": tuning, "follow": True}],
            "CancelTuning": [{"name": tuning}], "ListTuningJobs": [{"page_size": 1}],
            # DataService
            "CreateDataset": [{"config": {"source_uri": str(path), "format": "DATA_FORMAT_CSV",
                                          "label_column": "target", "processing": processing}}],
            "GetDataset": [{"name": ds}], "DeleteDataset": [{"name": ds}], "ListDatasets": [{"page_size": 2}],
            "RegisterDataSource": [{"data_source": {"type": "DATA_SOURCE_TYPE_FILE", "uri": str(path),
                                                    "format": "DATA_FORMAT_CSV"}}],
            "GetDataSource": [{"name": source}], "ListDataSources": [{"page_size": 1}],
            "GetRecords": [{"name": ds, "offset": 3, "limit": 5, "columns": ["sepal_length", "target"]}],
            "StreamRecords": [{"name": ds, "batch_size": 20, "format": "RECORD_FORMAT_ARROW_IPC"},
                              {"name": ds, "batch_size": 7, "offset": 140, "columns": ["target"]}],
            "TransformDataset": [{"name": ds, "processing": processing}],
            "FilterDataset": [{"name": ds, "expression": "sepal_length > 5 and target != 2"}],
            "SplitDataset": [{"name": ds, "ratios": [0.8, 0.2], "seed": 1, "stratify_column": "target"}],
            "MergeDatasets": [{"datasets": [ds, ds]}],
            "ValidateDataset": [{"name": ds, "rules": {"required_columns": ["target"], "min_rows": 10}}],
            "CreateDataPipeline": [{"data_pipeline": {"processing": processing, "fit_dataset": ds}}],
            "RunDataPipeline": [{"name": data_pipeline, "dataset": ds}],
            # PipelineService
            "CreatePipeline": [create_pipeline], "GetPipeline": [{"name": pipeline}],
            "DeletePipeline": [{"name": pipeline}], "ListPipelines": [{"page_size": 1}],
            "ExecutePipeline": [{"name": pipeline, "input": {"note": "fuzz"}}],
            "GetExecution": [{"name": execution}], "CancelExecution": [{"name": execution}],
            "WatchExecution": [{"name": execution, "follow": True}], "ListExecutions": [{"parent": pipeline}],
            "CreateTemplate": [create_template], "GetTemplate": [{"name": template}],
            "ListTemplates": [{"page_size": 1}],
            "CreateFromTemplate": [{"template": template, "config": {"value": 3}}],
        }
        # Inputs the fuzzer once answered wrongly, sent on every run: the fixes must hold.
        regressions = {
            # Bytes that do not decode: grpc.aio answered UNKNOWN (INTERNAL for an upload's message).
            "GetDataset": [b"\n\x02\xff\xfe"], "StreamRecords": [b"\xff\xff\xff"],
            # Values JSON cannot hold: INTERNAL where a handler turned the message into a dict.
            "StartTuning": [_edited(trainer_service_pb2.StartTuningRequest, {"spec": tuning_spec},
                                    lambda r: setattr(r.spec.time_budget, "nanos", -2**31))],
            "CreatePipeline": [_edited(pipeline_service_pb2.CreatePipelineRequest, create_pipeline,
                                       lambda r: setattr(r.pipeline.timeout, "seconds", -2**63))],
            "CreateTemplate": [_edited(pipeline_service_pb2.CreateTemplateRequest, create_template,
                                       lambda r: setattr(r.template.stages[0].timeout, "seconds", -2**63))],
            "StartTraining": [{"spec": {**_training_spec(ds), "model_config": {
                "framework": "sklearn", "hyperparameters": {"C": math.nan}}}}],
            "ExecutePipeline": [{"name": pipeline, "input": {"note": math.inf}}],
            # A SQL "URL" SQLAlchemy cannot parse: INTERNAL.
            "RegisterDataSource": [{"data_source": {"type": "DATA_SOURCE_TYPE_SQL", "uri": str(path)}}],
            # Listing the terms of a huge polynomial degree took all the machine's memory.
            "TransformDataset": [{"name": ds, "processing": {"feature_engineering": {
                "polynomial_degree": 2**31 - 1}}}],
        }
        self.regressions = {}
        self.requests = {}
        for method in (m for service in SERVICES for m in service.methods):
            if method.client_streaming:
                continue
            cls = message_class(method.input_type)
            self.requests[method.name] = [_message(cls, r) for r in requests[method.name]]
            self.regressions[method.name] = [r if isinstance(r, (bytes, cls)) else _message(cls, r)
                                              for r in regressions.get(method.name, [])]
        # An upload whose first message, or whose chunk after good metadata, does not decode.
        self.regressions["UploadDataset"] = [[b"\x08"], [self.upload[0], b"\x12\x05ab"]]

        # What the canary reads, in its own project; its job is cancelled at once, as reading it is enough.
        self.canary_dataset = data.UploadDataset(iter(_upload(csv, "canary-iris", f"projects/{CANARY_PROJECT}"))
                                                 ).dataset.name
        canary_job = trainer.StartTraining(_message(trainer_service_pb2.StartTrainingRequest, {
            "parent": f"projects/{CANARY_PROJECT}", "training_job_id": "canary-job",
            "spec": _training_spec(self.canary_dataset)})).training_job.name
        trainer.CancelTraining(trainer_service_pb2.CancelTrainingRequest(name=canary_job))
        self.canary_job = canary_job
