"""Assignment's gRPC Directory service."""

from __future__ import annotations

import grpc

from gridline.contracts.v1 import directory_pb2, directory_pb2_grpc
from gridline.db import Database
from gridline.personal import Sealer
from gridline.rpc import abort
from gridline.staff.identity import Staff
from gridline.staff.rpc import governed, internal_method, staff_method
from gridline.staff.tokens import TokenVerifier
from gridline.timestamps import to_timestamp
from services.assignment import storage
from services.assignment.assignee import CadreLoad
from services.assignment.directory import Directory
from services.assignment.following import Current
from services.assignment.grid import Node, NodeKind
from services.assignment.placement import responsible
from services.assignment.places import place_of
from services.assignment.reveal import RegisterPerson, RevealRefused, register_persons
from services.assignment.search import nodes_of, search_households

# Persons per streamed batch of ListPersons: a register of tens of thousands stays far below
# gRPC's 4 MB message limit.
PERSONS_BATCH = 1000


def _household(directory: Directory, node: Node) -> directory_pb2.Household:
    def up(kind: NodeKind) -> str:
        found = directory.ancestor(node.id, kind)
        return found.id if found else ""

    leader = directory.micro_grid_leader(node.id)
    return directory_pb2.Household(
        household_id=node.id,
        address=node.address or "",
        unit_id=up(NodeKind.UNIT),
        building_id=up(NodeKind.BUILDING),
        grid_id=up(NodeKind.GRID),
        community_id=up(NodeKind.COMMUNITY),
        township_id=up(NodeKind.TOWNSHIP),
        micro_grid_id=node.micro_grid_id or "",
        micro_grid_leader_id=leader.id if leader else "",
    )


def _candidate(node: Node) -> directory_pb2.Candidate:
    return directory_pb2.Candidate(
        node_id=node.id, node_kind=node.kind.value, label=node.address or node.name
    )


