"""Translation between protobuf messages and engine values. No logic beyond mapping."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from engine.alerts.dispatcher import shown_url
from engine.alerts.rules import without_secrets
from engine.errors import InvalidArgument
from engine.jobs.request import spec_from_request
from engine.jobs.spec import TrainingSpec
from engine.storage.artifacts import location
from engine.tuning.manager import trial_dict
from engine.store.models import DatasetRow, TrainingJobRow
from forge.training.v1 import (
    alert_pb2,
    common_pb2,
    dataset_pb2,
    metrics_pb2,
    model_pb2,
    pipeline_pb2,
    trainer_service_pb2,
    training_job_pb2,
    tuning_job_pb2,
)
from server.errors import error_status_proto

# ----- enums <-> engine strings


def enum_str(enum_type, value: int, prefix: str, field: str = "") -> str:
    """The engine's lowercase name of an enum value; unknown values are INVALID_ARGUMENT on `field`."""
    if value == 0:
        return ""
    if value not in enum_type.values():  # a newer client, or a typo: a client mistake, not a crash
        known = ", ".join(n.removeprefix(prefix) for n in enum_type.keys()[1:])
        raise InvalidArgument.field(field or prefix.rstrip("_").lower(), f"unknown value {value}: use one of {known}")
    return enum_type.Name(value).removeprefix(prefix).lower()


def _str_to_enum(enum_type, value: str, prefix: str) -> int:
    if not value:
        return 0
    return enum_type.Value(prefix + value.upper())


def export_format_str(value: int, field: str = "format") -> str:
    if value == 0:
        raise InvalidArgument.field(field, "is required: ONNX, PICKLE, SAVEDMODEL or TORCH", "REQUIRED")
    return enum_str(common_pb2.ExportFormat, value, "EXPORT_FORMAT_", field)


def export_format_enum(value: str) -> int:
    return _str_to_enum(common_pb2.ExportFormat, value, "EXPORT_FORMAT_")


def data_format_str(value: int, field: str = "format") -> str:
    return enum_str(dataset_pb2.DataFormat, value, "DATA_FORMAT_", field)


def dataset_type_str(value: int, field: str = "type") -> str:
    return enum_str(dataset_pb2.DatasetType, value, "DATASET_TYPE_", field)


def job_state_enum(state: str) -> int:
    return common_pb2.JobState.Value("JOB_STATE_" + state)


LOG_LEVELS = {"debug": common_pb2.LOG_LEVEL_DEBUG, "info": common_pb2.LOG_LEVEL_INFO,
              "warning": common_pb2.LOG_LEVEL_WARNING, "error": common_pb2.LOG_LEVEL_ERROR}
LOG_LEVEL_NUMBERS = {common_pb2.LOG_LEVEL_UNSPECIFIED: 0, common_pb2.LOG_LEVEL_DEBUG: 10,
                     common_pb2.LOG_LEVEL_INFO: 20, common_pb2.LOG_LEVEL_WARNING: 30, common_pb2.LOG_LEVEL_ERROR: 40}


