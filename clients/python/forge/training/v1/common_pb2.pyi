import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_PENDING: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_PAUSING: _ClassVar[JobState]
    JOB_STATE_PAUSED: _ClassVar[JobState]
    JOB_STATE_CANCELLING: _ClassVar[JobState]
    JOB_STATE_COMPLETED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]

class ExportFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPORT_FORMAT_UNSPECIFIED: _ClassVar[ExportFormat]
    EXPORT_FORMAT_ONNX: _ClassVar[ExportFormat]
    EXPORT_FORMAT_SAVEDMODEL: _ClassVar[ExportFormat]
    EXPORT_FORMAT_PICKLE: _ClassVar[ExportFormat]
    EXPORT_FORMAT_TORCH: _ClassVar[ExportFormat]
    EXPORT_FORMAT_XGBOOST_JSON: _ClassVar[ExportFormat]

class ModelType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_TYPE_UNSPECIFIED: _ClassVar[ModelType]
    MODEL_TYPE_CLASSIFICATION: _ClassVar[ModelType]
    MODEL_TYPE_REGRESSION: _ClassVar[ModelType]
    MODEL_TYPE_ANOMALY_DETECTION: _ClassVar[ModelType]
    MODEL_TYPE_FORECASTING: _ClassVar[ModelType]
    MODEL_TYPE_RECOMMENDATION: _ClassVar[ModelType]

class LogLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOG_LEVEL_UNSPECIFIED: _ClassVar[LogLevel]
    LOG_LEVEL_DEBUG: _ClassVar[LogLevel]
    LOG_LEVEL_INFO: _ClassVar[LogLevel]
    LOG_LEVEL_WARNING: _ClassVar[LogLevel]
    LOG_LEVEL_ERROR: _ClassVar[LogLevel]
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_PENDING: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_PAUSING: JobState
JOB_STATE_PAUSED: JobState
JOB_STATE_CANCELLING: JobState
JOB_STATE_COMPLETED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState
EXPORT_FORMAT_UNSPECIFIED: ExportFormat
EXPORT_FORMAT_ONNX: ExportFormat
EXPORT_FORMAT_SAVEDMODEL: ExportFormat
EXPORT_FORMAT_PICKLE: ExportFormat
EXPORT_FORMAT_TORCH: ExportFormat
EXPORT_FORMAT_XGBOOST_JSON: ExportFormat
MODEL_TYPE_UNSPECIFIED: ModelType
MODEL_TYPE_CLASSIFICATION: ModelType
MODEL_TYPE_REGRESSION: ModelType
MODEL_TYPE_ANOMALY_DETECTION: ModelType
MODEL_TYPE_FORECASTING: ModelType
MODEL_TYPE_RECOMMENDATION: ModelType
LOG_LEVEL_UNSPECIFIED: LogLevel
LOG_LEVEL_DEBUG: LogLevel
LOG_LEVEL_INFO: LogLevel
LOG_LEVEL_WARNING: LogLevel
LOG_LEVEL_ERROR: LogLevel

class ResourceConfig(_message.Message):
    __slots__ = ("cpu", "memory", "gpu", "timeout", "priority", "workers")
    CPU_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    GPU_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    cpu: str
    memory: str
    gpu: int
    timeout: _duration_pb2.Duration
    priority: int
    workers: int
    def __init__(self, cpu: _Optional[str] = ..., memory: _Optional[str] = ..., gpu: _Optional[int] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., priority: _Optional[int] = ..., workers: _Optional[int] = ...) -> None: ...
