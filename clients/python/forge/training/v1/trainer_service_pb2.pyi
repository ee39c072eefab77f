from forge.training.v1 import alert_pb2 as _alert_pb2
from forge.training.v1 import common_pb2 as _common_pb2
from forge.training.v1 import metrics_pb2 as _metrics_pb2
from forge.training.v1 import model_pb2 as _model_pb2
from forge.training.v1 import training_job_pb2 as _training_job_pb2
from forge.training.v1 import tuning_job_pb2 as _tuning_job_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MetricsExportFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METRICS_EXPORT_FORMAT_UNSPECIFIED: _ClassVar[MetricsExportFormat]
    METRICS_EXPORT_FORMAT_JSON: _ClassVar[MetricsExportFormat]
    METRICS_EXPORT_FORMAT_CSV: _ClassVar[MetricsExportFormat]
METRICS_EXPORT_FORMAT_UNSPECIFIED: MetricsExportFormat
METRICS_EXPORT_FORMAT_JSON: MetricsExportFormat
METRICS_EXPORT_FORMAT_CSV: MetricsExportFormat

class StartTrainingRequest(_message.Message):
    __slots__ = ("parent", "training_job_id", "spec")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    TRAINING_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    parent: str
    training_job_id: str
    spec: _training_job_pb2.TrainingRequest
    def __init__(self, parent: _Optional[str] = ..., training_job_id: _Optional[str] = ..., spec: _Optional[_Union[_training_job_pb2.TrainingRequest, _Mapping]] = ...) -> None: ...

class StartTrainingResponse(_message.Message):
    __slots__ = ("training_job",)
    TRAINING_JOB_FIELD_NUMBER: _ClassVar[int]
    training_job: _training_job_pb2.TrainingJob
    def __init__(self, training_job: _Optional[_Union[_training_job_pb2.TrainingJob, _Mapping]] = ...) -> None: ...

class GetTrainingJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetTrainingJobResponse(_message.Message):
    __slots__ = ("training_job",)
    TRAINING_JOB_FIELD_NUMBER: _ClassVar[int]
    training_job: _training_job_pb2.TrainingJob
    def __init__(self, training_job: _Optional[_Union[_training_job_pb2.TrainingJob, _Mapping]] = ...) -> None: ...

class ListTrainingJobsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "filter")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    filter: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ...) -> None: ...

