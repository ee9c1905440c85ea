"""Settings: documented in the README, safe in production."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridline.production import production_problems
from gridline.settings import Settings, settings_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_lists_every_setting_as_the_code_defines_it() -> None:
    assert settings_table() in README.read_text(encoding="utf-8"), (
        "README's settings table is stale: paste the output of `gridline settings`"
    )


def test_every_setting_has_a_description() -> None:
    missing = [name for name, f in Settings.model_fields.items() if not f.description]
    assert not missing


def test_production_refuses_development_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each service checks the keys it uses when it starts (tests/security/test_production.py).
    monkeypatch.setenv("GRIDLINE_ENV", "production")
    problems = production_problems(Settings(), "intake", has_public_routes=True)
    assert "GRIDLINE_PERSON_KEY_SECRET is the built-in development value" in problems


def test_environment_variables_override_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLINE_KAFKA_BOOTSTRAP", "kafka-1:9092,kafka-2:9092")
    monkeypatch.setenv("GRIDLINE_KAFKA_IDEMPOTENCE", "false")
    settings = Settings()
    assert settings.kafka_bootstrap == "kafka-1:9092,kafka-2:9092"
    assert settings.kafka_idempotence is False
