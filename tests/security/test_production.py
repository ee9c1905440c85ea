"""Production refuses to start on unsafe settings, listing every problem at once; each service
checks only the keys it uses, and those are the keys its code reads."""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from gridline.http import run_service, service_app
from gridline.production import (
    SERVICE_SECRETS,
    ProductionRefused,
    production_problems,
    refuse_unsafe_production,
)
from gridline.settings import SERVICES, ServiceName, Settings

SERVICES_DIR = Path(__file__).resolve().parents[2] / "services"


def _key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _safe(**overrides: object) -> Settings:
    """Production settings a county could run on."""
    values: dict[str, object] = {
        "env": "production",
        "person_key_secret": secrets.token_urlsafe(32),
        "pii_key": _key(),
        "intake_api_key_secret": secrets.token_urlsafe(32),
        "task_link_key": secrets.token_urlsafe(32),
        "database_url": "postgresql://gridline_intake:s3cret-pass@postgres.postgres/gridline",
        "redis_url": "redis://redis.redis:6379/0",
        "notify_inbox_enabled": False,
        "staff_oidc_issuer": "https://login.county.example/realms/gridline",
        "staff_oidc_jwks_url": "https://login.county.example/realms/gridline/certs",
        **{f"{service}_staff_http_port": 9000 + n for n, service in enumerate(SERVICES)},
    }
    return Settings(**(values | overrides))  # type: ignore[arg-type]


@pytest.mark.parametrize("service", SERVICES)
def test_a_safe_production_starts(service: ServiceName) -> None:
    refuse_unsafe_production(_safe(), service, has_public_routes=True)


def test_development_refuses_nothing() -> None:
    for service in SERVICES:
        assert production_problems(Settings(), service, has_public_routes=True) == []


def test_every_problem_is_listed_at_once() -> None:
    settings = Settings(env="production", intake_api_key_secret="changeme")
    with pytest.raises(ProductionRefused) as refused:
        refuse_unsafe_production(settings, "intake", has_public_routes=True)
    assert refused.value.problems == [
        "GRIDLINE_PERSON_KEY_SECRET is the built-in development value",
        "GRIDLINE_PII_KEY is the built-in development value",
        "GRIDLINE_INTAKE_API_KEY_SECRET is a placeholder, not a secret",
        "GRIDLINE_DATABASE_URL is not PostgreSQL: each process would keep its own SQLite file "
        "(allow with GRIDLINE_PRODUCTION_ALLOW=sqlite)",
        "GRIDLINE_REDIS_URL is empty: each process would run its own Valkey, so replicas would "
        "share no limits or keys (allow with GRIDLINE_PRODUCTION_ALLOW=embedded-valkey)",
        "GRIDLINE_STAFF_OIDC_ISSUER is empty: staff tokens would be checked against a key in "
        "each pod's data directory, so no pod would accept another's tokens; configure the "
        "county's identity provider (allow with GRIDLINE_PRODUCTION_ALLOW=local-issuer)",
        "GRIDLINE_INTAKE_STAFF_HTTP_PORT is empty: the staff routes would be served on the "
        "public listener (allow with GRIDLINE_PRODUCTION_ALLOW=shared-listener)",
    ]
    message = str(refused.value)
    assert message.startswith("intake refuses to start with GRIDLINE_ENV=production:")
    assert all(problem in message for problem in refused.value.problems)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("<long random string>", "is a placeholder, not a secret"),
        ("CHANGE-ME", "is a placeholder, not a secret"),
        ("password", "is a placeholder, not a secret"),
        ("short-but-real", "is shorter than 16 characters"),
    ],
)
def test_secrets_that_are_no_secrets(value: str, problem: str) -> None:
    problems = production_problems(_safe(task_link_key=value), "escalation", has_public_routes=True)
    assert problems == [f"GRIDLINE_TASK_LINK_KEY {problem}"]


def test_each_service_checks_only_its_own_keys() -> None:
    # Assignment and escalation never hold the person key, intake never the task-link key.
    settings = _safe(person_key_secret="", intake_api_key_secret="", task_link_key="")
    assert production_problems(settings, "notify", has_public_routes=False) == []
    assert production_problems(settings, "assignment", has_public_routes=False) == [
        "GRIDLINE_TASK_LINK_KEY is empty"
    ]
    # Assignment keeps the sealed person data: a bad PII key is its problem too.
    assert production_problems(_safe(pii_key=""), "assignment", has_public_routes=False) == [
        "GRIDLINE_PII_KEY is empty"
    ]
    assert production_problems(settings, "intake", has_public_routes=True) == [
        "GRIDLINE_PERSON_KEY_SECRET is empty",
        "GRIDLINE_INTAKE_API_KEY_SECRET is empty",
    ]


