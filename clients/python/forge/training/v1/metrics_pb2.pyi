import datetime

from forge.training.v1 import common_pb2 as _common_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TrainingMetrics(_message.Message):
    __slots__ = ("sequence", "time", "epoch", "total_epochs", "progress", "training_loss", "validation_loss", "best_loss", "best_epoch", "accuracy", "precision", "recall", "f1_score", "rmse", "mae", "r2", "learning_rate", "gradient_norm", "resource_usage", "extra", "epoch_seconds")
    class ExtraEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    TOTAL_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    TRAINING_LOSS_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_LOSS_FIELD_NUMBER: _ClassVar[int]
    BEST_LOSS_FIELD_NUMBER: _ClassVar[int]
    BEST_EPOCH_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    F1_SCORE_FIELD_NUMBER: _ClassVar[int]
    RMSE_FIELD_NUMBER: _ClassVar[int]
    MAE_FIELD_NUMBER: _ClassVar[int]
    R2_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    GRADIENT_NORM_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_USAGE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    EPOCH_SECONDS_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    time: _timestamp_pb2.Timestamp
    epoch: int
    total_epochs: int
    progress: float
    training_loss: float
    validation_loss: float
    best_loss: float
    best_epoch: int
    accuracy: float
    precision: float
    recall: float
    f1_score: float
    rmse: float
    mae: float
    r2: float
    learning_rate: float
    gradient_norm: float
    resource_usage: ResourceUsageMetrics
    extra: _containers.ScalarMap[str, float]
    epoch_seconds: float
    def __init__(self, sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., epoch: _Optional[int] = ..., total_epochs: _Optional[int] = ..., progress: _Optional[float] = ..., training_loss: _Optional[float] = ..., validation_loss: _Optional[float] = ..., best_loss: _Optional[float] = ..., best_epoch: _Optional[int] = ..., accuracy: _Optional[float] = ..., precision: _Optional[float] = ..., recall: _Optional[float] = ..., f1_score: _Optional[float] = ..., rmse: _Optional[float] = ..., mae: _Optional[float] = ..., r2: _Optional[float] = ..., learning_rate: _Optional[float] = ..., gradient_norm: _Optional[float] = ..., resource_usage: _Optional[_Union[ResourceUsageMetrics, _Mapping]] = ..., extra: _Optional[_Mapping[str, float]] = ..., epoch_seconds: _Optional[float] = ...) -> None: ...

class ResourceUsageMetrics(_message.Message):
    __slots__ = ("cpu_usage", "memory_usage", "memory_total", "gpu_present", "gpu_usage", "gpu_memory", "gpu_memory_total")
    CPU_USAGE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_USAGE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TOTAL_FIELD_NUMBER: _ClassVar[int]
    GPU_PRESENT_FIELD_NUMBER: _ClassVar[int]
    GPU_USAGE_FIELD_NUMBER: _ClassVar[int]
    GPU_MEMORY_FIELD_NUMBER: _ClassVar[int]
    GPU_MEMORY_TOTAL_FIELD_NUMBER: _ClassVar[int]
    cpu_usage: float
    memory_usage: int
    memory_total: int
    gpu_present: bool
    gpu_usage: float
    gpu_memory: int
    gpu_memory_total: int
    def __init__(self, cpu_usage: _Optional[float] = ..., memory_usage: _Optional[int] = ..., memory_total: _Optional[int] = ..., gpu_present: _Optional[bool] = ..., gpu_usage: _Optional[float] = ..., gpu_memory: _Optional[int] = ..., gpu_memory_total: _Optional[int] = ...) -> None: ...

class TrainingLogEntry(_message.Message):
    __slots__ = ("sequence", "time", "level", "message", "source", "epoch")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    time: _timestamp_pb2.Timestamp
    level: _common_pb2.LogLevel
    message: str
    source: str
    epoch: int
    def __init__(self, sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., level: _Optional[_Union[_common_pb2.LogLevel, str]] = ..., message: _Optional[str] = ..., source: _Optional[str] = ..., epoch: _Optional[int] = ...) -> None: ...
