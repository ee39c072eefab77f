import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DatasetType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATASET_TYPE_UNSPECIFIED: _ClassVar[DatasetType]
    DATASET_TYPE_TABULAR: _ClassVar[DatasetType]
    DATASET_TYPE_IMAGE: _ClassVar[DatasetType]
    DATASET_TYPE_TEXT: _ClassVar[DatasetType]
    DATASET_TYPE_TIME_SERIES: _ClassVar[DatasetType]

class DataFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATA_FORMAT_UNSPECIFIED: _ClassVar[DataFormat]
    DATA_FORMAT_CSV: _ClassVar[DataFormat]
    DATA_FORMAT_PARQUET: _ClassVar[DataFormat]
    DATA_FORMAT_JSONL: _ClassVar[DataFormat]
    DATA_FORMAT_IMAGE_FOLDER: _ClassVar[DataFormat]
    DATA_FORMAT_TEXT: _ClassVar[DataFormat]

class DataType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATA_TYPE_UNSPECIFIED: _ClassVar[DataType]
    DATA_TYPE_INT64: _ClassVar[DataType]
    DATA_TYPE_FLOAT64: _ClassVar[DataType]
    DATA_TYPE_STRING: _ClassVar[DataType]
    DATA_TYPE_BOOL: _ClassVar[DataType]
    DATA_TYPE_TIMESTAMP: _ClassVar[DataType]
    DATA_TYPE_BINARY: _ClassVar[DataType]

class DataSourceType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATA_SOURCE_TYPE_UNSPECIFIED: _ClassVar[DataSourceType]
    DATA_SOURCE_TYPE_FILE: _ClassVar[DataSourceType]
    DATA_SOURCE_TYPE_SQL: _ClassVar[DataSourceType]
    DATA_SOURCE_TYPE_OBJECT_STORE: _ClassVar[DataSourceType]

class RecordFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECORD_FORMAT_UNSPECIFIED: _ClassVar[RecordFormat]
    RECORD_FORMAT_RECORDS: _ClassVar[RecordFormat]
    RECORD_FORMAT_ARROW_IPC: _ClassVar[RecordFormat]
DATASET_TYPE_UNSPECIFIED: DatasetType
DATASET_TYPE_TABULAR: DatasetType
DATASET_TYPE_IMAGE: DatasetType
DATASET_TYPE_TEXT: DatasetType
DATASET_TYPE_TIME_SERIES: DatasetType
DATA_FORMAT_UNSPECIFIED: DataFormat
DATA_FORMAT_CSV: DataFormat
DATA_FORMAT_PARQUET: DataFormat
DATA_FORMAT_JSONL: DataFormat
DATA_FORMAT_IMAGE_FOLDER: DataFormat
DATA_FORMAT_TEXT: DataFormat
DATA_TYPE_UNSPECIFIED: DataType
DATA_TYPE_INT64: DataType
DATA_TYPE_FLOAT64: DataType
DATA_TYPE_STRING: DataType
DATA_TYPE_BOOL: DataType
DATA_TYPE_TIMESTAMP: DataType
DATA_TYPE_BINARY: DataType
DATA_SOURCE_TYPE_UNSPECIFIED: DataSourceType
DATA_SOURCE_TYPE_FILE: DataSourceType
DATA_SOURCE_TYPE_SQL: DataSourceType
DATA_SOURCE_TYPE_OBJECT_STORE: DataSourceType
RECORD_FORMAT_UNSPECIFIED: RecordFormat
RECORD_FORMAT_RECORDS: RecordFormat
RECORD_FORMAT_ARROW_IPC: RecordFormat

