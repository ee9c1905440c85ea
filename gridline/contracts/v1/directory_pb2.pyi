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
    __slots__ = ("household_id", "address", "unit_id", "building_id", "grid_id", "community_id", "township_id", "micro_grid_id", "micro_grid_leader_id")
    HOUSEHOLD_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    UNIT_ID_FIELD_NUMBER: _ClassVar[int]
    BUILDING_ID_FIELD_NUMBER: _ClassVar[int]
    GRID_ID_FIELD_NUMBER: _ClassVar[int]
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    TOWNSHIP_ID_FIELD_NUMBER: _ClassVar[int]
    MICRO_GRID_ID_FIELD_NUMBER: _ClassVar[int]
    MICRO_GRID_LEADER_ID_FIELD_NUMBER: _ClassVar[int]
    household_id: str
    address: str
    unit_id: str
    building_id: str
    grid_id: str
    community_id: str
    township_id: str
    micro_grid_id: str
    micro_grid_leader_id: str
    def __init__(self, household_id: _Optional[str] = ..., address: _Optional[str] = ..., unit_id: _Optional[str] = ..., building_id: _Optional[str] = ..., grid_id: _Optional[str] = ..., community_id: _Optional[str] = ..., township_id: _Optional[str] = ..., micro_grid_id: _Optional[str] = ..., micro_grid_leader_id: _Optional[str] = ...) -> None: ...

class GetHouseholdRequest(_message.Message):
    __slots__ = ("household_id",)
    HOUSEHOLD_ID_FIELD_NUMBER: _ClassVar[int]
    household_id: str
    def __init__(self, household_id: _Optional[str] = ...) -> None: ...

class ListCadreLoadRequest(_message.Message):
    __slots__ = ("grid_id",)
    GRID_ID_FIELD_NUMBER: _ClassVar[int]
    grid_id: str
    def __init__(self, grid_id: _Optional[str] = ...) -> None: ...

class CadreLoad(_message.Message):
    __slots__ = ("person_id", "name", "grid_ids", "open_tasks", "on_leave", "backup_id")
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    GRID_IDS_FIELD_NUMBER: _ClassVar[int]
    OPEN_TASKS_FIELD_NUMBER: _ClassVar[int]
    ON_LEAVE_FIELD_NUMBER: _ClassVar[int]
    BACKUP_ID_FIELD_NUMBER: _ClassVar[int]
    person_id: str
    name: str
    grid_ids: _containers.RepeatedScalarFieldContainer[str]
    open_tasks: int
    on_leave: bool
    backup_id: str
    def __init__(self, person_id: _Optional[str] = ..., name: _Optional[str] = ..., grid_ids: _Optional[_Iterable[str]] = ..., open_tasks: _Optional[int] = ..., on_leave: _Optional[bool] = ..., backup_id: _Optional[str] = ...) -> None: ...

class CadreLoadList(_message.Message):
    __slots__ = ("cadres",)
    CADRES_FIELD_NUMBER: _ClassVar[int]
    cadres: _containers.RepeatedCompositeFieldContainer[CadreLoad]
    def __init__(self, cadres: _Optional[_Iterable[_Union[CadreLoad, _Mapping]]] = ...) -> None: ...

class ListGridHouseholdCountsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GridHouseholdCount(_message.Message):
    __slots__ = ("grid_id", "households")
    GRID_ID_FIELD_NUMBER: _ClassVar[int]
    HOUSEHOLDS_FIELD_NUMBER: _ClassVar[int]
    grid_id: str
    households: int
    def __init__(self, grid_id: _Optional[str] = ..., households: _Optional[int] = ...) -> None: ...

class GridHouseholdCounts(_message.Message):
    __slots__ = ("grids",)
    GRIDS_FIELD_NUMBER: _ClassVar[int]
    grids: _containers.RepeatedCompositeFieldContainer[GridHouseholdCount]
    def __init__(self, grids: _Optional[_Iterable[_Union[GridHouseholdCount, _Mapping]]] = ...) -> None: ...

class ResolveAddressResponse(_message.Message):
    __slots__ = ("found", "household", "confidence", "node_id", "node_kind", "triage", "candidates", "reason")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    HOUSEHOLD_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_KIND_FIELD_NUMBER: _ClassVar[int]
    TRIAGE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    found: bool
    household: Household
    confidence: float
    node_id: str
    node_kind: str
    triage: bool
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    reason: str
    def __init__(self, found: _Optional[bool] = ..., household: _Optional[_Union[Household, _Mapping]] = ..., confidence: _Optional[float] = ..., node_id: _Optional[str] = ..., node_kind: _Optional[str] = ..., triage: _Optional[bool] = ..., candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., reason: _Optional[str] = ...) -> None: ...

class Candidate(_message.Message):
    __slots__ = ("node_id", "node_kind", "label")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_KIND_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    node_kind: str
    label: str
    def __init__(self, node_id: _Optional[str] = ..., node_kind: _Optional[str] = ..., label: _Optional[str] = ...) -> None: ...

