"""`gridline dlq`: list dead-lettered records and replay them to their topic, each applied once.

A consumer that gives up on a record publishes it to `<topic>.dlq` with its key, value and
headers plus `dlq-error`, `dlq-attempts`, `dlq-source` (topic/partition/offset it came from) and
`dlq-group`, and then marks its event id as processed in the group's ledger (so that a
redelivered copy is not dead-lettered twice). A replay therefore has two steps: release that mark,
then publish the record again with its original key, value and headers. The consumer then applies
it once; a copy arriving after that is a duplicate to the ledger.

The release, and why a crash between it and the publish neither loses a record nor applies it
twice, is `gridline.bus.ledger.release_for_replay`. Each consuming service exports its ledger
(`services/<name>/ledger.py`: its consumer groups and its database); a dead letter's `dlq-group`
is looked up among those groups, so the command never guesses a service from a name.

Listing and replaying read with a throwaway consumer: no group, partitions assigned and read
from the beginning up to the end offsets taken at the start, nothing committed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy.engine import make_url

from gridline.bus.envelope import EVENT_ID_HEADER, SCHEMA_HEADER
from gridline.bus.ledger import Release, ServiceLedger
from gridline.bus.producer import BrokerUnavailable, EventProducer
from gridline.bus.security import kafka_security
from gridline.bus.topics import dead_letter
from gridline.db import Database
from gridline.settings import Settings
from gridline.timestamps import in_utc
from gridline_cli.run_file import DEFAULT_DATA_DIR, DataDir, command_settings

app = typer.Typer(help="Dead-lettered records: list them, replay them.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True)

DLQ_SUFFIX = ".dlq"
DLQ_HEADER_PREFIX = "dlq-"
# How long reaching the broker and reading a dead-letter topic to its end may take.
CONNECT_SECONDS = 10.0
READ_SECONDS = 60.0


class DlqError(Exception):
    """A request `gridline dlq` cannot carry out; `exit_code` is what the command exits with."""

    exit_code = 1


class BrokerUnreachable(DlqError):
    """The broker did not answer in time."""

    exit_code = 2


@dataclass(frozen=True)
class DeadLetter:
    """One record on a dead-letter topic."""

    dlq_topic: str
    partition: int
    offset: int
    dead_lettered_at: datetime
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str:
        """A header's text ("" when absent)."""
        for key, value in self.headers:
            if key == name:
                return value.decode(errors="replace")
        return ""

    @property
    def event_id(self) -> str:
        """The event id of the original record ("" for a record without one)."""
        return self.header(EVENT_ID_HEADER)

    @property
    def group(self) -> str:
        """The consumer group that gave up on it."""
        return self.header("dlq-group")

    @property
    def source(self) -> str:
        """Where the original record was (topic/partition/offset), else this record's place."""
        return self.header("dlq-source") or f"{self.dlq_topic}/{self.partition}/{self.offset}"

    @property
    def original_topic(self) -> str:
        """The topic a replay publishes to."""
        recorded = self.header("dlq-source").rsplit("/", 2)[0]
        return recorded or self.dlq_topic.removesuffix(DLQ_SUFFIX)

    def original_headers(self) -> list[tuple[str, bytes]]:
        """The headers the record had before it was dead-lettered."""
        return [(k, v) for k, v in self.headers if not k.startswith(DLQ_HEADER_PREFIX)]

    def as_dict(self) -> dict[str, object]:
        """What `dlq list --json` prints for it."""
        return {
            "dlq_topic": self.dlq_topic,
            "partition": self.partition,
            "offset": self.offset,
            "source": self.header("dlq-source"),
            "event_id": self.event_id,
            "schema": self.header(SCHEMA_HEADER),
            "group": self.group,
            "attempts": self.header("dlq-attempts"),
            "error": self.header("dlq-error"),
            "dead_lettered_at": self.dead_lettered_at.isoformat(),
        }


def dlq_topic_of(topic: str) -> str:
    """The dead-letter topic named by `topic` (a topic or its dead-letter topic)."""
    return topic if topic.endswith(DLQ_SUFFIX) else dead_letter(topic)


