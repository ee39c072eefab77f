import datetime

from forge.training.v1 import alert_pb2 as _alert_pb2
from forge.training.v1 import common_pb2 as _common_pb2
from forge.training.v1 import dataset_pb2 as _dataset_pb2
from forge.training.v1 import metrics_pb2 as _metrics_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TrainingJob(_message.Message):
    __slots__ = ("name", "spec", "state", "state_message", "error", "create_time", "start_time", "end_time", "update_time", "current_epoch", "total_epochs", "progress", "latest_metrics", "checkpoint_epoch", "test_metrics", "export_formats", "framework_versions", "attempt_count", "model_version", "tensorboard_log_dir", "cross_validation")
    class TestMetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class FrameworkVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CURRENT_EPOCH_FIELD_NUMBER: _ClassVar[int]
    TOTAL_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    LATEST_METRICS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_EPOCH_FIELD_NUMBER: _ClassVar[int]
    TEST_METRICS_FIELD_NUMBER: _ClassVar[int]
    EXPORT_FORMATS_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_COUNT_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TENSORBOARD_LOG_DIR_FIELD_NUMBER: _ClassVar[int]
    CROSS_VALIDATION_FIELD_NUMBER: _ClassVar[int]
    name: str
    spec: TrainingRequest
    state: _common_pb2.JobState
    state_message: str
    error: _status_pb2.Status
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    current_epoch: int
    total_epochs: int
    progress: float
    latest_metrics: _metrics_pb2.TrainingMetrics
    checkpoint_epoch: int
    test_metrics: _containers.ScalarMap[str, float]
    export_formats: _containers.RepeatedScalarFieldContainer[_common_pb2.ExportFormat]
    framework_versions: _containers.ScalarMap[str, str]
    attempt_count: int
    model_version: str
    tensorboard_log_dir: str
    cross_validation: CrossValidationResult
    def __init__(self, name: _Optional[str] = ..., spec: _Optional[_Union[TrainingRequest, _Mapping]] = ..., state: _Optional[_Union[_common_pb2.JobState, str]] = ..., state_message: _Optional[str] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., current_epoch: _Optional[int] = ..., total_epochs: _Optional[int] = ..., progress: _Optional[float] = ..., latest_metrics: _Optional[_Union[_metrics_pb2.TrainingMetrics, _Mapping]] = ..., checkpoint_epoch: _Optional[int] = ..., test_metrics: _Optional[_Mapping[str, float]] = ..., export_formats: _Optional[_Iterable[_Union[_common_pb2.ExportFormat, str]]] = ..., framework_versions: _Optional[_Mapping[str, str]] = ..., attempt_count: _Optional[int] = ..., model_version: _Optional[str] = ..., tensorboard_log_dir: _Optional[str] = ..., cross_validation: _Optional[_Union[CrossValidationResult, _Mapping]] = ...) -> None: ...

class TrainingRequest(_message.Message):
    __slots__ = ("display_name", "model_type", "model_config", "training_config", "data_config", "resources", "validation", "callbacks", "labels", "model_id", "alerts")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_TYPE_FIELD_NUMBER: _ClassVar[int]
    MODEL_CONFIG_FIELD_NUMBER: _ClassVar[int]
    TRAINING_CONFIG_FIELD_NUMBER: _ClassVar[int]
    DATA_CONFIG_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_FIELD_NUMBER: _ClassVar[int]
    CALLBACKS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    display_name: str
    model_type: _common_pb2.ModelType
    model_config: ModelConfig
    training_config: TrainingConfig
    data_config: TrainingDataConfig
    resources: _common_pb2.ResourceConfig
    validation: ValidationConfig
    callbacks: _containers.RepeatedCompositeFieldContainer[CallbackConfig]
    labels: _containers.ScalarMap[str, str]
    model_id: str
    alerts: _containers.RepeatedCompositeFieldContainer[_alert_pb2.AlertRule]
    def __init__(self, display_name: _Optional[str] = ..., model_type: _Optional[_Union[_common_pb2.ModelType, str]] = ..., model_config: _Optional[_Union[ModelConfig, _Mapping]] = ..., training_config: _Optional[_Union[TrainingConfig, _Mapping]] = ..., data_config: _Optional[_Union[TrainingDataConfig, _Mapping]] = ..., resources: _Optional[_Union[_common_pb2.ResourceConfig, _Mapping]] = ..., validation: _Optional[_Union[ValidationConfig, _Mapping]] = ..., callbacks: _Optional[_Iterable[_Union[CallbackConfig, _Mapping]]] = ..., labels: _Optional[_Mapping[str, str]] = ..., model_id: _Optional[str] = ..., alerts: _Optional[_Iterable[_Union[_alert_pb2.AlertRule, _Mapping]]] = ...) -> None: ...