class GetChainRequest(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class Chain(_message.Message):
    __slots__ = ("node_id", "levels", "grid_id", "community_id", "township_id")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    LEVELS_FIELD_NUMBER: _ClassVar[int]
    GRID_ID_FIELD_NUMBER: _ClassVar[int]
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    TOWNSHIP_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    levels: _containers.RepeatedCompositeFieldContainer[_common_pb2.Responsible]
    grid_id: str
    community_id: str
    township_id: str
    def __init__(self, node_id: _Optional[str] = ..., levels: _Optional[_Iterable[_Union[_common_pb2.Responsible, _Mapping]]] = ..., grid_id: _Optional[str] = ..., community_id: _Optional[str] = ..., township_id: _Optional[str] = ...) -> None: ...

class GetPlacementRequest(_message.Message):
    __slots__ = ("report_id",)
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    def __init__(self, report_id: _Optional[str] = ...) -> None: ...

class Placement(_message.Message):
    __slots__ = ("report_id", "task_id", "node_id", "triage", "placed_at", "assignee_id", "measure_id", "policy_version", "case_report_id", "grid_id")
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    TRIAGE_FIELD_NUMBER: _ClassVar[int]
    PLACED_AT_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_ID_FIELD_NUMBER: _ClassVar[int]
    MEASURE_ID_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    CASE_REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    GRID_ID_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    task_id: str
    node_id: str
    triage: bool
    placed_at: _timestamp_pb2.Timestamp
    assignee_id: str
    measure_id: str
    policy_version: str
    case_report_id: str
    grid_id: str
    def __init__(self, report_id: _Optional[str] = ..., task_id: _Optional[str] = ..., node_id: _Optional[str] = ..., triage: _Optional[bool] = ..., placed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., assignee_id: _Optional[str] = ..., measure_id: _Optional[str] = ..., policy_version: _Optional[str] = ..., case_report_id: _Optional[str] = ..., grid_id: _Optional[str] = ...) -> None: ...

class ListPersonsRequest(_message.Message):
    __slots__ = ("report_ids", "reveal", "purpose")
    REPORT_IDS_FIELD_NUMBER: _ClassVar[int]
    REVEAL_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    report_ids: _containers.RepeatedScalarFieldContainer[str]
    reveal: bool
    purpose: str
    def __init__(self, report_ids: _Optional[_Iterable[str]] = ..., reveal: _Optional[bool] = ..., purpose: _Optional[str] = ...) -> None: ...

class Person(_message.Message):
    __slots__ = ("report_id", "name", "id_number", "phone", "revealed", "origin_name", "arrived_at", "address", "transport", "cadre_name", "place_name")
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    REVEALED_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_NAME_FIELD_NUMBER: _ClassVar[int]
    ARRIVED_AT_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    CADRE_NAME_FIELD_NUMBER: _ClassVar[int]
    PLACE_NAME_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    name: str
    id_number: str
    phone: str
    revealed: bool
    origin_name: str
    arrived_at: _timestamp_pb2.Timestamp
    address: str
    transport: str
    cadre_name: str
    place_name: str
    def __init__(self, report_id: _Optional[str] = ..., name: _Optional[str] = ..., id_number: _Optional[str] = ..., phone: _Optional[str] = ..., revealed: _Optional[bool] = ..., origin_name: _Optional[str] = ..., arrived_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., address: _Optional[str] = ..., transport: _Optional[str] = ..., cadre_name: _Optional[str] = ..., place_name: _Optional[str] = ...) -> None: ...

class PersonBatch(_message.Message):
    __slots__ = ("persons",)
    PERSONS_FIELD_NUMBER: _ClassVar[int]
    persons: _containers.RepeatedCompositeFieldContainer[Person]
    def __init__(self, persons: _Optional[_Iterable[_Union[Person, _Mapping]]] = ...) -> None: ...

class SearchHouseholdsRequest(_message.Message):
    __slots__ = ("under_node_id", "text", "limit")
    UNDER_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    under_node_id: str
    text: str
    limit: int
    def __init__(self, under_node_id: _Optional[str] = ..., text: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class HouseholdList(_message.Message):
    __slots__ = ("households",)
    HOUSEHOLDS_FIELD_NUMBER: _ClassVar[int]
    households: _containers.RepeatedCompositeFieldContainer[Household]
    def __init__(self, households: _Optional[_Iterable[_Union[Household, _Mapping]]] = ...) -> None: ...

class ListNodesRequest(_message.Message):
    __slots__ = ("node_ids", "under_node_id", "kind")
    NODE_IDS_FIELD_NUMBER: _ClassVar[int]
    UNDER_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    node_ids: _containers.RepeatedScalarFieldContainer[str]
    under_node_id: str
    kind: str
    def __init__(self, node_ids: _Optional[_Iterable[str]] = ..., under_node_id: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...

class NodeInfo(_message.Message):
    __slots__ = ("node_id", "kind", "name", "parent_id")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    kind: str
    name: str
    parent_id: str
    def __init__(self, node_id: _Optional[str] = ..., kind: _Optional[str] = ..., name: _Optional[str] = ..., parent_id: _Optional[str] = ...) -> None: ...

class NodeList(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeInfo]
    def __init__(self, nodes: _Optional[_Iterable[_Union[NodeInfo, _Mapping]]] = ...) -> None: ...
