"""`gridline`: up, demo, contracts and settings."""

from __future__ import annotations

import asyncio
import signal
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gridline.settings import settings_table
from gridline_cli import directory as directory_cli
from gridline_cli import dlq as dlq_cli
from gridline_cli import intake_import, integrators
from gridline_cli import migrate as migrate_cli
from gridline_cli import notify as notify_cli
from gridline_cli import purge as purge_cli
from gridline_cli import staff as staff_cli
from gridline_cli.platform import Endpoints, Platform, PlatformOptions
from gridline_cli.run_file import DEFAULT_DATA_DIR, DataDir, read_run_file, run_file

app = typer.Typer(
    help="Gridline: find, place, follow up and escalate arrivals.", no_args_is_help=True
)
contracts = typer.Typer(help="The contracts generated from proto/.", no_args_is_help=True)
app.add_typer(contracts, name="contracts")
app.add_typer(integrators.app, name="integrators")
app.command("import")(intake_import.command)
app.add_typer(directory_cli.app, name="directory")
app.add_typer(notify_cli.app, name="notify")
app.add_typer(dlq_cli.app, name="dlq")
app.add_typer(migrate_cli.app, name="migrate")
app.command("purge")(purge_cli.command)
app.add_typer(staff_cli.app, name="staff")
console = Console()

# Twenty reports a second is about 1.7 million a day, far above a county's peak of thousands;
# one notify process on the embedded stack keeps every cadre notice under 2 s at this rate.
DEMO_RATE = 20.0


def _show(endpoints: Endpoints) -> None:
    table = Table(title="Gridline is up")
    table.add_column("part")
    table.add_column("listens at / lives in")
    for name, value in asdict(endpoints).items():
        if name not in ("pids", "settings"):
            table.add_row(name, value)
    console.print(table)


