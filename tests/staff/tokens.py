"""Staff tokens for tests, minted by the local issuer of a data directory, as `gridline staff
token` mints them: the services started on the same data directory trust them."""

from __future__ import annotations

from pathlib import Path

from gridline.settings import Settings
from gridline.staff.identity import Staff
from gridline.staff.issuer import LocalIssuer
from gridline.staff.roles import ROLE_ZH, Role
from gridline.staff.tokens import TokenVerifier
from gridline.timestamps import now

# Who the tests act as when a test is not about scope: the county office sees and does all
# that offices do, everywhere.
COUNTY = "county"


def person(role: Role, node: str, subject: str | None = None) -> Staff:
    """A staff member of `role` at `node`, named after both."""
    return Staff(
        subject=subject or f"{role.value}@{node}",
        name=f"测试{ROLE_ZH[role]}",
        role=role,
        node_id=node,
    )


def token(data_dir: Path, role: Role, node: str = COUNTY, *, minutes: int = 60) -> str:
    """A token of `role` at `node` from the local issuer of `data_dir`."""
    issuer = LocalIssuer(data_dir)
    return issuer.mint(person(role, node), audience="gridline", minutes=minutes, now=now())


def bearer(data_dir: Path, role: Role = Role.COUNTY_OFFICE, node: str = COUNTY) -> dict[str, str]:
    """HTTP headers carrying a token of `role` at `node`."""
    return {"Authorization": f"Bearer {token(data_dir, role, node)}"}


def metadata(
    data_dir: Path, role: Role = Role.COUNTY_OFFICE, node: str = COUNTY
) -> tuple[tuple[str, str]]:
    """gRPC call metadata carrying a token of `role` at `node`."""
    return (("authorization", f"Bearer {token(data_dir, role, node)}"),)


def verifier(data_dir: Path) -> TokenVerifier:
    """The verifier a service started on `data_dir` uses (for apps a test assembles itself)."""
    return TokenVerifier.from_settings(Settings(data_dir=data_dir))
