"""`gridline purge` runs every service's purge at once, on the data `gridline up` works on."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from sqlalchemy import Table
from typer.testing import CliRunner

from gridline.bus.outbox import OUTBOX
from gridline.db import Database
from gridline.settings import Settings
from gridline_cli.main import app
from services.intake import storage as intake_storage
from services.notify import storage as notify_storage
from tests.personal_data.support import OLD, RECENT, add_bus_rows, column


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No GRIDLINE_* variable from the machine decides anything here."""
    for name in [n for n in os.environ if n.startswith("GRIDLINE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GRIDLINE_PERSONAL_DATA_RETENTION_DAYS", "30")


async def intake_and_notify(data_dir: Path) -> None:
    """Intake's and notify's databases with rows old and recent; no escalation or assignment
    database yet."""
    settings = Settings(data_dir=data_dir)
    async with Database(
        settings, "intake", intake_storage.TABLES, intake_storage.MIGRATIONS
    ) as intake:
        await add_bus_rows(intake, ledger=False)
    async with Database(
        settings, "notify", notify_storage.TABLES, notify_storage.MIGRATIONS
    ) as notify:
        await add_bus_rows(notify, ledger=True)
        async with notify.session() as session:
            for name, at in (("n-old", OLD), ("n-recent", RECENT)):
                session.add(
                    notify_storage.Delivery(
                        notification_id=name, channel="inbox", group_id="grp-a",
                        outcome="delivered", attempts=1, finished_at=at,
                    )
                )  # fmt: skip


async def left(data_dir: Path, service: str, table: Table, name: str) -> list[str]:
    """What a service's table holds in one column after the command."""
    db = Database(Settings(data_dir=data_dir), service, [table])
    try:
        return await column(db, table, name)
    finally:
        await db.dispose()


def test_gridline_purge_purges_every_service_and_skips_a_database_not_made(
    tmp_path: Path,
) -> None:
    asyncio.run(intake_and_notify(tmp_path))
    result = CliRunner().invoke(app, ["purge", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "(30 days)" in output
    assert "intake: deleted outbox 2" in output
    assert (
        "notify: deleted delivery 1, delivery_attempt 0, digest_queue 0, "
        "report_first_delivery 0, outbox 2, processed_event 1"
    ) in output
    assert "escalation: no database of this release yet; skipped" in output
    assert not (tmp_path / "escalation.db").exists()

    deliveries = left(tmp_path, "notify", notify_storage.DELIVERY, "notification_id")
    assert asyncio.run(deliveries) == ["n-recent"]
    assert asyncio.run(left(tmp_path, "intake", OUTBOX, "event_id")) == ["recent"]


def test_gridline_purge_takes_one_service_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    asyncio.run(intake_and_notify(tmp_path))
    runner = CliRunner()
    only = runner.invoke(app, ["purge", "--data-dir", str(tmp_path), "--service", "intake"])
    assert only.exit_code == 0, only.output
    assert "intake: deleted outbox 2" in only.output and "notify" not in only.output
    unknown = runner.invoke(app, ["purge", "--data-dir", str(tmp_path), "--service", "inbox"])
    assert unknown.exit_code == 2
    assert "no service inbox" in unknown.output
