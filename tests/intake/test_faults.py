"""Intake under faults and abuse: Redis down, integrators sharing keys and record ids, guessed
key ids, and client addresses behind a proxy. The real app on real Redis and SQLite."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gridline.embedded import EmbeddedValkey
from gridline.settings import Settings
from services.intake.app import create_app
from services.intake.integrators import IntegratorRegistry, IssuedKey
from services.intake.signing import signed_headers
from tests.intake.conftest import empty_owning_services
from tests.intake.local import started
from tests.intake.samples import FEED_RECORD, VALID_REPORT


@pytest.fixture
def valkey() -> Iterator[EmbeddedValkey]:
    """A Valkey the test may stop."""
    server = EmbeddedValkey()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def owners() -> Iterator[str]:
    """Directory and Tasks that know no report, so status reads answer at once."""
    with empty_owning_services() as target:
        yield target


def settings_for(tmp_path: Path, valkey: EmbeddedValkey, **overrides: Any) -> Settings:
    return Settings(data_dir=tmp_path, redis_url=valkey.url, **overrides)


def signed(key: IssuedKey, method: str, path: str, body: bytes = b"") -> dict[str, str]:
    headers = signed_headers(
        key.key_id, key.secret, method, path, body, int(time.time()), secrets.token_hex(8)
    )
    return {**headers, "Content-Type": "application/json"}


async def post_report(
    client: httpx.AsyncClient, key: IssuedKey, record: dict[str, Any], idempotency_key: str
) -> httpx.Response:
    body = json.dumps(record).encode()
    headers = {**signed(key, "POST", "/v1/reports", body), "Idempotency-Key": idempotency_key}
    return await client.post("/v1/reports", content=body, headers=headers)


async def test_redis_down_is_a_503_in_chinese_with_retry_after(
    tmp_path: Path, valkey: EmbeddedValkey, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with started(create_app, settings_for(tmp_path, valkey), monkeypatch) as (
        client,
        _,
        producer,
    ):
        assert (await client.post("/v1/reports", json=FEED_RECORD)).status_code == 202
        valkey.stop()
        answers = [
            await client.post("/v1/reports", json={**FEED_RECORD, "source_record_id": "r-2"}),
            await client.post("/v1/reports:batch", json={"records": [FEED_RECORD]}),
            await client.get("/v1/reports/some-report"),
            await client.post("/report", json=VALID_REPORT),
        ]
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"] == "5"
        assert answer.json()["rule"] == "redis.unavailable"
        assert "暂时无法连接缓存服务" in answer.json()["detail"]
    assert len(producer.records) == 1  # nothing was taken while Redis was down


async def test_keys_and_record_ids_are_each_integrators_own_and_so_are_status_reads(
    tmp_path: Path, valkey: EmbeddedValkey, owners: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(tmp_path, valkey, directory_target=owners, tasks_target=owners)
    async with started(create_app, settings, monkeypatch) as (client, app, producer):
        registry: IntegratorRegistry = app.state.integrators
        first = await registry.create("兰州健康码", ["health_code_feed"])
        second = await registry.create("皋兰卡口", ["health_code_feed"])

        # The second integrator sends the same record id under the same Idempotency-Key first:
        # it pre-empts nothing of the first's.
        theirs = await post_report(client, second, FEED_RECORD, "batch-0128")
        mine = await post_report(client, first, FEED_RECORD, "batch-0128")
        again = await post_report(client, first, FEED_RECORD, "batch-0128")
        assert [a.status_code for a in (theirs, mine, again)] == [202, 202, 202]
        assert not theirs.json()["replayed"] and not mine.json()["replayed"]
        assert again.json() == {**mine.json(), "replayed": True}
        assert theirs.json()["report_id"] != mine.json()["report_id"]
        assert len(producer.records) == 2

        report = mine.json()["report_id"]
        path = f"/v1/reports/{report}"
        own = await client.get(path, headers=signed(first, "GET", path))
        other = await client.get(path, headers=signed(second, "GET", path))
        assert own.status_code == 200 and own.json()["source"] == "health_code_feed"
        assert other.status_code == 404


async def test_unknown_keys_are_limited_per_address_before_any_database_query(
    tmp_path: Path, valkey: EmbeddedValkey, monkeypatch: pytest.MonkeyPatch
) -> None:
    queries: list[str] = []
    ask = IntegratorRegistry.caller

    async def counted(self: IntegratorRegistry, key_id: str) -> object:
        queries.append(key_id)
        return await ask(self, key_id)

    monkeypatch.setattr(IntegratorRegistry, "caller", counted)
    settings = settings_for(tmp_path, valkey, intake_unknown_keys_per_minute=3)
    guessed = IssuedKey("int_x", "key_0000000000000000", "secret")

    async def guess(client: httpx.AsyncClient, key_id: str) -> httpx.Response:
        key = IssuedKey(guessed.integrator_id, key_id, guessed.secret)
        body = json.dumps(FEED_RECORD).encode()
        return await client.post(
            "/v1/reports", content=body, headers=signed(key, "POST", "/v1/reports", body)
        )

    async with started(create_app, settings, monkeypatch, client=("198.51.100.7", 4000)) as (
        client,
        app,
        _,
    ):
        # A repeated unknown key is answered from memory; a key id of no issued shape is never
        # looked up. Each counts against the address all the same.
        answers = [
            await guess(client, "key_aaaaaaaaaaaaaaaa"),
            await guess(client, "key_aaaaaaaaaaaaaaaa"),
            await guess(client, "key_" + "0" * 100),
        ]
        assert [a.status_code for a in answers] == [401, 401, 401]
        assert queries == ["key_aaaaaaaaaaaaaaaa"]
        refused = await guess(client, "key_bbbbbbbbbbbbbbbb")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.json()["rule"] == "rate_limit.unknown_keys"
        assert "使用未知或已停用密钥的请求过多" in refused.json()["detail"]
        assert queries == ["key_aaaaaaaaaaaaaaaa"]  # refused before the database was asked

        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as elsewhere:
            assert (await guess(elsewhere, "key_cccccccccccccccc")).status_code == 401
        assert queries[-1] == "key_cccccccccccccccc"


async def test_behind_a_trusted_proxy_each_resident_has_their_own_self_report_allowance(
    tmp_path: Path, valkey: EmbeddedValkey, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(
        tmp_path, valkey, trusted_proxies="10.0.0.0/8", intake_self_report_per_hour=1
    )

    def from_(address: str) -> dict[str, str]:
        # What the proxy appends last is the address it saw; what the client wrote comes first.
        return {"X-Forwarded-For": f"192.0.2.1, {address}"}

    async with started(create_app, settings, monkeypatch, client=("10.1.2.3", 4000)) as (
        proxy,
        app,
        _,
    ):
        assert (
            await proxy.post("/report", json={}, headers=from_("203.0.113.5"))
        ).status_code == 422
        limited = await proxy.post("/report", json={}, headers=from_("203.0.113.5"))
        assert limited.status_code == 429
        other = await proxy.post("/report", json={}, headers=from_("203.0.113.6"))
        assert other.status_code == 422

        # Anyone else writing the header is not believed: the peer is the client.
        transport = httpx.ASGITransport(app=app, client=("198.51.100.20", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as direct:
            headers = from_("203.0.113.7")
            assert (await direct.post("/report", json={}, headers=headers)).status_code == 422
            headers = from_("203.0.113.8")
            assert (await direct.post("/report", json={}, headers=headers)).status_code == 429


async def test_signature_headers_in_other_scripts_are_refused_not_a_500(
    tmp_path: Path, valkey: EmbeddedValkey, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with started(create_app, settings_for(tmp_path, valkey), monkeypatch) as (
        client,
        app,
        _,
    ):
        key = await app.state.integrators.create("兰州健康码", ["health_code_feed"])
        body = json.dumps(FEED_RECORD).encode()
        good = signed(key, "POST", "/v1/reports", body)
        # Header bytes are read as Latin-1: 0xB2 is `²`, a digit to str.isdigit.
        for name, value in (
            ("X-Gridline-Timestamp", b"\xb2"),
            ("X-Gridline-Signature", b"\xb2" * 64),
        ):
            odd = {**{k.encode(): v.encode() for k, v in good.items()}, name.encode(): value}
            answer = await client.post("/v1/reports", content=body, headers=odd)
            assert answer.status_code == 401, (name, answer.text)
