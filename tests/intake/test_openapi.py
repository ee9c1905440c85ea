"""Schemathesis against intake's own OpenAPI: no 5xx, and every response as documented."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gridline.embedded import EmbeddedBroker
from gridline.settings import Settings
from services.intake.app import create_app
from tests.intake.conftest import empty_owning_services, intake_process


@pytest.fixture(scope="module")
def intake_url(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One intake process on loopback, asking owning services that know no report."""
    with (
        empty_owning_services() as target,
        intake_process(
            broker.bootstrap,
            tmp_path_factory.mktemp("intake-openapi"),
            GRIDLINE_DIRECTORY_TARGET=target,
            GRIDLINE_TASKS_TARGET=target,
        ) as url,
    ):
        yield url


# The document the app serves, built without starting it; the cases run against a live process.
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi())


@schema.parametrize()
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_server_error_and_every_response_as_documented(
    case: schemathesis.Case[Any], intake_url: str
) -> None:
    case.call_and_validate(
        base_url=intake_url,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            response_headers_conformance,
        ],
        timeout=30,
    )