def test_the_pii_key_ring_is_checked_key_by_key() -> None:
    ring = f"k2:{_key()},k1:{_key()}"
    # With a ring, the legacy GRIDLINE_PII_KEY may stay the development value (it is left out).
    settings = _safe(pii_keys=ring, pii_key=Settings().pii_key.get_secret_value())
    assert production_problems(settings, "intake", has_public_routes=True) == []
    broken = _safe(pii_key="<urlsafe base64 of 32 random bytes>")
    assert production_problems(broken, "notify", has_public_routes=False) == [
        "GRIDLINE_PII_KEY is a placeholder, not a secret"
    ]
    assert production_problems(
        _safe(pii_key="long-enough-but-no-key"), "notify", has_public_routes=False
    ) == ["GRIDLINE_PII_KEY is not urlsafe base64 of 32 bytes"]


def test_refusals_are_waived_one_by_one_but_never_secrets() -> None:
    trial = _safe(
        database_url="",
        redis_url="",
        notify_inbox_enabled=True,
        notify_staff_http_port=None,
        pii_key=SecretStr(""),
    )
    notify = production_problems(trial, "notify", has_public_routes=True)
    assert [problem.split(" ", 1)[0] for problem in notify] == [
        "GRIDLINE_PII_KEY",
        "GRIDLINE_DATABASE_URL",
        "GRIDLINE_REDIS_URL",
        "GRIDLINE_NOTIFY_INBOX_ENABLED:",
        "GRIDLINE_NOTIFY_STAFF_HTTP_PORT",
    ]
    waived = trial.model_copy(
        update={"production_allow": "sqlite, embedded-valkey,inbox,shared-listener,secrets"}
    )
    assert production_problems(waived, "notify", has_public_routes=True) == [
        "GRIDLINE_PRODUCTION_ALLOW names secrets, which it cannot waive (it can: sqlite, "
        "embedded-valkey, inbox, shared-listener, local-issuer)",
        "GRIDLINE_PII_KEY is empty",
    ]


def test_a_service_without_public_routes_needs_no_staff_port() -> None:
    settings = _safe(assignment_staff_http_port=None)
    assert production_problems(settings, "assignment", has_public_routes=False) == []


def test_kafka_logins_and_database_placeholders_are_refused() -> None:
    settings = _safe(
        kafka_security_protocol="SASL_SSL",
        database_url="postgresql://gridline_notify:<password>@postgres.postgres:5432/gridline",
    )
    assert production_problems(settings, "notify", has_public_routes=False) == [
        "GRIDLINE_KAFKA_SASL_PASSWORD is empty",
        "GRIDLINE_DATABASE_URL holds a placeholder (`<...>`)",
    ]


def test_the_process_exits_before_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLINE_ENV", "production")
    # The process's logging setup would outlive the test.
    monkeypatch.setattr("gridline.http.configure_logging", lambda *_: None)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        raise AssertionError("never started")
        yield

    def create_app(_: Settings) -> FastAPI:
        return service_app(title="t", version="1", lifespan=lifespan, max_body_bytes=1)

    with pytest.raises(SystemExit) as exited:
        run_service("escalation", create_app)
    assert "GRIDLINE_TASK_LINK_KEY is the built-in development value" in str(exited.value.code)


# What in a service's code reads each secret: the setting itself, or the helper reading it.
_READERS = {
    "Sealer.from_settings": "pii_key",
    "PageLinks.from_settings": "task_link_key",
}
# Secrets that are the infrastructure's, not a purpose's: every service may get its own.
_NOT_KEYS = {"kafka_sasl_password", "pii_keys"}


@pytest.mark.parametrize("service", SERVICES)
def test_the_keys_of_each_service_are_those_its_code_reads(service: ServiceName) -> None:
    keys = {
        name
        for name, field in Settings.model_fields.items()
        if field.annotation is SecretStr and name not in _NOT_KEYS
    }
    read: set[str] = set()
    for path in (SERVICES_DIR / service).rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        read |= keys & set(re.findall(r"settings\.(\w+)", text))
        read |= {key for reader, key in _READERS.items() if reader in text}
    assert read == set(SERVICE_SECRETS[service]), (
        "gridline/production.py SERVICE_SECRETS (and each service's Secret in deploy/) must "
        "name exactly the keys the service reads"
    )