async def read_dead_letters(
    settings: Settings, topic: str | None = None
) -> dict[str, list[DeadLetter]]:
    """Every record on each dead-letter topic (or on `topic`'s), by topic, without committing."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=int(CONNECT_SECONDS * 1000),
        # TLS and SASL as the services connect (GRIDLINE_KAFKA_SECURITY_PROTOCOL, ...).
        **kafka_security(settings),
    )
    try:
        try:
            async with asyncio.timeout(CONNECT_SECONDS):
                await consumer.start()
                existing = await consumer.topics()
        except (KafkaError, TimeoutError, OSError) as exc:
            raise BrokerUnreachable(
                f"cannot reach the broker at {settings.kafka_bootstrap}: {str(exc) or 'timed out'}"
            ) from exc
        dlq_topics = sorted(t for t in existing if t.endswith(DLQ_SUFFIX))
        if topic is not None:
            wanted = dlq_topic_of(topic)
            if wanted not in existing:
                known = ", ".join(t.removesuffix(DLQ_SUFFIX) for t in dlq_topics) or "none"
                raise DlqError(f"no dead-letter topic {wanted}; topics with one: {known}")
            dlq_topics = [wanted]
        try:
            async with asyncio.timeout(READ_SECONDS):
                return await _read_to_end(consumer, dlq_topics)
        except (KafkaError, TimeoutError) as exc:
            raise BrokerUnreachable(
                f"reading {', '.join(dlq_topics)} did not finish: {str(exc) or 'timed out'}"
            ) from exc
    finally:
        await consumer.stop()


async def _read_to_end(
    consumer: AIOKafkaConsumer, topics: list[str]
) -> dict[str, list[DeadLetter]]:
    found: dict[str, list[DeadLetter]] = {topic: [] for topic in topics}
    partitions = [
        TopicPartition(topic, p)
        for topic in topics
        for p in sorted(consumer.partitions_for_topic(topic) or ())
    ]
    if not partitions:
        return found
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    ends = await consumer.end_offsets(partitions)
    pending = {tp for tp in partitions if ends[tp] > await consumer.position(tp)}
    while pending:
        batch = await consumer.getmany(*pending, timeout_ms=200)
        for tp, records in batch.items():
            found[tp.topic] += [
                DeadLetter(
                    dlq_topic=r.topic,
                    partition=r.partition,
                    offset=r.offset,
                    dead_lettered_at=datetime.fromtimestamp(r.timestamp / 1000, UTC),
                    key=r.key,
                    value=r.value,
                    headers=tuple(r.headers),
                )
                for r in records
                if r.offset < ends[tp]
            ]
        pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
    for letters in found.values():
        letters.sort(key=lambda d: (d.dead_lettered_at, d.partition, d.offset))
    return found


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """A point in time from `2026-11-23`, `2026-11-23T08:00` (UTC unless given) or `90m/6h/2d`."""
    relative = re.fullmatch(r"(\d+)([mhd])", text.strip())
    if relative:
        amount, unit = int(relative[1]), relative[2]
        span = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}[unit]
        return (now or datetime.now(UTC)) - amount * span
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise DlqError(
            f"--since {text!r}: give an ISO date/time (2026-11-23T08:00) or an age (90m, 6h, 2d)"
        ) from None
    return in_utc(moment)


# What a replay did with one dead letter.
REPLAYED = "replayed"
PUBLISHED_AGAIN = "published again (replayed before, not applied yet)"
ALREADY_APPLIED = "skipped: applied after an earlier replay"
DUPLICATE = "skipped: same delivery as a dead letter above"
NO_EVENT_ID = "skipped: no event-id header, the consumer cannot dedup it"
NO_GROUP = "skipped: no dlq-group header, no ledger to release"


@dataclass(frozen=True)
class ReplayOutcome:
    """A dead letter and what the replay did with it."""

    letter: DeadLetter
    action: str

    @property
    def published(self) -> bool:
        """Whether the record went (or, in a dry run, would go) to its topic."""
        return self.action in (REPLAYED, PUBLISHED_AGAIN)


# What a replay does after each outcome of the ledger release.
ACTIONS = {
    Release.RELEASED: REPLAYED,
    Release.PENDING: PUBLISHED_AGAIN,
    Release.APPLIED: ALREADY_APPLIED,
}


def service_ledgers() -> tuple[ServiceLedger, ...]:
    """The ledger each consuming service exports.

    Imported when a replay needs them rather than with the command, which then starts without
    loading the services' consumers.
    """
    from services.assignment.ledger import LEDGER as assignment
    from services.escalation.ledger import LEDGER as escalation
    from services.notify.ledger import LEDGER as notify

    return (assignment, escalation, notify)


class Ledgers:
    """Releases dead letters in the ledger of the service that owns each one's consumer group,
    opening each service's database once, when the first of its dead letters needs it."""

    def __init__(
        self, settings: Settings, stack: AsyncExitStack, ledgers: Sequence[ServiceLedger]
    ) -> None:
        self._settings = settings
        self._stack = stack
        self._ledgers = ledgers
        self._open: dict[str, Database] = {}

    def owner(self, group: str) -> ServiceLedger:
        """The ledger of the service whose consumers form the group."""
        for ledger in self._ledgers:
            if group in ledger.groups:
                return ledger
        services = ", ".join(ledger.service for ledger in self._ledgers)
        raise DlqError(f"consumer group {group!r} belongs to no known service ({services})")

    async def release(self, letter: DeadLetter, *, dry_run: bool) -> Release:
        """Release the letter's mark in its group's ledger (or say what that would do)."""
        ledger = self.owner(letter.group)
        db = self._open.get(ledger.service)
        if db is None:
            db = ledger.database(self._settings)
            self._stack.push_async_callback(db.dispose)
            path = make_url(db.url).database
            # A wrong data dir would give an empty ledger: nothing released, the replay skipped.
            if db.is_sqlite and (not path or not await asyncio.to_thread(Path(path).exists)):
                raise DlqError(
                    f"no ledger of {letter.group} at {path}; give --data-dir of `gridline up`"
                )
            self._open[ledger.service] = db
        return await ledger.release_for_replay(
            db, letter.group, letter.event_id, letter.source, dry_run=dry_run
        )