class ModelConfig(_message.Message):
    __slots__ = ("framework", "architecture", "hyperparameters", "input_shape", "output_shape", "pretrained_path", "frozen_layers")
    FRAMEWORK_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    INPUT_SHAPE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SHAPE_FIELD_NUMBER: _ClassVar[int]
    PRETRAINED_PATH_FIELD_NUMBER: _ClassVar[int]
    FROZEN_LAYERS_FIELD_NUMBER: _ClassVar[int]
    framework: str
    architecture: str
    hyperparameters: _struct_pb2.Struct
    input_shape: _containers.RepeatedScalarFieldContainer[int]
    output_shape: _containers.RepeatedScalarFieldContainer[int]
    pretrained_path: str
    frozen_layers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, framework: _Optional[str] = ..., architecture: _Optional[str] = ..., hyperparameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., input_shape: _Optional[_Iterable[int]] = ..., output_shape: _Optional[_Iterable[int]] = ..., pretrained_path: _Optional[str] = ..., frozen_layers: _Optional[_Iterable[str]] = ...) -> None: ...

class TrainingConfig(_message.Message):
    __slots__ = ("epochs", "batch_size", "learning_rate", "optimizer", "optimizer_config", "loss_function", "regularization", "early_stopping", "lr_scheduler", "checkpoints", "seed", "gradient_accumulation_steps", "mixed_precision", "retry_policy")
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_CONFIG_FIELD_NUMBER: _ClassVar[int]
    LOSS_FUNCTION_FIELD_NUMBER: _ClassVar[int]
    REGULARIZATION_FIELD_NUMBER: _ClassVar[int]
    EARLY_STOPPING_FIELD_NUMBER: _ClassVar[int]
    LR_SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    GRADIENT_ACCUMULATION_STEPS_FIELD_NUMBER: _ClassVar[int]
    MIXED_PRECISION_FIELD_NUMBER: _ClassVar[int]
    RETRY_POLICY_FIELD_NUMBER: _ClassVar[int]
    epochs: int
    batch_size: int
    learning_rate: float
    optimizer: str
    optimizer_config: _struct_pb2.Struct
    loss_function: str
    regularization: RegularizationConfig
    early_stopping: EarlyStoppingConfig
    lr_scheduler: LearningRateScheduler
    checkpoints: CheckpointConfig
    seed: int
    gradient_accumulation_steps: int
    mixed_precision: bool
    retry_policy: WorkerRetryPolicy
    def __init__(self, epochs: _Optional[int] = ..., batch_size: _Optional[int] = ..., learning_rate: _Optional[float] = ..., optimizer: _Optional[str] = ..., optimizer_config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., loss_function: _Optional[str] = ..., regularization: _Optional[_Union[RegularizationConfig, _Mapping]] = ..., early_stopping: _Optional[_Union[EarlyStoppingConfig, _Mapping]] = ..., lr_scheduler: _Optional[_Union[LearningRateScheduler, _Mapping]] = ..., checkpoints: _Optional[_Union[CheckpointConfig, _Mapping]] = ..., seed: _Optional[int] = ..., gradient_accumulation_steps: _Optional[int] = ..., mixed_precision: _Optional[bool] = ..., retry_policy: _Optional[_Union[WorkerRetryPolicy, _Mapping]] = ...) -> None: ...

