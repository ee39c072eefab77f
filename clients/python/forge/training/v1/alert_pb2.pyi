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

class AlertDeliveryState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_DELIVERY_STATE_UNSPECIFIED: _ClassVar[AlertDeliveryState]
    ALERT_DELIVERY_STATE_PENDING: _ClassVar[AlertDeliveryState]
    ALERT_DELIVERY_STATE_DELIVERED: _ClassVar[AlertDeliveryState]
    ALERT_DELIVERY_STATE_FAILED: _ClassVar[AlertDeliveryState]
ALERT_DELIVERY_STATE_UNSPECIFIED: AlertDeliveryState
ALERT_DELIVERY_STATE_PENDING: AlertDeliveryState
ALERT_DELIVERY_STATE_DELIVERED: AlertDeliveryState
ALERT_DELIVERY_STATE_FAILED: AlertDeliveryState

class AlertRule(_message.Message):
    __slots__ = ("name", "on_states", "metric", "webhook_url", "webhook_secret", "webhook_secret_set")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ON_STATES_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_URL_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_SECRET_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_SECRET_SET_FIELD_NUMBER: _ClassVar[int]
    name: str
    on_states: _containers.RepeatedScalarFieldContainer[_common_pb2.JobState]
    metric: MetricCondition
    webhook_url: str
    webhook_secret: str
    webhook_secret_set: bool
    def __init__(self, name: _Optional[str] = ..., on_states: _Optional[_Iterable[_Union[_common_pb2.JobState, str]]] = ..., metric: _Optional[_Union[MetricCondition, _Mapping]] = ..., webhook_url: _Optional[str] = ..., webhook_secret: _Optional[str] = ..., webhook_secret_set: _Optional[bool] = ...) -> None: ...

class MetricCondition(_message.Message):
    __slots__ = ("metric", "above", "below")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    ABOVE_FIELD_NUMBER: _ClassVar[int]
    BELOW_FIELD_NUMBER: _ClassVar[int]
    metric: str
    above: float
    below: float
    def __init__(self, metric: _Optional[str] = ..., above: _Optional[float] = ..., below: _Optional[float] = ...) -> None: ...

class AlertDelivery(_message.Message):
    __slots__ = ("id", "resource", "alert", "event", "payload", "webhook_url", "state", "attempts", "last_response_code", "last_error", "create_time", "end_time", "next_attempt_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    ALERT_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_URL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_RESPONSE_CODE_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    resource: str
    alert: str
    event: str
    payload: _struct_pb2.Struct
    webhook_url: str
    state: AlertDeliveryState
    attempts: int
    last_response_code: int
    last_error: str
    create_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    next_attempt_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., resource: _Optional[str] = ..., alert: _Optional[str] = ..., event: _Optional[str] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., webhook_url: _Optional[str] = ..., state: _Optional[_Union[AlertDeliveryState, str]] = ..., attempts: _Optional[int] = ..., last_response_code: _Optional[int] = ..., last_error: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
