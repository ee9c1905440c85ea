"""Two assignment replicas on one database and the real broker: what is changed through one, or
imported while both run, decides the next placement on the other within the follow bound."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from fastapi import FastAPI

from gridline.bus import topics
from gridline.bus.envelope import Envelope
from gridline.bus.producer import EventProducer
from gridline.bus.topics import ensure_topics
from gridline.contracts.v1 import common_pb2, directory_pb2, directory_pb2_grpc, events_pb2
from gridline.embedded import EmbeddedBroker, free_port
from gridline.settings import Settings
from gridline.timestamps import now
from services.assignment import directory_file
from services.assignment.app import create_app
from services.assignment.directory import Directory
from services.assignment.directory_admin import import_directory
from services.assignment.following import Follower
from services.assignment.grid import Node, NodeKind
from tests.assignment.support import small_county
from tests.conftest import POSTGRES_URL
from tests.helpers import eventually
from tests.staff.tokens import bearer

# A change reaches another replica within one look and a reload of a small directory.
BOUND = Settings().assignment_follow_seconds + 1.0
NEW_ADDRESS = "皋兰县文化苑1号楼1单元102室"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A broker of this module's own: the tasks placed here on a directory of their own must not
    reach the other modules' consumers of tasks.v1, which know only the demo county."""
    embedded = EmbeddedBroker(log_path=tmp_path_factory.mktemp("broker") / "broker.log")
    embedded.start()
    yield embedded
    embedded.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, broker: EmbeddedBroker) -> Settings:
    database_url = ""
    if request.param == "postgres":
        if not POSTGRES_URL:
            pytest.skip("GRIDLINE_TEST_POSTGRES_URL is not set")
        database_url = request.getfixturevalue("postgres_database")
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        kafka_bootstrap=broker.bootstrap,
        kafka_idempotence=False,
        # B takes the reports over soon after A leaves: it hears of the rebalance sooner.
        consumer_session_timeout_ms=3_000,
    )


def _directory(*, with_new_household: bool) -> Directory:
    """One grid of two cadres; the second version adds a household to the first cadre's unit."""
    nodes = [
        Node("c", NodeKind.COUNTY, "皋兰县", None, "p-county"),
        Node("t", NodeKind.TOWNSHIP, "石洞镇", "c"),
        Node("cm", NodeKind.COMMUNITY, "三川社区", "t"),
        Node("g", NodeKind.GRID, "文化苑", "cm"),
        Node("b", NodeKind.BUILDING, "1号楼", "g"),
        Node("u1", NodeKind.UNIT, "1单元", "b", "p-a"),
        Node("u2", NodeKind.UNIT, "2单元", "b", "p-b"),
        Node("h1", NodeKind.HOUSEHOLD, "101室", "u1", address="皋兰县文化苑1号楼1单元101室"),
        Node("h2", NodeKind.HOUSEHOLD, "101室", "u2", address="皋兰县文化苑1号楼2单元101室"),
    ]
    if with_new_household:
        nodes.append(Node("h-new", NodeKind.HOUSEHOLD, "102室", "u1", address=NEW_ADDRESS))
    return small_county(nodes)


async def _import(settings: Settings, directory: Directory, path: Path) -> None:
    directory_file.write(directory, path)
    await import_directory(settings, path)


@dataclass
class Replica:
    """One running assignment replica: its app, HTTP client and Directory stub."""

    app: FastAPI
    http: httpx.AsyncClient
    stub: directory_pb2_grpc.DirectoryStub

    @property
    def follower(self) -> Follower:
        """What the replica holds in memory, and follows."""
        follower: Follower = self.app.state.follower
        return follower


@asynccontextmanager
async def replica(settings: Settings) -> AsyncIterator[Replica]:
    """A replica with its own ports on the shared database and broker, until the context ends."""
    own = settings.model_copy(update={"directory_grpc_port": free_port()})
    app = create_app(own)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://a",
            headers=bearer(own.data_dir),
        ) as http,
        grpc.aio.insecure_channel(f"127.0.0.1:{own.directory_grpc_port}") as channel,
    ):
        yield Replica(app, http, directory_pb2_grpc.DirectoryStub(channel))


async def _placement(replica: Replica, report_id: str) -> directory_pb2.Placement:
    found: list[directory_pb2.Placement] = []

    async def placed() -> bool:
        try:
            request = directory_pb2.GetPlacementRequest(report_id=report_id)
            found.append(await replica.stub.GetPlacement(request, timeout=5))
            return True
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND
            return False

    await eventually(placed, within=60)
    return found[-1]


async def test_changes_through_one_replica_and_an_import_decide_the_other_s_next_placement(
    settings: Settings, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    await ensure_topics(
        broker.bootstrap, 1, 1, (topics.REPORTS, topics.TASKS, topics.NOTIFICATIONS)
    )
    await _import(settings, _directory(with_new_household=False), tmp_path / "v1.yaml")
    async with AsyncExitStack() as a_running, replica(settings) as b:
        a = await a_running.enter_async_context(replica(settings))

        # An import while both run: each loads it without a restart.
        await _import(settings, _directory(with_new_household=True), tmp_path / "v2.yaml")

        async def b_has_the_new_household() -> bool:
            return "h-new" in b.follower.current.directory.nodes

        await eventually(b_has_the_new_household, within=BOUND)
        assert b.follower.current.directory.resolve(NEW_ADDRESS) is not None

        # A duty change through A: A applies it before answering, B within the bound.
        put = await a.http.put("/v1/cadres/p-a/duty", json={"on_leave": True, "backup_id": "p-b"})
        assert put.status_code == 200, put.text
        assert a.follower.current.directory.people["p-a"].on_leave

        async def b_knows_the_leave() -> bool:
            cadre = b.follower.current.directory.people["p-a"]
            return cadre.on_leave and cadre.backup_id == "p-b"

        await eventually(b_knows_the_leave, within=BOUND)

        # A risk-area change through A: the same.
        posted = await a.http.post(
            "/v1/risk-areas", json={"region_code": "220100", "level": "high"}
        )
        assert posted.status_code == 201, posted.text
        assert a.follower.current.areas.level_of("220102", now()) == "high"

        async def b_knows_the_area() -> bool:
            listed = (await b.http.get("/v1/risk-areas")).json()
            return [(r["region_code"], r["level"]) for r in listed] == [("220100", "high")]

        await eventually(b_knows_the_area, within=BOUND)

        # A leaves: whatever is placed now, B places it, by what it followed.
        await a_running.aclose()
        report = events_pb2.ReportAccepted(
            report_id=f"r-{uuid.uuid4().hex[:12]}",
            person_key=f"k-{uuid.uuid4().hex[:12]}",
            source=common_pb2.REPORT_SOURCE_SELF_REPORT,
            name_masked="张*",
            id_number_masked="**************0011",
            phone_masked="138****0000",
            origin_region_code="220102",
            origin_name="长春市南关区",
            origin_risk=common_pb2.RISK_LEVEL_LOW,
            address=NEW_ADDRESS,
        )
        async with EventProducer(settings) as producer:
            await producer.publish(
                topics.REPORTS,
                Envelope(event_id=report.report_id, key=report.person_key, message=report),
            )
        placed = await _placement(b, report.report_id)
    assert placed.node_id == "h-new"  # the imported household
    assert placed.assignee_id == "p-b"  # the backup of the cadre on leave
    assert placed.measure_id == "home_quarantine_14d"  # the high-risk area, not the low report
