"""A synchronous client for the forge-training service.

    from forge.training import Client

    with Client("127.0.0.1:50051") as client:
        ds = client.upload_dataset("churn.csv", label_column="churned")
        train, val, test = client.split_dataset(ds, [0.7, 0.15, 0.15], seed=42)
        job = client.start_training({...})
        for point in client.watch_metrics(job):
            print(point.epoch, point.validation_loss)

Every method turns a failed RPC into a :class:`~forge.training.errors.ForgeTrainingError`.
Resource arguments take a bare id (``"abc"``), a full resource name
(``"projects/default/trainingJobs/abc"``) or any message with a ``name``
(a Dataset, a TrainingJob, ...); ids and names go to the server unchanged.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, Union

import grpc
from google.protobuf import descriptor as _descriptor
from google.protobuf import json_format, struct_pb2

from forge.training import connection
from forge.training.errors import ForgeTrainingError, from_rpc_error
from forge.training.v1 import (
    alert_pb2,
    common_pb2,
    data_service_pb2,
    data_service_pb2_grpc,
    dataset_pb2,
    metrics_pb2,
    model_pb2,
    pipeline_pb2,
    pipeline_service_pb2,
    pipeline_service_pb2_grpc,
    trainer_service_pb2,
    trainer_service_pb2_grpc,
    training_job_pb2,
    tuning_job_pb2,
)

__all__ = [
    "Client",
    "FINAL_STATES",
    "MAX_CHUNK_SIZE",
    "data_format",
    "export_format",
    "job_state",
    "log_level",
    "struct_to_dict",
    "training_request",
]

#: The largest chunk the service accepts or sends: 1 MiB.
MAX_CHUNK_SIZE = 1024 * 1024

JobState = common_pb2.JobState
#: States a job never leaves.
FINAL_STATES: frozenset[int] = frozenset(
    {JobState.JOB_STATE_COMPLETED, JobState.JOB_STATE_FAILED, JobState.JOB_STATE_CANCELLED}
)

Resource = Union[str, Any]  # an id, a full resource name, or a message with `.name`
T = TypeVar("T")
_DEFAULT = object()  # "the client's default timeout"

_DEFAULT_OPTIONS = (
    # GetRecords may return up to 10000 rows; leave room above gRPC's 4 MiB default.
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
)

# ---------------------------------------------------------------------------
# Enum names
# ---------------------------------------------------------------------------

_EXTENSION_FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def _enum_value(enum_type: Any, prefix: str, value: Any, what: str, *, allow_zero: bool = False) -> int:
    """Maps "onnx", "ONNX", "EXPORT_FORMAT_ONNX" or the enum number to the number."""
    descriptor = enum_type.DESCRIPTOR
    valid = [v.name[len(prefix):].lower() for v in descriptor.values if v.number != 0]
    if isinstance(value, bool):
        raise TypeError(f"{what} must be a name or an enum value, not {value!r}")
    if isinstance(value, int):
        if value in descriptor.values_by_number and (value != 0 or allow_zero):
            return value
    elif isinstance(value, str):
        key = value.strip().upper().replace("-", "_")
        if not key.startswith(prefix):
            key = prefix + key
        found = descriptor.values_by_name.get(key)
        if found is not None and (found.number != 0 or allow_zero):
            return found.number
    else:
        raise TypeError(f"{what} must be a name or an enum value, not {type(value).__name__}")
    raise ValueError(f"unknown {what} {value!r}; valid: {', '.join(valid)}")


def export_format(value: str | int) -> int:
    """ExportFormat from "onnx", "pickle", "savedmodel", "torch" (any case) or the enum."""
    if isinstance(value, str) and value.strip().lower() in ("saved_model", "saved-model"):
        value = "savedmodel"
    return _enum_value(common_pb2.ExportFormat, "EXPORT_FORMAT_", value, "export format")


def metrics_export_format(value: str | int) -> int:
    """MetricsExportFormat from "json", "csv" (any case) or the enum."""
    return _enum_value(trainer_service_pb2.MetricsExportFormat, "METRICS_EXPORT_FORMAT_", value,
                       "metrics export format")


def model_stage(value: str | int) -> int:
    """ModelStage from "staging", "production", "archived", "none" (any case) or the enum."""
    if isinstance(value, str) and value.strip().lower() in ("none", "unspecified", ""):
        return model_pb2.ModelStage.MODEL_STAGE_UNSPECIFIED
    return _enum_value(model_pb2.ModelStage, "MODEL_STAGE_", value, "model stage")


def data_format(value: str | int) -> int:
    """DataFormat from "csv", "parquet", "jsonl", "image_folder", "text" (any case) or the enum."""
    return _enum_value(dataset_pb2.DataFormat, "DATA_FORMAT_", value, "data format")


def job_state(value: str | int) -> int:
    """JobState from "completed", "JOB_STATE_COMPLETED" or the enum."""
    return _enum_value(common_pb2.JobState, "JOB_STATE_", value, "job state")


def log_level(value: str | int | None) -> int:
    """LogLevel from "debug", "info", "warning", "error" (any case), the enum or None (all)."""
    if value is None:
        return common_pb2.LogLevel.LOG_LEVEL_UNSPECIFIED
    if isinstance(value, str) and value.strip().lower() == "warn":
        value = "warning"
    return _enum_value(common_pb2.LogLevel, "LOG_LEVEL_", value, "log level", allow_zero=True)


def _format_from_name(name: str) -> int | None:
    suffix = Path(name).suffix.lower()
    fmt = _EXTENSION_FORMATS.get(suffix)
    return data_format(fmt) if fmt else None


# ---------------------------------------------------------------------------
# Struct <-> Python
# ---------------------------------------------------------------------------


def _value_to_py(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        # Struct keeps only doubles; give integral values back as ints.
        if number.is_integer() and abs(number) <= 2**53:
            return int(number)
        return number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_to_dict(value.struct_value)
    if kind == "list_value":
        return [_value_to_py(v) for v in value.list_value.values]
    return None


def _struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(dict(value))
    return out


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A google.protobuf.Struct as a plain dict (integral numbers as ints)."""
    return {key: _value_to_py(value) for key, value in struct.fields.items()}


# ---------------------------------------------------------------------------
# Dict specs
# ---------------------------------------------------------------------------