def choose(
    letters: Sequence[DeadLetter],
    event_ids: Sequence[str] = (),
    since: datetime | None = None,
) -> list[DeadLetter]:
    """The dead letters with one of `event_ids` (any, when none) dead-lettered since `since`."""
    return [
        d
        for d in letters
        if (not event_ids or d.event_id in event_ids)
        and (since is None or d.dead_lettered_at >= since)
    ]


async def replay(
    settings: Settings,
    chosen: Sequence[DeadLetter],
    ledgers: Ledgers,
    *,
    dry_run: bool = False,
    progress: Callable[[ReplayOutcome], None] = lambda _: None,
) -> list[ReplayOutcome]:
    """Replay the chosen dead letters to their original topic; what each one got, each also
    told to `progress` as soon as it is done."""
    outcomes: list[ReplayOutcome] = []
    seen: set[tuple[str, str, str]] = set()
    async with AsyncExitStack() as stack:
        # Started before any mark is released, so that an unreachable broker changes nothing.
        producer = None
        if chosen and not dry_run:
            producer = await stack.enter_async_context(_started_producer(settings))
        for letter in chosen:
            delivery = (letter.group, letter.event_id, letter.source)
            if not letter.event_id:
                action = NO_EVENT_ID
            elif not letter.group:
                action = NO_GROUP
            elif delivery in seen:
                action = DUPLICATE
            else:
                action = ACTIONS[await ledgers.release(letter, dry_run=dry_run)]
            seen.add(delivery)
            outcome = ReplayOutcome(letter, action)
            if outcome.published and producer is not None:
                try:
                    await producer.publish_raw(
                        letter.original_topic, letter.key, letter.value, letter.original_headers()
                    )
                except BrokerUnavailable as exc:
                    raise BrokerUnreachable(
                        f"{exc}; {len(outcomes)} dead letters handled before it, "
                        "run the replay again to finish (nothing is doubled)"
                    ) from exc
            outcomes.append(outcome)
            progress(outcome)
    return outcomes


@asynccontextmanager
async def _started_producer(settings: Settings) -> AsyncIterator[EventProducer]:
    """The shared producer, started once without the long wait for a broker coming up."""
    producer = EventProducer(settings)
    try:
        await producer.start()
    except BrokerUnavailable as exc:
        raise BrokerUnreachable(str(exc)) from exc
    try:
        yield producer
    finally:
        await producer.stop()


def _settings(kafka: str, data_dir: Path) -> Settings:
    # The client logs each failed connection; the command says it once, on one line.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    return command_settings(data_dir, kafka_bootstrap=kafka)


