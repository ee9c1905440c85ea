"""Notify killed with SIGKILL mid-batch and restarted: each notification once per recipient."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from gridline import rpc
from gridline.bus import topics
from gridline.bus.envelope import Envelope
from gridline.bus.producer import EventProducer
from gridline.contracts.v1 import common_pb2, events_pb2, notify_pb2, notify_pb2_grpc
from gridline.embedded import EmbeddedBroker, EmbeddedValkey, free_port
from gridline.personal import Sealer
from gridline.settings import Settings
from gridline.staff.roles import Role
from services.notify.groups import seal_secret
from tests.helpers import eventually
from tests.notify import vendors as v
from tests.notify.vendors import Vendors
from tests.staff.tokens import bearer, metadata

BATCH = 15  # under the robot's budget: every one goes out as its own message


@pytest.fixture
def crash_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A broker of its own: no backlog from other tests on notifications.v1 or its group."""
    broker = EmbeddedBroker(log_path=tmp_path / "broker.log")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def environment(
    crash_broker: EmbeddedBroker, valkey: EmbeddedValkey, vendors: Vendors, tmp_path: Path
) -> dict[str, str]:
    broker = crash_broker
    sealer = Sealer(Settings().pii_key.get_secret_value())
    groups = tmp_path / "groups.yaml"
    key = seal_secret(sealer, v.WECOM_KEY)
    groups.write_text(f'groups:\n  g-crash: {{robot: {{kind: wecom, key: "{key}"}}}}\n')
    return {
        **os.environ,
        "GRIDLINE_KAFKA_BOOTSTRAP": broker.bootstrap,
        "GRIDLINE_KAFKA_IDEMPOTENCE": "false",
        "GRIDLINE_DATA_DIR": str(tmp_path),
        "GRIDLINE_REDIS_URL": valkey.url,
        "GRIDLINE_NOTIFY_HTTP_PORT": str(free_port()),
        "GRIDLINE_NOTIFY_GRPC_PORT": str(free_port()),
        "GRIDLINE_NOTIFY_GROUPS_FILE": str(groups),
        "GRIDLINE_NOTIFY_WECOM_BASE_URL": f"{vendors.url}/wecom",
        "GRIDLINE_NOTIFY_WEBHOOK_URL": f"{vendors.url}/hooks/{{group_id}}",
        "GRIDLINE_CONSUMER_SESSION_TIMEOUT_MS": "3000",
        "GRIDLINE_CONSUMER_REBALANCE_TIMEOUT_MS": "3000",
    }


