import datetime

from forge.training.v1 import alert_pb2 as _alert_pb2
from forge.training.v1 import common_pb2 as _common_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StageType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STAGE_TYPE_UNSPECIFIED: _ClassVar[StageType]
    STAGE_TYPE_DATA_PREPARATION: _ClassVar[StageType]
    STAGE_TYPE_DATA_VALIDATION: _ClassVar[StageType]
    STAGE_TYPE_FEATURE_EXTRACTION: _ClassVar[StageType]
    STAGE_TYPE_MODEL_TRAINING: _ClassVar[StageType]
    STAGE_TYPE_MODEL_VALIDATION: _ClassVar[StageType]
    STAGE_TYPE_MODEL_EVALUATION: _ClassVar[StageType]
    STAGE_TYPE_MODEL_DEPLOYMENT: _ClassVar[StageType]
    STAGE_TYPE_CUSTOM: _ClassVar[StageType]

class StageState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STAGE_STATE_UNSPECIFIED: _ClassVar[StageState]
    STAGE_STATE_PENDING: _ClassVar[StageState]
    STAGE_STATE_RUNNING: _ClassVar[StageState]
    STAGE_STATE_SUCCEEDED: _ClassVar[StageState]
    STAGE_STATE_FAILED: _ClassVar[StageState]
    STAGE_STATE_SKIPPED: _ClassVar[StageState]
    STAGE_STATE_CANCELLED: _ClassVar[StageState]

class BackoffType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKOFF_TYPE_UNSPECIFIED: _ClassVar[BackoffType]
    BACKOFF_TYPE_FIXED: _ClassVar[BackoffType]
    BACKOFF_TYPE_LINEAR: _ClassVar[BackoffType]
    BACKOFF_TYPE_EXPONENTIAL: _ClassVar[BackoffType]

class ExecutionEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXECUTION_EVENT_TYPE_UNSPECIFIED: _ClassVar[ExecutionEventType]
    EXECUTION_EVENT_TYPE_STAGE_STARTED: _ClassVar[ExecutionEventType]
    EXECUTION_EVENT_TYPE_STAGE_LOG: _ClassVar[ExecutionEventType]
    EXECUTION_EVENT_TYPE_STAGE_METRICS: _ClassVar[ExecutionEventType]
    EXECUTION_EVENT_TYPE_STAGE_COMPLETED: _ClassVar[ExecutionEventType]
    EXECUTION_EVENT_TYPE_STAGE_FAILED: _ClassVar[ExecutionEventType]
    EXECUTION_EVENT_TYPE_STAGE_SKIPPED: _ClassVar[ExecutionEventType]
    EXECUTION_EVENT_TYPE_STAGE_RETRIED: _ClassVar[ExecutionEventType]
    EXECUTION_EVENT_TYPE_EXECUTION_STATE: _ClassVar[ExecutionEventType]

