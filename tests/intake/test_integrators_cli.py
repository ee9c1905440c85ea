"""`gridline integrators`: add, list, rotate, revoke-key and revoke on intake's database."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from typer.testing import CliRunner

from gridline.db import Database
from gridline.settings import Settings
from gridline_cli.main import app
from services.intake.integrators import IntegratorRegistry, IntegratorView
from services.intake.storage import TABLES

runner = CliRunner()


def views(data_dir: Path) -> list[IntegratorView]:
    """The integrators as intake's registry sees them."""

    async def read() -> list[IntegratorView]:
        settings = Settings(data_dir=data_dir)
        async with Database(settings, "intake", TABLES) as database:
            secret = settings.intake_api_key_secret.get_secret_value()
            return await IntegratorRegistry(database, secret).list()

    return asyncio.run(read())


def issued(output: str) -> tuple[str, str]:
    """(integrator id, key id) printed by add or rotate."""
    integrator = re.search(r"integrator: (\S+)", output)
    key = re.search(r"key id:\s+(\S+)", output)
    assert integrator and key, output
    return integrator.group(1), key.group(1)


def test_integrator_lifecycle_from_the_command_line(tmp_path: Path) -> None:
    where = ["--data-dir", str(tmp_path)]
    added = runner.invoke(
        app,
        ["integrators", "add", "兰州健康码", "--scope", "health_code_feed", *where],
    )
    assert added.exit_code == 0, added.output
    integrator_id, first_key = issued(added.output)
    assert "secret:" in added.output

    rotated = runner.invoke(app, ["integrators", "rotate", integrator_id, *where])
    assert rotated.exit_code == 0, rotated.output
    _, second_key = issued(rotated.output)
    [view] = views(tmp_path)
    assert view.active_keys == [first_key, second_key]
    assert view.scopes == ["health_code_feed"]

    revoked_key = runner.invoke(app, ["integrators", "revoke-key", first_key, *where])
    assert revoked_key.exit_code == 0
    assert views(tmp_path)[0].active_keys == [second_key]

    listed = runner.invoke(app, ["integrators", "list", *where])
    assert listed.exit_code == 0 and integrator_id in listed.output

    assert runner.invoke(app, ["integrators", "revoke", integrator_id, *where]).exit_code == 0
    [view] = views(tmp_path)
    assert view.revoked_at is not None and view.active_keys == []
    again = runner.invoke(app, ["integrators", "rotate", integrator_id, *where])
    assert again.exit_code == 1
    assert "no active integrator" in again.output


def test_unknown_scopes_are_refused(tmp_path: Path) -> None:
    refused = runner.invoke(
        app, ["integrators", "add", "x", "--scope", "rumour", "--data-dir", str(tmp_path)]
    )
    assert refused.exit_code == 1
    assert "scopes must be among" in refused.output
    assert views(tmp_path) == []
