"""`gridline integrators add --sandbox` makes an integrator whose posts are all validate-only."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridline_cli.main import app


def test_add_sandbox_makes_a_sandbox_integrator_and_plain_add_a_real_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GRIDLINE_DATABASE_URL", raising=False)
    runner = CliRunner()
    for name, flags in (("trial", ["--sandbox"]), ("feed", [])):
        result = runner.invoke(
            app,
            ["integrators", "add", name, "--scope", "health_code_feed", "--data-dir",
             str(tmp_path), *flags],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    [database] = tmp_path.rglob("intake.db")
    with sqlite3.connect(database) as conn:
        rows = dict(conn.execute("SELECT name, sandbox FROM integrator").fetchall())
    assert rows == {"trial": 1, "feed": 0}
