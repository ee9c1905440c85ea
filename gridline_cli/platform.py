"""Starts and stops the whole platform on one machine: infrastructure, then the four services."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

import httpx
from sqlalchemy.engine import make_url

from gridline.bus.topics import ensure_topics
from gridline.embedded import (
    EmbeddedBroker,
    EmbeddedValkey,
    die_with_parent,
    free_port,
    port_is_free,
    stop_process,
)
from gridline_cli.deadlines import (
    DEADLINES_VARIABLE,
    DEMO_MINUTE_SECONDS,
    county_deadlines,
    write_demo_deadlines,
)
from gridline_cli.run_file import read_run_file, up_settings, write_run_file

SERVICES = ("assignment", "escalation", "notify", "intake")
# The services that consume: drained after intake stops taking reports, before they stop.
CONSUMERS = ("assignment", "escalation", "notify")
# uvicorn shuts down gracefully on SIGTERM, then re-raises it so the exit status tells why it
# stopped; a service that had to be SIGKILLed after the grace period ends with -9 instead.
CLEAN_EXIT_CODES = {0, -signal.SIGTERM}

# tansu refuses InitProducerId, so no idempotent producer. It also acts on a member's leaving
# only when the session expires, so short sessions let a restarted consumer rejoin in seconds.
# The broker keeps records only in memory, so every service keeps what it produced for an hour
# and re-publishes it to a new broker (see `gridline.bus.outbox`).
EMBEDDED_BROKER_ENV = {
    "GRIDLINE_KAFKA_IDEMPOTENCE": "false",
    "GRIDLINE_CONSUMER_SESSION_TIMEOUT_MS": "3000",
    "GRIDLINE_CONSUMER_REBALANCE_TIMEOUT_MS": "2000",
    "GRIDLINE_OUTBOX_REPLAY_SECONDS": "3600",
}
# How long a stop waits for the consumers to catch up once intake takes no more reports.
DRAIN_SECONDS = 60.0
# The drain is done when every consumer's lag and every outbox stay at zero this many looks.
_QUIET_LOOKS = 3
# The demo's copy of the deadline policy, quickened (gridline_cli.deadlines), in the data dir.
DEMO_DEADLINES_FILE = "demo-deadlines.yaml"


@dataclass
class PlatformOptions:
    """What to run against; empty infrastructure fields mean the embedded parts.

    Deadlines: `deadlines_file` is the policy escalation runs, each of its minutes lasting
    `deadline_minute_seconds` (the demo's are shorter: `gridline_cli.deadlines`).
    `ack_deadline_seconds` replaces any policy: one level up every that many seconds, for runs
    that want escalations at a known moment (tests). With neither, the services' own settings
    decide (`GRIDLINE_ESCALATION_DEADLINES_FILE`, `GRIDLINE_ACK_DEADLINE_SECONDS`).
    """

    data_dir: Path
    kafka_bootstrap: str = ""
    database_url: str = ""
    redis_url: str = ""
    seed_demo_county: bool = True
    ack_deadline_seconds: float | None = None
    deadlines_file: Path | None = None
    deadline_minute_seconds: float = 60.0
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_up(
        cls,
        data_dir: Path,
        *,
        kafka_bootstrap: str = "",
        database_url: str = "",
        redis_url: str = "",
        demo: bool = False,
        ack_deadline_seconds: float | None = None,
    ) -> PlatformOptions:
        """What `gridline up` runs: the demo on embedded parts, a county's own on real ones.

        Both run the documented deadline policy (or the county's own, named by
        GRIDLINE_ESCALATION_DEADLINES_FILE). On the embedded parts alone, or with `demo`,
        assignment seeds the demo county into an empty directory and each minute of the policy
        lasts a second. Given any real infrastructure it seeds nothing (the county's directory
        is imported, docs/directory.md) and the policy runs in earnest. An explicit
        `ack_deadline_seconds` replaces the policy either way.
        """
        demo_county = demo or not (kafka_bootstrap or database_url or redis_url)
        return cls(
            data_dir=data_dir,
            kafka_bootstrap=kafka_bootstrap,
            database_url=database_url,
            redis_url=redis_url,
            seed_demo_county=demo_county,
            ack_deadline_seconds=ack_deadline_seconds,
            deadlines_file=(
                None if ack_deadline_seconds is not None else county_deadlines(dict(os.environ))
            ),
            deadline_minute_seconds=DEMO_MINUTE_SECONDS if demo_county else 60.0,
        )


@dataclass
class Endpoints:
    """Where everything listens, written to `<data_dir>/run.json` for the other commands."""

    kafka: str
    redis: str
    database: str
    intake: str
    assignment: str
    escalation: str
    notify: str
    directory_grpc: str
    tasks_grpc: str
    inbox: str
    logs: str
    # Process ids of everything `up` started, so that an operator (or a test) can find them.
    pids: dict[str, int] = field(default_factory=dict)
    # The settings `up` gave the services (`gridline_cli.run_file`): the other commands use them.
    settings: dict[str, str] = field(default_factory=dict)

    def service_url(self, name: str) -> str:
        """The HTTP base URL of a service."""
        url: str = getattr(self, name)
        return url


def _runs(pid: int, name: str) -> bool:
    """Whether `pid` is alive and still the process `name` (a pid may have been reused)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    markers = {"broker": "tansu", "valkey": "valkey"}
    return state != "Z" and markers.get(name, f"services.{name}") in command


class Platform:
    """The running platform. Use as a context manager or call start() and stop()."""

    def __init__(self, options: PlatformOptions) -> None:
        self.options = options
        self.data_dir = options.data_dir.resolve()
        self.log_dir = self.data_dir / "logs"
        self.broker: EmbeddedBroker | None = None
        self.valkey: EmbeddedValkey | None = None
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}
        self.env: dict[str, str] = {}
        self.endpoints: Endpoints | None = None
        # Exit codes of the services after stop().
        self.exit_codes: dict[str, int | None] = {}

    def __enter__(self) -> Platform:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self, ready_timeout: float = 90.0) -> Endpoints:
        """Start infrastructure and services and wait until every service is ready."""
        opts = self.options
        self.log_dir.mkdir(parents=True, exist_ok=True)
        stale = self.stale_processes()
        if stale:
            listed = ", ".join(f"{name} (pid {pid})" for name, pid in stale.items())
            raise RuntimeError(
                f"processes of an earlier run on {self.data_dir} still run: {listed}; "
                "stop that run first"
            )
        kafka = opts.kafka_bootstrap
        if not kafka:
            self.broker = EmbeddedBroker(log_path=self.log_dir / "broker.log")
            self.broker.start()
            kafka = self.broker.bootstrap
        redis_url = opts.redis_url
        if not redis_url:
            self.valkey = EmbeddedValkey()
            self.valkey.start()
            redis_url = self.valkey.url
        partitions = int(opts.extra_env.get("GRIDLINE_KAFKA_PARTITIONS", "3"))
        asyncio.run(ensure_topics(kafka, partitions, 1))

        host = "127.0.0.1"
        chosen = self._ports([*SERVICES, "directory_grpc", "tasks_grpc", "notify_grpc"], host)
        ports = {name: chosen[name] for name in SERVICES}
        grpc_port = chosen["directory_grpc"]
        tasks_port = chosen["tasks_grpc"]
        notify_grpc_port = chosen["notify_grpc"]
        self.env = {
            **os.environ,
            "GRIDLINE_DATA_DIR": str(self.data_dir),
            "GRIDLINE_KAFKA_BOOTSTRAP": kafka,
            # A broker of the operator's: its producer settings are the environment's.
            **(self._embedded_env() if self.broker else {}),
            "GRIDLINE_DATABASE_URL": opts.database_url,
            "GRIDLINE_REDIS_URL": redis_url,
            "GRIDLINE_HOST": host,
            "GRIDLINE_DIRECTORY_GRPC_PORT": str(grpc_port),
            "GRIDLINE_DIRECTORY_TARGET": f"{host}:{grpc_port}",
            "GRIDLINE_TASKS_GRPC_PORT": str(tasks_port),
            "GRIDLINE_TASKS_TARGET": f"{host}:{tasks_port}",
            "GRIDLINE_NOTIFY_GRPC_PORT": str(notify_grpc_port),
            "GRIDLINE_PUBLIC_BASE_URL": f"http://{host}:{ports['escalation']}",
            "GRIDLINE_SEED_DEMO_COUNTY": str(opts.seed_demo_county).lower(),
            **self.deadline_settings(),
            **{f"GRIDLINE_{name.upper()}_HTTP_PORT": str(port) for name, port in ports.items()},
            **opts.extra_env,
        }
        if opts.ack_deadline_seconds is not None and DEADLINES_VARIABLE not in opts.extra_env:
            # The flat deadline replaces any policy, the environment's included.
            self.env.pop(DEADLINES_VARIABLE, None)
        url = {name: f"http://{host}:{port}" for name, port in ports.items()}
        self.endpoints = Endpoints(
            intake=url["intake"],
            assignment=url["assignment"],
            escalation=url["escalation"],
            notify=url["notify"],
            kafka=kafka + (" (embedded tansu)" if self.broker else ""),
            redis=redis_url + (" (embedded valkey)" if self.valkey else ""),
            database=(
                make_url(opts.database_url).render_as_string(hide_password=True)
                if opts.database_url
                else f"sqlite files in {self.data_dir}"
            ),
            directory_grpc=f"{host}:{grpc_port}",
            tasks_grpc=f"{host}:{tasks_port}",
            inbox=str(self.data_dir / "inbox.jsonl"),
            logs=str(self.log_dir),
            settings=up_settings(self.env),
        )
        for name in SERVICES:
            self.start_service(name)
        self.wait_ready(SERVICES, ready_timeout)
        self.write_run_file()
        return self.endpoints

    def deadline_settings(self) -> dict[str, str]:
        """The deadline settings of the services: the policy file (the demo's quickened copy
        of it), or the flat acknowledgement deadline."""
        opts = self.options
        if opts.ack_deadline_seconds is not None:
            return {"GRIDLINE_ACK_DEADLINE_SECONDS": str(opts.ack_deadline_seconds)}
        if opts.deadlines_file is None:
            return {}
        policy = opts.deadlines_file.resolve()
        if opts.deadline_minute_seconds != 60.0:
            policy = write_demo_deadlines(
                policy, self.data_dir / DEMO_DEADLINES_FILE, opts.deadline_minute_seconds
            )
        return {DEADLINES_VARIABLE: str(policy)}

    def stale_processes(self) -> dict[str, int]:
        """Processes an earlier run on this data directory started that still run."""
        try:
            pids: dict[str, int] = (read_run_file(self.data_dir) or {}).get("pids", {})
        except (OSError, ValueError):
            return {}
        return {name: pid for name, pid in pids.items() if _runs(pid, name)}

    def _embedded_env(self) -> dict[str, str]:
        # A new epoch for every start of the broker: each service replays its outbox once to it.
        return {**EMBEDDED_BROKER_ENV, "GRIDLINE_BROKER_EPOCH": uuid.uuid4().hex}

    def write_run_file(self) -> None:
        """Write `<data_dir>/run.json`: where everything listens and the process ids."""
        assert self.endpoints is not None
        pids = {name: p.pid for name, p in self.processes.items()}
        if self.broker is not None and self.broker.process is not None:
            pids["broker"] = self.broker.process.pid
        if self.valkey is not None and self.valkey.pid is not None:
            pids["valkey"] = self.valkey.pid
        self.endpoints.pids = pids
        write_run_file(self.data_dir, asdict(self.endpoints))

    def _ports(self, names: list[str], host: str) -> dict[str, int]:
        """The ports of the last run on this data directory where they are still free, else
        new ones. Links already sent name escalation's address, and notices a restart
        re-publishes carry them too (notify refuses a link of another origin): the same address
        keeps both working."""
        path = self.data_dir / "ports.json"
        try:
            remembered = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            remembered = {}
        ports: dict[str, int] = {}
        for name in names:
            port = remembered.get(name) if isinstance(remembered, dict) else None
            while not (
                isinstance(port, int) and port not in ports.values() and port_is_free(port, host)
            ):
                port = free_port(host)
            ports[name] = port
        path.write_text(json.dumps(ports))
        return ports

    def start_service(self, name: str) -> None:
        """Start one service process (again, after a kill) with the platform's environment."""
        log = self._logs.get(name)
        if log is None:
            log = self._logs[name] = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches `gridline up` only; it stops them in order
            preexec_fn=die_with_parent,
        )

    def wait_ready(self, names: tuple[str, ...], timeout: float) -> None:
        """Block until each named service answers 200 on /readyz."""
        assert self.endpoints is not None
        deadline = time.monotonic() + timeout
        pending = list(names)
        with httpx.Client(timeout=1.0) as client:
            while pending:
                name = pending[0]
                process = self.processes[name]
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with {process.returncode}; see {self.log_dir / name}.log"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    url = self.endpoints.service_url(name)
                    if client.get(f"{url}/readyz").status_code == 200:
                        pending.pop(0)
                        continue
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} not ready after {timeout}s; see its log")
                time.sleep(0.1)

    def kill_service(self, name: str) -> None:
        """SIGKILL one service, as a crash would."""
        process = self.processes[name]
        process.kill()
        process.wait()

    def stop(
        self,
        drain_seconds: float = DRAIN_SECONDS,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        """Stop in the order that loses nothing; nothing is left running.

        Intake stops taking reports first; then the consumers are given up to `drain_seconds`
        to catch up (their lag and every outbox at zero), with `progress` told how far behind
        they are; then they stop (each finishes its batch, commits and publishes its outbox);
        then Valkey and the broker. Whatever a bound cut short is replayed at the next start.
        """
        intake = self.processes.get("intake")
        if intake is not None:
            self.exit_codes["intake"] = stop_process(intake)
        if drain_seconds > 0 and self.endpoints is not None:
            self._drain(drain_seconds, progress or (lambda _: None))
        for name in CONSUMERS:
            process = self.processes.get(name)
            if process is not None and process.poll() is None:
                process.terminate()
        self.exit_codes.update(
            {name: stop_process(p) for name, p in self.processes.items() if name != "intake"}
        )
        for log in self._logs.values():
            log.close()
        self._logs.clear()
        if self.valkey is not None:
            self.valkey.stop()
            self.valkey = None
        if self.broker is not None:
            self.broker.stop()
            self.broker = None

    def _drain(self, seconds: float, progress: Callable[[str], None]) -> None:
        """Wait until the running consumers have nothing left to do, or the bound passes."""
        deadline = time.monotonic() + seconds
        quiet = 0
        told = 0.0
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                behind = self._backlog(client)
                quiet = quiet + 1 if behind is not None and not any(behind.values()) else 0
                if quiet >= _QUIET_LOOKS:
                    progress("drained: every report taken is applied and published")
                    return
                if behind and time.monotonic() - told >= 1.0:
                    told = time.monotonic()
                    progress(
                        "draining: "
                        + ", ".join(f"{name} {count} behind" for name, count in behind.items())
                    )
                time.sleep(0.3)
        progress("drain bound reached; what is left is replayed at the next start")

    def _backlog(self, client: httpx.Client) -> dict[str, int] | None:
        """Records each running consumer service has not applied or published yet."""
        assert self.endpoints is not None
        behind: dict[str, int] = {}
        for name in CONSUMERS:
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            try:
                text = client.get(f"{self.endpoints.service_url(name)}/metrics").text
            except httpx.HTTPError:
                return None
            behind[name] = sum(
                int(float(line.rsplit(" ", 1)[1]))
                for line in text.splitlines()
                if line.startswith(("gridline_consumer_lag_records{", "gridline_outbox_pending"))
            )
        return behind

    def unclean_exits(self) -> dict[str, int | None]:
        """Services that did not stop gracefully, with their exit codes."""
        return {n: c for n, c in self.exit_codes.items() if c not in CLEAN_EXIT_CODES}
