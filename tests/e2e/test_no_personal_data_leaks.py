"""One traced run of the whole platform, then a scan of everything it wrote for personal numbers
and secrets (issue 14's acceptance).

Reports carry ID numbers and mobiles in their own fields and, written every way people write them
(grouped, dashed, full-width, +86), in their free text, with a neighbour's numbers too. Notify
reaches WeCom, DingTalk and Feishu robots, an SMS gateway and the generic webhook (loopback
stand-ins); one robot's key is revoked, so a delivery is dead-lettered. A task page is opened and
acted on through its link, a resident's SMS reply with a wrong code comes in from their phone, a
record that is no event is put on reports.v1, and `gridline import` rejects a row.

Then everything written is read: every log file (at DEBUG), every span export whole (events and
statuses too), every record and header of the dead-letter topics, every key in Redis, every
column of every service's database but the sealed ones (and every file of the data directory as
raw bytes), the inbox, the import's reject file and console, and everything the stand-ins
received. No clear number in any written form; no robot key outside the request to its own
vendor; no link signature outside the deliveries that carry the link and the events that carry
it to notify; no reporter's address where SQL parameters must not go (logs, spans, headers).
"""

from __future__ import annotations

import asyncio
import csv
import json
import random
import re
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from gridline.bus import topics
from gridline.bus.envelope import EVENT_ID_HEADER, SCHEMA_HEADER
from gridline.contracts.v1 import events_pb2
from gridline.personal import Sealer, mask_phone
from gridline.settings import Settings
from gridline_cli.platform import Platform
from services.assignment.directory import Directory
from services.assignment.grid import Node, NodeKind
from services.notify.groups import seal_secret
from tests.conftest import WebhookServer
from tests.e2e.conftest import start_platform
from tests.e2e.leaks import (
    Scan,
    WholeRequestSink,
    flatten,
    id_forms,
    link_signatures,
    mobile,
    phone_forms,
    resident_id,
    services_of,
)
from tests.helpers import eventually
from tests.notify import vendors as v
from tests.notify.vendors import Vendors, running_vendors

# A revoked WeCom key shaped like a real one (a UUID): the vendor refuses it, notify dead-letters
# the delivery, and neither the error it keeps nor the channel-broken notice may quote the key.
REVOKED_WECOM_KEY = "3f1c9a7e-5b2d-4e8f-9a61-0c7d2e4b8f15"
ROBOT_KEYS = {
    "key:wecom": v.WECOM_KEY,
    "key:wecom-revoked": REVOKED_WECOM_KEY,
    "key:dingtalk-token": v.DINGTALK_TOKEN,
    "key:dingtalk-secret": v.DINGTALK_SECRET,
    "key:feishu-token": v.FEISHU_TOKEN,
    "key:feishu-secret": v.FEISHU_SECRET,
    "key:sms-gateway": v.GATEWAY_TOKEN,
}
# A key belongs in the request to its own vendor (URL or, for the gateway, the Authorization
# header) and nowhere else. Sign secrets belong nowhere: vendors get signatures made with them.
OWN_KEYS = {
    "wecom": {"key:wecom", "key:wecom-revoked"},
    "dingtalk": {"key:dingtalk-token"},
    "feishu": {"key:feishu-token"},
    "gateway": {"key:sms-gateway"},
}
SOURCES = {
    "logs",
    "spans",
    "dead letters",
    "cache",
    "database",
    "files",
    "inbox",
    "import",
    "vendors",
}
SERVICES = {"intake", "assignment", "escalation", "notify"}
# The revoked key's delivery and the record that is no event.
DEAD_LETTERED = {topics.dead_letter(topics.NOTIFICATIONS), topics.dead_letter(topics.REPORTS)}
# The numbers a producer put in the record that is no event: its dead letter copies them.
POISON = {"id:poison", "phone:poison"}
# Between two cells of a column: more separators than one number may have between its digits,
# so that no number is read across two cells.
_CELL_SEPARATOR = "\n" * 4
_TO_FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