def _progress() -> Progress:
    """A progress line on stderr: stdout keeps only the records, for pipes and `--json`."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
        # For someone watching: piped or captured output gets the record lines only.
        disable=not errors.is_terminal,
    )


def _say(line: str) -> None:
    # Plain lines that the terminal wraps: record fields stay whole when copied or grepped.
    console.print(line, soft_wrap=True, highlight=False, markup=False)


def _fail(error: DlqError) -> typer.Exit:
    errors.print(str(error), style="red", soft_wrap=True, highlight=False, markup=False)
    return typer.Exit(error.exit_code)


Kafka = Annotated[
    str,
    typer.Option(
        help="Kafka bootstrap servers; empty: the broker of `gridline up` on the data dir, "
        "else GRIDLINE_KAFKA_BOOTSTRAP."
    ),
]


@app.command("list")
def list_command(
    topic: Annotated[
        str | None, typer.Option(help="Only this topic's dead letters, e.g. reports.v1.")
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, help="Show at most this many records per topic (newest).")
    ] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    kafka: Kafka = "",
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """The records on each dead-letter topic, with their error; moves nothing."""
    try:
        with _progress() as progress:
            what = dlq_topic_of(topic) if topic else "the dead-letter topics"
            progress.add_task(f"reading {what} to the end", total=None)
            found = asyncio.run(read_dead_letters(_settings(kafka, data_dir), topic))
    except DlqError as error:
        raise _fail(error) from None
    if as_json:
        document = {
            name: {"count": len(letters), "records": [d.as_dict() for d in letters[-limit:]]}
            for name, letters in found.items()
        }
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    if not found:
        _say("no dead-letter topics on the broker")
    for name, letters in found.items():
        shown = letters[-limit:]
        _say(f"{name}: {len(letters)} dead-lettered")
        for d in shown:
            source = d.header("dlq-source")
            _say(
                f"  {d.partition}/{d.offset}  {d.dead_lettered_at:%Y-%m-%d %H:%M:%S} UTC"
                f"  event {d.event_id or '(none)'}  {d.header(SCHEMA_HEADER) or '(no schema)'}"
                f"{f'  from {source}' if source else ''}  group {d.group or '?'}"
                f"  attempts {d.header('dlq-attempts') or '?'}"
            )
            _say(f"      {d.header('dlq-error') or '(no error recorded)'}")
        if len(shown) < len(letters):
            _say(f"  (the newest {len(shown)} of {len(letters)}; --limit shows more)")


@app.command("replay")
def replay_command(
    topic: Annotated[
        str, typer.Option(help="The topic whose dead letters go back, e.g. tasks.v1.")
    ],
    event_id: Annotated[
        list[str] | None, typer.Option(help="Only this event id (repeatable); default: all.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Only records dead-lettered since: ISO time (UTC) or age (90m, 6h, 2d)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Say what would happen; change nothing.")] = False,
    kafka: Kafka = "",
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Publish dead letters to their topic again, with their original key, value and headers."""
    settings = _settings(kafka, data_dir)
    dlq_topic = dlq_topic_of(topic)

    async def run(progress: Progress) -> list[ReplayOutcome]:
        cutoff = parse_since(since) if since else None
        task = progress.add_task(f"reading {dlq_topic} to its end", total=None)
        letters = (await read_dead_letters(settings, topic))[dlq_topic]
        chosen = choose(letters, event_id or (), cutoff)
        verb = "checking" if dry_run else "replaying"
        progress.update(task, description=f"{verb} {dlq_topic}", total=len(chosen))
        async with AsyncExitStack() as stack:
            return await replay(
                settings,
                chosen,
                Ledgers(settings, stack, service_ledgers()),
                dry_run=dry_run,
                progress=lambda _: progress.advance(task),
            )

    try:
        with _progress() as progress:
            outcomes = asyncio.run(run(progress))
    except DlqError as error:
        raise _fail(error) from None
    _say(f"{dlq_topic}: {len(outcomes)} chosen")
    for outcome in outcomes:
        d = outcome.letter
        action = f"would be {outcome.action}" if dry_run and outcome.published else outcome.action
        _say(
            f"  {d.partition}/{d.offset}  event {d.event_id or '(none)'}  group {d.group or '?'}"
            f"  to {d.original_topic}: {action}"
        )
    published = sum(o.published for o in outcomes)
    verb = "would publish" if dry_run else "published"
    _say(
        f"{verb} {published}, skipped {len(outcomes) - published}. Each replay is remembered in "
        "its group's ledger (rows `dlq-replay:<group>:<source>`): running it again publishes only "
        "what has not been applied yet."
    )
