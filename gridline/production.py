"""What a service refuses to start on in production (`GRIDLINE_ENV=production`).

Every problem is found before the service opens anything, and all of them are reported at once,
so that an operator fixes a deployment in one round instead of one restart per mistake. A trial
may waive some refusals on purpose (`GRIDLINE_PRODUCTION_ALLOW`); secrets are never waived.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import SecretStr

from gridline.settings import ServiceName, Settings

# The secrets each service reads, and so the only ones it is given (deploy/: one Secret per
# service). `tests/security/test_production.py` checks this against the code.
SERVICE_SECRETS: Mapping[ServiceName, tuple[str, ...]] = {
    "intake": ("person_key_secret", "pii_key", "intake_api_key_secret"),
    # Assignment keeps the sealed ID numbers and phones and unseals them for a permitted reveal.
    "assignment": ("task_link_key", "pii_key"),
    "escalation": ("task_link_key",),
    "notify": ("pii_key",),
}
# The services keeping state in Redis: without GRIDLINE_REDIS_URL each process would start its
# own Valkey, so replicas would not share rate limits, idempotency keys or robot budgets.
REDIS_USERS: frozenset[ServiceName] = frozenset({"intake", "notify"})

# The refusals GRIDLINE_PRODUCTION_ALLOW may waive, and what each waiver accepts.
WAIVERS: Mapping[str, str] = {
    "sqlite": "SQLite files in the data directory instead of PostgreSQL",
    "embedded-valkey": "a Valkey per process instead of a shared Redis",
    "inbox": "notify writing deliveries to its local inbox file",
    "shared-listener": "staff routes on the public listener",
    "local-issuer": "staff tokens signed by the key in the data directory, not the county's "
    "identity provider",
}

# Shorter than this, a secret is guessable or a stand-in ("secret", "changeme").
MIN_SECRET_CHARACTERS = 16
# What templates and examples put where a secret goes: `<long random string>`, `changeme`, ...
_PLACEHOLDER = re.compile(
    r"<[^>]*>|\A(change[-_ ]?me|placeholder|secret|password|todo|x+|example|default|\.\.\.)\Z",
    re.IGNORECASE,
)


class ProductionRefused(Exception):
    """A service's settings are unsafe for production; `problems` names each one."""

    def __init__(self, service: ServiceName, problems: list[str]) -> None:
        self.problems = problems
        listed = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(
            f"{service} refuses to start with GRIDLINE_ENV=production:\n{listed}\n"
            "See docs/security.md, 'Before production'."
        )


def production_problems(
    settings: Settings, service: ServiceName, *, has_public_routes: bool
) -> list[str]:
    """Every reason `service` must not start on `settings` in production (none outside it).

    `has_public_routes`: whether the service serves a public surface, which must then be
    apart from its staff routes.
    """
    if settings.env != "production":
        return []
    allowed = settings.production_allowances
    problems: list[str] = []
    unknown = sorted(allowed - WAIVERS.keys())
    if unknown:
        problems.append(
            f"GRIDLINE_PRODUCTION_ALLOW names {', '.join(unknown)}, which it cannot waive "
            f"(it can: {', '.join(WAIVERS)})"
        )
    for name in SERVICE_SECRETS[service]:
        problems += _secret_problems(settings, name)
    if settings.kafka_security_protocol.startswith("SASL"):
        problems += _unsafe("GRIDLINE_KAFKA_SASL_PASSWORD", settings.kafka_sasl_password, None)
    url = settings.database_url
    if (not url or url.startswith("sqlite")) and "sqlite" not in allowed:
        problems.append(
            "GRIDLINE_DATABASE_URL is not PostgreSQL: each process would keep its own SQLite "
            "file (allow with GRIDLINE_PRODUCTION_ALLOW=sqlite)"
        )
    elif _PLACEHOLDER.search(url):
        problems.append("GRIDLINE_DATABASE_URL holds a placeholder (`<...>`)")
    if service in REDIS_USERS and not settings.redis_url and "embedded-valkey" not in allowed:
        problems.append(
            "GRIDLINE_REDIS_URL is empty: each process would run its own Valkey, so replicas "
            "would share no limits or keys (allow with GRIDLINE_PRODUCTION_ALLOW=embedded-valkey)"
        )
    if service == "notify" and settings.notify_inbox_enabled and "inbox" not in allowed:
        problems.append(
            "GRIDLINE_NOTIFY_INBOX_ENABLED: the inbox file reaches nobody; configure the groups "
            "file (GRIDLINE_NOTIFY_GROUPS_FILE) and turn the inbox off (allow with "
            "GRIDLINE_PRODUCTION_ALLOW=inbox)"
        )
    if not settings.staff_oidc_issuer and "local-issuer" not in allowed:
        problems.append(
            "GRIDLINE_STAFF_OIDC_ISSUER is empty: staff tokens would be checked against a key "
            "in each pod's data directory, so no pod would accept another's tokens; configure "
            "the county's identity provider (allow with GRIDLINE_PRODUCTION_ALLOW=local-issuer)"
        )
    staff_port = f"GRIDLINE_{service.upper()}_STAFF_HTTP_PORT"
    if (
        has_public_routes
        and settings.staff_http_port(service) is None
        and "shared-listener" not in allowed
    ):
        problems.append(
            f"{staff_port} is empty: the staff routes would be served on the public listener "
            "(allow with GRIDLINE_PRODUCTION_ALLOW=shared-listener)"
        )
    return problems


def refuse_unsafe_production(
    settings: Settings, service: ServiceName, *, has_public_routes: bool
) -> None:
    """Raise ProductionRefused listing every problem `production_problems` finds."""
    problems = production_problems(settings, service, has_public_routes=has_public_routes)
    if problems:
        raise ProductionRefused(service, problems)


def _secret_problems(settings: Settings, name: str) -> list[str]:
    """What is wrong with one secret setting; the PII key is checked as its whole key ring."""
    development = Settings.model_fields[name].default
    assert isinstance(development, SecretStr)
    if name != "pii_key":
        return _unsafe(f"GRIDLINE_{name.upper()}", getattr(settings, name), development)
    with_ring = bool(settings.pii_keys.get_secret_value())
    if not with_ring:
        problems = _unsafe("GRIDLINE_PII_KEY", settings.pii_key, development)
        if problems:
            return problems
    try:
        ring = settings.pii_key_ring
    except ValueError:
        return ["GRIDLINE_PII_KEY is not urlsafe base64 of 32 bytes"]
    # The ring seals with its first key and unseals with every one: each must be real.
    problems = []
    for key_id, key in ring:
        label = f"GRIDLINE_PII_KEYS (key {key_id})" if with_ring else "GRIDLINE_PII_KEY"
        problems += _unsafe(label, SecretStr(key), development)
    return problems


def _unsafe(variable: str, secret: SecretStr, development: SecretStr | None) -> list[str]:
    """Why `secret` is no real secret: empty, the development value, a placeholder, short."""
    value = secret.get_secret_value().strip()
    if not value:
        return [f"{variable} is empty"]
    if development is not None and value == development.get_secret_value():
        return [f"{variable} is the built-in development value"]
    if _PLACEHOLDER.search(value):
        return [f"{variable} is a placeholder, not a secret"]
    if len(value) < MIN_SECRET_CHARACTERS:
        return [f"{variable} is shorter than {MIN_SECRET_CHARACTERS} characters"]
    return []