@dataclass(frozen=True)
class Numbers:
    """A person's clear ID number and mobile."""

    id_number: str
    phone: str


@dataclass(frozen=True)
class Reporter:
    """Someone reported at a household, with a neighbour their free text mentions."""

    own: Numbers
    neighbour: Numbers
    # The household's address as the directory writes it, and the free text that contains it.
    home: str
    name: str
    address: str
    # Group ids up the household's chain: cadre, liaison, community, township, county.
    chain: list[str]


@dataclass
class Run:
    """What the scenario left behind, for the scan."""

    seed: int
    platform: Platform
    numbers: dict[str, str]
    addresses: dict[str, str]
    vendors: Vendors
    webhook: WebhookServer
    sink: WholeRequestSink
    dead_letters: list[dict[str, str]]
    cache: list[tuple[str, str]]
    reject_file: Path
    import_output: str


def _reporters(directory: Directory, rng: random.Random) -> list[Reporter]:
    """Five reporters at households with different cadres and liaisons; between them their
    names and addresses hold every written form of their own and their neighbours' numbers."""
    households = [n for n in directory.nodes.values() if n.kind is NodeKind.HOUSEHOLD]
    picked: list[Node] = []
    taken: set[str] = set()
    for node in rng.sample(households, len(households)):
        groups = {link.group.id for link in directory.chain(node.id)[:2]}
        if not groups & taken:
            picked.append(node)
            taken |= groups
        if len(picked) == 5:
            break
    reporters = []
    for i, node in enumerate(picked):
        own = Numbers(resident_id(rng), mobile(rng))
        other = Numbers(resident_id(rng), mobile(rng))
        phones, ids = phone_forms(own.phone), id_forms(own.id_number)
        their_phones, their_ids = phone_forms(other.phone), id_forms(other.id_number)
        reporters.append(
            Reporter(
                own=own,
                neighbour=other,
                home=str(node.address),
                name=f"张伟{_pick(phones, i)}",
                address=f"{node.address} 电话{_pick(phones, i + 1)}，{_pick(phones, i + 4)}；"
                f"身份证{_pick(ids, i)}，{_pick(ids, i + 2)}；"
                f"邻居{_pick(their_phones, i + 3)} {_pick(their_ids, i + 1)}",
                chain=[link.group.id for link in directory.chain(node.id)],
            )
        )
    return reporters


def _pick(forms: list[str], k: int) -> str:
    """The k-th written form, round the list: each reporter starts at another."""
    return forms[k % len(forms)]


def _groups_file(path: Path, vendors_url: str, reporters: list[Reporter], office: str) -> None:
    """Robots for the first three cadres' groups (WeCom, Feishu, WeCom with the revoked key),
    a DingTalk robot for the first liaison's, SMS by the gateway to the first cadre and to the
    office that hears of the broken robot; secrets sealed, as operators keep them."""
    sealer = Sealer(Settings().pii_key.get_secret_value())

    def sealed(value: str) -> str:
        return seal_secret(sealer, value)

    first, second, third = (r.chain for r in reporters[:3])
    ding = f'key: "{sealed(v.DINGTALK_TOKEN)}", secret: "{sealed(v.DINGTALK_SECRET)}"'
    feishu = f'key: "{sealed(v.FEISHU_TOKEN)}", secret: "{sealed(v.FEISHU_SECRET)}"'
    path.write_text(
        f"""
groups:
  {first[0]}: {{robot: {{kind: wecom, key: "{sealed(v.WECOM_KEY)}"}}, sms: true}}
  {first[1]}: {{robot: {{kind: dingtalk, {ding}}}}}
  {second[0]}: {{robot: {{kind: feishu, {feishu}}}}}
  {third[0]}: {{robot: {{kind: wecom, key: "{sealed(REVOKED_WECOM_KEY)}"}}}}
  {third[1]}: {{sms: true, sms_phone: "{sealed(office)}"}}
sms: {{provider: gateway, url: "{vendors_url}/gateway/send", token: "{sealed(v.GATEWAY_TOKEN)}"}}
offices: {{2: {third[1]}}}
""",
        encoding="utf-8",
    )