# Well-known types whose JSON form is not an object of their fields.
_OPAQUE_JSON_TYPES = {
    "google.protobuf.Struct",
    "google.protobuf.Value",
    "google.protobuf.ListValue",
    "google.protobuf.Duration",
    "google.protobuf.Timestamp",
    "google.protobuf.FieldMask",
    "google.protobuf.Any",
}


def _short_enum(field: _descriptor.FieldDescriptor, value: Any) -> Any:
    """Expands a short enum name ("classification") to its full name."""
    if not isinstance(value, str):
        return value
    enum = field.enum_type
    if value in enum.values_by_name:
        return value
    names = [v.name for v in enum.values]
    prefix = os.path.commonprefix(names)
    prefix = prefix[: prefix.rfind("_") + 1] if "_" in prefix else ""
    candidate = prefix + value.strip().upper().replace("-", "_")
    return candidate if candidate in enum.values_by_name else value


def _normalize(data: Any, message: _descriptor.Descriptor) -> Any:
    """Copies a dict spec, letting enums be written without their prefix.

    The server reads a request inside a Struct (a pipeline stage's ``request``) by the same
    rule (server/convert.py ``full_enum_names``); a test holds the two to the same answers.
    """
    if not isinstance(data, Mapping) or message.full_name in _OPAQUE_JSON_TYPES:
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        field = message.fields_by_name.get(key)
        if field is None:
            field = next((f for f in message.fields if f.json_name == key), None)
        if field is None:
            out[key] = value  # ParseDict reports unknown fields
            continue
        is_map = (
            field.message_type is not None and field.message_type.GetOptions().map_entry
        )
        if is_map:
            value_field = field.message_type.fields_by_name["value"]
            if isinstance(value, Mapping):
                if value_field.enum_type is not None:
                    value = {k: _short_enum(value_field, v) for k, v in value.items()}
                elif value_field.message_type is not None:
                    value = {k: _normalize(v, value_field.message_type) for k, v in value.items()}
        elif field.enum_type is not None:
            if isinstance(value, (list, tuple)):
                value = [_short_enum(field, v) for v in value]
            else:
                value = _short_enum(field, value)
        elif field.message_type is not None:
            if isinstance(value, (list, tuple)):
                value = [_normalize(v, field.message_type) for v in value]
            else:
                value = _normalize(value, field.message_type)
        out[key] = value
    return out


def training_request(spec: training_job_pb2.TrainingRequest | Mapping[str, Any]) -> training_job_pb2.TrainingRequest:
    """A TrainingRequest from itself or from a dict in the proto's JSON form.

    Field names may be snake_case or camelCase; enum values may be written in
    full ("MODEL_TYPE_CLASSIFICATION") or short ("classification").
    """
    if isinstance(spec, training_job_pb2.TrainingRequest):
        return spec
    if not isinstance(spec, Mapping):
        raise TypeError(
            f"spec must be a TrainingRequest or a dict, not {type(spec).__name__}"
        )
    request = training_job_pb2.TrainingRequest()
    try:
        json_format.ParseDict(
            _normalize(spec, training_job_pb2.TrainingRequest.DESCRIPTOR), request
        )
    except json_format.ParseError as exc:
        raise ValueError(f"invalid training spec: {exc}") from exc
    return request


def _merge(target: Any, value: Any) -> None:
    """Fills message ``target`` from a message of its type or a dict in its JSON form."""
    if isinstance(value, type(target)):
        target.CopyFrom(value)
        return
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a {type(target).__name__} or a dict, not {type(value).__name__}")
    try:
        json_format.ParseDict(_normalize(value, target.DESCRIPTOR), target)
    except json_format.ParseError as exc:
        raise ValueError(f"invalid {type(target).__name__}: {exc}") from exc


# ---------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------


def _name(resource: Resource) -> str:
    if isinstance(resource, str):
        if not resource:
            raise ValueError("a resource name or id is required")
        return resource
    name = getattr(resource, "name", None)
    if isinstance(name, str) and name:
        return name
    raise TypeError(
        f"expected an id, a resource name or a message with a name, not {type(resource).__name__}"
    )


def _states(states: Iterable[int | str] | int | str) -> frozenset[int]:
    if isinstance(states, (int, str)):
        states = [states]
    return frozenset(job_state(s) for s in states)


def _state_name(state: int) -> str:
    return common_pb2.JobState.Name(state) if state in common_pb2.JobState.values() else str(state)


