"""Signing as documented: intake's OpenAPI security schemes and the integrators' guide."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gridline.settings import Settings
from services.intake.app import create_app
from services.intake.signing import SIGNATURE_HEADERS, canonical, sign

SIGNED = {"GridlineKey", "GridlineTimestamp", "GridlineNonce", "GridlineSignature"}
INTEGRATOR_OPERATIONS = ("create_report", "create_reports_batch", "get_report")


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every operation of the document by its operation id."""
    return {
        operation["operationId"]: operation
        for path in document["paths"].values()
        for operation in path.values()
    }


@pytest.mark.parametrize("required", [True, False])
def test_the_four_headers_are_one_security_requirement_of_the_integrator_routes(
    required: bool,
) -> None:
    document = create_app(Settings(intake_require_signatures=required)).openapi()
    declared = document["components"]["securitySchemes"]
    schemes = [declared[name] for name in SIGNED]
    assert {(s["type"], s["in"]) for s in schemes} == {("apiKey", "header")}
    assert {s["name"] for s in schemes} == set(SIGNATURE_HEADERS)
    signed: dict[str, list[str]] = {name: [] for name in SIGNED}
    # All four together; where unsigned posts are allowed, also nothing at all (as served).
    expected = [signed] if required else [signed, {}]
    by_id = operations(document)
    for operation_id in INTEGRATOR_OPERATIONS:
        assert by_id[operation_id]["security"] == expected, operation_id
    # Nothing else is signed: the residents' page, the probes.
    others = [o for i, o in by_id.items() if i not in INTEGRATOR_OPERATIONS]
    assert not [o for o in others for r in o.get("security", []) if SIGNED & set(r)]


def test_the_signature_scheme_writes_out_the_canonical_string_intake_computes() -> None:
    description = create_app(Settings()).openapi()["components"]["securitySchemes"][
        "GridlineSignature"
    ]["description"]
    for part in ("HMAC-SHA256", "method in upper case", "query string", "SHA-256 of the body"):
        assert part in description
    # The worked example is the one `canonical` gives, line by line.
    example = canonical("POST", "/v1/reports:batch?validate_only=true", "1767225600",
                        "3f9c1b2a7d0e", b"{}").decode()  # fmt: skip
    assert "\n".join(f"    {line}" for line in example.split("\n")) in description


def test_validate_only_is_a_documented_query_parameter_of_both_posts() -> None:
    by_id = operations(create_app(Settings()).openapi())
    for operation_id in ("create_report", "create_reports_batch"):
        [parameter] = [p for p in by_id[operation_id]["parameters"] if p["name"] == "validate_only"]
        assert parameter["in"] == "query"
        assert parameter["schema"]["type"] == "boolean"
        assert "publish nothing" in parameter["description"]


def test_the_guide_s_worked_example_is_what_intake_computes() -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "integrators" / "README.md").read_text(
        encoding="utf-8"
    )
    secret, method, path, timestamp, nonce, body = (
        "example-secret-do-not-use", "POST", "/v1/reports:batch?validate_only=true",
        "1767225600", "3f9c1b2a7d0e", b"{}",
    )  # fmt: skip
    assert f"```text\n{canonical(method, path, timestamp, nonce, body).decode()}\n```" in guide
    assert f"Signature · 签名: `{sign(secret, method, path, timestamp, nonce, body)}`" in guide