def _report(reporter: Reporter, index: int) -> dict[str, Any]:
    """A self report, its number fields written as people type them too."""
    own = reporter.own
    return {
        "source": "self_report",
        "source_record_id": f"leak-scan-{index}",
        "name": reporter.name,
        "id_number": own.id_number.translate(_TO_FULL_WIDTH),
        "phone": f"+86 {own.phone[:3]}-{own.phone[3:7]}-{own.phone[7:]}",
        "origin_region_code": "310115",
        "origin_risk": "medium",
        "arrived_at": (datetime.now(UTC) - timedelta(hours=2)).isoformat(),
        "address": reporter.address,
    }


async def _post_reports(intake: str, reporters: list[Reporter], refused: Numbers) -> None:
    """Three reports through the API, one through the self-report page, and one the API
    refuses (a wrong check digit) with numbers in its free text."""
    async with httpx.AsyncClient(base_url=intake, timeout=30) as client:
        for index, reporter in enumerate(reporters[:3]):
            response = await client.post("/v1/reports", json=_report(reporter, index))
            assert response.status_code == 202, response.text
        form = {k: v for k, v in _report(reporters[3], 3).items() if k != "source"}
        page = await client.post("/report", json=form)
        assert page.status_code == 202, page.text
        wrong = {
            **_report(reporters[0], 9),
            "id_number": refused.id_number,
            "phone": phone_forms(refused.phone)[0],
            "address": f"皋兰县 {phone_forms(refused.phone)[1]} {id_forms(refused.id_number)[0]}",
        }
        response = await client.post("/v1/reports", json=wrong)
        assert response.status_code == 422, response.text


def _wrong_check_digit(id_number: str) -> str:
    return id_number[:17] + ("0" if id_number[17] != "0" else "1")


def _import_file(path: Path, good: Reporter, rejected: Numbers) -> None:
    """A feed export of two rows: one good, one whose ID number fails its check digit."""
    base = {
        "source": "health_code_feed",
        "origin_region_code": "500103",
        "origin_risk": "low",
        "arrived_at": (datetime.now(UTC) - timedelta(hours=3)).isoformat(),
    }
    rows = [
        {**base, "source_record_id": "leak-import-1", "name": good.name,
         "id_number": good.own.id_number, "phone": good.own.phone, "address": good.address},
        # Integrators do use a phone as a record id.
        {**base, "source_record_id": f"leak-{rejected.phone}", "name": f"李娜{rejected.phone}",
         "id_number": rejected.id_number, "phone": rejected.phone,
         "address": f"皋兰县石洞镇 电话{phone_forms(rejected.phone)[0]} {rejected.id_number}"},
    ]  # fmt: skip
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


async def _gridline_import(data_dir: Path, path: Path) -> str:
    """`gridline import FILE` as an operator runs it beside `gridline up`; its console output."""
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("gridline")),
        "import", str(path), "--data-dir", str(data_dir),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    return output.decode("utf-8", "replace")


async def _poison(bootstrap: str, poison: Numbers) -> None:
    """A report published as JSON straight to reports.v1, as a misconfigured producer might:
    assignment dead-letters it at once. Its bytes are copied to the dead letter; nothing else
    (the error header, the log line) may repeat the numbers in it."""
    value = json.dumps(
        {"phone": phone_forms(poison.phone)[0], "id_number": id_forms(poison.id_number)[0]},
        ensure_ascii=False,
    ).encode()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(
            topics.REPORTS,
            value,
            key=b"poison",
            headers=[
                (EVENT_ID_HEADER, b"leak-scan-poison"),
                (SCHEMA_HEADER, events_pb2.ReportAccepted.DESCRIPTOR.full_name.encode()),
            ],
        )
    finally:
        await producer.stop()