# ----- well-known types


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands back naive datetimes; we store UTC
        value = value.replace(tzinfo=timezone.utc)
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def struct_to_dict(value: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(value)


def dict_to_struct(value: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(_json_safe(value))
    return out


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return str(value)


# ----- training jobs


def spec_from_proto(request: training_job_pb2.TrainingRequest) -> TrainingSpec:
    """The engine's reading of a request (engine/jobs/request.py), which an application using
    the engine in-process gets too: the server only turns the message into its JSON form."""
    return spec_from_request(message_dict(request))


def spec_to_proto(raw: dict[str, Any]) -> training_job_pb2.TrainingRequest:
    spec = TrainingSpec.from_dict(raw)
    request = training_job_pb2.TrainingRequest(
        display_name=spec.display_name,
        model_type=_str_to_enum(common_pb2.ModelType, spec.model_type, "MODEL_TYPE_"),
        labels=spec.labels,
        model_id=spec.model_id,
    )
    mc = request.model_config
    mc.framework, mc.architecture = spec.framework, spec.architecture
    mc.hyperparameters.CopyFrom(dict_to_struct(spec.hyperparameters))
    mc.input_shape.extend(spec.input_shape)
    mc.pretrained_path = spec.pretrained_path
    mc.frozen_layers.extend(spec.frozen_layers)
    tc = request.training_config
    tc.epochs, tc.batch_size, tc.learning_rate = spec.epochs, spec.batch_size, spec.learning_rate
    tc.optimizer, tc.loss_function, tc.seed = spec.optimizer, spec.loss_function, spec.seed
    tc.optimizer_config.CopyFrom(dict_to_struct(spec.optimizer_config))
    tc.gradient_accumulation_steps, tc.mixed_precision = spec.gradient_accumulation_steps, spec.mixed_precision
    r = spec.regularization
    tc.regularization.CopyFrom(training_job_pb2.RegularizationConfig(
        l1=r.l1, l2=r.l2, dropout=r.dropout, batch_norm=r.batch_norm, weight_decay=r.weight_decay,
        gradient_clip_norm=r.gradient_clip_norm))
    e = spec.early_stopping
    tc.early_stopping.CopyFrom(training_job_pb2.EarlyStoppingConfig(
        enabled=e.enabled, patience=e.patience, metric=e.metric, mode=e.mode, min_delta=e.min_delta,
        restore_best=e.restore_best))
    s = spec.lr_scheduler
    tc.lr_scheduler.CopyFrom(training_job_pb2.LearningRateScheduler(
        type=s.type, step_size=s.step_size, gamma=s.gamma, warmup_epochs=s.warmup_epochs, min_lr=s.min_lr,
        patience=s.patience, metric=s.metric))
    c = spec.checkpoints
    tc.checkpoints.CopyFrom(training_job_pb2.CheckpointConfig(
        enabled=c.enabled, save_best=c.save_best, save_latest=c.save_latest, every_n_epochs=c.every_n_epochs,
        keep_last=c.keep_last, monitor_metric=c.monitor_metric, path=c.path))
    request.alerts.extend(alert_rules_to_proto(spec.alerts))
    for entry in spec.callbacks:
        request.callbacks.add(name=entry["name"], type=entry["type"], config=dict_to_struct(entry.get("config") or {}),
                              priority=entry.get("priority", 0))
    cv = spec.cross_validation
    if cv.enabled:  # unset stays unset, as the request had it
        request.validation.cross_validation.CopyFrom(training_job_pb2.CrossValidationConfig(
            enabled=True, folds=cv.folds, shuffle=cv.shuffle, seed=cv.seed, final_model=cv.final_model,
            metric=cv.metric))
    if spec.retry_policy.max_retries:  # unset stays unset, as the request had it
        tc.retry_policy.max_retries = spec.retry_policy.max_retries
    d = spec.data
    request.data_config.CopyFrom(training_job_pb2.TrainingDataConfig(
        train_dataset=d.train_dataset, validation_dataset=d.validation_dataset, test_dataset=d.test_dataset,
        label_column=d.label_column, feature_columns=d.feature_columns, validation_fraction=d.validation_fraction,
        no_validation=d.no_validation, text_column=d.text_column, time_column=d.time_column,
        user_column=d.user_column, item_column=d.item_column, window_size=d.window_size))
    if d.validation:
        request.data_config.validation.CopyFrom(rules_to_proto(d.validation))
    res = spec.resources
    request.resources.cpu, request.resources.memory = res.cpu, res.memory
    request.resources.gpu, request.resources.priority = res.gpu, res.priority
    request.resources.workers = res.workers
    if res.timeout_seconds:
        request.resources.timeout.FromNanoseconds(int(res.timeout_seconds * 1e9))
    return request


_METRIC_SCALARS = ("training_loss", "validation_loss", "best_loss", "accuracy", "precision", "recall", "f1_score",
                   "rmse", "mae", "r2", "learning_rate", "gradient_norm")


# Fields a recorded point holds as TrainingMetrics takes them (numbers, the extra map).
_METRIC_FIELDS = frozenset({"sequence", "epoch", "total_epochs", "progress", "best_epoch", "epoch_seconds", "extra",
                            *_METRIC_SCALARS})
_GPU_FIELDS = ("gpu_usage", "gpu_memory", "gpu_memory_total")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def metric_wire(point: dict[str, Any]) -> bytes:
    """A recorded metric point as stored for replays (Journal.encode_metric): its TrainingMetrics encoding."""
    return metrics_to_proto(point).SerializeToString()


# The key of WatchTrainingMetricsResponse.points (field number, length-delimited wire type).
_POINTS_KEY = bytes([trainer_service_pb2.WatchTrainingMetricsResponse.DESCRIPTOR.fields_by_name["points"].number << 3 | 2])


def framed_metric(wire: bytes) -> bytes:
    """A point's TrainingMetrics encoding framed as one WatchTrainingMetricsResponse.points entry:
    responses are parsed from their points' stored bytes joined, never rebuilt field by field."""
    size = len(wire)
    if size < len(_FRAMES):
        return _FRAMES[size] + wire
    length = bytearray()
    while size > 0x7F:
        length.append(size & 0x7F | 0x80)
        size >>= 7
    length.append(size)
    return _POINTS_KEY + bytes(length) + wire


def _frame(size: int) -> bytes:
    return _POINTS_KEY + (bytes((size,)) if size < 0x80 else bytes((size & 0x7F | 0x80, size >> 7)))


# The key and length of every entry shorter than 16 KiB (a point is a few hundred bytes): a
# replay frames a hundred thousand of them.
_FRAMES = [_frame(size) for size in range(1 << 14)]


class Encoded:
    """A response already in its wire format, `data`: sent as it is (CallInterceptor's serializers
    pass it through). A replay's pages are built from stored bytes, never parsed and re-serialized."""

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data


# The key of WatchTrainingMetricsResponse.job_state (field number, varint wire type).
_JOB_STATE_KEY = trainer_service_pb2.WatchTrainingMetricsResponse.DESCRIPTOR.fields_by_name["job_state"].number << 3


def metrics_response(framed: list[bytes], state: str) -> Encoded:
    """The WatchTrainingMetricsResponse of framed_metric points and the job's state, encoded."""
    value = job_state_enum(state)  # a JobState is a few dozen at most: one varint byte
    return Encoded(b"".join(framed) + (bytes((_JOB_STATE_KEY, value)) if value else b""))


def passing_encoded(serializer):
    """`serializer`, except that an Encoded response goes out as it is."""
    if serializer is None:
        return None

    def serialize(message):
        return message.data if type(message) is Encoded else serializer(message)

    return serialize


def metrics_to_proto(point: dict[str, Any]) -> metrics_pb2.TrainingMetrics:
    """A recorded metric point (the journal's dict) as TrainingMetrics.

    Built in one constructor call: a replay converts many thousands of points, and setting
    fields one by one costs several times more. A point that call refuses (a value of another
    type, a GPU field without gpu_present) is converted field by field, casting each value."""
    fields = {key: value for key, value in point.items() if key in _METRIC_FIELDS and value is not None}
    usage = point.get("resource_usage")
    if usage:
        if not usage.get("gpu_present") and any(key in usage for key in _GPU_FIELDS):
            return _metrics_to_proto_field_by_field(point)
        fields["resource_usage"] = usage
    when = point.get("time")
    if when is not None:
        if when.tzinfo is None:  # SQLite hands back naive datetimes; we store UTC
            when = when.replace(tzinfo=timezone.utc)
        since = when - _EPOCH
        fields["time"] = {"seconds": since.days * 86400 + since.seconds, "nanos": since.microseconds * 1000}
    try:
        return metrics_pb2.TrainingMetrics(**fields)
    except (TypeError, ValueError):
        return _metrics_to_proto_field_by_field(point)


def _metrics_to_proto_field_by_field(point: dict[str, Any]) -> metrics_pb2.TrainingMetrics:
    msg = metrics_pb2.TrainingMetrics(
        sequence=int(point.get("sequence", 0)),
        epoch=int(point.get("epoch", 0)),
        total_epochs=int(point.get("total_epochs", 0)),
        progress=float(point.get("progress", 0.0)),
        epoch_seconds=float(point.get("epoch_seconds", 0.0)),
    )
    if point.get("time") is not None:
        msg.time.CopyFrom(timestamp(point["time"]))
    for key in _METRIC_SCALARS:
        if point.get(key) is not None:
            setattr(msg, key, float(point[key]))
    if point.get("best_epoch") is not None:
        msg.best_epoch = int(point["best_epoch"])
    usage = point.get("resource_usage") or {}
    if usage:
        ru = msg.resource_usage
        ru.cpu_usage = float(usage.get("cpu_usage", 0.0))
        ru.memory_usage = int(usage.get("memory_usage", 0))
        ru.memory_total = int(usage.get("memory_total", 0))
        ru.gpu_present = bool(usage.get("gpu_present", False))
        if ru.gpu_present:
            ru.gpu_usage = float(usage["gpu_usage"])
            ru.gpu_memory = int(usage["gpu_memory"])
            ru.gpu_memory_total = int(usage["gpu_memory_total"])
    for key, value in (point.get("extra") or {}).items():
        msg.extra[key] = float(value)
    return msg


def log_to_proto(entry: dict[str, Any]) -> metrics_pb2.TrainingLogEntry:
    msg = metrics_pb2.TrainingLogEntry(
        sequence=entry["sequence"],
        level=LOG_LEVELS.get(entry["level"], common_pb2.LOG_LEVEL_INFO),
        message=entry["message"],
        source=entry["source"],
        epoch=entry["epoch"],
    )
    msg.time.CopyFrom(timestamp(entry["time"]))
    return msg


def alert_rules_to_proto(rules: list[dict[str, Any]]) -> list[alert_pb2.AlertRule]:
    """Alert rules as the API shows them: the webhook secret never, only whether one is set."""
    out = []
    for rule in without_secrets(rules or []):
        message = alert_pb2.AlertRule(name=rule["name"], webhook_url=shown_url(rule.get("webhook_url", "")),
                                      webhook_secret_set=rule["webhook_secret_set"],
                                      on_states=[job_state_enum(s) for s in rule.get("on_states", [])])
        if rule.get("metric"):
            message.metric.CopyFrom(alert_pb2.MetricCondition(**rule["metric"]))
        out.append(message)
    return out


def alert_delivery_to_proto(row) -> alert_pb2.AlertDelivery:
    out = alert_pb2.AlertDelivery(
        id=row.id, resource=row.resource, alert=row.alert, event=row.event, payload=dict_to_struct(row.payload),
        webhook_url=shown_url(row.url),
        state=alert_pb2.AlertDeliveryState.Value(f"ALERT_DELIVERY_STATE_{row.state.upper()}"),
        attempts=row.attempts, last_response_code=row.last_response_code, last_error=row.last_error)
    for field in ("create_time", "end_time", "next_attempt_time"):
        value = getattr(row, field)
        if value is not None:
            getattr(out, field).CopyFrom(timestamp(value))
    return out


def job_to_proto(row: TrainingJobRow, tensorboard_log_dir: str = "") -> training_job_pb2.TrainingJob:
    """`tensorboard_log_dir`: the engine's TensorBoardLogs.written_dir of the job (the row does not hold it)."""
    job = training_job_pb2.TrainingJob(
        name=row.name,
        spec=spec_to_proto(row.spec),
        state=job_state_enum(row.state),
        state_message=row.state_message,
        current_epoch=row.current_epoch,
        total_epochs=row.total_epochs,
        progress=(row.current_epoch / row.total_epochs) if row.total_epochs else 0.0,
        checkpoint_epoch=int((row.checkpoint or {}).get("epoch", 0)),
        test_metrics=row.test_metrics or {},
        export_formats=[export_format_enum(f) for f in (row.artifacts or {}) if f != "state"],
        framework_versions=row.framework_versions or {},
        attempt_count=row.attempt_count,
        model_version=(row.model_info or {}).get("model_version", ""),
        tensorboard_log_dir=tensorboard_log_dir,
    )
    for field in ("create_time", "start_time", "end_time", "update_time"):
        value = getattr(row, field)
        if value is not None:
            getattr(job, field).CopyFrom(timestamp(value))
    if row.latest_metrics:
        job.latest_metrics.CopyFrom(metrics_to_proto(row.latest_metrics))
    if row.error:
        job.error.CopyFrom(error_status_proto(row.error.get("code", "INTERNAL"), row.error.get("message", "")))
    summary = (row.model_info or {}).get("cross_validation")
    if summary:
        job.cross_validation.CopyFrom(training_job_pb2.CrossValidationResult(
            folds=[training_job_pb2.FoldMetrics(**fold) for fold in summary["folds"]], mean=summary["mean"],
            std=summary["std"], best_fold=summary["best_fold"], final_model=summary["final_model"],
            metric=summary["metric"]))
    return job


# ----- datasets


def _schema_to_proto(schema: dict[str, Any]) -> dataset_pb2.DataSchema:
    out = dataset_pb2.DataSchema()
    for col in schema.get("columns", []):
        out.columns.append(dataset_pb2.ColumnSchema(
            name=col["name"],
            data_type=dataset_pb2.DataType.Value("DATA_TYPE_" + col["data_type"].upper()),
            nullable=bool(col.get("nullable")),
            categorical=bool(col.get("categorical")),
            categories=[str(c) for c in col.get("categories", [])],
            description=col.get("description", ""),
        ))
    return out


def schema_from_proto(schema: dataset_pb2.DataSchema, field: str = "config.schema") -> dict[str, Any] | None:
    if not schema.columns:
        return None
    columns = []
    for i, col in enumerate(schema.columns):
        type_field = f"{field}.columns[{i}].data_type"
        if col.data_type == dataset_pb2.DATA_TYPE_UNSPECIFIED:
            raise InvalidArgument.field(type_field, "is required", "REQUIRED")
        columns.append({
            "name": col.name,
            "data_type": enum_str(dataset_pb2.DataType, col.data_type, "DATA_TYPE_", type_field),
            "nullable": col.nullable,
            "categorical": col.categorical,
            "categories": list(col.categories),
            "description": col.description,
        })
    return {"columns": columns}


def _value_counts(items: list[dict[str, Any]]) -> list[dataset_pb2.ValueCount]:
    return [dataset_pb2.ValueCount(value=str(v["value"]), count=int(v["count"])) for v in items]


def _statistics_to_proto(stats: dict[str, Any]) -> dataset_pb2.DataStatistics:
    out = dataset_pb2.DataStatistics(row_count=int(stats.get("row_count", 0)))
    for col in stats.get("columns", []):
        c = dataset_pb2.ColumnStatistics(
            name=col["name"], null_count=int(col.get("null_count") or 0),
            distinct_count=int(col.get("distinct_count") or 0),
        )
        for key in ("min", "max", "mean", "std"):
            if col.get(key) is not None:
                setattr(c, key, float(col[key]))
        for q in col.get("quantiles") or []:
            c.quantiles.append(dataset_pb2.Quantile(quantile=float(q["quantile"]), value=float(q["value"])))
        c.top_values.extend(_value_counts(col.get("top_values") or []))
        hist = col.get("histogram")
        if hist:
            c.histogram.bin_edges.extend(float(x) for x in hist["bin_edges"])
            c.histogram.counts.extend(int(x) for x in hist["counts"])
        out.columns.append(c)
    out.label_distribution.extend(_value_counts(stats.get("label_distribution") or []))
    return out


def dataset_to_proto(row: DatasetRow) -> dataset_pb2.Dataset:
    out = dataset_pb2.Dataset(
        name=row.name,
        display_name=row.display_name,
        type=dataset_pb2.DatasetType.Value("DATASET_TYPE_" + row.type.upper()),
        schema=_schema_to_proto(row.schema),
        statistics=_statistics_to_proto(row.statistics),
        row_count=row.row_count,
        size_bytes=row.size_bytes,
        content_sha256=row.sha256,
        version=row.version,
        source_uri=row.source_uri,
        labels=row.labels or {},
        label_column=row.label_column,
    )
    out.lineage.parents.extend(row.lineage.get("parents", []))
    out.lineage.operation = row.lineage.get("operation", "")
    out.lineage.parameters.CopyFrom(dict_to_struct(row.lineage.get("parameters", {})))
    out.create_time.CopyFrom(timestamp(row.create_time))
    return out


def record_to_proto(index: int, values: dict[str, Any]) -> dataset_pb2.DataRecord:
    return dataset_pb2.DataRecord(row_index=index, fields=dict_to_struct(values))


# ----- data sources, validation, processing, data pipelines


def message_dict(message) -> dict[str, Any]:
    """A message as the engine's plain dict: proto field names, int64 values as ints (JSON mapping
    turns them into strings), unset fields left out."""
    raw = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return _ints_back(message.DESCRIPTOR, raw)


def _ints_back(descriptor, raw: dict[str, Any]) -> dict[str, Any]:
    from google.protobuf.descriptor import FieldDescriptor

    for field in descriptor.fields:
        if field.name not in raw:
            continue
        value = raw[field.name]
        if field.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT64):
            raw[field.name] = [int(v) for v in value] if isinstance(value, list) else int(value)
        elif field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.full_name.startswith("forge."):
            if isinstance(value, list):
                raw[field.name] = [_ints_back(field.message_type, v) for v in value]
            elif isinstance(value, dict) and field.message_type.GetOptions().map_entry is False:
                raw[field.name] = _ints_back(field.message_type, value)
    return raw


def rules_from_proto(rules: dataset_pb2.ValidationRules, field: str) -> dict[str, Any]:
    out = message_dict(rules)
    for i, constraint in enumerate(rules.constraints):
        if constraint.data_type:
            out["constraints"][i]["data_type"] = enum_str(dataset_pb2.DataType, constraint.data_type,
                                                              "DATA_TYPE_", f"{field}.constraints[{i}].data_type")
    return out


def rules_to_proto(rules: dict[str, Any]) -> dataset_pb2.ValidationRules:
    """The engine's rules dict back as a message (data types are enum names there)."""
    as_json = {**rules, "constraints": [
        {**c, **({"data_type": "DATA_TYPE_" + c["data_type"].upper()} if c.get("data_type") else {})}
        for c in rules.get("constraints", [])]}
    return json_format.ParseDict(as_json, dataset_pb2.ValidationRules())


def report_to_proto(report: dict[str, Any]) -> dataset_pb2.ValidationReport:
    out = dataset_pb2.ValidationReport(valid=bool(report["valid"]))
    for issue in report["issues"]:
        out.issues.append(dataset_pb2.ValidationIssue(
            rule=issue.get("rule", ""), column=issue.get("column") or "", message=issue.get("message", ""),
            violation_count=int(issue.get("violation_count", 0)),
            example_rows=[int(r) for r in issue.get("example_rows", [])]))
    return out


def data_source_from_proto(source: dataset_pb2.DataSource) -> dict[str, Any]:
    return {
        "display_name": source.display_name,
        "type": enum_str(dataset_pb2.DataSourceType, source.type, "DATA_SOURCE_TYPE_", "data_source.type"),
        "uri": source.uri,
        "format": data_format_str(source.format, "data_source.format"),
        "query": source.query,
        "options": dict(source.options),
        "credentials": dict(source.credentials),
    }


def data_source_to_proto(row) -> dataset_pb2.DataSource:
    out = dataset_pb2.DataSource(
        name=row.name, display_name=row.display_name,
        type=_str_to_enum(dataset_pb2.DataSourceType, row.type, "DATA_SOURCE_TYPE_"),
        uri=row.uri, format=_str_to_enum(dataset_pb2.DataFormat, row.format, "DATA_FORMAT_"), query=row.query,
        options=row.options or {},
        # Secrets stay on the server: only which ones are set is said.
        credential_keys=sorted((row.credentials or {}).keys()),
    )
    out.create_time.CopyFrom(timestamp(row.create_time))
    return out


def data_pipeline_to_proto(row) -> dataset_pb2.DataPipeline:
    out = dataset_pb2.DataPipeline(name=row.name, display_name=row.display_name, fit_dataset=row.fit_dataset)
    json_format.ParseDict(row.processing or {}, out.processing)
    if row.validation:
        out.validation.CopyFrom(rules_to_proto(row.validation))
    out.fitted.CopyFrom(dict_to_struct(row.fitted or {}))
    out.create_time.CopyFrom(timestamp(row.create_time))
    return out


# ----- the model registry

_STAGE_ENUM = {"": 0, "staging": 1, "production": 2, "archived": 3}


def model_stage_str(value: int) -> str:
    """The registry's stage name of a ModelStage value ("" for unstaged)."""
    for name, number in _STAGE_ENUM.items():
        if number == value:
            return name
    raise InvalidArgument.field("stage", f"unknown stage {value}: use STAGING, PRODUCTION or ARCHIVED")


def _artifact_sha256(row) -> str:
    artifacts = row.artifacts or {}
    loaded = (row.model_info or {}).get("loaded_from")
    for info in artifacts.values():
        if loaded and location(info) == loaded:
            return info["sha256"]
    return artifacts.get("state", {}).get("sha256", "")


def tensor_spec_to_proto(spec: dict[str, Any]) -> model_pb2.TensorSpec:
    return model_pb2.TensorSpec(name=spec["name"], dtype=spec["dtype"], shape=spec["shape"])


def model_to_proto(row) -> model_pb2.Model:
    info = row.model_info or {}
    state = (row.artifacts or {}).get("state")
    out = model_pb2.Model(
        name=row.name, model_id=row.model_id, version=row.version, framework=row.framework,
        framework_versions=row.framework_versions or {}, metrics=row.metrics or {}, training_job=row.training_job,
        datasets=list(row.datasets or []),
        export_formats=[export_format_enum(f) for f in (row.artifacts or {}) if f != "state"],
        stage=_STAGE_ENUM.get(row.stage, 0),
        artifact_uri=info.get("loaded_from") or (location(state) if state else ""),
        artifact_sha256=_artifact_sha256(row),
        model_type=_str_to_enum(common_pb2.ModelType, row.model_type, "MODEL_TYPE_"),
        preprocessing=dict_to_struct(info.get("preprocessing") or {}),
        input_features=info.get("features") or [],
        class_labels=info.get("classes") or [],
        parent_model=info.get("parent_model") or "",
    )
    out.create_time.CopyFrom(timestamp(row.create_time))
    return out


def evaluation_to_proto(report: dict[str, Any]) -> trainer_service_pb2.EvaluateModelResponse:
    """EvaluateModelResponse of engine.frameworks.metrics.evaluation_report (plus row_count)."""
    return trainer_service_pb2.EvaluateModelResponse(
        metrics={k: float(v) for k, v in report.items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "row_count"},
        row_count=int(report.get("row_count", 0)),
        class_labels=[str(c) for c in report.get("class_labels", [])],
        confusion_matrix=[model_pb2.ConfusionMatrixRow(counts=[int(n) for n in row])
                          for row in report.get("confusion_matrix", [])],
        per_class=[model_pb2.ClassMetrics(label=str(c["label"]), precision=c["precision"], recall=c["recall"],
                                          f1_score=c["f1_score"], support=int(c["support"]))
                   for c in report.get("per_class", [])],
    )


# ----- training requests in their JSON form (a pipeline stage's `request`, a tuning trial's)

# Well-known types whose JSON form is not an object of their fields: ParseDict reads them whole.
_OPAQUE_JSON_TYPES = frozenset({
    "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue", "google.protobuf.Duration",
    "google.protobuf.Timestamp", "google.protobuf.FieldMask", "google.protobuf.Any",
})


def spec_from_request_dict(request: dict[str, Any]) -> TrainingSpec:
    """A TrainingSpec from a TrainingRequest in its JSON form (how pipeline stages and tuning
    trials build theirs); enum values may be short, as `full_enum_names` reads them."""
    message = training_job_pb2.TrainingRequest()
    normalized = full_enum_names(request, message.DESCRIPTOR)
    try:
        json_format.ParseDict(normalized, message)
    except json_format.ParseError as exc:
        # No field of its own: the caller (a tuning spec, a pipeline stage) names where the request is.
        raise InvalidArgument(f"the training request does not fit TrainingRequest: {exc}") from None
    return spec_from_proto(message)  # checked against the proto first: then read as any request is


def full_enum_names(data: Any, descriptor, path: str = "") -> Any:
    """A copy of `data`, a `descriptor` message in its JSON form (camelCase or snake_case keys),
    with each enum value written short ("classification", any case, '-' for '_') in full
    ("MODEL_TYPE_CLASSIFICATION").

    It accepts what the Python SDK accepts when it builds the message itself
    (forge.training.client._normalize), so a request reads the same inside a Struct as in a
    typed field; tests/integration/test_pipelines.py holds the two to the same answers. An enum
    value that is neither a name nor a number of the enum is INVALID_ARGUMENT naming its path
    (keys as written) and the accepted values. Unknown fields and other values are left for
    ParseDict to judge."""
    if not isinstance(data, dict) or descriptor.full_name in _OPAQUE_JSON_TYPES:
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        field = descriptor.fields_by_name.get(key) or next((f for f in descriptor.fields if f.json_name == key),
                                                           None)
        where = f"{path}.{key}" if path else str(key)
        if field is None or value is None:
            out[key] = value
            continue
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            value_field = entry.fields_by_name["value"]
            if isinstance(value, dict):
                value = {k: _full_value(value_field, v, f"{where}.{k}") for k, v in value.items()}
        elif field.is_repeated and isinstance(value, list):
            value = [_full_value(field, v, f"{where}[{i}]") for i, v in enumerate(value)]
        else:
            value = _full_value(field, value, where)
        out[key] = value
    return out


def _full_value(field, value: Any, where: str) -> Any:
    if field.enum_type is not None:
        return _full_enum_name(field.enum_type, value, where)
    if field.message_type is not None:
        return full_enum_names(value, field.message_type, where)
    return value


def _enum_prefix(enum) -> str:
    """"MODEL_TYPE_" of ModelType: the values' common prefix up to its last '_' (as the SDK finds it)."""
    prefix = os.path.commonprefix([v.name for v in enum.values])
    return prefix[: prefix.rfind("_") + 1] if "_" in prefix else ""


def _full_enum_name(enum, value: Any, where: str) -> Any:
    if value is None:  # JSON null: the default, as ParseDict reads it
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # A number (a Struct holds every number as a double): ParseDict would take any int of an open enum.
        if float(value).is_integer() and int(value) in enum.values_by_number:
            return int(value)
    elif isinstance(value, str):
        if value in enum.values_by_name:
            return value
        full = _enum_prefix(enum) + value.strip().upper().replace("-", "_")
        if full in enum.values_by_name:
            return full
    known = [v.name for v in enum.values if v.number != 0]
    accepted = ", ".join(name.removeprefix(_enum_prefix(enum)).lower() for name in known)
    shown = int(value) if isinstance(value, float) and value.is_integer() else value  # 7, not a Struct's 7.0
    raise InvalidArgument.field(where, f"{shown!r} is not a {enum.name}: use one of {accepted} "
                                       f"(or the full name, e.g. {known[0]})")


# ----- tuning


def tuning_spec_to_dict(spec: tuning_job_pb2.TuningSpec) -> dict[str, Any]:
    out = json_format.MessageToDict(spec, preserving_proto_field_name=True)
    out["time_budget_seconds"] = spec.time_budget.ToTimedelta().total_seconds() if spec.HasField("time_budget") \
        else 0.0
    return out


def _tuning_spec_to_proto(settings: dict[str, Any]) -> tuning_job_pb2.TuningSpec:
    spec = tuning_job_pb2.TuningSpec(
        display_name=settings.get("display_name", ""), objective_metric=settings["objective_metric"],
        algorithm=tuning_job_pb2.SearchAlgorithm.Value("SEARCH_ALGORITHM_" + settings["algorithm"].upper()),
        goal=tuning_job_pb2.OBJECTIVE_GOAL_MAXIMIZE if settings["goal"] == "max" else
        tuning_job_pb2.OBJECTIVE_GOAL_MINIMIZE,
        max_trials=settings["max_trials"], parallel_trials=settings["parallel_trials"],
        early_stop_trials=settings["pruner"] != "none", seed=settings["seed"],
        pruner=tuning_job_pb2.Pruner.Value("PRUNER_" + settings["pruner"].upper()),
    )
    json_format.ParseDict(without_secrets(settings["base_request"]), spec.base_request)
    spec.alerts.extend(alert_rules_to_proto(settings.get("alerts") or []))
    for item in settings["parameters"]:
        json_format.ParseDict(item, spec.parameters.add())
    if settings.get("time_budget_seconds"):
        spec.time_budget.FromTimedelta(timedelta(seconds=settings["time_budget_seconds"]))
    return spec


def trial_to_proto(trial: dict[str, Any]) -> tuning_job_pb2.Trial:
    out = tuning_job_pb2.Trial(
        id=str(trial["number"]), parameters=dict_to_struct(trial["parameters"]), training_job=trial["training_job"],
        state=job_state_enum(trial["state"]), model_version=trial.get("model_version", ""),
        state_message=trial.get("state_message", ""), epochs_trained=trial.get("epochs_trained", 0))
    if trial.get("objective_value") is not None:
        out.objective_value = trial["objective_value"]
    return out


def tuning_to_proto(row, trials) -> tuning_job_pb2.TuningJob:
    job = tuning_job_pb2.TuningJob(
        name=row.name, spec=_tuning_spec_to_proto(row.spec), state=job_state_enum(row.state),
        state_message=row.state_message, best_trial_id=row.best_trial_id,
        trials=[trial_to_proto(trial_dict(t)) for t in trials])
    best = next((t for t in trials if str(t.number) == row.best_trial_id), None)
    if best is not None:
        job.best_trial.CopyFrom(trial_to_proto(trial_dict(best)))
    job.create_time.CopyFrom(timestamp(row.create_time))
    if row.end_time is not None:
        job.end_time.CopyFrom(timestamp(row.end_time))
    if row.error:
        job.error.CopyFrom(error_status_proto(row.error.get("code", "INTERNAL"), row.error.get("message", "")))
    return job


def tuning_event_to_proto(event) -> tuning_job_pb2.TuningEvent:
    out = tuning_job_pb2.TuningEvent(sequence=event.sequence, kind=event.kind, job_state=job_state_enum(event.job_state))
    out.time.CopyFrom(timestamp(event.time))
    if event.trial:
        out.trial.CopyFrom(trial_to_proto(event.trial))
    return out


# ----- pipelines

_EVENT_TYPES = {name.removeprefix("EXECUTION_EVENT_TYPE_"): value
                for name, value in pipeline_pb2.ExecutionEventType.items()}
_STAGE_STATES = {name.removeprefix("STAGE_STATE_"): value for name, value in pipeline_pb2.StageState.items()}


def _stages_to_dicts(stages) -> list[dict[str, Any]]:
    return [json_format.MessageToDict(s, preserving_proto_field_name=True) for s in stages]


def _stages_from_dicts(stages: list[dict[str, Any]], out) -> None:
    for stage in without_secrets(stages):  # a training stage's request may carry alert secrets
        json_format.ParseDict(stage, out.add())


def pipeline_to_dict(pipeline: pipeline_pb2.Pipeline) -> dict[str, Any]:
    out: dict[str, Any] = {"display_name": pipeline.display_name, "stages": _stages_to_dicts(pipeline.stages),
                           "timeout_seconds": pipeline.timeout.ToTimedelta().total_seconds(),
                           "labels": dict(pipeline.labels)}
    if pipeline.HasField("schedule"):
        sched = pipeline.schedule
        out["schedule"] = {"cron": sched.cron, "interval_seconds": sched.interval.ToTimedelta().total_seconds(),
                           "timezone": sched.timezone, "input": struct_to_dict(sched.input), "paused": sched.paused}
    for key in ("alerts", "triggers"):
        out[key] = [json_format.MessageToDict(item, preserving_proto_field_name=True) for item in getattr(pipeline, key)]
    return out


def pipeline_to_proto(row) -> pipeline_pb2.Pipeline:
    out = pipeline_pb2.Pipeline(name=row.name, display_name=row.display_name, template=row.template,
                                labels=row.labels or {})
    _stages_from_dicts(row.stages, out.stages)
    if row.timeout_seconds:
        out.timeout.FromTimedelta(timedelta(seconds=row.timeout_seconds))
    out.create_time.CopyFrom(timestamp(row.create_time))
    sched = row.schedule or {}
    if sched:
        out.schedule.cron, out.schedule.timezone = sched.get("cron", ""), sched.get("timezone", "")
        out.schedule.paused = bool(sched.get("paused"))
        if sched.get("interval_seconds"):
            out.schedule.interval.FromTimedelta(timedelta(seconds=sched["interval_seconds"]))
        out.schedule.input.CopyFrom(dict_to_struct(sched.get("input") or {}))
        if row.next_run_time is not None:
            out.schedule.next_run_time.CopyFrom(timestamp(row.next_run_time))
    out.alerts.extend(alert_rules_to_proto(row.alerts or []))
    for trigger in without_secrets(row.triggers or []):
        out.triggers.add(name=trigger["name"], event=pipeline_pb2.TriggerEvent.Value(
            "TRIGGER_EVENT_" + trigger["event"].upper()), dataset_labels=trigger["dataset_labels"],
            input=dict_to_struct(trigger["input"]), dataset_input=trigger["dataset_input"],
            secret_set=trigger["secret_set"], paused=trigger["paused"])
    return out


def _iso_timestamp(value: str) -> timestamp_pb2.Timestamp:
    return timestamp(datetime.fromisoformat(value))


def execution_to_proto(row) -> pipeline_pb2.PipelineExecution:
    out = pipeline_pb2.PipelineExecution(
        name=row.name, pipeline=row.pipeline, state=job_state_enum(row.state), input=dict_to_struct(row.input or {}),
        output=dict_to_struct({sid: info.get("outputs") or {} for sid, info in (row.stages or {}).items()}),
        trigger=row.trigger, state_message=row.state_message)
    for stage in row.snapshot.get("stages", []):
        info = (row.stages or {}).get(stage["id"], {})
        item = out.stages.add(stage_id=stage["id"], state=_STAGE_STATES.get(info.get("state", ""), 0),
                              attempt=int(info.get("attempt", 0)), skip_reason=info.get("skip_reason", ""),
                              cached=bool(info.get("cached")))
        item.outputs.CopyFrom(dict_to_struct(info.get("outputs") or {}))
        if info.get("error"):
            item.error.CopyFrom(error_status_proto(info["error"].get("code", "ABORTED"), info["error"]["message"]))
        for field in ("start_time", "end_time"):
            if info.get(field):
                getattr(item, field).CopyFrom(_iso_timestamp(info[field]))
    out.create_time.CopyFrom(timestamp(row.create_time))
    if row.end_time is not None:
        out.end_time.CopyFrom(timestamp(row.end_time))
    if row.error:
        out.error.CopyFrom(error_status_proto(row.error.get("code", "INTERNAL"), row.error.get("message", "")))
    return out


def execution_event_to_proto(event) -> pipeline_pb2.ExecutionEvent:
    out = pipeline_pb2.ExecutionEvent(
        sequence=event.sequence, type=_EVENT_TYPES.get(event.type, 0), stage_id=event.stage_id,
        attempt=event.attempt, message=event.message, data=dict_to_struct(without_secrets(event.data or {})),
        execution_state=job_state_enum(event.execution_state))
    out.time.CopyFrom(timestamp(event.time))
    return out


def template_to_dict(template: pipeline_pb2.PipelineTemplate) -> dict[str, Any]:
    return {"display_name": template.display_name, "description": template.description,
            "stages": _stages_to_dicts(template.stages),
            "parameters": [json_format.MessageToDict(p, preserving_proto_field_name=True)
                           for p in template.parameters]}


def template_to_proto(row) -> pipeline_pb2.PipelineTemplate:
    out = pipeline_pb2.PipelineTemplate(name=row.name, display_name=row.display_name, description=row.description)
    _stages_from_dicts(row.stages, out.stages)
    for parameter in row.parameters:
        json_format.ParseDict(parameter, out.parameters.add(), ignore_unknown_fields=True)
    out.create_time.CopyFrom(timestamp(row.create_time))
    return out
