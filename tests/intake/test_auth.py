"""Integrator authentication: signed requests, stale or replayed ones, revoked keys, scopes."""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gridline.embedded import EmbeddedBroker
from services.intake.integrators import IntegratorRegistry, IssuedKey
from services.intake.signing import sign, signed_headers
from tests.intake.conftest import running_intake
from tests.intake.samples import CHECKPOINT_SCAN, FEED_RECORD


@pytest.fixture
async def intake(
    broker: EmbeddedBroker, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, IntegratorRegistry]]:
    """Intake requiring signatures, and its integrator registry."""
    async with running_intake(broker.bootstrap, tmp_path, intake_require_signatures=True) as (
        http,
        app,
    ):
        yield http, app.state.integrators


async def post_signed(
    client: httpx.AsyncClient,
    key: IssuedKey,
    path: str,
    body: Any,
    *,
    timestamp: float | None = None,
    nonce: str | None = None,
    tamper: bool = False,
) -> httpx.Response:
    """Post `body` signed with `key` (optionally stale, with a given nonce, or tampered)."""
    raw = json.dumps(body).encode()
    headers = signed_headers(
        key.key_id,
        key.secret,
        "POST",
        path,
        raw,
        int(timestamp if timestamp is not None else time.time()),
        nonce or secrets.token_hex(12),
    )
    sent = raw.replace(b"13812345678", b"13812345679") if tamper else raw
    return await client.post(
        path, content=sent, headers={**headers, "Content-Type": "application/json"}
    )


def feed_record() -> dict[str, Any]:
    return {**FEED_RECORD, "source_record_id": f"auth-{secrets.token_hex(6)}"}


async def test_signed_requests_are_accepted_and_unsigned_refused(
    intake: tuple[httpx.AsyncClient, IntegratorRegistry],
) -> None:
    client, registry = intake
    key = await registry.create("兰州健康码平台", ["health_code_feed"])
    unsigned = await client.post("/v1/reports", json=feed_record())
    assert unsigned.status_code == 401
    assert unsigned.json()["rule"] == "signature.missing"
    assert "请求未签名" in unsigned.json()["detail"]
    assert unsigned.headers["WWW-Authenticate"] == "Gridline-HMAC"
    signed = await post_signed(client, key, "/v1/reports", feed_record())
    assert signed.status_code == 202, signed.text
    batch = await post_signed(client, key, "/v1/reports:batch", {"records": [feed_record()]})
    assert batch.status_code == 200
    assert batch.json()["counts"] == {"accepted": 1}


@pytest.mark.parametrize(
    ("change", "rule", "reason"),
    [
        ({"tamper": True}, "signature.mismatch", "签名与请求不符"),
        # Clock offsets, applied when the test runs (not when it is collected).
        ({"timestamp_offset": -301}, "signature.timestamp_skew", "±5分钟"),
        ({"timestamp_offset": 400}, "signature.timestamp_skew", "±5分钟"),
        ({"nonce": "short"}, "signature.nonce_format", "8～64位"),
    ],
)
async def test_bad_signatures_get_401_with_the_reason(
    intake: tuple[httpx.AsyncClient, IntegratorRegistry],
    change: dict[str, Any],
    rule: str,
    reason: str,
) -> None:
    client, registry = intake
    key = await registry.create("feed", ["health_code_feed"])
    if "timestamp_offset" in change:
        change = {"timestamp": time.time() + change["timestamp_offset"]}
    refused = await post_signed(client, key, "/v1/reports", feed_record(), **change)
    assert refused.status_code == 401
    assert refused.json()["rule"] == rule
    assert reason in refused.json()["detail"]


async def test_a_signature_for_another_path_is_refused(
    intake: tuple[httpx.AsyncClient, IntegratorRegistry],
) -> None:
    client, registry = intake
    key = await registry.create("feed", ["health_code_feed"])
    raw = json.dumps({"records": [feed_record()]}).encode()
    headers = signed_headers(
        key.key_id, key.secret, "POST", "/v1/reports", raw, int(time.time()), "nonce-path-1"
    )
    refused = await client.post("/v1/reports:batch", content=raw, headers=headers)
    assert refused.status_code == 401
    assert refused.json()["rule"] == "signature.mismatch"


