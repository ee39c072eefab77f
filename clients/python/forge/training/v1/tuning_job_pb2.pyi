import datetime

from forge.training.v1 import alert_pb2 as _alert_pb2
from forge.training.v1 import common_pb2 as _common_pb2
from forge.training.v1 import training_job_pb2 as _training_job_pb2
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

class SearchAlgorithm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEARCH_ALGORITHM_UNSPECIFIED: _ClassVar[SearchAlgorithm]
    SEARCH_ALGORITHM_GRID: _ClassVar[SearchAlgorithm]
    SEARCH_ALGORITHM_RANDOM: _ClassVar[SearchAlgorithm]
    SEARCH_ALGORITHM_BAYESIAN: _ClassVar[SearchAlgorithm]
    SEARCH_ALGORITHM_HYPERBAND: _ClassVar[SearchAlgorithm]

class Pruner(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRUNER_UNSPECIFIED: _ClassVar[Pruner]
    PRUNER_NONE: _ClassVar[Pruner]
    PRUNER_MEDIAN: _ClassVar[Pruner]
    PRUNER_SUCCESSIVE_HALVING: _ClassVar[Pruner]
    PRUNER_HYPERBAND: _ClassVar[Pruner]

class ObjectiveGoal(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OBJECTIVE_GOAL_UNSPECIFIED: _ClassVar[ObjectiveGoal]
    OBJECTIVE_GOAL_MAXIMIZE: _ClassVar[ObjectiveGoal]
    OBJECTIVE_GOAL_MINIMIZE: _ClassVar[ObjectiveGoal]
SEARCH_ALGORITHM_UNSPECIFIED: SearchAlgorithm
SEARCH_ALGORITHM_GRID: SearchAlgorithm
SEARCH_ALGORITHM_RANDOM: SearchAlgorithm
SEARCH_ALGORITHM_BAYESIAN: SearchAlgorithm
SEARCH_ALGORITHM_HYPERBAND: SearchAlgorithm
PRUNER_UNSPECIFIED: Pruner
PRUNER_NONE: Pruner
PRUNER_MEDIAN: Pruner
PRUNER_SUCCESSIVE_HALVING: Pruner
PRUNER_HYPERBAND: Pruner
OBJECTIVE_GOAL_UNSPECIFIED: ObjectiveGoal
OBJECTIVE_GOAL_MAXIMIZE: ObjectiveGoal
OBJECTIVE_GOAL_MINIMIZE: ObjectiveGoal

class TuningJob(_message.Message):
    __slots__ = ("name", "spec", "state", "error", "trials", "best_trial_id", "create_time", "end_time", "state_message", "best_trial")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    BEST_TRIAL_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    BEST_TRIAL_FIELD_NUMBER: _ClassVar[int]
    name: str
    spec: TuningSpec
    state: _common_pb2.JobState
    error: _status_pb2.Status
    trials: _containers.RepeatedCompositeFieldContainer[Trial]
    best_trial_id: str
    create_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    state_message: str
    best_trial: Trial
    def __init__(self, name: _Optional[str] = ..., spec: _Optional[_Union[TuningSpec, _Mapping]] = ..., state: _Optional[_Union[_common_pb2.JobState, str]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., trials: _Optional[_Iterable[_Union[Trial, _Mapping]]] = ..., best_trial_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state_message: _Optional[str] = ..., best_trial: _Optional[_Union[Trial, _Mapping]] = ...) -> None: ...

class TuningSpec(_message.Message):
    __slots__ = ("display_name", "base_request", "parameters", "algorithm", "objective_metric", "goal", "max_trials", "parallel_trials", "early_stop_trials", "seed", "time_budget", "pruner", "alerts")
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    BASE_REQUEST_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_METRIC_FIELD_NUMBER: _ClassVar[int]
    GOAL_FIELD_NUMBER: _ClassVar[int]
    MAX_TRIALS_FIELD_NUMBER: _ClassVar[int]
    PARALLEL_TRIALS_FIELD_NUMBER: _ClassVar[int]
    EARLY_STOP_TRIALS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    TIME_BUDGET_FIELD_NUMBER: _ClassVar[int]
    PRUNER_FIELD_NUMBER: _ClassVar[int]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    display_name: str
    base_request: _training_job_pb2.TrainingRequest
    parameters: _containers.RepeatedCompositeFieldContainer[ParameterSpec]
    algorithm: SearchAlgorithm
    objective_metric: str
    goal: ObjectiveGoal
    max_trials: int
    parallel_trials: int
    early_stop_trials: bool
    seed: int
    time_budget: _duration_pb2.Duration
    pruner: Pruner
    alerts: _containers.RepeatedCompositeFieldContainer[_alert_pb2.AlertRule]
    def __init__(self, display_name: _Optional[str] = ..., base_request: _Optional[_Union[_training_job_pb2.TrainingRequest, _Mapping]] = ..., parameters: _Optional[_Iterable[_Union[ParameterSpec, _Mapping]]] = ..., algorithm: _Optional[_Union[SearchAlgorithm, str]] = ..., objective_metric: _Optional[str] = ..., goal: _Optional[_Union[ObjectiveGoal, str]] = ..., max_trials: _Optional[int] = ..., parallel_trials: _Optional[int] = ..., early_stop_trials: _Optional[bool] = ..., seed: _Optional[int] = ..., time_budget: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., pruner: _Optional[_Union[Pruner, str]] = ..., alerts: _Optional[_Iterable[_Union[_alert_pb2.AlertRule, _Mapping]]] = ...) -> None: ...

class ParameterSpec(_message.Message):
    __slots__ = ("path", "values", "double_range", "int_range")
    PATH_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_RANGE_FIELD_NUMBER: _ClassVar[int]
    INT_RANGE_FIELD_NUMBER: _ClassVar[int]
    path: str
    values: DiscreteValues
    double_range: DoubleRange
    int_range: IntRange
    def __init__(self, path: _Optional[str] = ..., values: _Optional[_Union[DiscreteValues, _Mapping]] = ..., double_range: _Optional[_Union[DoubleRange, _Mapping]] = ..., int_range: _Optional[_Union[IntRange, _Mapping]] = ...) -> None: ...

class DiscreteValues(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Value]
    def __init__(self, values: _Optional[_Iterable[_Union[_struct_pb2.Value, _Mapping]]] = ...) -> None: ...

class DoubleRange(_message.Message):
    __slots__ = ("min", "max", "log_scale")
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    LOG_SCALE_FIELD_NUMBER: _ClassVar[int]
    min: float
    max: float
    log_scale: bool
    def __init__(self, min: _Optional[float] = ..., max: _Optional[float] = ..., log_scale: _Optional[bool] = ...) -> None: ...

class IntRange(_message.Message):
    __slots__ = ("min", "max", "log_scale")
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    LOG_SCALE_FIELD_NUMBER: _ClassVar[int]
    min: int
    max: int
    log_scale: bool
    def __init__(self, min: _Optional[int] = ..., max: _Optional[int] = ..., log_scale: _Optional[bool] = ...) -> None: ...

class Trial(_message.Message):
    __slots__ = ("id", "parameters", "training_job", "state", "objective_value", "model_version", "state_message", "epochs_trained")
    ID_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    TRAINING_JOB_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_VALUE_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_TRAINED_FIELD_NUMBER: _ClassVar[int]
    id: str
    parameters: _struct_pb2.Struct
    training_job: str
    state: _common_pb2.JobState
    objective_value: float
    model_version: str
    state_message: str
    epochs_trained: int
    def __init__(self, id: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., training_job: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.JobState, str]] = ..., objective_value: _Optional[float] = ..., model_version: _Optional[str] = ..., state_message: _Optional[str] = ..., epochs_trained: _Optional[int] = ...) -> None: ...

class TuningEvent(_message.Message):
    __slots__ = ("sequence", "time", "trial", "kind", "job_state")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TRIAL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    JOB_STATE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    time: _timestamp_pb2.Timestamp
    trial: Trial
    kind: str
    job_state: _common_pb2.JobState
    def __init__(self, sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., trial: _Optional[_Union[Trial, _Mapping]] = ..., kind: _Optional[str] = ..., job_state: _Optional[_Union[_common_pb2.JobState, str]] = ...) -> None: ...
