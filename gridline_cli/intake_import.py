"""`gridline import FILE`: a CSV or JSON-lines feed export through intake's batch endpoint.

Rows stream in chunks through the same validation as every post. A row without a
`source_record_id` gets one derived from its content, so a rerun after an interruption is
answered `duplicate` for what already went in and produces nothing twice. Rejected rows are
written to `<FILE>.rejected.jsonl` by line number, record id and the rules they broke, without the
person's data: the file stays next to the export and outlives it.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from gridline.privacy import scrub_text
from gridline_cli.run_file import DEFAULT_DATA_DIR, DataDir, read_run_file, run_file
from services.intake.signing import signed_headers

CHUNK = 500
BATCH_PATH = "/v1/reports:batch"
# Retries of one chunk while intake answers 503 (broker) or 429 (rate): reposting is idempotent.
MAX_TRIES = 8
# Rule messages quote what they refused (a region prefix, a birth date): pieces of an ID number.
_QUOTED_DIGITS = re.compile(r"[0-9]{4,}")


@dataclass
class ImportSummary:
    """What an import did."""

    rows: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    rejected_file: Path | None = None


@dataclass(frozen=True)
class SigningKey:
    """An integrator key to sign the batches with."""

    key_id: str
    secret: str


class ImportFailed(Exception):
    """Intake kept refusing a chunk; what was imported so far stays, a rerun continues."""


def count_rows(path: Path) -> int:
    """The number of data rows in the file, for the progress bar."""
    with path.open(encoding="utf-8-sig") as handle:
        lines = sum(1 for line in handle if line.strip())
    return lines - 1 if path.suffix.lower() == ".csv" else lines


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of a `.csv` (header row) or JSON-lines file; empty cells omitted."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        if path.suffix.lower() == ".csv":
            reader = csv.DictReader(handle)
            for row in reader:
                yield reader.line_num, {k: v for k, v in row.items() if k and v not in ("", None)}
            return
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, json.loads(line)


def _with_record_id(record: dict[str, Any]) -> dict[str, Any]:
    if record.get("source_record_id"):
        return record
    digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:32]
    return {**record, "source_record_id": f"import-{digest}"}


async def import_file(
    path: Path,
    client: httpx.AsyncClient,
    *,
    key: SigningKey | None = None,
    progress: Callable[[int], None] = lambda _: None,
) -> ImportSummary:
    """Post every row of `path` in chunks; returns the counts by outcome."""
    summary = ImportSummary(rejected_file=path.with_name(path.name + ".rejected.jsonl"))
    assert summary.rejected_file is not None
    with summary.rejected_file.open("w", encoding="utf-8") as rejects:
        chunk: list[tuple[int, dict[str, Any]]] = []
        for number, record in read_rows(path):
            chunk.append((number, _with_record_id(record)))
            if len(chunk) == CHUNK:
                await _send(client, chunk, key, summary, rejects)
                progress(len(chunk))
                chunk = []
        if chunk:
            await _send(client, chunk, key, summary, rejects)
            progress(len(chunk))
    return summary


async def _send(
    client: httpx.AsyncClient,
    chunk: list[tuple[int, dict[str, Any]]],
    key: SigningKey | None,
    summary: ImportSummary,
    rejects: Any,
) -> None:
    body = json.dumps({"records": [record for _, record in chunk]}, ensure_ascii=False).encode()
    for _ in range(MAX_TRIES):
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers |= signed_headers(
                key.key_id, key.secret, "POST", BATCH_PATH, body, int(time.time()),
                secrets.token_hex(16),
            )  # fmt: skip
        response = await client.post(BATCH_PATH, content=body, headers=headers)
        if response.status_code in (429, 503):
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        if response.status_code != 200:
            raise ImportFailed(f"intake answered {response.status_code}: {response.text[:500]}")
        break
    else:
        raise ImportFailed(f"intake kept refusing after {MAX_TRIES} tries; rerun to continue")
    for (line, record), result in zip(chunk, response.json()["results"], strict=True):
        summary.rows += 1
        summary.counts[result["status"]] += 1
        if result["status"] == "rejected":
            rejects.write(json.dumps(rejected_row(line, record, result), ensure_ascii=False) + "\n")


def rejected_row(line: int, record: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """What the reject file keeps of a row: where it is and what it broke, no personal data."""
    return {
        "line": line,
        "source_record_id": scrub_text(str(record.get("source_record_id", ""))),
        "problems": [
            {
                "field": problem["field"],
                "rule": problem["rule"],
                "message": _QUOTED_DIGITS.sub(lambda m: "*" * len(m[0]), problem["message"]),
            }
            for problem in result["problems"]
        ],
    }


def command(
    file: Annotated[Path, typer.Argument(help="A .csv (with a header row) or .jsonl export.")],
    intake: Annotated[
        str, typer.Option(help="Intake's base URL; empty: the one `gridline up` runs.")
    ] = "",
    data_dir: DataDir = DEFAULT_DATA_DIR,
    key_id: Annotated[
        str, typer.Option(envvar="GRIDLINE_IMPORT_KEY_ID", help="Integrator key id to sign with.")
    ] = "",
    secret: Annotated[
        str, typer.Option(envvar="GRIDLINE_IMPORT_SECRET", help="That key's secret.")
    ] = "",
) -> None:
    """Import a feed export through intake's validation; rerunning it doubles nothing."""
    console = Console()
    if not intake:
        running = read_run_file(data_dir)
        if running is None:
            console.print(
                f"[red]no --intake and no running platform ({run_file(data_dir)} is missing)[/red]"
            )
            raise typer.Exit(1)
        intake = running["intake"]
    key = SigningKey(key_id, secret) if key_id else None
    with Progress(console=console) as bar:
        task = bar.add_task(f"importing {file.name}", total=count_rows(file))

        async def run() -> ImportSummary:
            async with httpx.AsyncClient(base_url=intake, timeout=60) as client:
                return await import_file(
                    file, client, key=key, progress=lambda n: bar.advance(task, n)
                )

        try:
            summary = asyncio.run(run())
        except ImportFailed as failed:
            console.print(f"[red]{failed}[/red]")
            raise typer.Exit(1) from None
    table = Table(title=f"Imported {file.name}")
    table.add_column("outcome")
    table.add_column("rows", justify="right")
    for outcome, count in sorted(summary.counts.items()):
        table.add_row(outcome, str(count))
    table.add_row("total", str(summary.rows))
    console.print(table)
    if summary.counts["rejected"]:
        console.print(f"rejected rows and their reasons: {summary.rejected_file}")