async def _sms_reply(escalation: str, reporter: Reporter) -> None:
    """A resident answers a check-in SMS from their phone with a wrong code and their ID."""
    async with httpx.AsyncClient(base_url=escalation, timeout=10) as client:
        response = await client.post(
            "/v1/check-ins:sms",
            json={
                "message_id": "leak-scan-sms-1",
                "text": f"ZZZZZZZZ 36.8 身份证{id_forms(reporter.own.id_number)[3]}",
                "sender": f"+86{reporter.own.phone}",
            },
        )
    assert response.status_code == 422, response.text


def _links(text: str) -> list[str]:
    """The task links in a delivered message."""
    return re.findall(r"https?://[^\s\"'<>)\\]+/t/[^\s\"'<>)\\]+", text)


async def _act_through_a_link(vendors: Vendors) -> None:
    """Open the Feishu cadre's task page through the link it got, and acknowledge the task:
    the signature then rides in requests every layer of escalation may record."""
    link = next(
        url for received in vendors.of("feishu", ok=True) for url in _links(received.raw.decode())
    )
    origin, _, rest = link.partition("/t/")
    path, _, query = rest.partition("?")
    async with httpx.AsyncClient(base_url=origin, timeout=10, follow_redirects=True) as client:
        page = await client.get(f"/t/{path}?{query}")
        assert page.status_code == 200, page.text
        acted = await client.post(f"/t/{path}/acknowledge?{query}")
        assert acted.status_code == 200, acted.text


def _undelivered(vendors: Vendors, webhook: WebhookServer, masked: set[str]) -> list[str]:
    """What the scenario still waits for: a notice of each report, and each robot and SMS."""
    told = json.dumps([r.body for r in webhook.received], ensure_ascii=False)
    wanted = [("wecom", True), ("wecom", False), ("feishu", True), ("gateway", True),
              # The first cadre does not acknowledge: the task goes up to the liaison's DingTalk.
              ("dingtalk", True)]  # fmt: skip
    return [
        *(f"a notice of {m}" for m in sorted(masked) if m not in told),
        *(f"{name} {'accepting' if ok else 'refusing'}" for name, ok in wanted
          if not vendors.of(name, ok=ok)),
    ]  # fmt: skip