class TriggerEvent(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRIGGER_EVENT_UNSPECIFIED: _ClassVar[TriggerEvent]
    TRIGGER_EVENT_DATASET_CREATED: _ClassVar[TriggerEvent]
    TRIGGER_EVENT_WEBHOOK: _ClassVar[TriggerEvent]
STAGE_TYPE_UNSPECIFIED: StageType
STAGE_TYPE_DATA_PREPARATION: StageType
STAGE_TYPE_DATA_VALIDATION: StageType
STAGE_TYPE_FEATURE_EXTRACTION: StageType
STAGE_TYPE_MODEL_TRAINING: StageType
STAGE_TYPE_MODEL_VALIDATION: StageType
STAGE_TYPE_MODEL_EVALUATION: StageType
STAGE_TYPE_MODEL_DEPLOYMENT: StageType
STAGE_TYPE_CUSTOM: StageType
STAGE_STATE_UNSPECIFIED: StageState
STAGE_STATE_PENDING: StageState
STAGE_STATE_RUNNING: StageState
STAGE_STATE_SUCCEEDED: StageState
STAGE_STATE_FAILED: StageState
STAGE_STATE_SKIPPED: StageState
STAGE_STATE_CANCELLED: StageState
BACKOFF_TYPE_UNSPECIFIED: BackoffType
BACKOFF_TYPE_FIXED: BackoffType
BACKOFF_TYPE_LINEAR: BackoffType
BACKOFF_TYPE_EXPONENTIAL: BackoffType
EXECUTION_EVENT_TYPE_UNSPECIFIED: ExecutionEventType
EXECUTION_EVENT_TYPE_STAGE_STARTED: ExecutionEventType
EXECUTION_EVENT_TYPE_STAGE_LOG: ExecutionEventType
EXECUTION_EVENT_TYPE_STAGE_METRICS: ExecutionEventType
EXECUTION_EVENT_TYPE_STAGE_COMPLETED: ExecutionEventType
EXECUTION_EVENT_TYPE_STAGE_FAILED: ExecutionEventType
EXECUTION_EVENT_TYPE_STAGE_SKIPPED: ExecutionEventType
EXECUTION_EVENT_TYPE_STAGE_RETRIED: ExecutionEventType
EXECUTION_EVENT_TYPE_EXECUTION_STATE: ExecutionEventType
TRIGGER_EVENT_UNSPECIFIED: TriggerEvent
TRIGGER_EVENT_DATASET_CREATED: TriggerEvent
TRIGGER_EVENT_WEBHOOK: TriggerEvent

class Pipeline(_message.Message):
    __slots__ = ("name", "display_name", "stages", "timeout", "template", "create_time", "labels", "schedule", "alerts", "triggers")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    TRIGGERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    stages: _containers.RepeatedCompositeFieldContainer[StageConfig]
    timeout: _duration_pb2.Duration
    template: str
    create_time: _timestamp_pb2.Timestamp
    labels: _containers.ScalarMap[str, str]
    schedule: Schedule
    alerts: _containers.RepeatedCompositeFieldContainer[_alert_pb2.AlertRule]
    triggers: _containers.RepeatedCompositeFieldContainer[PipelineTrigger]
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., stages: _Optional[_Iterable[_Union[StageConfig, _Mapping]]] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., template: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., schedule: _Optional[_Union[Schedule, _Mapping]] = ..., alerts: _Optional[_Iterable[_Union[_alert_pb2.AlertRule, _Mapping]]] = ..., triggers: _Optional[_Iterable[_Union[PipelineTrigger, _Mapping]]] = ...) -> None: ...

class PipelineTrigger(_message.Message):
    __slots__ = ("name", "event", "dataset_labels", "input", "dataset_input", "secret", "secret_set", "paused")
    class DatasetLabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    DATASET_LABELS_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    DATASET_INPUT_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    SECRET_SET_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    name: str
    event: TriggerEvent
    dataset_labels: _containers.ScalarMap[str, str]
    input: _struct_pb2.Struct
    dataset_input: str
    secret: str
    secret_set: bool
    paused: bool
    def __init__(self, name: _Optional[str] = ..., event: _Optional[_Union[TriggerEvent, str]] = ..., dataset_labels: _Optional[_Mapping[str, str]] = ..., input: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., dataset_input: _Optional[str] = ..., secret: _Optional[str] = ..., secret_set: _Optional[bool] = ..., paused: _Optional[bool] = ...) -> None: ...

