import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from gridline.contracts.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResolveAddressRequest(_message.Message):
    __slots__ = ("address",)
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    address: str
    def __init__(self, address: _Optional[str] = ...) -> None: ...

class Household(_message.Message):
    __slots__ = ("household_id", "address", "unit_id", "building_id", "grid_id", "community_id", "township_id")
    HOUSEHOLD_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    UNIT_ID_FIELD_NUMBER: _ClassVar[int]
    BUILDING_ID_FIELD_NUMBER: _ClassVar[int]
    GRID_ID_FIELD_NUMBER: _ClassVar[int]
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    TOWNSHIP_ID_FIELD_NUMBER: _ClassVar[int]
    household_id: str
    address: str
    unit_id: str
    building_id: str
    grid_id: str
    community_id: str
    township_id: str
    def __init__(self, household_id: _Optional[str] = ..., address: _Optional[str] = ..., unit_id: _Optional[str] = ..., building_id: _Optional[str] = ..., grid_id: _Optional[str] = ..., community_id: _Optional[str] = ..., township_id: _Optional[str] = ...) -> None: ...

class ResolveAddressResponse(_message.Message):
    __slots__ = ("found", "household", "confidence")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    HOUSEHOLD_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    found: bool
    household: Household
    confidence: float
    def __init__(self, found: _Optional[bool] = ..., household: _Optional[_Union[Household, _Mapping]] = ..., confidence: _Optional[float] = ...) -> None: ...

class GetChainRequest(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class Chain(_message.Message):
    __slots__ = ("node_id", "levels")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    LEVELS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    levels: _containers.RepeatedCompositeFieldContainer[_common_pb2.Responsible]
    def __init__(self, node_id: _Optional[str] = ..., levels: _Optional[_Iterable[_Union[_common_pb2.Responsible, _Mapping]]] = ...) -> None: ...

class GetPlacementRequest(_message.Message):
    __slots__ = ("report_id",)
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    def __init__(self, report_id: _Optional[str] = ...) -> None: ...

class Placement(_message.Message):
    __slots__ = ("report_id", "task_id", "node_id", "triage", "placed_at")
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    TRIAGE_FIELD_NUMBER: _ClassVar[int]
    PLACED_AT_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    task_id: str
    node_id: str
    triage: bool
    placed_at: _timestamp_pb2.Timestamp
    def __init__(self, report_id: _Optional[str] = ..., task_id: _Optional[str] = ..., node_id: _Optional[str] = ..., triage: _Optional[bool] = ..., placed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