class Client:
    """A synchronous client of the forge-training TrainerService and DataService.

    Args:
        target: ``host:port`` of the server.
        channel: a ``grpc.Channel`` to use instead of opening one to ``target``;
            it is not closed by :meth:`close`.
        timeout: deadline in seconds of each unary call (None: none). Streams
            (uploads, exports, watches) have no deadline.
        metadata: ``(key, value)`` pairs or a dict sent with every call.
        api_key: the API key of a server with authentication (``forge-training keys
            create`` makes one); default: the FORGE_TRAINING_API_KEY environment variable.
            Sent as ``authorization: Bearer <key>`` with every call, raw stubs included.
        project: the project bare ids mean (``x-forge-project``); a key of a single
            project needs none.
        tls: connect with TLS, trusting the system's CAs (implied by the next three).
        root_certificates: PEM (bytes, text or a file path) of the CA that signed the
            server's certificate.
        client_certificate, client_key: PEM of this client's certificate and key, for a
            server that requires mutual TLS.
    """

    #: Seconds before the n-th consecutive reconnect of a watch: base * 2**(n-1), capped.
    reconnect_backoff: float = 0.1
    reconnect_backoff_max: float = 2.0

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        channel: grpc.Channel | None = None,
        timeout: float | None = 30.0,
        metadata: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        api_key: str | None = None,
        project: str | None = None,
        tls: bool = False,
        root_certificates: connection.Pem | None = None,
        client_certificate: connection.Pem | None = None,
        client_key: connection.Pem | None = None,
    ) -> None:
        self._owns_channel = channel is None
        if channel is None:
            channel = connection.open_channel(target, _DEFAULT_OPTIONS, tls=tls, root_certificates=root_certificates,
                                              client_certificate=client_certificate, client_key=client_key)
        self._base_channel = channel
        identity = connection.identity_metadata(api_key, project)
        self._channel = grpc.intercept_channel(channel, connection.CallMetadata(identity)) if identity else channel
        self.target = target
        self.timeout = timeout
        if metadata is None:
            self._metadata: tuple[tuple[str, str], ...] = ()
        elif isinstance(metadata, Mapping):
            self._metadata = tuple((str(k), v) for k, v in metadata.items())
        else:
            self._metadata = tuple((str(k), v) for k, v in metadata)
        #: Raw stubs, for RPCs without a typed method here (they raise grpc.RpcError).
        self.trainer = trainer_service_pb2_grpc.TrainerServiceStub(self._channel)
        self.data = data_service_pb2_grpc.DataServiceStub(self._channel)
        self.pipelines = pipeline_service_pb2_grpc.PipelineServiceStub(self._channel)
        self._closed = False

    # -- lifecycle ---------------------------------------------------------

    @property
    def channel(self) -> grpc.Channel:
        return self._channel

    def close(self) -> None:
        """Closes the channel (when the client opened it). Idempotent."""
        if not self._closed:
            self._closed = True
            if self._owns_channel:
                self._base_channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(target={self.target!r})"

    # -- plumbing ----------------------------------------------------------

    def _call(self, method: Callable[..., T], request: Any, *, timeout: Any = _DEFAULT) -> T:
        try:
            return method(
                request,
                timeout=self.timeout if timeout is _DEFAULT else timeout,
                metadata=self._metadata,
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    def _pages(self, method: Callable[..., Any], request: Any, items: str) -> Iterator[Any]:
        while True:
            response = self._call(method, request)
            yield from getattr(response, items)
            if not response.next_page_token:
                return
            request.page_token = response.next_page_token

    def _backoff(self, attempt: int) -> None:
        time.sleep(min(self.reconnect_backoff * 2 ** (attempt - 1), self.reconnect_backoff_max))

    def _follow(
        self,
        open_stream: Callable[[int], Any],
        items: str,
        *,
        from_sequence: int,
        follow: bool,
        max_reconnects: int,
        what: str,
        state_field: str = "job_state",
    ) -> Iterator[Any]:
        """Yields the items of a resumable stream exactly once, reconnecting.

        ``open_stream(from_sequence)`` opens the stream. A drop (UNAVAILABLE,
        or the stream ending while following before a final job state)
        reopens it from the last sequence yielded. ``max_reconnects`` bounds
        the reconnects in a row without a new item.
        """
        last = from_sequence
        failures = 0
        while True:
            call = open_stream(last)
            state = common_pb2.JobState.JOB_STATE_UNSPECIFIED
            error: grpc.RpcError | None = None
            try:
                for response in call:
                    if getattr(response, state_field):
                        state = getattr(response, state_field)
                    for item in getattr(response, items):
                        if item.sequence and item.sequence <= last:
                            continue  # already yielded before a reconnect
                        last = item.sequence or last
                        failures = 0
                        yield item
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise from_rpc_error(exc) from exc
                error = exc
            finally:
                call.cancel()  # no-op when finished; frees the call when the caller stops early
            if error is None and (not follow or state in FINAL_STATES):
                return
            failures += 1
            if failures > max_reconnects:
                if error is not None:
                    raise from_rpc_error(error) from error
                raise ForgeTrainingError(
                    grpc.StatusCode.UNAVAILABLE,
                    f"{what} ended {failures} times in a row before the job reached a final state "
                    f"(last state {_state_name(state)}, last sequence {last})",
                )
            self._backoff(failures)

    # -- datasets ----------------------------------------------------------

    def create_dataset(
        self,
        source_uri: str,
        *,
        dataset_id: str = "",
        label_column: str = "",
        display_name: str = "",
        format: str | int | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> dataset_pb2.Dataset:
        """Creates a dataset from a path or URI the server can read."""
        config = dataset_pb2.DatasetConfig(
            source_uri=str(source_uri),
            label_column=label_column,
            display_name=display_name,
            format=data_format(format) if format is not None else 0,
            labels=dict(labels or {}),
        )
        request = data_service_pb2.CreateDatasetRequest(dataset_id=dataset_id, config=config)
        return self._call(self.data.CreateDataset, request).dataset

    def upload_dataset(
        self,
        data: str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO,
        *,
        format: str | int | None = None,
        dataset_id: str = "",
        label_column: str = "",
        display_name: str = "",
        chunk_size: int = MAX_CHUNK_SIZE,
        labels: Mapping[str, str] | None = None,
    ) -> dataset_pb2.Dataset:
        """Uploads a file, bytes or a binary file object as a new dataset.

        The format is inferred from a path's (or file object's name's)
        extension: .csv, .parquet, .jsonl. The first message carries the size
        and sha256, which the server checks; the bytes follow in chunks of at
        most ``chunk_size`` (at most 1 MiB).
        """
        if not 0 < chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk_size must be between 1 and {MAX_CHUNK_SIZE}, got {chunk_size}")

        source_name = ""
        if isinstance(data, (str, os.PathLike)):
            path = Path(data)
            source_name = path.name
            size, digest = _hash_file(path)

            def chunks() -> Iterator[bytes]:
                with path.open("rb") as f:
                    yield from _read_chunks(f, chunk_size)

        elif isinstance(data, (bytes, bytearray, memoryview)):
            blob = bytes(data)
            size, digest = len(blob), hashlib.sha256(blob).hexdigest()

            def chunks() -> Iterator[bytes]:
                for start in range(0, len(blob), chunk_size):
                    yield blob[start : start + chunk_size]

        elif hasattr(data, "read"):
            fileobj = data
            source_name = str(getattr(fileobj, "name", "") or "")
            if _seekable(fileobj):
                start = fileobj.tell()
                size, digest = _hash_stream(fileobj)
                fileobj.seek(start)

                def chunks() -> Iterator[bytes]:
                    yield from _read_chunks(fileobj, chunk_size)

            else:
                blob = _read_all(fileobj)
                size, digest = len(blob), hashlib.sha256(blob).hexdigest()

                def chunks() -> Iterator[bytes]:
                    for start in range(0, len(blob), chunk_size):
                        yield blob[start : start + chunk_size]

        else:
            raise TypeError(
                f"data must be a path, bytes or a binary file object, not {type(data).__name__}"
            )

        if format is not None:
            fmt = data_format(format)
        else:
            fmt = _format_from_name(source_name) if source_name else None
            if fmt is None:
                raise ValueError(
                    "cannot infer the data format"
                    + (f" of {source_name!r}" if source_name else " of raw bytes")
                    + "; pass format= one of: csv, parquet, jsonl"
                )

        metadata = data_service_pb2.UploadMetadata(
            dataset_id=dataset_id,
            display_name=display_name,
            format=fmt,
            size_bytes=size,
            sha256=digest,
            label_column=label_column,
            labels=dict(labels or {}),
        )

        def requests() -> Iterator[data_service_pb2.UploadDatasetRequest]:
            yield data_service_pb2.UploadDatasetRequest(metadata=metadata)
            for chunk in chunks():
                if chunk:
                    yield data_service_pb2.UploadDatasetRequest(chunk=chunk)

        return self._call(self.data.UploadDataset, requests(), timeout=None).dataset

    def get_dataset(self, name: Resource) -> dataset_pb2.Dataset:
        """Gets a dataset with its schema, statistics and lineage."""
        request = data_service_pb2.GetDatasetRequest(name=_name(name))
        return self._call(self.data.GetDataset, request).dataset

    def list_datasets(self, *, page_size: int = 100, filter: str = "") -> Iterator[dataset_pb2.Dataset]:
        """Yields every dataset, newest first, fetching page after page."""
        request = data_service_pb2.ListDatasetsRequest(page_size=page_size, filter=filter)
        return self._pages(self.data.ListDatasets, request, "datasets")

    def delete_dataset(self, name: Resource) -> None:
        """Deletes a dataset and its stored data."""
        self._call(self.data.DeleteDataset, data_service_pb2.DeleteDatasetRequest(name=_name(name)))

    def split_dataset(
        self,
        name: Resource,
        ratios: Sequence[float],
        *,
        seed: int = 0,
        stratify_column: str = "",
        dataset_ids: Sequence[str] | None = None,
        no_shuffle: bool = False,
        group_column: str = "",
        time_column: str = "",
    ) -> list[dataset_pb2.Dataset]:
        """Splits a dataset by ratios (summing to 1); returns the parts in ratio order.

        group_column keeps each group in one part; time_column cuts the parts in time order."""
        request = data_service_pb2.SplitDatasetRequest(
            name=_name(name),
            ratios=list(ratios),
            seed=seed,
            stratify_column=stratify_column,
            dataset_ids=list(dataset_ids or []),
            no_shuffle=no_shuffle,
            group_column=group_column,
            time_column=time_column,
        )
        return list(self._call(self.data.SplitDataset, request).datasets)

    def validate_dataset(
        self, name: Resource, rules: dataset_pb2.ValidationRules | Mapping[str, Any]
    ) -> dataset_pb2.ValidationReport:
        """Checks a dataset against ValidationRules (or their JSON form: {"requiredColumns": [...],
        "minRows": 100, "constraints": [{"column": "age", "min": 0}], "conditions": [...]});
        returns the report, whose ``valid`` is False when any rule failed."""
        request = data_service_pb2.ValidateDatasetRequest(name=_name(name))
        _merge(request.rules, rules)
        return self._call(self.data.ValidateDataset, request).report

    def create_data_pipeline(
        self,
        fit_dataset: Resource,
        processing: Mapping[str, Any] | dataset_pb2.ProcessingConfig,
        *,
        data_pipeline_id: str = "",
        validation: Mapping[str, Any] | dataset_pb2.ValidationConfig | None = None,
    ) -> dataset_pb2.DataPipeline:
        """Fits ``processing`` (a ProcessingConfig or its JSON form) on ``fit_dataset`` and keeps
        what it learned, to apply unchanged to other datasets with run_data_pipeline."""
        pipeline = dataset_pb2.DataPipeline(fit_dataset=_name(fit_dataset))
        _merge(pipeline.processing, processing)
        if validation is not None:
            _merge(pipeline.validation, validation)
        request = data_service_pb2.CreateDataPipelineRequest(
            data_pipeline_id=data_pipeline_id, data_pipeline=pipeline
        )
        return self._call(self.data.CreateDataPipeline, request).data_pipeline

    def run_data_pipeline(
        self, name: Resource, dataset: Resource, *, output_dataset_id: str = ""
    ) -> dataset_pb2.Dataset:
        """Applies a data pipeline's fitted processing to ``dataset``; returns the new dataset."""
        request = data_service_pb2.RunDataPipelineRequest(
            name=_name(name), dataset=_name(dataset), output_dataset_id=output_dataset_id
        )
        return self._call(self.data.RunDataPipeline, request).dataset

    def get_records(
        self,
        name: Resource,
        offset: int = 0,
        limit: int = 100,
        columns: Sequence[str] | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Reads rows as dicts; returns (rows, total rows in the dataset)."""
        request = data_service_pb2.GetRecordsRequest(
            name=_name(name), offset=offset, limit=limit, columns=list(columns or [])
        )
        response = self._call(self.data.GetRecords, request)
        return [struct_to_dict(r.fields) for r in response.records], response.total_rows

    # -- training jobs -----------------------------------------------------

    def start_training(
        self,
        spec: training_job_pb2.TrainingRequest | Mapping[str, Any],
        *,
        training_job_id: str = "",
    ) -> training_job_pb2.TrainingJob:
        """Starts a job from a TrainingRequest or a dict in its JSON form; returns it PENDING."""
        request = trainer_service_pb2.StartTrainingRequest(
            training_job_id=training_job_id, spec=training_request(spec)
        )
        return self._call(self.trainer.StartTraining, request).training_job

    def get_job(self, name: Resource) -> training_job_pb2.TrainingJob:
        """Gets a training job."""
        request = trainer_service_pb2.GetTrainingJobRequest(name=_name(name))
        return self._call(self.trainer.GetTrainingJob, request).training_job

    def list_jobs(self, filter: str = "", *, page_size: int = 100) -> Iterator[training_job_pb2.TrainingJob]:
        """Yields every training job, newest first; filter e.g. "state=RUNNING"."""
        request = trainer_service_pb2.ListTrainingJobsRequest(page_size=page_size, filter=filter)
        return self._pages(self.trainer.ListTrainingJobs, request, "training_jobs")

    def delete_job(self, name: Resource) -> None:
        """Deletes a job in a final state with its metrics, logs and artifacts."""
        request = trainer_service_pb2.DeleteTrainingJobRequest(name=_name(name))
        self._call(self.trainer.DeleteTrainingJob, request)

    def pause(self, name: Resource, *, wait: bool = False, timeout: float | None = None) -> training_job_pb2.TrainingJob:
        """Pauses a job; with wait=True returns once it is PAUSED (or final)."""
        request = trainer_service_pb2.PauseTrainingRequest(name=_name(name))
        job = self._call(self.trainer.PauseTraining, request).training_job
        if not wait:
            return job
        states = FINAL_STATES | {JobState.JOB_STATE_PAUSED}
        if job.state in states:
            return job
        return self.wait(job.name or name, states=states, timeout=timeout)

    def resume(self, name: Resource) -> training_job_pb2.TrainingJob:
        """Resumes a paused job from its last checkpoint; returns it PENDING."""
        request = trainer_service_pb2.ResumeTrainingRequest(name=_name(name))
        return self._call(self.trainer.ResumeTraining, request).training_job

    def cancel(self, name: Resource, *, wait: bool = False, timeout: float | None = None) -> training_job_pb2.TrainingJob:
        """Cancels a job; with wait=True returns once it is in a final state."""
        request = trainer_service_pb2.CancelTrainingRequest(name=_name(name))
        job = self._call(self.trainer.CancelTraining, request).training_job
        if not wait or job.state in FINAL_STATES:
            return job
        return self.wait(job.name or name, states=FINAL_STATES, timeout=timeout)

    def wait(
        self,
        name: Resource,
        *,
        states: Iterable[int | str] | int | str = FINAL_STATES,
        timeout: float | None = None,
        poll: float = 0.2,
    ) -> training_job_pb2.TrainingJob:
        """Polls a job until its state is in ``states`` (default: a final state).

        Raises TimeoutError after ``timeout`` seconds, and ForgeTrainingError
        (FAILED_PRECONDITION) when the job reaches a final state that is not
        in ``states``, since it can never leave it.
        """
        resource = _name(name)
        return _poll(lambda: self.get_job(resource), f"job {resource}", _states(states), timeout, poll)

    # -- metrics and logs --------------------------------------------------

    def get_metrics(self, name: Resource) -> metrics_pb2.TrainingMetrics | None:
        """The latest metric point of a job, or None before its first epoch ends."""
        request = trainer_service_pb2.GetTrainingMetricsRequest(name=_name(name))
        response = self._call(self.trainer.GetTrainingMetrics, request)
        return response.latest if response.HasField("latest") else None

    def metric_history(self, name: Resource, *, page_size: int = 1000) -> list[metrics_pb2.TrainingMetrics]:
        """Every metric point of a job, oldest first."""
        request = trainer_service_pb2.GetTrainingMetricsRequest(name=_name(name), page_size=page_size)
        return list(self._pages(self.trainer.GetTrainingMetrics, request, "history"))

    def export_metrics(self, name: Resource, format: str | int = "json") -> bytes:
        """A job's whole metric history as one document: "json" ({"job", "format_version",
        "points": [...]}) or "csv" (a header, then one row per point; extra metrics as
        ``extra.<name>`` columns)."""
        request = trainer_service_pb2.ExportTrainingMetricsRequest(
            name=_name(name), format=metrics_export_format(format)
        )
        try:
            call = self.trainer.ExportTrainingMetrics(request, metadata=self._metadata)  # long histories take long
            return b"".join(message.data for message in call)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    def list_alert_deliveries(self, resource: Resource, *, page_size: int = 100) -> Iterator[alert_pb2.AlertDelivery]:
        """The alerts a training job, tuning job or pipeline execution sent to webhooks (a
        pipeline's name: those of all its executions), newest first, with their attempts."""
        request = trainer_service_pb2.ListAlertDeliveriesRequest(resource=_name(resource), page_size=page_size)
        return self._pages(self.trainer.ListAlertDeliveries, request, "deliveries")

    def watch_metrics(
        self,
        name: Resource,
        *,
        from_sequence: int = 0,
        follow: bool = True,
        max_reconnects: int = 10,
    ) -> Iterator[metrics_pb2.TrainingMetrics]:
        """Yields a job's metric points after ``from_sequence``, one by one.

        With follow=True it goes on with live points until the job reaches a
        final state. A dropped stream is reopened after the last point
        yielded, so no point is missed or repeated; ``max_reconnects`` bounds
        the reconnects in a row without a new point.
        """
        resource = _name(name)

        def open_stream(last: int) -> Any:
            request = trainer_service_pb2.WatchTrainingMetricsRequest(
                name=resource, from_sequence=last, follow=follow
            )
            return self.trainer.WatchTrainingMetrics(request, metadata=self._metadata)

        return self._follow(
            open_stream,
            "points",
            from_sequence=from_sequence,
            follow=follow,
            max_reconnects=max_reconnects,
            what=f"metric stream of {resource}",
        )

    def stream_logs(
        self,
        name: Resource,
        *,
        from_sequence: int = 0,
        follow: bool = True,
        min_level: str | int | None = None,
        contains: str = "",
        max_reconnects: int = 10,
    ) -> Iterator[metrics_pb2.TrainingLogEntry]:
        """Yields a job's log entries after ``from_sequence``; resumes like watch_metrics."""
        resource = _name(name)
        level = log_level(min_level)

        def open_stream(last: int) -> Any:
            request = trainer_service_pb2.StreamTrainingLogsRequest(
                name=resource, from_sequence=last, follow=follow, min_level=level, contains=contains
            )
            return self.trainer.StreamTrainingLogs(request, metadata=self._metadata)

        return self._follow(
            open_stream,
            "entries",
            from_sequence=from_sequence,
            follow=follow,
            max_reconnects=max_reconnects,
            what=f"log stream of {resource}",
        )

    def get_logs(
        self,
        name: Resource,
        *,
        min_level: str | int | None = None,
        contains: str = "",
        page_size: int = 1000,
    ) -> list[metrics_pb2.TrainingLogEntry]:
        """Every log entry of a job (at ``min_level`` or above), oldest first."""
        request = trainer_service_pb2.GetTrainingLogsRequest(
            name=_name(name), page_size=page_size, min_level=log_level(min_level), contains=contains
        )
        return list(self._pages(self.trainer.GetTrainingLogs, request, "entries"))

    # -- models ------------------------------------------------------------

    def export_model(
        self,
        name: Resource,
        format: str | int,
        path: str | os.PathLike[str],
        *,
        retries: int = 3,
        progress: Callable[[int, int], None] | None = None,
    ) -> model_pb2.ExportMetadata:
        """Downloads a completed job's (or model version's) model into ``path``.

        The bytes go to a temporary file beside ``path`` that is renamed at
        the end, once the size, the sha256 and every chunk's offset match the
        stream's metadata; on a mismatch the temporary file is removed and
        ForgeTrainingError(DATA_LOSS) is raised. When the connection drops
        mid-stream (UNAVAILABLE), the download continues from the last byte
        received, up to ``retries`` times, as long as the artifact's sha256 is
        unchanged. When ``path`` is an existing directory the file is named
        after the server's suggested file name. ``progress(received, total)``
        is called after each chunk, in bytes.
        """
        resource = _name(name)
        target = Path(path)
        into_dir = target.is_dir()
        fd, tmp_name = tempfile.mkstemp(
            prefix=".export-", suffix=".part", dir=target if into_dir else target.parent
        )
        tmp = Path(tmp_name)
        hasher = hashlib.sha256()
        metadata: model_pb2.ExportMetadata | None = None
        written = 0

        def remember(received: model_pb2.ExportMetadata) -> None:
            nonlocal metadata  # kept when the stream breaks: a resumed one must match it
            metadata = received

        try:
            with os.fdopen(fd, "wb") as out:
                for attempt in range(retries + 1):
                    request = trainer_service_pb2.ExportModelRequest(
                        name=resource, format=export_format(format), offset=written
                    )
                    try:
                        metadata, written = self._receive_export(resource, request, metadata, out, hasher, remember,
                                                                  progress)
                        break
                    except grpc.RpcError as exc:
                        if exc.code() != grpc.StatusCode.UNAVAILABLE or attempt == retries or metadata is None:
                            raise
                        time.sleep(min(2.0, 0.2 * 2**attempt))
                        written = out.tell()
                out.flush()
                os.fsync(out.fileno())
            check_export(resource, metadata, written, hasher)
            if into_dir:
                filename = Path(metadata.filename).name or "model" + _EXPORT_SUFFIX.get(metadata.format, "")
                target = target / filename
            os.replace(tmp, target)
            return metadata
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc
        finally:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass

    def _receive_export(self, resource: str, request, known, out, hasher, on_metadata, progress=None):
        """One ExportModel call from request.offset on, appended to ``out``."""
        call = self.trainer.ExportModel(request, metadata=self._metadata)
        try:
            return copy_export(resource, call, out, hasher, known=known, start=request.offset,
                               on_metadata=on_metadata, progress=progress)
        finally:
            call.cancel()

    def save_model(
        self, name: Resource, path: str, format: str | int = "pickle"
    ) -> trainer_service_pb2.SaveModelResponse:
        """Writes a completed job's model to ``path`` under the server's model directory."""
        request = trainer_service_pb2.SaveModelRequest(
            name=_name(name), path=str(path), format=export_format(format)
        )
        return self._call(self.trainer.SaveModel, request)

    def load_model(self, path: str, model_id: str, format: str | int = 0) -> model_pb2.Model:
        """Registers a model artifact from the server's storage as the next version of
        ``model_id``. ``path`` is relative to the server's model directory (where
        save_model writes) or a path/URI under a root the server allows; the format
        defaults to the one the file name says."""
        request = trainer_service_pb2.LoadModelRequest(
            path=str(path), model_id=model_id, format=export_format(format) if format else 0
        )
        return self._call(self.trainer.LoadModel, request).model

    def update_model_stage(
        self, name: Resource, stage: str | int
    ) -> tuple[model_pb2.Model, list[model_pb2.Model]]:
        """Moves a model version to a stage ("staging", "production", "archived" or
        "none"); promoting to production archives the previous production version.
        Returns (the version, the versions archived by this call)."""
        request = trainer_service_pb2.UpdateModelStageRequest(name=_name(name), stage=model_stage(stage))
        response = self._call(self.trainer.UpdateModelStage, request)
        return response.model, list(response.archived)

    def get_model(self, name: Resource) -> model_pb2.Model:
        """Gets a registered model version."""
        return self._call(self.trainer.GetModel, trainer_service_pb2.GetModelRequest(name=_name(name))).model

    def list_models(self, filter: str = "", *, page_size: int = 100) -> Iterator[model_pb2.Model]:
        """Yields every registered model version."""
        request = trainer_service_pb2.ListModelsRequest(page_size=page_size, filter=filter)
        return self._pages(self.trainer.ListModels, request, "models")

    def delete_model(self, name: Resource) -> None:
        """Deletes a registered model version."""
        self._call(self.trainer.DeleteModel, trainer_service_pb2.DeleteModelRequest(name=_name(name)))

    # -- pipelines ---------------------------------------------------------

    def create_pipeline(
        self, pipeline: pipeline_pb2.Pipeline | Mapping[str, Any], *, pipeline_id: str = ""
    ) -> pipeline_pb2.Pipeline:
        """Creates a pipeline from a Pipeline or its JSON form: {"stages": [{"id": "train",
        "type": "model_training", "dependencies": [...], "parameters": {...},
        "condition": "validate.accuracy >= 0.9", "retry": {...}, "timeout": "600s"}, ...],
        "timeout": "3600s", "schedule": {"cron": "0 3 * * *", "timezone": "UTC"}}."""
        message = pipeline_pb2.Pipeline()
        _merge(message, pipeline)
        request = pipeline_service_pb2.CreatePipelineRequest(pipeline_id=pipeline_id, pipeline=message)
        return self._call(self.pipelines.CreatePipeline, request).pipeline

    def get_pipeline(self, name: Resource) -> pipeline_pb2.Pipeline:
        request = pipeline_service_pb2.GetPipelineRequest(name=_name(name))
        return self._call(self.pipelines.GetPipeline, request).pipeline

    def list_pipelines(self, *, page_size: int = 100) -> Iterator[pipeline_pb2.Pipeline]:
        request = pipeline_service_pb2.ListPipelinesRequest(page_size=page_size)
        return self._pages(self.pipelines.ListPipelines, request, "pipelines")

    def delete_pipeline(self, name: Resource) -> None:
        self._call(self.pipelines.DeletePipeline, pipeline_service_pb2.DeletePipelineRequest(name=_name(name)))

    def execute_pipeline(
        self, name: Resource, input: Mapping[str, Any] | None = None, *, execution_id: str = ""
    ) -> pipeline_pb2.PipelineExecution:
        """Starts an execution (returned at once, RUNNING); stages may use ``${input.key}``."""
        request = pipeline_service_pb2.ExecutePipelineRequest(
            name=_name(name), input=_struct(input or {}), execution_id=execution_id
        )
        return self._call(self.pipelines.ExecutePipeline, request).execution

    def get_execution(self, name: str) -> pipeline_pb2.PipelineExecution:
        request = pipeline_service_pb2.GetExecutionRequest(name=name)
        return self._call(self.pipelines.GetExecution, request).execution

    def list_executions(self, pipeline: Resource = "", *, page_size: int = 100) -> Iterator[pipeline_pb2.PipelineExecution]:
        """Executions of one pipeline (its resource name, or a bare id meaning a pipeline of the
        caller's project), or of every pipeline of the project when ``pipeline`` is empty;
        newest first. A pipeline that does not exist, and never ran, is NOT_FOUND. (Older
        servers took only a full name here and answered a bare id with INVALID_ARGUMENT.)"""
        parent = _name(pipeline) if pipeline else ""
        request = pipeline_service_pb2.ListExecutionsRequest(parent=parent, page_size=page_size)
        return self._pages(self.pipelines.ListExecutions, request, "executions")

    def cancel_execution(self, name: str) -> pipeline_pb2.PipelineExecution:
        request = pipeline_service_pb2.CancelExecutionRequest(name=name)
        return self._call(self.pipelines.CancelExecution, request).execution

    def watch_execution(
        self, name: str, *, from_sequence: int = 0, follow: bool = True, max_reconnects: int = 10
    ) -> Iterator[pipeline_pb2.ExecutionEvent]:
        """Yields an execution's events (stage started, log, metrics, completed, failed,
        skipped, retried, execution state) after ``from_sequence``, reconnecting like
        watch_metrics, until the execution ends (with follow)."""

        def open_stream(last: int) -> Any:
            request = pipeline_service_pb2.WatchExecutionRequest(name=name, from_sequence=last, follow=follow)
            return self.pipelines.WatchExecution(request, metadata=self._metadata)

        return self._follow(open_stream, "events", from_sequence=from_sequence, follow=follow,
                            max_reconnects=max_reconnects, what=f"event stream of {name}",
                            state_field="execution_state")

    def wait_execution(self, name: str, *, timeout: float | None = None,
                       poll: float = 0.5) -> pipeline_pb2.PipelineExecution:
        """Waits until an execution reaches a final state; returns it."""
        return _poll(lambda: self.get_execution(name), f"execution {name}", FINAL_STATES, timeout, poll)

    def create_template(
        self, template: pipeline_pb2.PipelineTemplate | Mapping[str, Any], *, template_id: str = ""
    ) -> pipeline_pb2.PipelineTemplate:
        """Creates a template: stages whose parameters use ``${params.name}``, and the
        parameters' names, types, defaults and whether they are required."""
        message = pipeline_pb2.PipelineTemplate()
        _merge(message, template)
        request = pipeline_service_pb2.CreateTemplateRequest(template_id=template_id, template=message)
        return self._call(self.pipelines.CreateTemplate, request).template

    def get_template(self, name: Resource) -> pipeline_pb2.PipelineTemplate:
        request = pipeline_service_pb2.GetTemplateRequest(name=_name(name))
        return self._call(self.pipelines.GetTemplate, request).template

    def list_templates(self, *, page_size: int = 100) -> Iterator[pipeline_pb2.PipelineTemplate]:
        request = pipeline_service_pb2.ListTemplatesRequest(page_size=page_size)
        return self._pages(self.pipelines.ListTemplates, request, "templates")

    def create_from_template(
        self,
        template: Resource,
        config: Mapping[str, Any],
        *,
        pipeline_id: str = "",
        alerts: Sequence[Mapping[str, Any]] = (),
        triggers: Sequence[Mapping[str, Any]] = (),
        schedule: Mapping[str, Any] | None = None,
    ) -> pipeline_pb2.Pipeline:
        """A pipeline from a template and the values of its parameters (checked by type), with
        its own alerts, triggers and schedule (their JSON forms, as in create_pipeline)."""
        request = pipeline_service_pb2.CreateFromTemplateRequest(
            template=_name(template), pipeline_id=pipeline_id, config=_struct(config)
        )
        own = {"alerts": list(alerts), "triggers": list(triggers), **({"schedule": schedule} if schedule else {})}
        _merge(request, own)
        return self._call(self.pipelines.CreateFromTemplate, request).pipeline

    # -- hyperparameter tuning ---------------------------------------------

    def start_tuning(
        self,
        spec: tuning_job_pb2.TuningSpec | Mapping[str, Any],
        *,
        tuning_job_id: str = "",
    ) -> tuning_job_pb2.TuningJob:
        """Starts a hyperparameter search. ``spec`` is a TuningSpec or its JSON form, e.g.
        {"baseRequest": {...}, "parameters": [{"path": "training_config.learning_rate",
        "doubleRange": {"min": 1e-4, "max": 1e-1, "logScale": True}}], "algorithm": "bayesian",
        "objectiveMetric": "val_loss", "maxTrials": 20, "parallelTrials": 2,
        "earlyStopTrials": True, "timeBudget": "600s"}. Each trial is an ordinary training job."""
        message = tuning_job_pb2.TuningSpec()
        _merge(message, spec)
        request = trainer_service_pb2.StartTuningRequest(tuning_job_id=tuning_job_id, spec=message)
        return self._call(self.trainer.StartTuning, request).tuning_job

    def get_tuning_job(self, name: Resource) -> tuning_job_pb2.TuningJob:
        """A tuning job with its trials and its best trial so far."""
        request = trainer_service_pb2.GetTuningJobRequest(name=_name(name))
        return self._call(self.trainer.GetTuningJob, request).tuning_job

    def list_tuning_jobs(self, filter: str = "", *, page_size: int = 100) -> Iterator[tuning_job_pb2.TuningJob]:
        """Yields every tuning job, newest first (filter: ``state=RUNNING``)."""
        request = trainer_service_pb2.ListTuningJobsRequest(page_size=page_size, filter=filter)
        return self._pages(self.trainer.ListTuningJobs, request, "tuning_jobs")

    def cancel_tuning(self, name: Resource) -> tuning_job_pb2.TuningJob:
        """Cancels a tuning job and its running trials."""
        request = trainer_service_pb2.CancelTuningRequest(name=_name(name))
        return self._call(self.trainer.CancelTuning, request).tuning_job

    def watch_tuning(
        self,
        name: Resource,
        *,
        from_sequence: int = 0,
        follow: bool = True,
        max_reconnects: int = 10,
    ) -> Iterator[tuning_job_pb2.TuningEvent]:
        """Yields a tuning job's events (trial_started, trial_completed, trial_pruned,
        new_best, completed, ...) after ``from_sequence``, reconnecting like watch_metrics."""
        resource = _name(name)

        def open_stream(last: int) -> Any:
            request = trainer_service_pb2.WatchTuningJobRequest(name=resource, from_sequence=last, follow=follow)
            return self.trainer.WatchTuningJob(request, metadata=self._metadata)

        return self._follow(open_stream, "events", from_sequence=from_sequence, follow=follow,
                            max_reconnects=max_reconnects, what=f"event stream of {resource}")

    def wait_tuning(self, name: Resource, *, timeout: float | None = None,
                    poll: float = 0.5) -> tuning_job_pb2.TuningJob:
        """Waits until a tuning job reaches a final state; returns it."""
        resource = _name(name)
        return _poll(lambda: self.get_tuning_job(resource), f"tuning job {resource}", FINAL_STATES, timeout, poll)

    def evaluate_model(
        self, name: Resource, dataset: Resource, *, timeout: float | None = 600
    ) -> trainer_service_pb2.EvaluateModelResponse:
        """A completed job's or model version's metrics on any dataset: ``metrics``
        (accuracy, precision, recall, f1_score, roc_auc, log_loss for classifiers;
        rmse, mae, r2, mape for regressors), ``row_count``, and for classifiers
        ``class_labels``, ``confusion_matrix`` and ``per_class``. Raw rows are fine:
        the processing the model's training data went through is applied first."""
        request = trainer_service_pb2.EvaluateModelRequest(name=_name(name), dataset=_name(dataset))
        return self._call(self.trainer.EvaluateModel, request, timeout=timeout)


def _poll(get: Callable[[], T], what: str, wanted: frozenset[int], timeout: float | None, poll: float) -> T:
    """get() until its state is in ``wanted``. TimeoutError after ``timeout`` seconds, and
    ForgeTrainingError(FAILED_PRECONDITION) on a final state outside ``wanted``, since the
    resource can never leave it."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        item = get()
        if item.state in wanted:
            return item
        if item.state in FINAL_STATES:
            raise ForgeTrainingError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"{what} ended {_state_name(item.state)} while waiting for "
                + ", ".join(sorted(_state_name(s) for s in wanted)),
            )
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{what} is still {_state_name(item.state)} after {timeout}s")
            time.sleep(min(poll, left))
        else:
            time.sleep(poll)


def copy_export(
    resource: str,
    messages: Iterable[trainer_service_pb2.ExportModelResponse],
    out: BinaryIO,
    hasher: Any,
    *,
    known: model_pb2.ExportMetadata | None = None,
    start: int = 0,
    on_metadata: Callable[[model_pb2.ExportMetadata], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[model_pb2.ExportMetadata | None, int]:
    """Appends an ExportModel stream's bytes (from offset ``start``) to ``out`` and
    ``hasher``, checking that the metadata comes first and once, that chunks are
    contiguous and, for a resumed stream, that it describes the ``known`` artifact.
    ``progress(bytes written in all, total size)`` follows each chunk.
    Returns (metadata, bytes written in all); check_export checks the whole."""
    written = start
    metadata = known
    first = True
    for response in messages:
        if response.HasField("metadata"):
            if not first:
                raise _data_loss(resource, "metadata sent twice")
            if known is not None and response.metadata.sha256 != known.sha256:
                raise _data_loss(resource, "the artifact changed while the download was resumed")
            metadata = model_pb2.ExportMetadata()
            metadata.CopyFrom(response.metadata)
            if on_metadata is not None:
                on_metadata(metadata)
        elif first:
            raise _data_loss(resource, "the first message carries no metadata")
        first = False
        if response.data:
            if response.offset != written:
                raise _data_loss(resource, f"chunk at offset {response.offset}, expected {written}")
            out.write(response.data)
            hasher.update(response.data)
            written += len(response.data)
            if progress is not None and metadata is not None:
                progress(written, metadata.size_bytes)
    return metadata, written


def check_export(resource: str, metadata: model_pb2.ExportMetadata | None, written: int, hasher: Any) -> None:
    """DATA_LOSS unless the bytes received are the whole artifact the metadata describes."""
    if metadata is None:
        raise _data_loss(resource, "the stream was empty")
    if written != metadata.size_bytes:
        raise _data_loss(resource, f"received {written} bytes, expected {metadata.size_bytes}")
    digest = hasher.hexdigest()
    if digest != metadata.sha256.strip().lower():
        raise _data_loss(resource, f"sha256 {digest} does not match {metadata.sha256}")


_EXPORT_SUFFIX = {
    common_pb2.ExportFormat.EXPORT_FORMAT_ONNX: ".onnx",
    common_pb2.ExportFormat.EXPORT_FORMAT_SAVEDMODEL: ".tar",
    common_pb2.ExportFormat.EXPORT_FORMAT_PICKLE: ".pkl",
    common_pb2.ExportFormat.EXPORT_FORMAT_TORCH: ".pt",
}


def _data_loss(resource: str, what: str) -> ForgeTrainingError:
    return ForgeTrainingError(grpc.StatusCode.DATA_LOSS, f"export of {resource} is corrupt: {what}")


def _seekable(fileobj: Any) -> bool:
    try:
        return bool(fileobj.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _read_chunks(fileobj: Any, chunk_size: int) -> Iterator[bytes]:
    while True:
        chunk = fileobj.read(chunk_size)
        if not chunk:
            return
        if isinstance(chunk, str):
            raise TypeError("the file object must be opened in binary mode")
        yield bytes(chunk)


def _hash_stream(fileobj: Any) -> tuple[int, str]:
    hasher = hashlib.sha256()
    size = 0
    for chunk in _read_chunks(fileobj, MAX_CHUNK_SIZE):
        hasher.update(chunk)
        size += len(chunk)
    return size, hasher.hexdigest()


def _hash_file(path: Path) -> tuple[int, str]:
    with path.open("rb") as f:
        return _hash_stream(f)


def _read_all(fileobj: Any) -> bytes:
    buffer = io.BytesIO()
    for chunk in _read_chunks(fileobj, MAX_CHUNK_SIZE):
        buffer.write(chunk)
    return buffer.getvalue()