@app.command()
def up(
    kafka: Annotated[
        str, typer.Option(help="Kafka bootstrap servers; empty: embedded tansu.")
    ] = "",
    database_url: Annotated[
        str, typer.Option(help="PostgreSQL URL; empty: SQLite files in the data dir.")
    ] = "",
    redis_url: Annotated[str, typer.Option(help="Redis URL; empty: embedded Valkey.")] = "",
    data_dir: DataDir = DEFAULT_DATA_DIR,
    demo: Annotated[
        bool,
        typer.Option(
            help="Also on real infrastructure: seed the demo county, run the deadline policy "
            "with each of its minutes lasting a second, and post the demo stream once "
            "everything is up."
        ),
    ] = False,
    demo_reports: Annotated[int, typer.Option(help="Reports in the demo stream.")] = 200,
    ack_deadline: Annotated[
        float | None,
        typer.Option(
            help="Seconds to acknowledge a task before it goes up a level, in place of the "
            "deadline policy; default: the policy of GRIDLINE_ESCALATION_DEADLINES_FILE, else "
            "the documented one (services/escalation/deadlines.yaml).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start the platform; stop on Ctrl-C/SIGTERM.

    Alone: embedded broker and Valkey, SQLite files, the demo county, and the documented
    deadline policy with each of its minutes lasting a second.
    With --kafka, --database-url or --redis-url: a county's own run, which seeds nothing
    (load the directory with `gridline directory import`, docs/directory.md)
    and runs the deadline policy in earnest. --demo makes either a demo.
    """
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    options = PlatformOptions.for_up(
        data_dir,
        kafka_bootstrap=kafka,
        database_url=database_url,
        redis_url=redis_url,
        demo=demo,
        ack_deadline_seconds=ack_deadline,
    )
    platform = Platform(options)
    stale = platform.stale_processes()
    if stale:
        listed = ", ".join(f"{name} (pid {pid})" for name, pid in stale.items())
        console.print(
            f"[red]an earlier run on {data_dir} still runs: {listed}. "
            "Stop it first (Ctrl-C in its terminal, or kill those processes).[/red]"
        )
        raise typer.Exit(1)
    try:
        with console.status(f"starting {_parts(options)}"):
            endpoints = platform.start()
        _show(endpoints)
        _say_what_runs(options, data_dir)
        if demo and not stop.is_set():
            _demo(asdict(endpoints), demo_reports, rate=DEMO_RATE, seed=2022, wait=15.0)
            console.print(f"Watch the deliveries in {endpoints.inbox}")
        console.print("[bold]Running. Ctrl-C stops everything.[/bold]")
        stop.wait()
    finally:
        console.print("stopping: intake takes no more reports, the rest catch up, then stop")
        platform.stop(progress=console.print)
        unclean = platform.unclean_exits()
        console.print("stopped; nothing left running.")
    if unclean:
        console.print(f"[red]not a clean shutdown (exit codes): {unclean}[/red]")
        raise typer.Exit(1)


def _parts(options: PlatformOptions) -> str:
    """What `up` starts, in words."""
    parts = [
        *(["the embedded broker"] if not options.kafka_bootstrap else []),
        *(["Valkey"] if not options.redis_url else []),
        "the four services",
        *(["the demo county"] if options.seed_demo_county else []),
    ]
    return ", ".join(parts[:-1]) + f" and {parts[-1]}"


def _say_what_runs(options: PlatformOptions, data_dir: Path) -> None:
    """Which directory and deadlines the run has, and how to load a county's own."""
    if options.seed_demo_county:
        console.print("Directory: the demo county (when the database held none).")
    else:
        console.print(
            "Directory: what the database holds; load the county's with "
            f"`gridline directory import FILE --data-dir {data_dir}` (docs/directory.md).",
            soft_wrap=True,  # the command stays whole when copied
        )
    if options.ack_deadline_seconds is not None:
        console.print(
            f"Deadlines: a task nobody acknowledges goes one level up every "
            f"{options.ack_deadline_seconds:g} s."
        )
    elif options.deadlines_file is not None:
        pace = (
            ""
            if options.deadline_minute_seconds == 60.0
            else f", each minute of it lasting {options.deadline_minute_seconds:g} s (demo)"
        )
        console.print(
            f"Deadlines: the policy of {options.deadlines_file}{pace}; docs/escalation.md.",
            soft_wrap=True,
        )
    else:
        console.print(
            "Deadlines: the services' own (GRIDLINE_ESCALATION_DEADLINES_FILE, else one level "
            "up every GRIDLINE_ACK_DEADLINE_SECONDS; docs/escalation.md)."
        )


def _demo(endpoints: dict[str, str], reports: int, rate: float, seed: int, wait: float) -> None:
    from gridline_cli.demo import print_summary, run_demo  # loads the demo county only here

    result = asyncio.run(run_demo(endpoints, reports, rate, seed, console, wait))
    print_summary(result, console)


@app.command()
def demo(
    reports: Annotated[int, typer.Option(help="How many reports to post.")] = 200,
    rate: Annotated[float, typer.Option(help="Reports per second.")] = DEMO_RATE,
    seed: Annotated[int, typer.Option(help="Seed of the stream.")] = 2022,
    wait: Annotated[float, typer.Option(help="Seconds to wait for deliveries.")] = 15.0,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Post a demo stream of reports to a running platform and summarise each stage."""
    endpoints = read_run_file(data_dir)
    if endpoints is None:
        console.print(
            f"[red]no running platform: {run_file(data_dir)} is missing; start `gridline up`[/red]"
        )
        raise typer.Exit(1)
    _demo(endpoints, reports, rate, seed, wait)


@contracts.command("generate")
def contracts_generate() -> None:
    """Regenerate gridline/contracts/v1 from proto/."""
    from gridline.contracts.codegen import regenerate

    for path in regenerate():
        console.print(str(path))


@app.command()
def settings() -> None:
    """Print every setting as a Markdown table."""
    typer.echo(settings_table(), nl=False)