class WorkerRetryPolicy(_message.Message):
    __slots__ = ("max_retries",)
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    max_retries: int
    def __init__(self, max_retries: _Optional[int] = ...) -> None: ...

class RegularizationConfig(_message.Message):
    __slots__ = ("l1", "l2", "dropout", "batch_norm", "weight_decay", "gradient_clip_norm")
    L1_FIELD_NUMBER: _ClassVar[int]
    L2_FIELD_NUMBER: _ClassVar[int]
    DROPOUT_FIELD_NUMBER: _ClassVar[int]
    BATCH_NORM_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_DECAY_FIELD_NUMBER: _ClassVar[int]
    GRADIENT_CLIP_NORM_FIELD_NUMBER: _ClassVar[int]
    l1: float
    l2: float
    dropout: float
    batch_norm: bool
    weight_decay: float
    gradient_clip_norm: float
    def __init__(self, l1: _Optional[float] = ..., l2: _Optional[float] = ..., dropout: _Optional[float] = ..., batch_norm: _Optional[bool] = ..., weight_decay: _Optional[float] = ..., gradient_clip_norm: _Optional[float] = ...) -> None: ...

class EarlyStoppingConfig(_message.Message):
    __slots__ = ("enabled", "patience", "metric", "mode", "min_delta", "restore_best")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    PATIENCE_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    MIN_DELTA_FIELD_NUMBER: _ClassVar[int]
    RESTORE_BEST_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    patience: int
    metric: str
    mode: str
    min_delta: float
    restore_best: bool
    def __init__(self, enabled: _Optional[bool] = ..., patience: _Optional[int] = ..., metric: _Optional[str] = ..., mode: _Optional[str] = ..., min_delta: _Optional[float] = ..., restore_best: _Optional[bool] = ...) -> None: ...

class LearningRateScheduler(_message.Message):
    __slots__ = ("type", "step_size", "gamma", "warmup_epochs", "min_lr", "patience", "metric")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STEP_SIZE_FIELD_NUMBER: _ClassVar[int]
    GAMMA_FIELD_NUMBER: _ClassVar[int]
    WARMUP_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    MIN_LR_FIELD_NUMBER: _ClassVar[int]
    PATIENCE_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    type: str
    step_size: int
    gamma: float
    warmup_epochs: int
    min_lr: float
    patience: int
    metric: str
    def __init__(self, type: _Optional[str] = ..., step_size: _Optional[int] = ..., gamma: _Optional[float] = ..., warmup_epochs: _Optional[int] = ..., min_lr: _Optional[float] = ..., patience: _Optional[int] = ..., metric: _Optional[str] = ...) -> None: ...

class CheckpointConfig(_message.Message):
    __slots__ = ("enabled", "save_best", "save_latest", "every_n_epochs", "keep_last", "monitor_metric", "path")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    SAVE_BEST_FIELD_NUMBER: _ClassVar[int]
    SAVE_LATEST_FIELD_NUMBER: _ClassVar[int]
    EVERY_N_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    KEEP_LAST_FIELD_NUMBER: _ClassVar[int]
    MONITOR_METRIC_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    save_best: bool
    save_latest: bool
    every_n_epochs: int
    keep_last: int
    monitor_metric: str
    path: str
    def __init__(self, enabled: _Optional[bool] = ..., save_best: _Optional[bool] = ..., save_latest: _Optional[bool] = ..., every_n_epochs: _Optional[int] = ..., keep_last: _Optional[int] = ..., monitor_metric: _Optional[str] = ..., path: _Optional[str] = ...) -> None: ...

