"""Fixtures shared by the suite: the real embedded broker, databases and a loopback webhook."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from gridline.embedded import EmbeddedBroker

# Given by CI (and by anyone with the servers): the suite then also runs on them.
POSTGRES_URL = os.environ.get("GRIDLINE_TEST_POSTGRES_URL", "")
REDIS_URL = os.environ.get("GRIDLINE_TEST_REDIS_URL", "")


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """One real Kafka-protocol broker (tansu, in memory) for the session."""
    embedded = EmbeddedBroker(log_path=tmp_path_factory.mktemp("broker") / "broker.log")
    embedded.start()
    yield embedded
    embedded.stop()


@pytest.fixture
def topic_name() -> str:
    """A topic name no other test uses."""
    return f"test.{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for each test module, dropped afterwards (needs the URL)."""
    if not POSTGRES_URL:
        pytest.skip("GRIDLINE_TEST_POSTGRES_URL is not set")
    name = f"gridline_test_{uuid.uuid4().hex[:10]}"
    admin_url = make_url(POSTGRES_URL).set(drivername="postgresql")

    async def admin(statement: str) -> None:
        conn = await asyncpg.connect(admin_url.render_as_string(hide_password=False))
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield admin_url.set(database=name).render_as_string(hide_password=False)
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class ReceivedRequest:
    """One request the loopback webhook received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class WebhookServer:
    """A loopback HTTP server standing in for a chat-group webhook."""

    url: str
    received: list[ReceivedRequest] = field(default_factory=list)

    def for_report(self, report_id: str) -> list[ReceivedRequest]:
        """Requests about one report."""
        return [r for r in self.received if r.body.get("report_id") == report_id]


@pytest.fixture(scope="module")
def webhook() -> Iterator[WebhookServer]:
    """Accepts JSON POSTs on /hooks/<group> and keeps them; anything else is refused."""
    lock = threading.Lock()
    server_state = WebhookServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            if not self.path.startswith("/hooks/") or self.headers.get_content_type() != (
                "application/json"
            ):
                self.send_response(400)
                self.end_headers()
                return
            with lock:
                server_state.received.append(
                    ReceivedRequest(self.path, dict(self.headers.items()), json.loads(raw))
                )
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok":true}')

        def log_message(self, *_: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield server_state
    httpd.shutdown()
    httpd.server_close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what the quick loop leaves out: whole-platform tests and tests on the real broker."""
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        if "e2e" in item.path.parts:
            item.add_marker(pytest.mark.e2e)
        # Any broker of its own (a crash test's, a paused one) or a running platform counts.
        if any("broker" in name or "platform" in name for name in item.fixturenames):
            item.add_marker(pytest.mark.broker)