class ListTrainingJobsResponse(_message.Message):
    __slots__ = ("training_jobs", "next_page_token")
    TRAINING_JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    training_jobs: _containers.RepeatedCompositeFieldContainer[_training_job_pb2.TrainingJob]
    next_page_token: str
    def __init__(self, training_jobs: _Optional[_Iterable[_Union[_training_job_pb2.TrainingJob, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteTrainingJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteTrainingJobResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PauseTrainingRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class PauseTrainingResponse(_message.Message):
    __slots__ = ("training_job",)
    TRAINING_JOB_FIELD_NUMBER: _ClassVar[int]
    training_job: _training_job_pb2.TrainingJob
    def __init__(self, training_job: _Optional[_Union[_training_job_pb2.TrainingJob, _Mapping]] = ...) -> None: ...

class ResumeTrainingRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ResumeTrainingResponse(_message.Message):
    __slots__ = ("training_job",)
    TRAINING_JOB_FIELD_NUMBER: _ClassVar[int]
    training_job: _training_job_pb2.TrainingJob
    def __init__(self, training_job: _Optional[_Union[_training_job_pb2.TrainingJob, _Mapping]] = ...) -> None: ...

class CancelTrainingRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CancelTrainingResponse(_message.Message):
    __slots__ = ("training_job",)
    TRAINING_JOB_FIELD_NUMBER: _ClassVar[int]
    training_job: _training_job_pb2.TrainingJob
    def __init__(self, training_job: _Optional[_Union[_training_job_pb2.TrainingJob, _Mapping]] = ...) -> None: ...

class GetTrainingMetricsRequest(_message.Message):
    __slots__ = ("name", "page_size", "page_token")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    page_size: int
    page_token: str
    def __init__(self, name: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetTrainingMetricsResponse(_message.Message):
    __slots__ = ("latest", "history", "next_page_token")
    LATEST_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    latest: _metrics_pb2.TrainingMetrics
    history: _containers.RepeatedCompositeFieldContainer[_metrics_pb2.TrainingMetrics]
    next_page_token: str
    def __init__(self, latest: _Optional[_Union[_metrics_pb2.TrainingMetrics, _Mapping]] = ..., history: _Optional[_Iterable[_Union[_metrics_pb2.TrainingMetrics, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchTrainingMetricsRequest(_message.Message):
    __slots__ = ("name", "from_sequence", "follow")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FROM_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    name: str
    from_sequence: int
    follow: bool
    def __init__(self, name: _Optional[str] = ..., from_sequence: _Optional[int] = ..., follow: _Optional[bool] = ...) -> None: ...

class WatchTrainingMetricsResponse(_message.Message):
    __slots__ = ("points", "job_state")
    POINTS_FIELD_NUMBER: _ClassVar[int]
    JOB_STATE_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[_metrics_pb2.TrainingMetrics]
    job_state: _common_pb2.JobState
    def __init__(self, points: _Optional[_Iterable[_Union[_metrics_pb2.TrainingMetrics, _Mapping]]] = ..., job_state: _Optional[_Union[_common_pb2.JobState, str]] = ...) -> None: ...

class ExportTrainingMetricsRequest(_message.Message):
    __slots__ = ("name", "format")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    name: str
    format: MetricsExportFormat
    def __init__(self, name: _Optional[str] = ..., format: _Optional[_Union[MetricsExportFormat, str]] = ...) -> None: ...

class ExportTrainingMetricsResponse(_message.Message):
    __slots__ = ("content_type", "data")
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    content_type: str
    data: bytes
    def __init__(self, content_type: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class ListAlertDeliveriesRequest(_message.Message):
    __slots__ = ("resource", "page_size", "page_token")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    resource: str
    page_size: int
    page_token: str
    def __init__(self, resource: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAlertDeliveriesResponse(_message.Message):
    __slots__ = ("deliveries", "next_page_token")
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    deliveries: _containers.RepeatedCompositeFieldContainer[_alert_pb2.AlertDelivery]
    next_page_token: str
    def __init__(self, deliveries: _Optional[_Iterable[_Union[_alert_pb2.AlertDelivery, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetTrainingLogsRequest(_message.Message):
    __slots__ = ("name", "page_size", "page_token", "min_level", "contains")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MIN_LEVEL_FIELD_NUMBER: _ClassVar[int]
    CONTAINS_FIELD_NUMBER: _ClassVar[int]
    name: str
    page_size: int
    page_token: str
    min_level: _common_pb2.LogLevel
    contains: str
    def __init__(self, name: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., min_level: _Optional[_Union[_common_pb2.LogLevel, str]] = ..., contains: _Optional[str] = ...) -> None: ...

class GetTrainingLogsResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[_metrics_pb2.TrainingLogEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[_metrics_pb2.TrainingLogEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class StreamTrainingLogsRequest(_message.Message):
    __slots__ = ("name", "from_sequence", "follow", "min_level", "contains")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FROM_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    MIN_LEVEL_FIELD_NUMBER: _ClassVar[int]
    CONTAINS_FIELD_NUMBER: _ClassVar[int]
    name: str
    from_sequence: int
    follow: bool
    min_level: _common_pb2.LogLevel
    contains: str
    def __init__(self, name: _Optional[str] = ..., from_sequence: _Optional[int] = ..., follow: _Optional[bool] = ..., min_level: _Optional[_Union[_common_pb2.LogLevel, str]] = ..., contains: _Optional[str] = ...) -> None: ...

class StreamTrainingLogsResponse(_message.Message):
    __slots__ = ("entries", "job_state")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    JOB_STATE_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[_metrics_pb2.TrainingLogEntry]
    job_state: _common_pb2.JobState
    def __init__(self, entries: _Optional[_Iterable[_Union[_metrics_pb2.TrainingLogEntry, _Mapping]]] = ..., job_state: _Optional[_Union[_common_pb2.JobState, str]] = ...) -> None: ...

class SaveModelRequest(_message.Message):
    __slots__ = ("name", "path", "format")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    name: str
    path: str
    format: _common_pb2.ExportFormat
    def __init__(self, name: _Optional[str] = ..., path: _Optional[str] = ..., format: _Optional[_Union[_common_pb2.ExportFormat, str]] = ...) -> None: ...

class SaveModelResponse(_message.Message):
    __slots__ = ("path", "size_bytes", "sha256")
    PATH_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    path: str
    size_bytes: int
    sha256: str
    def __init__(self, path: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class LoadModelRequest(_message.Message):
    __slots__ = ("parent", "path", "model_id", "format")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    parent: str
    path: str
    model_id: str
    format: _common_pb2.ExportFormat
    def __init__(self, parent: _Optional[str] = ..., path: _Optional[str] = ..., model_id: _Optional[str] = ..., format: _Optional[_Union[_common_pb2.ExportFormat, str]] = ...) -> None: ...

class LoadModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: _model_pb2.Model
    def __init__(self, model: _Optional[_Union[_model_pb2.Model, _Mapping]] = ...) -> None: ...

class ExportModelRequest(_message.Message):
    __slots__ = ("name", "format", "offset")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    name: str
    format: _common_pb2.ExportFormat
    offset: int
    def __init__(self, name: _Optional[str] = ..., format: _Optional[_Union[_common_pb2.ExportFormat, str]] = ..., offset: _Optional[int] = ...) -> None: ...

class ExportModelResponse(_message.Message):
    __slots__ = ("metadata", "data", "offset")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    metadata: _model_pb2.ExportMetadata
    data: bytes
    offset: int
    def __init__(self, metadata: _Optional[_Union[_model_pb2.ExportMetadata, _Mapping]] = ..., data: _Optional[bytes] = ..., offset: _Optional[int] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "filter")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    filter: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "next_page_token")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[_model_pb2.Model]
    next_page_token: str
    def __init__(self, models: _Optional[_Iterable[_Union[_model_pb2.Model, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: _model_pb2.Model
    def __init__(self, model: _Optional[_Union[_model_pb2.Model, _Mapping]] = ...) -> None: ...

class DeleteModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteModelResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EvaluateModelRequest(_message.Message):
    __slots__ = ("name", "dataset")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    name: str
    dataset: str
    def __init__(self, name: _Optional[str] = ..., dataset: _Optional[str] = ...) -> None: ...

class EvaluateModelResponse(_message.Message):
    __slots__ = ("metrics", "row_count", "class_labels", "confusion_matrix", "per_class")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    METRICS_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    CLASS_LABELS_FIELD_NUMBER: _ClassVar[int]
    CONFUSION_MATRIX_FIELD_NUMBER: _ClassVar[int]
    PER_CLASS_FIELD_NUMBER: _ClassVar[int]
    metrics: _containers.ScalarMap[str, float]
    row_count: int
    class_labels: _containers.RepeatedScalarFieldContainer[str]
    confusion_matrix: _containers.RepeatedCompositeFieldContainer[_model_pb2.ConfusionMatrixRow]
    per_class: _containers.RepeatedCompositeFieldContainer[_model_pb2.ClassMetrics]
    def __init__(self, metrics: _Optional[_Mapping[str, float]] = ..., row_count: _Optional[int] = ..., class_labels: _Optional[_Iterable[str]] = ..., confusion_matrix: _Optional[_Iterable[_Union[_model_pb2.ConfusionMatrixRow, _Mapping]]] = ..., per_class: _Optional[_Iterable[_Union[_model_pb2.ClassMetrics, _Mapping]]] = ...) -> None: ...

class UpdateModelStageRequest(_message.Message):
    __slots__ = ("name", "stage")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    name: str
    stage: _model_pb2.ModelStage
    def __init__(self, name: _Optional[str] = ..., stage: _Optional[_Union[_model_pb2.ModelStage, str]] = ...) -> None: ...

class UpdateModelStageResponse(_message.Message):
    __slots__ = ("model", "archived")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ARCHIVED_FIELD_NUMBER: _ClassVar[int]
    model: _model_pb2.Model
    archived: _containers.RepeatedCompositeFieldContainer[_model_pb2.Model]
    def __init__(self, model: _Optional[_Union[_model_pb2.Model, _Mapping]] = ..., archived: _Optional[_Iterable[_Union[_model_pb2.Model, _Mapping]]] = ...) -> None: ...

class StartTuningRequest(_message.Message):
    __slots__ = ("parent", "tuning_job_id", "spec")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    TUNING_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    parent: str
    tuning_job_id: str
    spec: _tuning_job_pb2.TuningSpec
    def __init__(self, parent: _Optional[str] = ..., tuning_job_id: _Optional[str] = ..., spec: _Optional[_Union[_tuning_job_pb2.TuningSpec, _Mapping]] = ...) -> None: ...

class StartTuningResponse(_message.Message):
    __slots__ = ("tuning_job",)
    TUNING_JOB_FIELD_NUMBER: _ClassVar[int]
    tuning_job: _tuning_job_pb2.TuningJob
    def __init__(self, tuning_job: _Optional[_Union[_tuning_job_pb2.TuningJob, _Mapping]] = ...) -> None: ...

class GetTuningJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetTuningJobResponse(_message.Message):
    __slots__ = ("tuning_job",)
    TUNING_JOB_FIELD_NUMBER: _ClassVar[int]
    tuning_job: _tuning_job_pb2.TuningJob
    def __init__(self, tuning_job: _Optional[_Union[_tuning_job_pb2.TuningJob, _Mapping]] = ...) -> None: ...

class ListTuningJobsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "filter")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    filter: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ...) -> None: ...

class ListTuningJobsResponse(_message.Message):
    __slots__ = ("tuning_jobs", "next_page_token")
    TUNING_JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tuning_jobs: _containers.RepeatedCompositeFieldContainer[_tuning_job_pb2.TuningJob]
    next_page_token: str
    def __init__(self, tuning_jobs: _Optional[_Iterable[_Union[_tuning_job_pb2.TuningJob, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchTuningJobRequest(_message.Message):
    __slots__ = ("name", "from_sequence", "follow")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FROM_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    name: str
    from_sequence: int
    follow: bool
    def __init__(self, name: _Optional[str] = ..., from_sequence: _Optional[int] = ..., follow: _Optional[bool] = ...) -> None: ...

class WatchTuningJobResponse(_message.Message):
    __slots__ = ("events", "job_state")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    JOB_STATE_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_tuning_job_pb2.TuningEvent]
    job_state: _common_pb2.JobState
    def __init__(self, events: _Optional[_Iterable[_Union[_tuning_job_pb2.TuningEvent, _Mapping]]] = ..., job_state: _Optional[_Union[_common_pb2.JobState, str]] = ...) -> None: ...

class CancelTuningRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CancelTuningResponse(_message.Message):
    __slots__ = ("tuning_job",)
    TUNING_JOB_FIELD_NUMBER: _ClassVar[int]
    tuning_job: _tuning_job_pb2.TuningJob
    def __init__(self, tuning_job: _Optional[_Union[_tuning_job_pb2.TuningJob, _Mapping]] = ...) -> None: ...
