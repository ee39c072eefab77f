from forge.training.v1 import dataset_pb2 as _dataset_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateDatasetRequest(_message.Message):
    __slots__ = ("parent", "dataset_id", "config")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    parent: str
    dataset_id: str
    config: _dataset_pb2.DatasetConfig
    def __init__(self, parent: _Optional[str] = ..., dataset_id: _Optional[str] = ..., config: _Optional[_Union[_dataset_pb2.DatasetConfig, _Mapping]] = ...) -> None: ...

class CreateDatasetResponse(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: _dataset_pb2.Dataset
    def __init__(self, dataset: _Optional[_Union[_dataset_pb2.Dataset, _Mapping]] = ...) -> None: ...

class UploadDatasetRequest(_message.Message):
    __slots__ = ("metadata", "chunk")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    metadata: UploadMetadata
    chunk: bytes
    def __init__(self, metadata: _Optional[_Union[UploadMetadata, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class UploadMetadata(_message.Message):
    __slots__ = ("parent", "dataset_id", "display_name", "format", "size_bytes", "sha256", "label_column", "type", "schema", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PARENT_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    LABEL_COLUMN_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    parent: str
    dataset_id: str
    display_name: str
    format: _dataset_pb2.DataFormat
    size_bytes: int
    sha256: str
    label_column: str
    type: _dataset_pb2.DatasetType
    schema: _dataset_pb2.DataSchema
    labels: _containers.ScalarMap[str, str]
    def __init__(self, parent: _Optional[str] = ..., dataset_id: _Optional[str] = ..., display_name: _Optional[str] = ..., format: _Optional[_Union[_dataset_pb2.DataFormat, str]] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., label_column: _Optional[str] = ..., type: _Optional[_Union[_dataset_pb2.DatasetType, str]] = ..., schema: _Optional[_Union[_dataset_pb2.DataSchema, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class UploadDatasetResponse(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: _dataset_pb2.Dataset
    def __init__(self, dataset: _Optional[_Union[_dataset_pb2.Dataset, _Mapping]] = ...) -> None: ...

class GetDatasetRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetDatasetResponse(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: _dataset_pb2.Dataset
    def __init__(self, dataset: _Optional[_Union[_dataset_pb2.Dataset, _Mapping]] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
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

class ListDatasetsResponse(_message.Message):
    __slots__ = ("datasets", "next_page_token")
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[_dataset_pb2.Dataset]
    next_page_token: str
    def __init__(self, datasets: _Optional[_Iterable[_Union[_dataset_pb2.Dataset, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteDatasetRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteDatasetResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RegisterDataSourceRequest(_message.Message):
    __slots__ = ("parent", "data_source_id", "data_source")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    DATA_SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_SOURCE_FIELD_NUMBER: _ClassVar[int]
    parent: str
    data_source_id: str
    data_source: _dataset_pb2.DataSource
    def __init__(self, parent: _Optional[str] = ..., data_source_id: _Optional[str] = ..., data_source: _Optional[_Union[_dataset_pb2.DataSource, _Mapping]] = ...) -> None: ...

class RegisterDataSourceResponse(_message.Message):
    __slots__ = ("data_source",)
    DATA_SOURCE_FIELD_NUMBER: _ClassVar[int]
    data_source: _dataset_pb2.DataSource
    def __init__(self, data_source: _Optional[_Union[_dataset_pb2.DataSource, _Mapping]] = ...) -> None: ...

class GetDataSourceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetDataSourceResponse(_message.Message):
    __slots__ = ("data_source",)
    DATA_SOURCE_FIELD_NUMBER: _ClassVar[int]
    data_source: _dataset_pb2.DataSource
    def __init__(self, data_source: _Optional[_Union[_dataset_pb2.DataSource, _Mapping]] = ...) -> None: ...

class ListDataSourcesRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDataSourcesResponse(_message.Message):
    __slots__ = ("data_sources", "next_page_token")
    DATA_SOURCES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    data_sources: _containers.RepeatedCompositeFieldContainer[_dataset_pb2.DataSource]
    next_page_token: str
    def __init__(self, data_sources: _Optional[_Iterable[_Union[_dataset_pb2.DataSource, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetRecordsRequest(_message.Message):
    __slots__ = ("name", "offset", "limit", "columns")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    name: str
    offset: int
    limit: int
    columns: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., offset: _Optional[int] = ..., limit: _Optional[int] = ..., columns: _Optional[_Iterable[str]] = ...) -> None: ...

class GetRecordsResponse(_message.Message):
    __slots__ = ("records", "total_rows")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ROWS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[_dataset_pb2.DataRecord]
    total_rows: int
    def __init__(self, records: _Optional[_Iterable[_Union[_dataset_pb2.DataRecord, _Mapping]]] = ..., total_rows: _Optional[int] = ...) -> None: ...

class StreamRecordsRequest(_message.Message):
    __slots__ = ("name", "batch_size", "offset", "columns", "format")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    name: str
    batch_size: int
    offset: int
    columns: _containers.RepeatedScalarFieldContainer[str]
    format: _dataset_pb2.RecordFormat
    def __init__(self, name: _Optional[str] = ..., batch_size: _Optional[int] = ..., offset: _Optional[int] = ..., columns: _Optional[_Iterable[str]] = ..., format: _Optional[_Union[_dataset_pb2.RecordFormat, str]] = ...) -> None: ...

class StreamRecordsResponse(_message.Message):
    __slots__ = ("records", "arrow_ipc", "offset")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    ARROW_IPC_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[_dataset_pb2.DataRecord]
    arrow_ipc: bytes
    offset: int
    def __init__(self, records: _Optional[_Iterable[_Union[_dataset_pb2.DataRecord, _Mapping]]] = ..., arrow_ipc: _Optional[bytes] = ..., offset: _Optional[int] = ...) -> None: ...

class TransformDatasetRequest(_message.Message):
    __slots__ = ("name", "processing", "dataset_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    processing: _dataset_pb2.ProcessingConfig
    dataset_id: str
    def __init__(self, name: _Optional[str] = ..., processing: _Optional[_Union[_dataset_pb2.ProcessingConfig, _Mapping]] = ..., dataset_id: _Optional[str] = ...) -> None: ...

class TransformDatasetResponse(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: _dataset_pb2.Dataset
    def __init__(self, dataset: _Optional[_Union[_dataset_pb2.Dataset, _Mapping]] = ...) -> None: ...

class FilterDatasetRequest(_message.Message):
    __slots__ = ("name", "expression", "dataset_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    expression: str
    dataset_id: str
    def __init__(self, name: _Optional[str] = ..., expression: _Optional[str] = ..., dataset_id: _Optional[str] = ...) -> None: ...

class FilterDatasetResponse(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: _dataset_pb2.Dataset
    def __init__(self, dataset: _Optional[_Union[_dataset_pb2.Dataset, _Mapping]] = ...) -> None: ...

class SplitDatasetRequest(_message.Message):
    __slots__ = ("name", "ratios", "seed", "stratify_column", "no_shuffle", "dataset_ids", "group_column", "time_column")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RATIOS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    STRATIFY_COLUMN_FIELD_NUMBER: _ClassVar[int]
    NO_SHUFFLE_FIELD_NUMBER: _ClassVar[int]
    DATASET_IDS_FIELD_NUMBER: _ClassVar[int]
    GROUP_COLUMN_FIELD_NUMBER: _ClassVar[int]
    TIME_COLUMN_FIELD_NUMBER: _ClassVar[int]
    name: str
    ratios: _containers.RepeatedScalarFieldContainer[float]
    seed: int
    stratify_column: str
    no_shuffle: bool
    dataset_ids: _containers.RepeatedScalarFieldContainer[str]
    group_column: str
    time_column: str
    def __init__(self, name: _Optional[str] = ..., ratios: _Optional[_Iterable[float]] = ..., seed: _Optional[int] = ..., stratify_column: _Optional[str] = ..., no_shuffle: _Optional[bool] = ..., dataset_ids: _Optional[_Iterable[str]] = ..., group_column: _Optional[str] = ..., time_column: _Optional[str] = ...) -> None: ...

class SplitDatasetResponse(_message.Message):
    __slots__ = ("datasets",)
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[_dataset_pb2.Dataset]
    def __init__(self, datasets: _Optional[_Iterable[_Union[_dataset_pb2.Dataset, _Mapping]]] = ...) -> None: ...

class MergeDatasetsRequest(_message.Message):
    __slots__ = ("parent", "datasets", "dataset_id")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    parent: str
    datasets: _containers.RepeatedScalarFieldContainer[str]
    dataset_id: str
    def __init__(self, parent: _Optional[str] = ..., datasets: _Optional[_Iterable[str]] = ..., dataset_id: _Optional[str] = ...) -> None: ...

class MergeDatasetsResponse(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: _dataset_pb2.Dataset
    def __init__(self, dataset: _Optional[_Union[_dataset_pb2.Dataset, _Mapping]] = ...) -> None: ...

class ValidateDatasetRequest(_message.Message):
    __slots__ = ("name", "rules")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    name: str
    rules: _dataset_pb2.ValidationRules
    def __init__(self, name: _Optional[str] = ..., rules: _Optional[_Union[_dataset_pb2.ValidationRules, _Mapping]] = ...) -> None: ...

class ValidateDatasetResponse(_message.Message):
    __slots__ = ("report",)
    REPORT_FIELD_NUMBER: _ClassVar[int]
    report: _dataset_pb2.ValidationReport
    def __init__(self, report: _Optional[_Union[_dataset_pb2.ValidationReport, _Mapping]] = ...) -> None: ...

class CreateDataPipelineRequest(_message.Message):
    __slots__ = ("parent", "data_pipeline_id", "data_pipeline")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    DATA_PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_PIPELINE_FIELD_NUMBER: _ClassVar[int]
    parent: str
    data_pipeline_id: str
    data_pipeline: _dataset_pb2.DataPipeline
    def __init__(self, parent: _Optional[str] = ..., data_pipeline_id: _Optional[str] = ..., data_pipeline: _Optional[_Union[_dataset_pb2.DataPipeline, _Mapping]] = ...) -> None: ...

class CreateDataPipelineResponse(_message.Message):
    __slots__ = ("data_pipeline",)
    DATA_PIPELINE_FIELD_NUMBER: _ClassVar[int]
    data_pipeline: _dataset_pb2.DataPipeline
    def __init__(self, data_pipeline: _Optional[_Union[_dataset_pb2.DataPipeline, _Mapping]] = ...) -> None: ...

class RunDataPipelineRequest(_message.Message):
    __slots__ = ("name", "dataset", "output_dataset_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    dataset: str
    output_dataset_id: str
    def __init__(self, name: _Optional[str] = ..., dataset: _Optional[str] = ..., output_dataset_id: _Optional[str] = ...) -> None: ...

class RunDataPipelineResponse(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: _dataset_pb2.Dataset
    def __init__(self, dataset: _Optional[_Union[_dataset_pb2.Dataset, _Mapping]] = ...) -> None: ...