class TrainingDataConfig(_message.Message):
    __slots__ = ("train_dataset", "validation_dataset", "test_dataset", "label_column", "feature_columns", "validation_fraction", "no_validation", "text_column", "time_column", "user_column", "item_column", "window_size", "validation")
    TRAIN_DATASET_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_DATASET_FIELD_NUMBER: _ClassVar[int]
    TEST_DATASET_FIELD_NUMBER: _ClassVar[int]
    LABEL_COLUMN_FIELD_NUMBER: _ClassVar[int]
    FEATURE_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_FRACTION_FIELD_NUMBER: _ClassVar[int]
    NO_VALIDATION_FIELD_NUMBER: _ClassVar[int]
    TEXT_COLUMN_FIELD_NUMBER: _ClassVar[int]
    TIME_COLUMN_FIELD_NUMBER: _ClassVar[int]
    USER_COLUMN_FIELD_NUMBER: _ClassVar[int]
    ITEM_COLUMN_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SIZE_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_FIELD_NUMBER: _ClassVar[int]
    train_dataset: str
    validation_dataset: str
    test_dataset: str
    label_column: str
    feature_columns: _containers.RepeatedScalarFieldContainer[str]
    validation_fraction: float
    no_validation: bool
    text_column: str
    time_column: str
    user_column: str
    item_column: str
    window_size: int
    validation: _dataset_pb2.ValidationRules
    def __init__(self, train_dataset: _Optional[str] = ..., validation_dataset: _Optional[str] = ..., test_dataset: _Optional[str] = ..., label_column: _Optional[str] = ..., feature_columns: _Optional[_Iterable[str]] = ..., validation_fraction: _Optional[float] = ..., no_validation: _Optional[bool] = ..., text_column: _Optional[str] = ..., time_column: _Optional[str] = ..., user_column: _Optional[str] = ..., item_column: _Optional[str] = ..., window_size: _Optional[int] = ..., validation: _Optional[_Union[_dataset_pb2.ValidationRules, _Mapping]] = ...) -> None: ...

class ValidationConfig(_message.Message):
    __slots__ = ("cross_validation",)
    CROSS_VALIDATION_FIELD_NUMBER: _ClassVar[int]
    cross_validation: CrossValidationConfig
    def __init__(self, cross_validation: _Optional[_Union[CrossValidationConfig, _Mapping]] = ...) -> None: ...

class CrossValidationConfig(_message.Message):
    __slots__ = ("enabled", "folds", "shuffle", "seed", "final_model", "metric")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    FOLDS_FIELD_NUMBER: _ClassVar[int]
    SHUFFLE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    FINAL_MODEL_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    folds: int
    shuffle: bool
    seed: int
    final_model: str
    metric: str
    def __init__(self, enabled: _Optional[bool] = ..., folds: _Optional[int] = ..., shuffle: _Optional[bool] = ..., seed: _Optional[int] = ..., final_model: _Optional[str] = ..., metric: _Optional[str] = ...) -> None: ...

class CrossValidationResult(_message.Message):
    __slots__ = ("folds", "mean", "std", "best_fold", "final_model", "metric")
    class MeanEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class StdEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    FOLDS_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    BEST_FOLD_FIELD_NUMBER: _ClassVar[int]
    FINAL_MODEL_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    folds: _containers.RepeatedCompositeFieldContainer[FoldMetrics]
    mean: _containers.ScalarMap[str, float]
    std: _containers.ScalarMap[str, float]
    best_fold: int
    final_model: str
    metric: str
    def __init__(self, folds: _Optional[_Iterable[_Union[FoldMetrics, _Mapping]]] = ..., mean: _Optional[_Mapping[str, float]] = ..., std: _Optional[_Mapping[str, float]] = ..., best_fold: _Optional[int] = ..., final_model: _Optional[str] = ..., metric: _Optional[str] = ...) -> None: ...

class FoldMetrics(_message.Message):
    __slots__ = ("fold", "train_rows", "validation_rows", "metrics")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    FOLD_FIELD_NUMBER: _ClassVar[int]
    TRAIN_ROWS_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_ROWS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    fold: int
    train_rows: int
    validation_rows: int
    metrics: _containers.ScalarMap[str, float]
    def __init__(self, fold: _Optional[int] = ..., train_rows: _Optional[int] = ..., validation_rows: _Optional[int] = ..., metrics: _Optional[_Mapping[str, float]] = ...) -> None: ...

class CallbackConfig(_message.Message):
    __slots__ = ("name", "type", "config", "priority")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    config: _struct_pb2.Struct
    priority: int
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., priority: _Optional[int] = ...) -> None: ...