class _Counted:
    """What the servicer derives from one directory's nodes, which change only with the
    directory: counted once per directory."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self.cadre_grids = directory.cadre_grids()
        self.grid_households = [
            directory_pb2.GridHouseholdCount(grid_id=grid_id, households=count)
            for grid_id, count in sorted(directory.grid_households().items())
        ]


@governed(directory_pb2.DESCRIPTOR.services_by_name["Directory"])
class DirectoryServicer(directory_pb2_grpc.DirectoryServicer):
    """Answers from the directory this replica holds now (`current`).

    Every method but one is internal: the other services' lookups (placing, chains, report
    status, the zero-report roster), no operator action; who may call is mutual TLS's business.
    ListPersons, the register's persons, is a staff method: the person asking is the one their
    token names, and what they see is decided here, where the people are kept.
    """

    def __init__(
        self,
        current: Current,
        db: Database,
        load: CadreLoad,
        staff_tokens: TokenVerifier | None = None,
        sealer: Sealer | None = None,
    ) -> None:
        self._current = current
        self._db = db
        self._load = load
        self._counted = _Counted(current.directory)
        self._staff_tokens = staff_tokens
        self._sealer = sealer

    @property
    def staff_tokens(self) -> TokenVerifier:
        """The verifier of ListPersons' staff tokens."""
        if self._staff_tokens is None:
            raise RuntimeError("DirectoryServicer was built without staff_tokens")
        return self._staff_tokens

    @property
    def _directory(self) -> Directory:
        return self._current.directory

    def _counts(self) -> _Counted:
        if self._counted.directory is not self._current.directory:
            self._counted = _Counted(self._current.directory)
        return self._counted

    @internal_method
    async def ResolveAddress(
        self, request: directory_pb2.ResolveAddressRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.ResolveAddressResponse:
        """Place an address: the household, else unit or building, else triage with candidates."""
        resolution = self._directory.locate(request.address)
        household = resolution.household
        return directory_pb2.ResolveAddressResponse(
            found=household is not None,
            household=_household(self._directory, household) if household else None,
            confidence=resolution.confidence,
            node_id=resolution.node.id,
            node_kind=resolution.node.kind.value,
            triage=resolution.triage,
            candidates=[_candidate(self._directory.nodes[c]) for c in resolution.candidates],
            reason=resolution.reason,
        )

    @internal_method
    async def GetChain(
        self, request: directory_pb2.GetChainRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.Chain:
        """The chain of responsible people and groups above a node, and where the node sits."""
        try:
            links = self._directory.chain(request.node_id)
        except KeyError:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no node {request.node_id!r}")
        place = place_of(self._directory, request.node_id)
        return directory_pb2.Chain(
            node_id=request.node_id,
            levels=[responsible(link) for link in links],
            grid_id=place.grid_id,
            community_id=place.community_id,
            township_id=place.township_id,
        )

    @internal_method
    async def GetPlacement(
        self, request: directory_pb2.GetPlacementRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.Placement:
        """Where a report was placed; for one that joined a case, the case's report."""
        async with self._db.session() as session:
            placement = await storage.get_placement(session, request.report_id)
        if placement is None:
            await abort(
                context, grpc.StatusCode.NOT_FOUND, f"report {request.report_id!r} not placed"
            )
        return directory_pb2.Placement(
            report_id=placement.report_id,
            task_id=placement.task_id,
            node_id=placement.node_id,
            triage=placement.triage,
            placed_at=to_timestamp(placement.placed_at),
            assignee_id=placement.assignee_id,
            measure_id=placement.measure_id,
            policy_version=placement.policy_version,
            case_report_id=placement.merged_into,
            grid_id=placement.grid_id,
        )

    @internal_method
    async def GetHousehold(
        self, request: directory_pb2.GetHouseholdRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.Household:
        """One household and its place in the grid."""
        node = self._directory.nodes.get(request.household_id)
        if node is None or node.kind is not NodeKind.HOUSEHOLD:
            await abort(
                context, grpc.StatusCode.NOT_FOUND, f"no household {request.household_id!r}"
            )
        return _household(self._directory, node)

    @internal_method
    async def ListCadreLoad(
        self, request: directory_pb2.ListCadreLoadRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.CadreLoadList:
        """The cadres of a grid (or all), least loaded first."""
        cadre_grids = self._counts().cadre_grids
        if request.grid_id:
            grid = self._directory.nodes.get(request.grid_id)
            if grid is None or grid.kind is not NodeKind.GRID:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"no grid {request.grid_id!r}")
            cadre_ids = [c.id for c in self._directory.grid_cadres(request.grid_id)]
        else:
            cadre_ids = list(cadre_grids)
        cadres = [
            directory_pb2.CadreLoad(
                person_id=person.id,
                name=person.name,
                grid_ids=cadre_grids.get(person.id, []),
                open_tasks=self._load.of(person.id),
                on_leave=person.on_leave,
                backup_id=person.backup_id or "",
            )
            for person in (self._directory.people[c] for c in cadre_ids)
        ]
        cadres.sort(key=lambda c: (c.open_tasks, c.person_id))
        return directory_pb2.CadreLoadList(cadres=cadres)

    @internal_method
    async def ListGridHouseholdCounts(
        self,
        request: directory_pb2.ListGridHouseholdCountsRequest,
        context: grpc.aio.ServicerContext,
    ) -> directory_pb2.GridHouseholdCounts:
        """Every grid with its number of households, by grid id."""
        return directory_pb2.GridHouseholdCounts(grids=self._counts().grid_households)

    @internal_method
    async def SearchHouseholds(
        self, request: directory_pb2.SearchHouseholdsRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.HouseholdList:
        """Households under a node whose address holds every word of a text (placing by hand)."""
        directory = self._directory
        found = search_households(directory, request.under_node_id, request.text, request.limit)
        return directory_pb2.HouseholdList(households=[_household(directory, n) for n in found])

    @internal_method
    async def ListNodes(
        self, request: directory_pb2.ListNodesRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.NodeList:
        """Nodes by id, and the nodes of a kind under a node, with their names."""
        found = nodes_of(
            self._directory, list(request.node_ids), request.under_node_id, request.kind
        )
        return directory_pb2.NodeList(
            nodes=[
                directory_pb2.NodeInfo(
                    node_id=n.id,
                    kind=n.kind.value,
                    name=n.address or n.name if n.kind is NodeKind.HOUSEHOLD else n.name,
                    parent_id=n.parent_id or "",
                )
                for n in found
            ]
        )

    @staff_method
    async def ListPersons(
        self,
        request: directory_pb2.ListPersonsRequest,
        context: grpc.aio.ServicerContext,
        staff: Staff,
    ) -> None:
        """The persons of a register's reports, in batches: in clear where the caller may see
        them and asked to (audited), masked otherwise; reports outside their node left out."""
        if self._sealer is None:
            await abort(context, grpc.StatusCode.UNAVAILABLE, "人员信息暂不可用：未配置密钥")
        try:
            persons = await register_persons(
                self._db,
                self._directory,
                self._sealer,
                staff,
                report_ids=list(request.report_ids),
                reveal_identity=request.reveal,
                purpose=request.purpose,
            )
        except RevealRefused as refused:
            await abort(context, grpc.StatusCode.PERMISSION_DENIED, str(refused))
        for start in range(0, len(persons), PERSONS_BATCH):
            batch = persons[start : start + PERSONS_BATCH]
            await context.write(directory_pb2.PersonBatch(persons=[_person(p) for p in batch]))


def _person(person: RegisterPerson) -> directory_pb2.Person:
    return directory_pb2.Person(
        report_id=person.report_id,
        name=person.name,
        id_number=person.id_number,
        phone=person.phone,
        revealed=person.revealed,
        origin_name=person.origin_name,
        arrived_at=to_timestamp(person.arrived_at) if person.arrived_at else None,
        address=person.address,
        transport=person.transport,
        cadre_name=person.cadre_name,
        place_name=person.place_name,
    )