async def _dead_letters(bootstrap: str) -> list[dict[str, str]]:
    """Every record of every dead-letter topic: topic, key, value and each header, as text."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topics.dead_letter(topic), p)
            for topic in topics.ALL
            for p in consumer.partitions_for_topic(topics.dead_letter(topic)) or set()
        ]
        ends = {tp: end for tp, end in (await consumer.end_offsets(partitions)).items() if end}
        if not ends:
            return []
        consumer.assign(list(ends))
        await consumer.seek_to_beginning(*ends)
        found: list[dict[str, str]] = []
        async with asyncio.timeout(15):
            while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    found += [
                        {
                            "topic": r.topic,
                            "key": (r.key or b"").decode("utf-8", "replace"),
                            "value": (r.value or b"").decode("utf-8", "replace"),
                            **{f"header {k}": h.decode("utf-8", "replace") for k, h in r.headers},
                        }
                        for r in records
                    ]
        return found
    finally:
        await consumer.stop()


async def _cache(redis_url: str) -> list[tuple[str, str]]:
    """Every key in Redis with its value as text, whatever its type."""
    client = aioredis.from_url(redis_url, decode_responses=True)
    readers: dict[str, Callable[[str], Awaitable[Any]]] = {
        "string": client.get,
        "hash": client.hgetall,
        "list": lambda key: client.lrange(key, 0, -1),
        "set": client.smembers,
        "zset": lambda key: client.zrange(key, 0, -1, withscores=True),
        "stream": lambda key: client.xrange(key),
    }
    try:
        found = []
        async for key in client.scan_iter(count=500):
            kind = await client.type(key)
            value = await readers[kind](key) if kind in readers else kind
            found.append((key, flatten(sorted(value) if isinstance(value, set) else value)))
        return found
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
def vendors() -> Iterator[Vendors]:
    """Every robot and SMS vendor on one loopback server, for the whole module."""
    with running_vendors() as state:
        yield state


@pytest.fixture(scope="module")
async def run(
    tmp_path_factory: pytest.TempPathFactory,
    webhook: WebhookServer,
    vendors: Vendors,
    demo_directory: Directory,
) -> AsyncIterator[Run]:
    """The scenario, once; the platform is stopped (logs and spans flushed) before the scan."""
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    reporters = _reporters(demo_directory, rng)
    refused = Numbers(_wrong_check_digit(resident_id(rng)), mobile(rng))
    rejected = Numbers(_wrong_check_digit(resident_id(rng)), mobile(rng))
    poison = Numbers(resident_id(rng), mobile(rng))
    numbers = {
        **{f"id:reporter{i}": r.own.id_number for i, r in enumerate(reporters)},
        **{f"phone:reporter{i}": r.own.phone for i, r in enumerate(reporters)},
        **{f"id:neighbour{i}": r.neighbour.id_number for i, r in enumerate(reporters)},
        **{f"phone:neighbour{i}": r.neighbour.phone for i, r in enumerate(reporters)},
        "id:refused": refused.id_number, "phone:refused": refused.phone,
        "id:rejected": rejected.id_number, "phone:rejected": rejected.phone,
        "id:poison": poison.id_number, "phone:poison": poison.phone,
    }  # fmt: skip
    work = tmp_path_factory.mktemp("leak-scan")
    _groups_file(work / "groups.yaml", vendors.url, reporters, office=mobile(rng))
    feed = work / "feed.csv"
    _import_file(feed, reporters[4], rejected)
    with WholeRequestSink(work / "otlp.jsonl") as sink:
        # Starting and stopping run event loops of their own: in a thread, beside the test's.
        platform = await asyncio.to_thread(
            start_platform,
            work / "data",
            webhook,
            extra_env={
                "GRIDLINE_OTLP_ENDPOINT": sink.endpoint,
                "OTEL_BSP_SCHEDULE_DELAY": "100",
                # What an operator chasing a fault turns on: the most the services ever write.
                "GRIDLINE_LOG_LEVEL": "DEBUG",
                "GRIDLINE_NOTIFY_GROUPS_FILE": str(work / "groups.yaml"),
                "GRIDLINE_NOTIFY_WECOM_BASE_URL": f"{vendors.url}/wecom",
                "GRIDLINE_NOTIFY_DINGTALK_BASE_URL": f"{vendors.url}/dingtalk",
                "GRIDLINE_NOTIFY_FEISHU_BASE_URL": f"{vendors.url}/feishu",
            },
        )
        try:
            assert platform.endpoints is not None
            bootstrap = platform.env["GRIDLINE_KAFKA_BOOTSTRAP"]
            await _post_reports(platform.endpoints.intake, reporters, refused)
            import_output = await _gridline_import(platform.data_dir, feed)
            await _poison(bootstrap, poison)
            await _sms_reply(platform.endpoints.escalation, reporters[0])
            masked = {mask_phone(r.own.phone) for r in reporters}

            async def delivered() -> bool:
                return not _undelivered(vendors, webhook, masked)

            try:
                await eventually(delivered, within=45)
            except AssertionError:
                missing = _undelivered(vendors, webhook, masked)
                raise AssertionError(f"never delivered: {missing}") from None
            await _act_through_a_link(vendors)

            async def both_dead_lettered() -> bool:
                return {d["topic"] for d in await _dead_letters(bootstrap)} >= DEAD_LETTERED

            await eventually(both_dead_lettered, within=20)
            dead_letters = await _dead_letters(bootstrap)
            cache = await _cache(platform.env["GRIDLINE_REDIS_URL"])
        finally:
            await asyncio.to_thread(platform.stop)
        yield Run(
            seed=seed,
            platform=platform,
            numbers=numbers,
            addresses={f"address:reporter{i}": r.home for i, r in enumerate(reporters)},
            vendors=vendors,
            webhook=webhook,
            sink=sink,
            dead_letters=dead_letters,
            cache=cache,
            reject_file=feed.with_name(feed.name + ".rejected.jsonl"),
            import_output=import_output,
        )


@pytest.fixture(scope="module")
def scan(run: Run) -> Scan:
    """Everything the run wrote, read for every number, every robot key, the signature of every
    link that was delivered and, where SQL parameters must not go, the reporters' addresses."""
    scan = Scan(numbers=dict(run.numbers), secrets={**ROBOT_KEYS, **run.addresses})
    inbox = run.platform.data_dir / "inbox.jsonl"
    inbox_lines = inbox.read_text(encoding="utf-8").splitlines() if inbox.exists() else []
    deliveries = [
        *(r.raw.decode("utf-8", "replace") for r in run.vendors.received),
        *(flatten(r.body) for r in run.webhook.received),
        *inbox_lines,
    ]
    signatures = sorted({s for text in deliveries for s in link_signatures(text)})
    scan.secrets |= {f"sig:{n}": signature for n, signature in enumerate(signatures)}
    homes = set(run.addresses)
    # What a notice carries to the people it tells: its link and the household's address.
    carried = homes | {label for label in scan.secrets if label.startswith("sig:")}

    assert run.platform.log_dir is not None
    for log in sorted(run.platform.log_dir.glob("*.log")):
        scan.text("logs", log.name, log.read_text(encoding="utf-8", errors="replace"))
    for export in run.sink.requests():
        scan.text("spans", ",".join(sorted(services_of(export))), flatten(export))
    for letter in run.dead_letters:
        # A dead letter keeps the record's bytes to be replayed: a notice with what it carries,
        # the poison record with the numbers its producer put in it. Headers are the platform's.
        copied = {
            topics.dead_letter(topics.NOTIFICATIONS): carried,
            topics.dead_letter(topics.REPORTS): POISON,
        }.get(letter["topic"], set())
        for part, text in letter.items():
            allowed = copied if part == "value" else set()
            scan.text("dead letters", f"{letter['topic']} {part}", text, allowed=allowed)
    for key, value in run.cache:
        scan.text("cache", key, f"{key} {value}")
    for database in sorted(run.platform.data_dir.glob("*.db")):
        _scan_database(scan, database, homes=homes, carried=carried)
    for path in sorted(p for p in run.platform.data_dir.rglob("*") if p.is_file()):
        # Raw bytes, free pages of the databases included: a deleted row is not gone.
        allowed = {".db": carried | POISON, ".jsonl": carried}.get(path.suffix, set())
        text = path.read_bytes().decode("utf-8", "replace")
        scan.text("files", str(path.relative_to(run.platform.data_dir)), text, allowed=allowed)
    for number, line in enumerate(inbox_lines, start=1):
        scan.text("inbox", f"line {number}", line, allowed=carried)
    scan.text("import", run.reject_file.name, run.reject_file.read_text(encoding="utf-8"))
    scan.text("import", "console", run.import_output)
    for received in run.vendors.received:
        own_key = OWN_KEYS.get(received.vendor, set())
        where = f"{received.vendor} {received.path}"
        url = f"{received.path} {flatten(received.query)}"
        scan.text("vendors", f"{where} URL", url, allowed=own_key)
        scan.text("vendors", f"{where} headers", flatten(received.headers), allowed=own_key)
        body = received.raw.decode("utf-8", "replace")
        scan.text("vendors", f"{where} body", body, allowed=carried)
    for hook in run.webhook.received:
        where = f"webhook {hook.path}"
        scan.text("vendors", f"{where} URL", hook.path)
        scan.text("vendors", f"{where} headers", flatten(hook.headers))
        scan.text("vendors", f"{where} body", flatten(hook.body), allowed=carried)
    return scan


