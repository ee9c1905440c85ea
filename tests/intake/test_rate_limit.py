"""Per-integrator (and, unsigned, per-address) token buckets in Redis: 429 with Retry-After."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

from gridline.embedded import EmbeddedBroker
from services.intake.signing import signed_headers
from tests.intake.conftest import running_intake
from tests.intake.samples import FEED_RECORD


def record() -> dict[str, str]:
    return {**FEED_RECORD, "source_record_id": f"rl-{secrets.token_hex(6)}"}


async def test_each_caller_has_its_own_bucket(broker: EmbeddedBroker, tmp_path: Path) -> None:
    async with running_intake(
        broker.bootstrap, tmp_path, intake_rate_per_second=0.2, intake_rate_burst=3
    ) as (client, app):
        answers = [(await client.post("/v1/reports", json=record())).status_code for _ in range(3)]
        assert answers == [202, 202, 202]
        refused = await client.post("/v1/reports", json=record())
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 5
        assert refused.json()["rule"] == "rate_limit.exceeded"
        assert "超出调用频率上限" in refused.json()["detail"]

        key = await app.state.integrators.create("feed", ["health_code_feed"])
        body = json.dumps({"records": [record(), record()]}).encode()
        headers = signed_headers(
            key.key_id, key.secret, "POST", "/v1/reports:batch", body, int(time.time()),
            secrets.token_hex(8),
        )  # fmt: skip
        batch = await client.post(
            "/v1/reports:batch",
            content=body,
            headers={**headers, "Content-Type": "application/json"},
        )
        assert batch.status_code == 200, batch.text
        assert batch.json()["counts"] == {"accepted": 2}


async def test_a_batch_costs_one_token_per_record(broker: EmbeddedBroker, tmp_path: Path) -> None:
    async with running_intake(
        broker.bootstrap, tmp_path, intake_rate_per_second=0.2, intake_rate_burst=3
    ) as (client, _):
        too_many = await client.post(
            "/v1/reports:batch", json={"records": [record() for _ in range(4)]}
        )
        assert too_many.status_code == 429
        fits = await client.post(
            "/v1/reports:batch", json={"records": [record() for _ in range(3)]}
        )
        assert fits.status_code == 200
        assert fits.json()["counts"] == {"accepted": 3}


async def test_a_signed_request_refused_for_its_rate_spends_its_nonce(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    async with running_intake(
        broker.bootstrap, tmp_path, intake_rate_per_second=0.2, intake_rate_burst=1
    ) as (client, app):
        key = await app.state.integrators.create("feed", ["health_code_feed"])

        async def post(nonce: str) -> int:
            body = json.dumps(record()).encode()
            headers = signed_headers(
                key.key_id, key.secret, "POST", "/v1/reports", body, int(time.time()), nonce
            )
            response = await client.post(
                "/v1/reports", content=body, headers={**headers, "Content-Type": "application/json"}
            )
            return response.status_code

        assert await post("nonce-rate-0001") == 202
        assert await post("nonce-rate-0002") == 429
        # Sent again, the refused request is refused as a replay, not taken at last.
        assert await post("nonce-rate-0002") == 401
