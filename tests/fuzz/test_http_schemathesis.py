"""Schemathesis against every operation of all four services: no 5xx, no hang (issue 14).

The real apps, started once for the module (the access matrix's, plus intake in development
mode, where integrators may post unsigned), each reached through schemathesis's ASGI transport.
Every operation of each service's OpenAPI document gets `EXAMPLES` generated requests, valid
and invalid ones, sent with a staff token of the county office (or, for the one route the
county office may not use, the token the access matrix uses for it); half of the path
parameters are identifiers that exist, so that the handlers behind "not found" are fuzzed too.
Each request must answer within `CALL_TIMEOUT_SECONDS` and not with a 5xx.

Operations are enumerated from the documents the apps build, so a new route is fuzzed too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import max_response_time, not_a_server_error
from schemathesis.python import asgi

from gridline.settings import Settings
from gridline.staff.roles import Role
from tests.fuzz.conftest import CALL_TIMEOUT_SECONDS, Known, OnLoop, fuzz_settings
from tests.intake.local import started
from tests.intake.test_edges_of_every_service import BODIES
from tests.staff.test_access_matrix import APPS, HTTP, Ctx
from tests.staff.tokens import bearer

# Generated requests per operation (22 operations today; about 25 ms each on this machine).
EXAMPLES = 30

CONFIG = schemathesis.Config.from_dict({"checks": {"max_response_time": CALL_TIMEOUT_SECONDS}})

# The county office may do everything an office does; a zero-report is a grid's own filing,
# sent with the token the access matrix uses for it.
ZERO_REPORT = ("post", "/v1/zero-reports")
WHO: dict[tuple[str, str, str], tuple[Role, str]] = {
    ("escalation", *ZERO_REPORT): HTTP["escalation"][ZERO_REPORT][0].right,
}


# A valid body of each route that reads one (the odd-input test's), with the grid and household
# of this module's county: generated fields laid over it reach past the first refusal.
OUR_NODES = {"grid_id": "gA", "node_id": "hA3"}
VALID_BODIES: dict[tuple[str, str, str], dict[str, Any]] = {
    (service, method, path): {**body, **{k: v for k, v in OUR_NODES.items() if k in body}}
    for service, routes in BODIES.items()
    for (method, path), body in routes.items()
    if body
}


class Bridge:
    """The ASGI app schemathesis calls (on the event loop thread of its ASGI transport): each
    request is handed to the started app on the test's loop, where the app's database, Redis
    and gRPC clients live, and its answer handed back. Schemathesis's timeout cancels the
    request on the test's loop too."""

    def __init__(self, client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.loop = loop

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Any],
        send: Callable[[dict[str, Any]], Any],
    ) -> None:
        if scope["type"] == "lifespan":
            # The fixture started the app; there is nothing to start or stop here.
            while True:
                message = await receive()
                await send({"type": f"{message['type']}.complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        url = httpx.URL(
            f"http://service{scope['raw_path'].decode('latin-1')}",
            query=scope["query_string"],
        )
        # httpx sets its own Host and Content-Length for the body it sends.
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"host", b"content-length")]
        request = self.client.build_request(
            scope["method"], url, headers=headers, content=bytes(body)
        )
        sent = asyncio.run_coroutine_threadsafe(self.client.send(request), self.loop)
        response = await asyncio.wrap_future(sent)
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": response.headers.raw,
            }
        )
        await send({"type": "http.response.body", "body": response.content})


@dataclass(frozen=True)
class Service:
    """A started service as schemathesis sees it, and the headers its requests carry."""

    schema: Any  # schemathesis's OpenApiSchema
    headers: Callable[[str, str], dict[str, str]]


def documented() -> Iterator[tuple[str, str, str]]:
    """(service, method, path) of every operation the apps document; built without starting
    them (the document does not depend on the data directory)."""
    for service, create_app in APPS.items():
        document = create_app(Settings()).openapi()
        for path, methods in document["paths"].items():
            for method in methods:
                yield service, method, path


@pytest.fixture(scope="module")
async def services(ctx: Ctx, known: Known, on_loop: OnLoop) -> AsyncIterator[dict[str, Service]]:
    # Intake in development mode (unsigned posts allowed), asking the started Directory and
    # Tasks; its own per-address rate is left as configured (a 429 is an answer, not a 5xx).
    settings = ctx.settings.model_copy(
        update={
            "env": "development",
            "intake_require_signatures": None,
            "tasks_target": f"127.0.0.1:{ctx.settings.tasks_grpc_port}",
        }
    )
    async with AsyncExitStack() as stack:
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        intake_http, _, _ = await stack.enter_async_context(
            started(APPS["intake"], settings, patch)
        )
        clients = {**ctx.http, "intake": intake_http}

        def headers_for(service: str) -> Callable[[str, str], dict[str, str]]:
            def headers(method: str, path: str) -> dict[str, str]:
                who = WHO.get((service, method, path), (Role.COUNTY_OFFICE, "c"))
                return bearer(ctx.data_dir, *who)

            return headers

        found = {}
        for service, client in clients.items():
            bridge = Bridge(client, on_loop.loop)
            # Loading asks the bridge, which needs this loop: off the loop, then.
            schema = await asyncio.to_thread(
                schemathesis.openapi.from_asgi, "/openapi.json", bridge, config=CONFIG
            )
            found[service] = Service(schema, headers_for(service))
        try:
            yield found
        finally:
            # Only the bridges' (empty) lifespans: schemathesis keeps them until exit otherwise.
            await asyncio.to_thread(asgi.shutdown_lifespans)


@pytest.mark.parametrize(("service", "method", "path"), list(documented()))
async def test_no_server_error_and_no_hang(
    services: dict[str, Service], known: Known, service: str, method: str, path: str
) -> None:
    target = services[service]
    operation = target.schema[path][method]
    headers = target.headers(method, path)
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )
    valid = VALID_BODIES.get((service, method, path))

    @fuzz_settings(EXAMPLES)
    @given(case=cases, data=st.data())
    def fuzz(case: schemathesis.Case[Any], data: st.DataObject) -> None:
        for name in list(case.path_parameters or {}):
            if data.draw(st.booleans(), label=f"existing {name}"):
                case.path_parameters[name] = data.draw(
                    st.sampled_from(known.for_name(name)), label=name
                )
        if valid and isinstance(case.body, dict) and data.draw(st.booleans(), label="over valid"):
            names = st.sets(st.sampled_from(sorted(case.body))) if case.body else st.just(set())
            fields = data.draw(names, label="fields")
            case.body = {**valid, **{name: case.body[name] for name in fields}}
        case.call_and_validate(
            headers=headers,
            checks=[not_a_server_error, max_response_time],
            timeout=CALL_TIMEOUT_SECONDS,
        )

    await asyncio.to_thread(fuzz)


def test_every_service_is_fuzzed() -> None:
    """The four services, each with operations (an empty document would fuzz nothing)."""
    services = {service for service, _, _ in documented()}
    assert services == {"intake", "assignment", "escalation", "notify"}


async def test_an_offset_past_what_sql_takes_is_refused(ctx: Ctx) -> None:
    """Found by this module: an offset over 2**63 - 1 reached SQLite and was a 500."""
    headers = bearer(ctx.data_dir, Role.COUNTY_OFFICE, "c")
    answer = await ctx.http["escalation"].get("/v1/tasks?offset=" + "9" * 27, headers=headers)
    assert answer.status_code == 422, answer.text
    largest = await ctx.http["escalation"].get(f"/v1/tasks?offset={2**63 - 1}", headers=headers)
    assert largest.status_code == 200, largest.text