def _scan_database(scan: Scan, path: Path, *, homes: set[str], carried: set[str]) -> None:
    """Every column of every table, its values read as one text. Text may hold an address
    (tasks, the directory), not a link. Sealed columns are ciphertext and skipped; other blobs
    are event payloads on their way to the bus (outboxes): a notice with what it carries, a dead
    letter its record's bytes."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        for table in tables:
            columns = [row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')]
            values: dict[str, list[str]] = {column: [] for column in columns}
            blobs: set[str] = set()
            for row in connection.execute(f'SELECT * FROM "{table}"'):
                for column, value in zip(columns, row, strict=True):
                    if isinstance(value, bytes):
                        blobs.add(column)
                        values[column].append(value.decode("utf-8", "replace"))
                    elif isinstance(value, str):
                        values[column].append(value)
            for column, texts in values.items():
                if not texts or column.endswith("_sealed"):
                    continue
                allowed = carried | POISON if column in blobs else homes
                text = _CELL_SEPARATOR.join(texts)
                scan.text("database", f"{path.stem}.{table}.{column}", text, allowed=allowed)
    finally:
        connection.close()


def test_the_finder_reads_every_written_form() -> None:
    # The scan can only be trusted if it sees a number however it is written and escaped.
    rng = random.Random(14)
    numbers = Numbers(resident_id(rng), mobile(rng))
    scan = Scan(numbers={"id": numbers.id_number, "phone": numbers.phone})
    for form in id_forms(numbers.id_number) + phone_forms(numbers.phone):
        expected = "id" if form in id_forms(numbers.id_number) else "phone"
        for written in (form, json.dumps(f"地址{form}号"), str(httpx.QueryParams({"q": form}))):
            assert expected in {label for label, _ in scan.found_in(written)}, written
    # Masks show four characters of an ID number and seven of a mobile: not a find.
    masked = f"**************{numbers.id_number[-4:]} {mask_phone(numbers.phone)}"
    assert scan.found_in(masked) == []


def test_the_scan_read_every_source(scan: Scan, run: Run) -> None:
    assert {source for source in SOURCES if scan.covered[source]} == SOURCES
    assert run.platform.log_dir is not None
    logs = {p.stem for p in run.platform.log_dir.glob("*.log") if p.stat().st_size}
    assert logs >= SERVICES
    assert {s for r in run.sink.requests() for s in services_of(r)} >= SERVICES
    letters = {d["topic"]: d for d in run.dead_letters}
    assert "93000" in letters[topics.dead_letter(topics.NOTIFICATIONS)]["header dlq-error"]
    assert "header dlq-error" in letters[topics.dead_letter(topics.REPORTS)]
    assert {p.stem for p in run.platform.data_dir.glob("*.db")} == SERVICES
    # The columns that hold people's text and errors were read; sealed ones were not.
    read = scan.places["database"]
    assert {"escalation.task.summary", "notify.delivery.error", "assignment.outbox.value"} <= read
    assert "assignment.sealed_person.person_key" in read
    assert "assignment.sealed_person.phone_sealed" not in read
    assert any(label.startswith("sig:") for label in scan.secrets), "no link was delivered"
    # The import's second row was rejected (and so written to the reject file), the first went in.
    [rejected] = run.reject_file.read_text(encoding="utf-8").splitlines()
    assert json.loads(rejected)["line"] == 3
    # Every robot and the SMS gateway were called, the revoked key among them.
    assert {r.vendor for r in run.vendors.received} >= {"wecom", "dingtalk", "feishu", "gateway"}


def test_nothing_written_holds_a_clear_number_a_robot_key_or_a_link_signature(
    scan: Scan, run: Run
) -> None:
    found = "\n".join(str(f) for f in scan.findings)
    assert not scan.findings, f"seed {run.seed}: {len(scan.findings)} leaks\n{found}"