async def test_a_replayed_nonce_gets_401(
    intake: tuple[httpx.AsyncClient, IntegratorRegistry],
) -> None:
    client, registry = intake
    key = await registry.create("feed", ["health_code_feed"])
    record = feed_record()
    first = await post_signed(client, key, "/v1/reports", record, nonce="nonce-once-0001")
    replayed = await post_signed(client, key, "/v1/reports", record, nonce="nonce-once-0001")
    assert first.status_code == 202
    assert replayed.status_code == 401
    assert replayed.json()["rule"] == "signature.nonce_reused"
    assert "已用过" in replayed.json()["detail"]


async def test_a_replayed_batch_gets_401_and_produces_nothing_more(
    intake: tuple[httpx.AsyncClient, IntegratorRegistry],
) -> None:
    client, registry = intake
    key = await registry.create("feed", ["health_code_feed"])
    body = {"records": [feed_record(), feed_record()]}
    first = await post_signed(client, key, "/v1/reports:batch", body, nonce="nonce-batch-0001")
    replayed = await post_signed(client, key, "/v1/reports:batch", body, nonce="nonce-batch-0001")
    assert first.json()["counts"] == {"accepted": 2}
    assert replayed.status_code == 401
    assert replayed.json()["rule"] == "signature.nonce_reused"


async def test_revoked_keys_and_integrators_stop_at_once(
    intake: tuple[httpx.AsyncClient, IntegratorRegistry],
) -> None:
    client, registry = intake
    key = await registry.create("feed", ["health_code_feed"])
    assert (await post_signed(client, key, "/v1/reports", feed_record())).status_code == 202
    await registry.revoke_key(key.key_id)
    refused = await post_signed(client, key, "/v1/reports", feed_record())
    assert refused.status_code == 401
    assert refused.json()["rule"] == "signature.key_unknown"
    assert "不存在或已吊销" in refused.json()["detail"]

    other = await registry.create("other", ["health_code_feed"])
    assert (await post_signed(client, other, "/v1/reports", feed_record())).status_code == 202
    await registry.revoke(other.integrator_id)
    assert (await post_signed(client, other, "/v1/reports", feed_record())).status_code == 401


async def test_a_key_without_the_scope_gets_403(
    intake: tuple[httpx.AsyncClient, IntegratorRegistry],
) -> None:
    client, registry = intake
    key = await registry.create("checkpoints only", ["checkpoint_scan"])
    single = await post_signed(client, key, "/v1/reports", feed_record())
    assert single.status_code == 403
    assert single.json()["rule"] == "source.not_allowed"
    assert f"密钥 {key.key_id} 无权推送数据来源 health_code_feed" in single.json()["detail"]
    batch = await post_signed(
        client, key, "/v1/reports:batch", {"records": [CHECKPOINT_SCAN, feed_record()]}
    )
    assert batch.status_code == 403
    allowed = await post_signed(client, key, "/v1/reports", CHECKPOINT_SCAN)
    assert allowed.status_code == 202


async def test_rotation_keeps_two_keys_working_then_retires_the_oldest(
    intake: tuple[httpx.AsyncClient, IntegratorRegistry],
) -> None:
    client, registry = intake
    first = await registry.create("feed", ["health_code_feed"])
    second = await registry.rotate(first.integrator_id)
    for key in (first, second):
        assert (await post_signed(client, key, "/v1/reports", feed_record())).status_code == 202
    third = await registry.rotate(first.integrator_id)
    assert (await post_signed(client, first, "/v1/reports", feed_record())).status_code == 401
    for key in (second, third):
        assert (await post_signed(client, key, "/v1/reports", feed_record())).status_code == 202
    [view] = [v for v in await registry.list() if v.integrator_id == first.integrator_id]
    assert view.active_keys == [second.key_id, third.key_id]


async def test_only_hashes_of_keys_are_stored(
    intake: tuple[httpx.AsyncClient, IntegratorRegistry], tmp_path: Path
) -> None:
    _, registry = intake
    key = await registry.create("feed", ["health_code_feed"])
    with sqlite3.connect(tmp_path / "intake.db") as db:
        dump = "\n".join(db.iterdump())
    assert key.key_id in dump
    assert key.secret not in dump


def test_every_part_of_the_request_is_signed() -> None:
    parts = ("POST", "/v1/reports", "1643366400", "nonce-0001", b"{}")
    original = sign("secret", *parts)
    for index, changed in enumerate(
        ("PUT", "/v1/reports:batch", "1643366401", "nonce-0002", b"[]")
    ):
        altered = list(parts)
        altered[index] = changed
        assert sign("secret", *altered) != original  # type: ignore[arg-type]
    assert sign("other", *parts) != original