class Dataset(_message.Message):
    __slots__ = ("name", "display_name", "type", "schema", "statistics", "row_count", "size_bytes", "content_sha256", "version", "lineage", "source_uri", "create_time", "labels", "label_column")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    STATISTICS_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SHA256_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    LABEL_COLUMN_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    type: DatasetType
    schema: DataSchema
    statistics: DataStatistics
    row_count: int
    size_bytes: int
    content_sha256: str
    version: int
    lineage: Lineage
    source_uri: str
    create_time: _timestamp_pb2.Timestamp
    labels: _containers.ScalarMap[str, str]
    label_column: str
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., type: _Optional[_Union[DatasetType, str]] = ..., schema: _Optional[_Union[DataSchema, _Mapping]] = ..., statistics: _Optional[_Union[DataStatistics, _Mapping]] = ..., row_count: _Optional[int] = ..., size_bytes: _Optional[int] = ..., content_sha256: _Optional[str] = ..., version: _Optional[int] = ..., lineage: _Optional[_Union[Lineage, _Mapping]] = ..., source_uri: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., label_column: _Optional[str] = ...) -> None: ...

class Lineage(_message.Message):
    __slots__ = ("parents", "operation", "parameters")
    PARENTS_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    parents: _containers.RepeatedScalarFieldContainer[str]
    operation: str
    parameters: _struct_pb2.Struct
    def __init__(self, parents: _Optional[_Iterable[str]] = ..., operation: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class DataSchema(_message.Message):
    __slots__ = ("columns",)
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    columns: _containers.RepeatedCompositeFieldContainer[ColumnSchema]
    def __init__(self, columns: _Optional[_Iterable[_Union[ColumnSchema, _Mapping]]] = ...) -> None: ...

class ColumnSchema(_message.Message):
    __slots__ = ("name", "data_type", "nullable", "categorical", "categories", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    NULLABLE_FIELD_NUMBER: _ClassVar[int]
    CATEGORICAL_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    data_type: DataType
    nullable: bool
    categorical: bool
    categories: _containers.RepeatedScalarFieldContainer[str]
    description: str
    def __init__(self, name: _Optional[str] = ..., data_type: _Optional[_Union[DataType, str]] = ..., nullable: _Optional[bool] = ..., categorical: _Optional[bool] = ..., categories: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ...) -> None: ...

class DataStatistics(_message.Message):
    __slots__ = ("row_count", "columns", "label_distribution")
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    LABEL_DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    row_count: int
    columns: _containers.RepeatedCompositeFieldContainer[ColumnStatistics]
    label_distribution: _containers.RepeatedCompositeFieldContainer[ValueCount]
    def __init__(self, row_count: _Optional[int] = ..., columns: _Optional[_Iterable[_Union[ColumnStatistics, _Mapping]]] = ..., label_distribution: _Optional[_Iterable[_Union[ValueCount, _Mapping]]] = ...) -> None: ...

class ColumnStatistics(_message.Message):
    __slots__ = ("name", "null_count", "distinct_count", "min", "max", "mean", "std", "quantiles", "top_values", "histogram")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NULL_COUNT_FIELD_NUMBER: _ClassVar[int]
    DISTINCT_COUNT_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    QUANTILES_FIELD_NUMBER: _ClassVar[int]
    TOP_VALUES_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAM_FIELD_NUMBER: _ClassVar[int]
    name: str
    null_count: int
    distinct_count: int
    min: float
    max: float
    mean: float
    std: float
    quantiles: _containers.RepeatedCompositeFieldContainer[Quantile]
    top_values: _containers.RepeatedCompositeFieldContainer[ValueCount]
    histogram: Histogram
    def __init__(self, name: _Optional[str] = ..., null_count: _Optional[int] = ..., distinct_count: _Optional[int] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., mean: _Optional[float] = ..., std: _Optional[float] = ..., quantiles: _Optional[_Iterable[_Union[Quantile, _Mapping]]] = ..., top_values: _Optional[_Iterable[_Union[ValueCount, _Mapping]]] = ..., histogram: _Optional[_Union[Histogram, _Mapping]] = ...) -> None: ...

class Quantile(_message.Message):
    __slots__ = ("quantile", "value")
    QUANTILE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    quantile: float
    value: float
    def __init__(self, quantile: _Optional[float] = ..., value: _Optional[float] = ...) -> None: ...

class ValueCount(_message.Message):
    __slots__ = ("value", "count")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    value: str
    count: int
    def __init__(self, value: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class Histogram(_message.Message):
    __slots__ = ("bin_edges", "counts")
    BIN_EDGES_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    bin_edges: _containers.RepeatedScalarFieldContainer[float]
    counts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, bin_edges: _Optional[_Iterable[float]] = ..., counts: _Optional[_Iterable[int]] = ...) -> None: ...

class DatasetConfig(_message.Message):
    __slots__ = ("display_name", "type", "source_uri", "format", "data_source", "query", "schema", "validation", "processing", "label_column", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    DATA_SOURCE_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_FIELD_NUMBER: _ClassVar[int]
    LABEL_COLUMN_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    display_name: str
    type: DatasetType
    source_uri: str
    format: DataFormat
    data_source: str
    query: str
    schema: DataSchema
    validation: ValidationRules
    processing: ProcessingConfig
    label_column: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, display_name: _Optional[str] = ..., type: _Optional[_Union[DatasetType, str]] = ..., source_uri: _Optional[str] = ..., format: _Optional[_Union[DataFormat, str]] = ..., data_source: _Optional[str] = ..., query: _Optional[str] = ..., schema: _Optional[_Union[DataSchema, _Mapping]] = ..., validation: _Optional[_Union[ValidationRules, _Mapping]] = ..., processing: _Optional[_Union[ProcessingConfig, _Mapping]] = ..., label_column: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class DataSource(_message.Message):
    __slots__ = ("name", "display_name", "type", "uri", "format", "query", "options", "credentials", "credential_keys", "create_time")
    class OptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class CredentialsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_KEYS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    type: DataSourceType
    uri: str
    format: DataFormat
    query: str
    options: _containers.ScalarMap[str, str]
    credentials: _containers.ScalarMap[str, str]
    credential_keys: _containers.RepeatedScalarFieldContainer[str]
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., type: _Optional[_Union[DataSourceType, str]] = ..., uri: _Optional[str] = ..., format: _Optional[_Union[DataFormat, str]] = ..., query: _Optional[str] = ..., options: _Optional[_Mapping[str, str]] = ..., credentials: _Optional[_Mapping[str, str]] = ..., credential_keys: _Optional[_Iterable[str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ValidationRules(_message.Message):
    __slots__ = ("required_columns", "min_rows", "max_null_fraction", "constraints", "fail_on_violation", "conditions")
    REQUIRED_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    MIN_ROWS_FIELD_NUMBER: _ClassVar[int]
    MAX_NULL_FRACTION_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    FAIL_ON_VIOLATION_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    required_columns: _containers.RepeatedScalarFieldContainer[str]
    min_rows: int
    max_null_fraction: float
    constraints: _containers.RepeatedCompositeFieldContainer[ColumnConstraint]
    fail_on_violation: bool
    conditions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, required_columns: _Optional[_Iterable[str]] = ..., min_rows: _Optional[int] = ..., max_null_fraction: _Optional[float] = ..., constraints: _Optional[_Iterable[_Union[ColumnConstraint, _Mapping]]] = ..., fail_on_violation: _Optional[bool] = ..., conditions: _Optional[_Iterable[str]] = ...) -> None: ...

class ColumnConstraint(_message.Message):
    __slots__ = ("column", "min", "max", "allowed_values", "pattern", "not_null", "unique", "data_type")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_VALUES_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    NOT_NULL_FIELD_NUMBER: _ClassVar[int]
    UNIQUE_FIELD_NUMBER: _ClassVar[int]
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    column: str
    min: float
    max: float
    allowed_values: _containers.RepeatedScalarFieldContainer[str]
    pattern: str
    not_null: bool
    unique: bool
    data_type: DataType
    def __init__(self, column: _Optional[str] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., allowed_values: _Optional[_Iterable[str]] = ..., pattern: _Optional[str] = ..., not_null: _Optional[bool] = ..., unique: _Optional[bool] = ..., data_type: _Optional[_Union[DataType, str]] = ...) -> None: ...

class ValidationReport(_message.Message):
    __slots__ = ("valid", "issues")
    VALID_FIELD_NUMBER: _ClassVar[int]
    ISSUES_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    issues: _containers.RepeatedCompositeFieldContainer[ValidationIssue]
    def __init__(self, valid: _Optional[bool] = ..., issues: _Optional[_Iterable[_Union[ValidationIssue, _Mapping]]] = ...) -> None: ...

class ValidationIssue(_message.Message):
    __slots__ = ("rule", "column", "message", "violation_count", "example_rows")
    RULE_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    VIOLATION_COUNT_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_ROWS_FIELD_NUMBER: _ClassVar[int]
    rule: str
    column: str
    message: str
    violation_count: int
    example_rows: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, rule: _Optional[str] = ..., column: _Optional[str] = ..., message: _Optional[str] = ..., violation_count: _Optional[int] = ..., example_rows: _Optional[_Iterable[int]] = ...) -> None: ...

class ProcessingConfig(_message.Message):
    __slots__ = ("transformations", "normalization", "encoding", "feature_engineering", "sampling", "augmentation", "imputation")
    TRANSFORMATIONS_FIELD_NUMBER: _ClassVar[int]
    NORMALIZATION_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    FEATURE_ENGINEERING_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    AUGMENTATION_FIELD_NUMBER: _ClassVar[int]
    IMPUTATION_FIELD_NUMBER: _ClassVar[int]
    transformations: _containers.RepeatedCompositeFieldContainer[TransformationConfig]
    normalization: NormalizationConfig
    encoding: EncodingConfig
    feature_engineering: FeatureEngineeringConfig
    sampling: SamplingConfig
    augmentation: AugmentationConfig
    imputation: ImputationConfig
    def __init__(self, transformations: _Optional[_Iterable[_Union[TransformationConfig, _Mapping]]] = ..., normalization: _Optional[_Union[NormalizationConfig, _Mapping]] = ..., encoding: _Optional[_Union[EncodingConfig, _Mapping]] = ..., feature_engineering: _Optional[_Union[FeatureEngineeringConfig, _Mapping]] = ..., sampling: _Optional[_Union[SamplingConfig, _Mapping]] = ..., augmentation: _Optional[_Union[AugmentationConfig, _Mapping]] = ..., imputation: _Optional[_Union[ImputationConfig, _Mapping]] = ...) -> None: ...

class TransformationConfig(_message.Message):
    __slots__ = ("type", "columns", "parameters")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    type: str
    columns: _containers.RepeatedScalarFieldContainer[str]
    parameters: _struct_pb2.Struct
    def __init__(self, type: _Optional[str] = ..., columns: _Optional[_Iterable[str]] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class NormalizationConfig(_message.Message):
    __slots__ = ("method", "columns")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    method: str
    columns: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, method: _Optional[str] = ..., columns: _Optional[_Iterable[str]] = ...) -> None: ...

class EncodingConfig(_message.Message):
    __slots__ = ("method", "columns", "handle_unknown", "target_column")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    HANDLE_UNKNOWN_FIELD_NUMBER: _ClassVar[int]
    TARGET_COLUMN_FIELD_NUMBER: _ClassVar[int]
    method: str
    columns: _containers.RepeatedScalarFieldContainer[str]
    handle_unknown: str
    target_column: str
    def __init__(self, method: _Optional[str] = ..., columns: _Optional[_Iterable[str]] = ..., handle_unknown: _Optional[str] = ..., target_column: _Optional[str] = ...) -> None: ...

class FeatureEngineeringConfig(_message.Message):
    __slots__ = ("polynomial_degree", "interactions", "date_part_columns", "text_columns", "cyclical_dates", "ratios", "variance_threshold", "correlation_threshold", "select_k_best", "pca_components", "label_column")
    POLYNOMIAL_DEGREE_FIELD_NUMBER: _ClassVar[int]
    INTERACTIONS_FIELD_NUMBER: _ClassVar[int]
    DATE_PART_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    TEXT_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    CYCLICAL_DATES_FIELD_NUMBER: _ClassVar[int]
    RATIOS_FIELD_NUMBER: _ClassVar[int]
    VARIANCE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SELECT_K_BEST_FIELD_NUMBER: _ClassVar[int]
    PCA_COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    LABEL_COLUMN_FIELD_NUMBER: _ClassVar[int]
    polynomial_degree: int
    interactions: bool
    date_part_columns: _containers.RepeatedScalarFieldContainer[str]
    text_columns: _containers.RepeatedScalarFieldContainer[str]
    cyclical_dates: bool
    ratios: _containers.RepeatedScalarFieldContainer[str]
    variance_threshold: float
    correlation_threshold: float
    select_k_best: int
    pca_components: int
    label_column: str
    def __init__(self, polynomial_degree: _Optional[int] = ..., interactions: _Optional[bool] = ..., date_part_columns: _Optional[_Iterable[str]] = ..., text_columns: _Optional[_Iterable[str]] = ..., cyclical_dates: _Optional[bool] = ..., ratios: _Optional[_Iterable[str]] = ..., variance_threshold: _Optional[float] = ..., correlation_threshold: _Optional[float] = ..., select_k_best: _Optional[int] = ..., pca_components: _Optional[int] = ..., label_column: _Optional[str] = ...) -> None: ...

class SamplingConfig(_message.Message):
    __slots__ = ("method", "fraction", "column", "seed")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    method: str
    fraction: float
    column: str
    seed: int
    def __init__(self, method: _Optional[str] = ..., fraction: _Optional[float] = ..., column: _Optional[str] = ..., seed: _Optional[int] = ...) -> None: ...

class AugmentationConfig(_message.Message):
    __slots__ = ("enabled", "methods", "parameters", "probability", "copies")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    METHODS_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    COPIES_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    methods: _containers.RepeatedScalarFieldContainer[str]
    parameters: _struct_pb2.Struct
    probability: float
    copies: int
    def __init__(self, enabled: _Optional[bool] = ..., methods: _Optional[_Iterable[str]] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., probability: _Optional[float] = ..., copies: _Optional[int] = ...) -> None: ...

class ImputationConfig(_message.Message):
    __slots__ = ("strategy", "fill_value", "columns", "add_indicator")
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    FILL_VALUE_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    ADD_INDICATOR_FIELD_NUMBER: _ClassVar[int]
    strategy: str
    fill_value: _struct_pb2.Value
    columns: _containers.RepeatedScalarFieldContainer[str]
    add_indicator: bool
    def __init__(self, strategy: _Optional[str] = ..., fill_value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., columns: _Optional[_Iterable[str]] = ..., add_indicator: _Optional[bool] = ...) -> None: ...

class DataRecord(_message.Message):
    __slots__ = ("row_index", "fields")
    ROW_INDEX_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    row_index: int
    fields: _struct_pb2.Struct
    def __init__(self, row_index: _Optional[int] = ..., fields: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class DataPipeline(_message.Message):
    __slots__ = ("name", "display_name", "validation", "processing", "create_time", "fit_dataset", "fitted")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    FIT_DATASET_FIELD_NUMBER: _ClassVar[int]
    FITTED_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    validation: ValidationRules
    processing: ProcessingConfig
    create_time: _timestamp_pb2.Timestamp
    fit_dataset: str
    fitted: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., validation: _Optional[_Union[ValidationRules, _Mapping]] = ..., processing: _Optional[_Union[ProcessingConfig, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., fit_dataset: _Optional[str] = ..., fitted: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...
