"""The one place that decides what a `gridline` command works on: the data directory, and the
settings `gridline up` runs the services with there.

Every command, `gridline up` included, takes its data directory from `--data-dir`, else
`GRIDLINE_DATA_DIR`, else `.gridline`. Beyond the data directory `gridline up` decides a few
settings itself (`UP_DECIDES`: the broker and whether its producers may be idempotent, the
database, Redis), hands them to every service it starts and records them in
`<data dir>/run.json`; every other command takes them from that run file when there is one, so
that it reads and writes what the running services read and write. Everything else (secrets,
files, vendors) comes from the `GRIDLINE_*` environment, for the services and the commands
alike; a command's own option (`--kafka`, `--database-url`) wins over both. Without a run file
(a Kubernetes pod, compose) the environment decides everything, as it does for the services.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.engine import make_url

from gridline.settings import Settings, env_name

DEFAULT_DATA_DIR = Path(".gridline")
RUN_FILE = "run.json"
# The settings `gridline up` gives every service it starts rather than leaving to the
# environment: what a command must share with the services to see the same data.
UP_DECIDES = ("kafka_bootstrap", "kafka_idempotence", "database_url", "redis_url")

DataDir = Annotated[
    Path,
    typer.Option(
        envvar="GRIDLINE_DATA_DIR",
        help="Data dir of `gridline up`: its SQLite files, and its run.json naming the broker, "
        "database and Redis it runs on.",
    ),
]


def run_file(data_dir: Path) -> Path:
    """Where `gridline up` on `data_dir` says what it runs."""
    return data_dir / RUN_FILE


def read_run_file(data_dir: Path) -> dict[str, Any] | None:
    """The run file of `data_dir`, or None when no `gridline up` has run there."""
    try:
        document: dict[str, Any] = json.loads(run_file(data_dir).read_text())
    except FileNotFoundError:
        return None
    return document


def write_run_file(data_dir: Path, document: dict[str, Any]) -> None:
    """Write the run file whole or not at all (readers poll for it), readable by its owner
    only: it holds the database URL, password included."""
    staged = data_dir / f"{RUN_FILE}.tmp"
    descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        # A leftover staged file keeps its old mode through O_CREAT: set it again.
        os.fchmod(file.fileno(), 0o600)
        json.dump(document, file, indent=2)
    staged.replace(run_file(data_dir))


def up_settings(environment: dict[str, str]) -> dict[str, str]:
    """What the run file records of the environment `gridline up` gives the services."""
    names = (env_name(field) for field in UP_DECIDES)
    return {name: environment[name] for name in names if name in environment}


def command_settings(
    data_dir: Path, *, kafka_bootstrap: str = "", database_url: str = ""
) -> Settings:
    """The settings a command uses: the services' own on `data_dir` (see the module's doc).

    `kafka_bootstrap` and `database_url`, when given, are the command's own options and win.
    """
    chosen: dict[str, Any] = {"data_dir": data_dir.resolve()}
    recorded = (read_run_file(data_dir) or {}).get("settings", {})
    for field in UP_DECIDES:
        if env_name(field) in recorded:
            chosen[field] = recorded[env_name(field)]
    if kafka_bootstrap:
        chosen["kafka_bootstrap"] = kafka_bootstrap
        # Whether producers may be idempotent belongs to the recorded broker, not to this one.
        chosen.pop("kafka_idempotence", None)
    if database_url:
        chosen["database_url"] = database_url
    return Settings(**chosen)


def describe_database(settings: Settings) -> str:
    """Where the services' tables are, for a command to say what it changed (no password)."""
    if settings.database_url:
        return make_url(settings.database_url).render_as_string(hide_password=True)
    return f"the SQLite files in {settings.data_dir}"