@pytest.fixture
def notify(environment: dict[str, str]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Started processes; the test starts and kills them, this ends what is left."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def start(environment: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.notify"],
        env=environment,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def test_sigkill_mid_batch_then_restart_delivers_each_once(
    environment: dict[str, str],
    notify: list[subprocess.Popen[bytes]],
    vendors: Vendors,
    tmp_path: Path,
) -> None:
    run = uuid.uuid4().hex[:8]
    vendors.delay = 0.3  # a batch takes seconds, so the kill lands inside it
    settings = Settings(
        kafka_bootstrap=environment["GRIDLINE_KAFKA_BOOTSTRAP"], kafka_idempotence=False
    )
    await topics.ensure_topics(
        settings.kafka_bootstrap, 1, 1, (topics.NOTIFICATIONS, topics.DELIVERIES)
    )
    log = tmp_path / "notify.log"
    notify.append(start(environment, log))
    async with EventProducer(settings) as producer:
        for n in range(BATCH):
            notice = events_pb2.Notification(
                notification_id=f"{run}-{n}",
                kind=events_pb2.NOTIFICATION_KIND_TASK_ASSIGNED,
                recipient=common_pb2.Responsible(
                    level=common_pb2.CHAIN_LEVEL_CADRE, group_id="g-crash", group_name="群"
                ),
                title=f"任务 {run}-{n}",
            )
            await producer.publish(
                topics.NOTIFICATIONS, Envelope(event_id=f"{run}-{n}", key="g-crash", message=notice)
            )

    def sent_to_robot() -> Counter[str]:
        found: Counter[str] = Counter()
        for r in vendors.of("wecom", ok=True):
            found.update(re.findall(rf"{run}-\d+(?!\d)", json.loads(r.raw)["markdown"]["content"]))
        return found

    async def midway() -> bool:
        # Killed while the robot is answering: the worst moment, a call without its outcome.
        return len(vendors.of("wecom")) >= 4 and vendors.in_flight.get("wecom", 0) > 0

    await eventually(midway, within=60)
    notify[0].send_signal(signal.SIGKILL)
    notify[0].wait(timeout=10)
    notify.append(start(environment, log))
    port = environment["GRIDLINE_NOTIFY_HTTP_PORT"]

    outcomes: dict[str, dict[str, str]] = {}

    # Delivery status is for staff: the operator watching the channels.
    operator = bearer(tmp_path, Role.OPERATOR)

    async def settled() -> bool:
        async with httpx.AsyncClient(headers=operator) as client:
            for n in range(BATCH):
                try:
                    answer = await client.get(f"http://127.0.0.1:{port}/v1/notifications/{run}-{n}")
                except httpx.HTTPError:
                    return False
                if answer.status_code != 200:
                    return False
                found = {d["channel"]: d["outcome"] for d in answer.json()}
                if set(found) != {"inbox", "webhook", "wecom"} or "sending" in found.values():
                    return False
                outcomes[f"{run}-{n}"] = found
        return True

    await eventually(settled, within=120)
    inbox = [
        json.loads(line)["notification_id"]
        for line in (tmp_path / "inbox.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    inbox_counts = Counter(i for i in inbox if i.startswith(run))
    assert inbox_counts == {f"{run}-{n}": 1 for n in range(BATCH)}
    # The robot cannot recognise a resend: never twice; at most the one message whose call
    # the kill interrupted is `unknown` (and then it may or may not have arrived).
    robot = sent_to_robot()
    assert max(robot.values()) == 1, robot
    unknown = [nid for nid, found in outcomes.items() if found["wecom"] == "unknown"]
    assert len(unknown) <= 1, outcomes
    delivered = {nid for nid, found in outcomes.items() if found["wecom"] == "delivered"}
    assert delivered <= set(robot) and len(delivered) + len(unknown) == BATCH
    assert all(found["webhook"] == "delivered" for found in outcomes.values())
    async with httpx.AsyncClient(headers=operator) as client:
        status_page = (await client.get(f"http://127.0.0.1:{port}/v1/notifications/{run}-0")).json()
    assert all(
        [a["number"] for a in d["attempt_log"]] == list(range(1, len(d["attempt_log"]) + 1))
        and (d["attempt_log"][-1]["ok"] if d["outcome"] == "delivered" else True)
        for d in status_page
    )
    # The gRPC call tells the same, with every attempt.
    async with rpc.channel(f"127.0.0.1:{environment['GRIDLINE_NOTIFY_GRPC_PORT']}") as target:
        stub = notify_pb2_grpc.NotifyStub(target)
        signed = metadata(tmp_path, Role.OPERATOR)
        status = await stub.GetDeliveries(
            notify_pb2.GetDeliveriesRequest(notification_id=f"{run}-0"), metadata=signed
        )
        assert {d.channel: d.outcome for d in status.deliveries} == outcomes[f"{run}-0"]
        assert all(d.attempt_log or d.outcome == "unknown" for d in status.deliveries)
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetDeliveries(
                notify_pb2.GetDeliveriesRequest(notification_id="nope"), metadata=signed
            )
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    webhook_keys = Counter(r.headers["idempotency-key"] for r in vendors.of("hooks"))
    assert set(webhook_keys) >= {f"{run}-{n}" for n in range(BATCH)}