class Schedule(_message.Message):
    __slots__ = ("cron", "interval", "timezone", "input", "paused", "next_run_time")
    CRON_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    NEXT_RUN_TIME_FIELD_NUMBER: _ClassVar[int]
    cron: str
    interval: _duration_pb2.Duration
    timezone: str
    input: _struct_pb2.Struct
    paused: bool
    next_run_time: _timestamp_pb2.Timestamp
    def __init__(self, cron: _Optional[str] = ..., interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., timezone: _Optional[str] = ..., input: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., paused: _Optional[bool] = ..., next_run_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StageConfig(_message.Message):
    __slots__ = ("id", "type", "dependencies", "parameters", "timeout", "retry", "condition", "custom_function", "disable_cache")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DEPENDENCIES_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    RETRY_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FUNCTION_FIELD_NUMBER: _ClassVar[int]
    DISABLE_CACHE_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: StageType
    dependencies: _containers.RepeatedScalarFieldContainer[str]
    parameters: _struct_pb2.Struct
    timeout: _duration_pb2.Duration
    retry: RetryPolicy
    condition: str
    custom_function: str
    disable_cache: bool
    def __init__(self, id: _Optional[str] = ..., type: _Optional[_Union[StageType, str]] = ..., dependencies: _Optional[_Iterable[str]] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., retry: _Optional[_Union[RetryPolicy, _Mapping]] = ..., condition: _Optional[str] = ..., custom_function: _Optional[str] = ..., disable_cache: _Optional[bool] = ...) -> None: ...

class RetryPolicy(_message.Message):
    __slots__ = ("max_attempts", "backoff", "initial_delay", "max_delay")
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    BACKOFF_FIELD_NUMBER: _ClassVar[int]
    INITIAL_DELAY_FIELD_NUMBER: _ClassVar[int]
    MAX_DELAY_FIELD_NUMBER: _ClassVar[int]
    max_attempts: int
    backoff: BackoffType
    initial_delay: _duration_pb2.Duration
    max_delay: _duration_pb2.Duration
    def __init__(self, max_attempts: _Optional[int] = ..., backoff: _Optional[_Union[BackoffType, str]] = ..., initial_delay: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_delay: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class PipelineExecution(_message.Message):
    __slots__ = ("name", "pipeline", "state", "input", "output", "stages", "error", "create_time", "end_time", "trigger", "state_message")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    STATE_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    name: str
    pipeline: str
    state: _common_pb2.JobState
    input: _struct_pb2.Struct
    output: _struct_pb2.Struct
    stages: _containers.RepeatedCompositeFieldContainer[StageExecution]
    error: _status_pb2.Status
    create_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    trigger: str
    state_message: str
    def __init__(self, name: _Optional[str] = ..., pipeline: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.JobState, str]] = ..., input: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., output: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., stages: _Optional[_Iterable[_Union[StageExecution, _Mapping]]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., trigger: _Optional[str] = ..., state_message: _Optional[str] = ...) -> None: ...

class StageExecution(_message.Message):
    __slots__ = ("stage_id", "state", "attempt", "outputs", "error", "skip_reason", "start_time", "end_time", "cached")
    STAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SKIP_REASON_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    stage_id: str
    state: StageState
    attempt: int
    outputs: _struct_pb2.Struct
    error: _status_pb2.Status
    skip_reason: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    cached: bool
    def __init__(self, stage_id: _Optional[str] = ..., state: _Optional[_Union[StageState, str]] = ..., attempt: _Optional[int] = ..., outputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., skip_reason: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cached: _Optional[bool] = ...) -> None: ...

class ExecutionEvent(_message.Message):
    __slots__ = ("sequence", "time", "type", "stage_id", "attempt", "message", "data", "execution_state")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STAGE_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_STATE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    time: _timestamp_pb2.Timestamp
    type: ExecutionEventType
    stage_id: str
    attempt: int
    message: str
    data: _struct_pb2.Struct
    execution_state: _common_pb2.JobState
    def __init__(self, sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., type: _Optional[_Union[ExecutionEventType, str]] = ..., stage_id: _Optional[str] = ..., attempt: _Optional[int] = ..., message: _Optional[str] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., execution_state: _Optional[_Union[_common_pb2.JobState, str]] = ...) -> None: ...

class PipelineTemplate(_message.Message):
    __slots__ = ("name", "display_name", "description", "stages", "parameters", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    description: str
    stages: _containers.RepeatedCompositeFieldContainer[StageConfig]
    parameters: _containers.RepeatedCompositeFieldContainer[TemplateParameter]
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., stages: _Optional[_Iterable[_Union[StageConfig, _Mapping]]] = ..., parameters: _Optional[_Iterable[_Union[TemplateParameter, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TemplateParameter(_message.Message):
    __slots__ = ("name", "description", "default_value", "required", "type")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VALUE_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    default_value: _struct_pb2.Value
    required: bool
    type: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., default_value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., required: _Optional[bool] = ..., type: _Optional[str] = ...) -> None: ...
