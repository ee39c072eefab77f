import datetime

from forge.training.v1 import common_pb2 as _common_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelStage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_STAGE_UNSPECIFIED: _ClassVar[ModelStage]
    MODEL_STAGE_STAGING: _ClassVar[ModelStage]
    MODEL_STAGE_PRODUCTION: _ClassVar[ModelStage]
    MODEL_STAGE_ARCHIVED: _ClassVar[ModelStage]
MODEL_STAGE_UNSPECIFIED: ModelStage
MODEL_STAGE_STAGING: ModelStage
MODEL_STAGE_PRODUCTION: ModelStage
MODEL_STAGE_ARCHIVED: ModelStage

class Model(_message.Message):
    __slots__ = ("name", "model_id", "version", "framework", "framework_versions", "metrics", "training_job", "datasets", "export_formats", "stage", "artifact_uri", "artifact_sha256", "create_time", "model_type", "preprocessing", "input_features", "class_labels", "parent_model")
    class FrameworkVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    TRAINING_JOB_FIELD_NUMBER: _ClassVar[int]
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    EXPORT_FORMATS_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_URI_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_SHA256_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    MODEL_TYPE_FIELD_NUMBER: _ClassVar[int]
    PREPROCESSING_FIELD_NUMBER: _ClassVar[int]
    INPUT_FEATURES_FIELD_NUMBER: _ClassVar[int]
    CLASS_LABELS_FIELD_NUMBER: _ClassVar[int]
    PARENT_MODEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    model_id: str
    version: int
    framework: str
    framework_versions: _containers.ScalarMap[str, str]
    metrics: _containers.ScalarMap[str, float]
    training_job: str
    datasets: _containers.RepeatedScalarFieldContainer[str]
    export_formats: _containers.RepeatedScalarFieldContainer[_common_pb2.ExportFormat]
    stage: ModelStage
    artifact_uri: str
    artifact_sha256: str
    create_time: _timestamp_pb2.Timestamp
    model_type: _common_pb2.ModelType
    preprocessing: _struct_pb2.Struct
    input_features: _containers.RepeatedScalarFieldContainer[str]
    class_labels: _containers.RepeatedScalarFieldContainer[str]
    parent_model: str
    def __init__(self, name: _Optional[str] = ..., model_id: _Optional[str] = ..., version: _Optional[int] = ..., framework: _Optional[str] = ..., framework_versions: _Optional[_Mapping[str, str]] = ..., metrics: _Optional[_Mapping[str, float]] = ..., training_job: _Optional[str] = ..., datasets: _Optional[_Iterable[str]] = ..., export_formats: _Optional[_Iterable[_Union[_common_pb2.ExportFormat, str]]] = ..., stage: _Optional[_Union[ModelStage, str]] = ..., artifact_uri: _Optional[str] = ..., artifact_sha256: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., model_type: _Optional[_Union[_common_pb2.ModelType, str]] = ..., preprocessing: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., input_features: _Optional[_Iterable[str]] = ..., class_labels: _Optional[_Iterable[str]] = ..., parent_model: _Optional[str] = ...) -> None: ...

class TensorSpec(_message.Message):
    __slots__ = ("name", "dtype", "shape")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    dtype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, name: _Optional[str] = ..., dtype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ...) -> None: ...

class ClassMetrics(_message.Message):
    __slots__ = ("label", "precision", "recall", "f1_score", "support")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    F1_SCORE_FIELD_NUMBER: _ClassVar[int]
    SUPPORT_FIELD_NUMBER: _ClassVar[int]
    label: str
    precision: float
    recall: float
    f1_score: float
    support: int
    def __init__(self, label: _Optional[str] = ..., precision: _Optional[float] = ..., recall: _Optional[float] = ..., f1_score: _Optional[float] = ..., support: _Optional[int] = ...) -> None: ...

class ConfusionMatrixRow(_message.Message):
    __slots__ = ("counts",)
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    counts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, counts: _Optional[_Iterable[int]] = ...) -> None: ...

class ExportMetadata(_message.Message):
    __slots__ = ("format", "size_bytes", "sha256", "filename", "content_type", "framework", "framework_versions", "input_features", "class_labels", "preprocessing", "inputs", "outputs", "raw_columns")
    class FrameworkVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    INPUT_FEATURES_FIELD_NUMBER: _ClassVar[int]
    CLASS_LABELS_FIELD_NUMBER: _ClassVar[int]
    PREPROCESSING_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    RAW_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    format: _common_pb2.ExportFormat
    size_bytes: int
    sha256: str
    filename: str
    content_type: str
    framework: str
    framework_versions: _containers.ScalarMap[str, str]
    input_features: _containers.RepeatedScalarFieldContainer[str]
    class_labels: _containers.RepeatedScalarFieldContainer[str]
    preprocessing: _struct_pb2.Struct
    inputs: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    outputs: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    raw_columns: bool
    def __init__(self, format: _Optional[_Union[_common_pb2.ExportFormat, str]] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., filename: _Optional[str] = ..., content_type: _Optional[str] = ..., framework: _Optional[str] = ..., framework_versions: _Optional[_Mapping[str, str]] = ..., input_features: _Optional[_Iterable[str]] = ..., class_labels: _Optional[_Iterable[str]] = ..., preprocessing: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., inputs: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ..., raw_columns: _Optional[bool] = ...) -> None: ...
