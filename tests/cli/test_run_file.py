"""Every command works on the data `gridline up` works on: one data directory, and the broker,
database and Redis `up` records in its run file (`gridline_cli.run_file`)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridline_cli.deadlines import DEMO_MINUTE_SECONDS, SHIPPED_DEADLINES
from gridline_cli.main import app
from gridline_cli.platform import Platform, PlatformOptions
from gridline_cli.run_file import (
    DEFAULT_DATA_DIR,
    command_settings,
    read_run_file,
    up_settings,
    write_run_file,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "directory.csv"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No GRIDLINE_* variable from the machine decides anything here."""
    for name in [n for n in os.environ if n.startswith("GRIDLINE_")]:
        monkeypatch.delenv(name)


@pytest.mark.usefixtures("clean_env")
def test_commands_without_options_use_the_data_dir_up_runs_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # What `gridline up` (no options) gives every service as GRIDLINE_DATA_DIR.
    services_data_dir = Platform(PlatformOptions.for_up(DEFAULT_DATA_DIR)).data_dir
    runner = CliRunner()
    for command in (
        ["directory", "import", str(EXAMPLE)],
        ["integrators", "add", "feed", "--scope", "health_code_feed"],
        ["migrate"],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in services_data_dir.glob("*.db")) == [
        "assignment.db", "escalation.db", "intake.db", "notify.db",
    ]  # fmt: skip
    # The settings' own default, where imports used to land while `up` read elsewhere.
    assert not (tmp_path / ".gridline" / "data").exists()
    exported = runner.invoke(app, ["directory", "export", str(tmp_path / "out.csv")])
    assert f"exported 22 nodes of the SQLite files in {services_data_dir}" in exported.output


@pytest.mark.usefixtures("clean_env")
def test_the_run_file_decides_broker_database_and_redis_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As `gridline up` gives the services their environment: its own choices among the rest.
    given = {
        "GRIDLINE_DATA_DIR": str(tmp_path),
        "GRIDLINE_KAFKA_BOOTSTRAP": "127.0.0.1:19092",
        "GRIDLINE_KAFKA_IDEMPOTENCE": "false",
        "GRIDLINE_DATABASE_URL": "postgresql://gridline:secret@db:5432/county",
        "GRIDLINE_REDIS_URL": "redis://127.0.0.1:16379/2",
        "GRIDLINE_HOST": "127.0.0.1",
        "GRIDLINE_PII_KEY": "never-in-the-run-file",
    }
    recorded = up_settings(given)
    assert "GRIDLINE_PII_KEY" not in recorded and "GRIDLINE_HOST" not in recorded
    write_run_file(tmp_path, {"intake": "http://127.0.0.1:8001", "settings": recorded})
    assert stat.S_IMODE((tmp_path / "run.json").stat().st_mode) == 0o600
    assert read_run_file(tmp_path) == {"intake": "http://127.0.0.1:8001", "settings": recorded}
    # A shell's own settings do not send a command elsewhere than the services.
    monkeypatch.setenv("GRIDLINE_DATABASE_URL", "postgresql://other@elsewhere/db")
    monkeypatch.setenv("GRIDLINE_KAFKA_BOOTSTRAP", "elsewhere:9092")
    settings = command_settings(tmp_path)
    assert settings.data_dir == tmp_path.resolve()
    assert settings.database_url == given["GRIDLINE_DATABASE_URL"]
    assert settings.kafka_bootstrap == "127.0.0.1:19092"
    assert settings.kafka_idempotence is False
    assert settings.redis_url == "redis://127.0.0.1:16379/2"
    # A command's own option wins; idempotence then is that broker's, the environment's.
    mine = command_settings(tmp_path, kafka_bootstrap="kafka:9092", database_url="postgresql://x")
    assert (mine.kafka_bootstrap, mine.kafka_idempotence) == ("kafka:9092", True)
    assert mine.database_url == "postgresql://x"
    # Without a run file (a pod) the environment decides, as for the services.
    pod = command_settings(tmp_path / "pod")
    assert pod.database_url == "postgresql://other@elsewhere/db"
    assert pod.kafka_bootstrap == "elsewhere:9092"


# The documented policy, in earnest (a minute of 60 s) or at the demo's pace.
EARNEST = (SHIPPED_DEADLINES, 60.0)
QUICK = (SHIPPED_DEADLINES, DEMO_MINUTE_SECONDS)


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(
    ("infrastructure", "demo", "ack_deadline", "seeds", "deadline", "policy"),
    [
        ({}, False, None, True, None, QUICK),
        ({"kafka_bootstrap": "k:9092"}, False, None, False, None, EARNEST),
        ({"database_url": "postgresql://db/x"}, False, None, False, None, EARNEST),
        ({"redis_url": "redis://r"}, False, None, False, None, EARNEST),
        ({"kafka_bootstrap": "k:9092"}, True, None, True, None, QUICK),
        ({"kafka_bootstrap": "k:9092"}, False, 600.0, False, 600.0, (None, 60.0)),
        ({}, False, 3600.0, True, 3600.0, (None, DEMO_MINUTE_SECONDS)),
    ],
)
def test_up_is_the_demo_only_on_embedded_parts_or_when_asked(
    infrastructure: dict[str, str],
    demo: bool,
    ack_deadline: float | None,
    seeds: bool,
    deadline: float | None,
    policy: tuple[Path | None, float],
) -> None:
    options = PlatformOptions.for_up(
        Path("run"), demo=demo, ack_deadline_seconds=ack_deadline, **infrastructure
    )
    assert (options.seed_demo_county, options.ack_deadline_seconds) == (seeds, deadline)
    assert (options.deadlines_file, options.deadline_minute_seconds) == policy
