"""Every setting of the platform, read from `GRIDLINE_*` environment variables."""

from __future__ import annotations

import base64
import ipaddress
from datetime import time
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gridline.personal import derived_key_id, parse_key_ring

# Development-only secrets: a service refuses them when env=production (gridline.production).
_DEV_PERSON_KEY_SECRET = "gridline-development-person-key"
_DEV_PII_KEY = base64.urlsafe_b64encode(b"gridline-development-pii-key-32b").decode()
_DEV_INTAKE_API_KEY_SECRET = "gridline-development-intake-api-key-secret"
_DEV_TASK_LINK_KEY = "gridline-development-task-link-key"

ServiceName = Literal["intake", "assignment", "escalation", "notify"]
SERVICES: tuple[ServiceName, ...] = ("intake", "assignment", "escalation", "notify")


class Settings(BaseSettings):
    """Platform settings. Each field is the environment variable `GRIDLINE_<FIELD>`."""

    model_config = SettingsConfigDict(env_prefix="GRIDLINE_", extra="ignore")

    env: Literal["development", "production"] = Field(
        "development",
        description="`production`: a service refuses to start on development secrets, "
        "placeholders, SQLite, an embedded Valkey, the inbox or staff routes on its public "
        "listener, listing every problem (docs/security.md).",
    )
    production_allow: str = Field(
        "",
        description="Comma-separated production refusals waived on purpose (a trial): "
        "`sqlite`, `embedded-valkey`, `inbox`, `shared-listener`; secrets are never waived.",
    )
    data_dir: Path = Field(
        Path(".gridline/data"), description="Where SQLite files and the local inbox are kept."
    )
    log_level: str = Field("INFO", description="Log level of every service.")
    log_format: Literal["json", "console"] = Field("json", description="Log line format.")
    otlp_endpoint: str = Field(
        "",
        description="OTLP gRPC collector traces are exported to, e.g. `http://127.0.0.1:4317`; "
        "empty: tracing off.",
    )
    trace_sample_ratio: float = Field(
        1.0, ge=0, le=1, description="Share of new traces recorded (a trace's parent decides)."
    )

    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    kafka_idempotence: bool = Field(
        True, description="Idempotent producer; off for brokers that refuse InitProducerId (tansu)."
    )
    kafka_partitions: int = Field(3, ge=1, description="Partitions of each topic created by `up`.")
    kafka_replication: int = Field(1, ge=1, description="Replication factor of created topics.")
    kafka_confirm_timeout_seconds: float = Field(
        5.0, gt=0, description="How long a producer waits for the broker to confirm a record."
    )
    kafka_linger_ms: int = Field(
        1, ge=0, description="How long a producer lets records gather into one batch."
    )
    kafka_max_batch_bytes: int = Field(
        262_144,
        ge=1_024,
        description="Largest batch of records a producer sends to one partition in one request.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="How every producer and consumer talks to the brokers: `SSL` and `SASL_SSL` "
        "encrypt (and verify the brokers against GRIDLINE_KAFKA_SSL_CA_FILE), `SASL_*` log in.",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism of the `SASL_*` protocols."
    )
    kafka_sasl_username: str = Field(
        "", description="This service's Kafka user (`SASL_*`): one user per service."
    )
    kafka_sasl_password: SecretStr = Field(
        SecretStr(""), description="The password of GRIDLINE_KAFKA_SASL_USERNAME."
    )
    kafka_ssl_ca_file: Path | None = Field(
        None,
        description="CA bundle (PEM) the brokers' certificates must chain to (`SSL`, "
        "`SASL_SSL`); empty: the system's CAs.",
    )
    kafka_ssl_cert_file: Path | None = Field(
        None, description="Client certificate (PEM) for brokers that authenticate by TLS."
    )
    kafka_ssl_key_file: Path | None = Field(
        None, description="The private key (PEM) of GRIDLINE_KAFKA_SSL_CERT_FILE."
    )
    consumer_session_timeout_ms: int = Field(
        10_000,
        ge=1_000,
        description="A consumer silent this long leaves its group (it heartbeats every second, "
        "or every third of this when that is shorter).",
    )
    consumer_rebalance_timeout_ms: int = Field(
        30_000, ge=1_000, description="How long a rebalance waits for members to rejoin."
    )
    consumer_max_attempts: int = Field(
        3, ge=1, description="Tries of one record before it goes to `<topic>.dlq`."
    )
    consumer_retry_backoff_seconds: float = Field(
        0.2, ge=0, description="First pause between tries of a failing record (doubles)."
    )

    consumer_batch_records: int = Field(
        500, ge=1, description="Most records a consumer applies in one transaction."
    )
    consumer_fetch_partition_bytes: int = Field(
        4 * 1024 * 1024,
        ge=64 * 1024,
        description="Most bytes one fetch brings of a partition. A consumer fetches from a "
        "broker one request at a time, so a backlog in small pieces leaves it waiting on the "
        "next fetch after every few batches; each partition held may buffer this much.",
    )
    consumer_linger_ms: int = Field(
        100,
        ge=0,
        le=5_000,
        description="When a poll brings fewer records than a batch holds, how long a consumer "
        "waits for more before applying them: larger batches, less CPU a record, that much "
        "more latency.",
    )
    ledger_retention_seconds: int = Field(
        7 * 86_400,
        ge=60,
        description="How long a consumer remembers an applied event id (duplicates older than "
        "this are applied again).",
    )
    outbox_retention_seconds: int = Field(
        86_400,
        ge=60,
        description="How long a published outbox row is kept (at least the replay window).",
    )
    outbox_replay_seconds: int = Field(
        0,
        ge=0,
        description="On a broker that keeps nothing across restarts (the embedded one): how far "
        "back a service re-publishes what it produced when it meets a new broker; 0: never.",
    )
    broker_epoch: str = Field(
        "",
        description="Names the running embedded broker; a service replays its outbox once per "
        "new epoch (set by `gridline up`).",
    )
    shutdown_drain_seconds: float = Field(
        5.0,
        ge=0,
        description="How long a stopping service keeps publishing its outbox before leaving the "
        "rest to its next start.",
    )
    shutdown_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="A service exits this long after SIGTERM whatever its dependencies do; work "
        "not committed by then is redone after a restart.",
    )

    database_url: str = Field(
        "",
        description="PostgreSQL URL shared by the services (one schema each); "
        "empty: one SQLite file per service in data_dir.",
    )
    redis_url: str = Field("", description="Redis URL; empty: an embedded Valkey per process.")

    person_key_secret: SecretStr = Field(
        SecretStr(_DEV_PERSON_KEY_SECRET), description="HMAC key deriving the person key."
    )
    pii_key: SecretStr = Field(
        SecretStr(_DEV_PII_KEY),
        description="AES-256-GCM key (urlsafe base64 of 32 bytes) sealing ID numbers and phones.",
    )
    pii_keys: SecretStr = Field(
        SecretStr(""),
        description="Key ring for ID numbers and phones, `kid:key,kid2:key2` (urlsafe base64 of "
        "32 bytes each): the first seals, every one unseals, and GRIDLINE_PII_KEY (unless the "
        "development value) unseals too; empty: GRIDLINE_PII_KEY alone (docs/security.md).",
    )
    personal_data_retention_days: int = Field(
        30,
        ge=1,
        le=3650,
        description="Days personal data is kept after its case or task closes (assignment's "
        "sealed ID numbers and phones, placements; escalation's tasks, check-ins) or after it "
        "was written (notify's deliveries, every service's outbox and ledger rows); purged "
        "hourly and by `gridline purge`.",
    )

    host: str = Field(
        "127.0.0.1",
        description="Address every service binds (its public listener, and the rest "
        "unless GRIDLINE_STAFF_HOST is set).",
    )
    staff_host: str = Field(
        "",
        description="Address the staff listeners and the gRPC servers bind (the side only "
        "operators and the other services reach); empty: GRIDLINE_HOST.",
    )
    max_body_bytes: int = Field(
        262_144,
        gt=0,
        description="Largest request body assignment, escalation and notify read (413 above it; "
        "intake has its own limits).",
    )
    trusted_proxies: str = Field(
        "",
        description="Comma-separated addresses or CIDR networks of the reverse proxies in front "
        "of the services: only a request from one of them has its client address taken from "
        "X-Forwarded-For (per-address limits); empty: the peer is the client.",
    )
    intake_http_port: int = Field(
        8001,
        description="Intake's public listener (self-report page, integrator API); every route "
        "when GRIDLINE_INTAKE_STAFF_HTTP_PORT is empty.",
    )
    assignment_http_port: int = Field(
        8002,
        description="Assignment's HTTP port while GRIDLINE_ASSIGNMENT_STAFF_HTTP_PORT is empty "
        "(it has no public routes, so no public listener once that is set).",
    )
    escalation_http_port: int = Field(
        8003,
        description="Escalation's public listener (task pages, SMS check-in webhook); every "
        "route when GRIDLINE_ESCALATION_STAFF_HTTP_PORT is empty.",
    )
    notify_http_port: int = Field(
        8004,
        description="Notify's HTTP port while GRIDLINE_NOTIFY_STAFF_HTTP_PORT is empty (it has "
        "no public routes, so no public listener once that is set).",
    )
    intake_staff_http_port: int | None = Field(
        None,
        description="Intake's staff listener: staff and admin APIs, `/healthz`, `/readyz`, "
        "`/metrics`, `/docs`; empty: they share the public listener (development only).",
    )
    assignment_staff_http_port: int | None = Field(
        None, description="Assignment's staff listener (as for intake)."
    )
    escalation_staff_http_port: int | None = Field(
        None, description="Escalation's staff listener (as for intake)."
    )
    notify_staff_http_port: int | None = Field(
        None, description="Notify's staff listener (as for intake)."
    )
    directory_grpc_port: int = Field(50051, description="Assignment's Directory gRPC port.")
    directory_target: str = Field(
        "127.0.0.1:50051", description="Where the other services reach the Directory."
    )
    tasks_grpc_port: int = Field(50052, description="Escalation's Tasks gRPC port.")
    tasks_target: str = Field(
        "127.0.0.1:50052", description="Where the other services reach the Tasks service."
    )
    notify_grpc_port: int = Field(50053, description="Notify's delivery status gRPC port.")
    intake_staff_url: str = Field(
        "",
        description="Where escalation's staff workbench posts a cadre's report to intake's staff "
        "listener (e.g. http://intake-staff:8011); empty: intake's staff (else public) port on "
        "GRIDLINE_STAFF_HOST or GRIDLINE_HOST.",
    )
    grpc_tls_cert_file: Path | None = Field(
        None,
        description="This service's certificate (PEM) for gRPC, presented as server and as "
        "client; with the key and the CA file, every gRPC call is mutual TLS; empty: plaintext.",
    )
    grpc_tls_key_file: Path | None = Field(
        None, description="The private key (PEM) of GRIDLINE_GRPC_TLS_CERT_FILE."
    )
    grpc_tls_ca_file: Path | None = Field(
        None,
        description="CA bundle (PEM) every gRPC peer's certificate must chain to: a server "
        "refuses clients without one, a client servers without one for their name.",
    )
    directory_grpc_clients: str = Field(
        "",
        description="Comma-separated identities (certificate DNS names) that may call the "
        "Directory under mutual TLS; empty: any certificate of the CA.",
    )
    tasks_grpc_clients: str = Field(
        "", description="Identities that may call the Tasks service (as for the Directory)."
    )
    notify_grpc_clients: str = Field(
        "", description="Identities that may call notify's gRPC service (as for the Directory)."
    )
    grpc_reflection: bool | None = Field(
        None,
        description="gRPC servers answer reflection (method listing for grpcurl); empty: on in "
        "development, off in production.",
    )
    public_base_url: str = Field(
        "http://127.0.0.1:8003", description="Base of links sent to people (escalation's pages)."
    )
    task_link_key: SecretStr = Field(
        SecretStr(_DEV_TASK_LINK_KEY),
        description="HMAC key signing the task-page links sent to cadres and offices.",
    )
    task_link_ttl_seconds: int = Field(
        259_200, gt=0, description="How long a signed task-page link stays valid."
    )

    staff_oidc_issuer: str = Field(
        "",
        description="Issuer (`iss`) of staff tokens: the county's OIDC identity provider; "
        "empty: the local issuer of `gridline staff token`, whose key is kept in data_dir.",
    )
    staff_oidc_jwks_url: str = Field(
        "",
        description="Where the identity provider publishes its signing keys (JWKS); "
        "required with GRIDLINE_STAFF_OIDC_ISSUER.",
    )
    staff_oidc_audience: str = Field(
        "gridline", description="Audience (`aud`) every staff token must name."
    )
    staff_token_minutes: int = Field(
        480,
        ge=1,
        le=1440,
        description="How long a token `gridline staff token` mints stays valid (a day at most).",
    )

    intake_max_body_bytes: int = Field(
        1_048_576, gt=0, description="Largest request body intake reads."
    )
    intake_batch_max_body_bytes: int = Field(
        5_242_880, gt=0, description="Largest body of an intake batch (`/v1/reports:batch`)."
    )
    intake_require_signatures: bool | None = Field(
        None,
        description="Refuse unsigned report posts; empty: required in production, "
        "optional in development.",
    )
    intake_api_key_secret: SecretStr = Field(
        SecretStr(_DEV_INTAKE_API_KEY_SECRET),
        description="HMAC key from which intake derives integrators' API key secrets.",
    )
    intake_rate_per_second: float = Field(
        2000.0, gt=0, description="Records a second one integrator (or unsigned address) may post."
    )
    intake_rate_burst: int = Field(
        4000, gt=0, description="Records an integrator may post at once above its rate."
    )
    intake_self_report_per_hour: int = Field(
        20, gt=0, description="Self-report page posts one address may make an hour."
    )
    intake_case_window_seconds: int = Field(
        1_209_600,
        gt=0,
        description="Reports of one person within this window join the first one's case.",
    )
    intake_county_region_code: str = Field(
        "620122",
        pattern=r"^\d{6}$",
        description="GB/T 2260 code of the county this deployment serves (the demo: 皋兰县). A "
        "checkpoint scan with a green code of a person arriving from another province is a "
        "low-risk arrival to register; from this province it is no report.",
    )
    intake_wave_linger_ms: float = Field(
        25,
        ge=0,
        le=200,
        description="How long intake gathers concurrent reports into one round trip to Redis, "
        "the broker and its disk: each report's answer waits up to this much longer, and a "
        "surge costs a fraction of the CPU.",
    )
    intake_wave_reports: int = Field(
        16,
        ge=1,
        le=1_000,
        description="A wave of this many reports goes at once, without waiting out the linger: "
        "under heavy load reports come that fast anyway.",
    )
    idempotency_ttl_seconds: int = Field(
        86_400, gt=0, description="How long intake remembers an Idempotency-Key."
    )
    intake_key_cache_seconds: float = Field(
        1.0,
        ge=0,
        description="How long intake trusts an integrator key it found active; a revocation "
        "made elsewhere takes effect within it (0: ask the database on every request).",
    )
    intake_unknown_keys_per_minute: int = Field(
        10,
        gt=0,
        description="Signed requests with an unknown or revoked key one address may send a "
        "minute; past it they are refused (429) before any database query.",
    )

    seed_demo_county: bool = Field(
        False, description="Assignment loads the demo county when its directory is empty."
    )
    assignment_policy_file: Path | None = Field(
        None,
        description="Assignment's risk policy (YAML: measures, plans, rules), checked at start; "
        "empty: the bundled services/assignment/policy.yaml.",
    )
    assignment_follow_seconds: float = Field(
        1.0,
        gt=0,
        description="How often each assignment replica looks for directory, duty and risk-area "
        "changes made through another replica or `gridline directory import`.",
    )
    ack_deadline_seconds: float = Field(
        1800.0, gt=0, description="Time to acknowledge a task before it goes one level up."
    )
    escalation_tick_seconds: float = Field(
        1.0, gt=0, description="How often escalation looks for deadlines that fell due."
    )
    escalation_zero_report_tick_seconds: float = Field(
        5.0,
        gt=0,
        description="How often escalation looks whether a zero-report step (reminder, "
        "summary) fell due: they come at set times of day, so seconds late is on time.",
    )
    zero_report_due_time: time = Field(
        time(20, 0), description="When each grid's daily zero-report is due (Asia/Shanghai)."
    )
    zero_report_township_delay_minutes: float = Field(
        60.0, gt=0, description="After the due time, when missing zero-reports reach the township."
    )
    escalation_check_ins_file: Path | None = Field(
        None,
        description=(
            "YAML of the follow-up's rules: check-in grace, fever threshold, symptoms, township"
            " health centre groups, reminders, test time and grace, end notice (check-in times and"
            " days are the plan's, assignment's policy); empty: 120 min grace, 37.3 °C."
        ),
    )
    escalation_deadlines_file: Path | None = Field(
        None,
        description=(
            "YAML of escalation deadlines per origin risk (see services/escalation/deadlines.yaml);"
            " empty: one level up every ack_deadline_seconds."
        ),
    )

    notify_inbox_enabled: bool = Field(
        True, description="Notify appends every delivery to a local inbox file."
    )
    notify_inbox_path: Path | None = Field(
        None, description="Inbox file; empty: data_dir/inbox.jsonl."
    )
    notify_webhook_url: str = Field(
        "",
        description="Generic JSON webhook; `{group_id}` is replaced by the recipient group.",
    )
    notify_timeout_seconds: float = Field(5.0, gt=0, description="Timeout of one delivery call.")
    notify_groups_file: Path | None = Field(
        None,
        description="YAML of each group's robot and SMS, secrets sealed; empty: inbox and webhook.",
    )
    notify_wecom_base_url: str = Field(
        "https://qyapi.weixin.qq.com", description="WeCom group robot API base."
    )
    notify_dingtalk_base_url: str = Field(
        "https://oapi.dingtalk.com", description="DingTalk custom robot API base."
    )
    notify_feishu_base_url: str = Field(
        "https://open.feishu.cn", description="Feishu custom bot API base."
    )
    notify_aliyun_sms_base_url: str = Field(
        "https://dysmsapi.aliyuncs.com", description="Alibaba Cloud SMS API base."
    )
    notify_tencent_sms_base_url: str = Field(
        "https://sms.tencentcloudapi.com", description="Tencent Cloud SMS API base."
    )
    notify_concurrency: int = Field(
        32, ge=1, description="Deliveries to different recipients one notify process makes at once."
    )
    notify_max_attempts: int = Field(
        6, ge=1, description="Tries of one delivery on transient failures before it is failed."
    )
    notify_retry_initial_seconds: float = Field(
        0.5, gt=0, description="First pause between delivery tries (doubles, with jitter)."
    )
    notify_retry_max_seconds: float = Field(
        30.0, gt=0, description="Longest pause between delivery tries."
    )
    notify_quiet_hours_start: time = Field(
        time(22, 0),
        description="Start of the quiet hours (Asia/Shanghai): notices their sender marked as "
        "able to wait, to the quiet levels, are held and sent as one digest at their end.",
    )
    notify_quiet_hours_end: time = Field(
        time(7, 0), description="End of the quiet hours (Asia/Shanghai), when the digest goes."
    )
    notify_quiet_levels: str = Field(
        "township_office,county_office",
        description="Comma-separated levels whose groups have quiet hours (liaison, community, "
        "township_office, county_office); empty: none, every notice goes at once.",
    )

    @model_validator(mode="after")
    def _replay_within_retention(self) -> Settings:
        # A replayed event must still be in every ledger, or it would be applied twice.
        if self.outbox_replay_seconds > self.ledger_retention_seconds:
            raise ValueError(
                "GRIDLINE_OUTBOX_REPLAY_SECONDS must not exceed GRIDLINE_LEDGER_RETENTION_SECONDS"
            )
        if self.outbox_replay_seconds > self.outbox_retention_seconds:
            raise ValueError(
                "GRIDLINE_OUTBOX_REPLAY_SECONDS must not exceed GRIDLINE_OUTBOX_RETENTION_SECONDS"
            )
        return self

    @model_validator(mode="after")
    def _replay_within_personal_retention(self) -> Settings:
        # Outbox and ledger rows go once personal data does; a replay must find them.
        if self.outbox_replay_seconds > self.personal_data_retention_days * 86_400:
            raise ValueError(
                "GRIDLINE_OUTBOX_REPLAY_SECONDS must not exceed "
                "GRIDLINE_PERSONAL_DATA_RETENTION_DAYS"
            )
        return self

    @model_validator(mode="after")
    def _pii_keys_are_a_ring(self) -> Settings:
        # A malformed ring stops the service at start, not at the first report it seals.
        parse_key_ring(self.pii_keys.get_secret_value())
        return self

    @model_validator(mode="after")
    def _listeners_apart(self) -> Settings:
        # One port cannot be two listeners: the staff surface would be unreachable.
        for service in SERVICES:
            if self.staff_http_port(service) == self.http_port(service):
                raise ValueError(
                    f"GRIDLINE_{service.upper()}_STAFF_HTTP_PORT must differ from "
                    f"GRIDLINE_{service.upper()}_HTTP_PORT"
                )
        return self

    @model_validator(mode="after")
    def _grpc_tls_files_together(self) -> Settings:
        # Half a TLS identity would silently fall back to plaintext or fail at the first call.
        files = (self.grpc_tls_cert_file, self.grpc_tls_key_file, self.grpc_tls_ca_file)
        if any(files) and not all(files):
            raise ValueError(
                "GRIDLINE_GRPC_TLS_CERT_FILE, GRIDLINE_GRPC_TLS_KEY_FILE and "
                "GRIDLINE_GRPC_TLS_CA_FILE are set together"
            )
        # Only a client certificate names a caller: without TLS a list of callers means nothing.
        callers = (self.directory_grpc_clients, self.tasks_grpc_clients, self.notify_grpc_clients)
        if any(callers) and not all(files):
            raise ValueError("GRIDLINE_*_GRPC_CLIENTS name callers only under mutual TLS")
        return self

    @model_validator(mode="after")
    def _staff_issuer_with_its_keys(self) -> Settings:
        # An issuer without keys could verify nothing; keys without an issuer would be trusted
        # for any `iss`.
        if bool(self.staff_oidc_issuer) != bool(self.staff_oidc_jwks_url):
            raise ValueError(
                "GRIDLINE_STAFF_OIDC_ISSUER and GRIDLINE_STAFF_OIDC_JWKS_URL are set together"
            )
        return self

    @model_validator(mode="after")
    def _proxies_are_networks(self) -> Settings:
        for entry in self.trusted_proxy_networks:
            try:
                ipaddress.ip_network(entry)
            except ValueError:
                raise ValueError(
                    f"GRIDLINE_TRUSTED_PROXIES: {entry!r} is no address or CIDR network"
                ) from None
        return self

    @property
    def trusted_proxy_networks(self) -> list[str]:
        """The trusted proxies, one address or CIDR network each."""
        return [entry.strip() for entry in self.trusted_proxies.split(",") if entry.strip()]

    @property
    def pii_key_ring(self) -> list[tuple[str, str]]:
        """The (key id, key) pairs sealing personal data, the sealing one first: the ring
        `GRIDLINE_PII_KEYS`, then `GRIDLINE_PII_KEY` for what it sealed before the ring, unless
        the ring holds it already or it is the development key; without a ring, that key alone
        under its derived id."""
        pii_key = self.pii_key.get_secret_value()
        ring = parse_key_ring(self.pii_keys.get_secret_value())
        if not ring:
            return [(derived_key_id(pii_key), pii_key)]
        held = {base64.urlsafe_b64decode(key) for _, key in ring}
        if pii_key != _DEV_PII_KEY and base64.urlsafe_b64decode(pii_key) not in held:
            ring.append((derived_key_id(pii_key), pii_key))
        return ring

    def http_port(self, service: ServiceName) -> int:
        """The HTTP port of one service (its public listener when it has a staff one)."""
        port: int = getattr(self, f"{service}_http_port")
        return port

    def staff_http_port(self, service: ServiceName) -> int | None:
        """The staff listener's port of one service; None: one listener serves every route."""
        port: int | None = getattr(self, f"{service}_staff_http_port")
        return port

    def grpc_clients(self, service: ServiceName) -> list[str]:
        """Who may call the gRPC server of `service` under mutual TLS; empty: any peer the CA
        signed for."""
        names = {
            "assignment": self.directory_grpc_clients,
            "escalation": self.tasks_grpc_clients,
            "notify": self.notify_grpc_clients,
        }.get(service, "")
        return [name.strip() for name in names.split(",") if name.strip()]

    @property
    def grpc_reflection_on(self) -> bool:
        """Whether gRPC servers answer reflection: the setting, else only in development."""
        if self.grpc_reflection is not None:
            return self.grpc_reflection
        return self.env != "production"

    @property
    def intake_staff_base_url(self) -> str:
        """Intake's staff listener as the workbench reaches it (GRIDLINE_INTAKE_STAFF_URL, else
        derived from the host and port settings)."""
        if self.intake_staff_url:
            return self.intake_staff_url.rstrip("/")
        port = self.intake_staff_http_port or self.intake_http_port
        return f"http://{self.staff_host or self.host}:{port}"

    @property
    def production_allowances(self) -> set[str]:
        """The production refusals waived by GRIDLINE_PRODUCTION_ALLOW."""
        return {name.strip() for name in self.production_allow.split(",") if name.strip()}

    @property
    def inbox_path(self) -> Path:
        """The local inbox file notify writes."""
        return self.notify_inbox_path or self.data_dir / "inbox.jsonl"


def env_name(field: str) -> str:
    """The environment variable of a settings field."""
    return f"GRIDLINE_{field.upper()}"


def settings_table() -> str:
    """The settings as a Markdown table, for the README."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, SecretStr):
            shown = "(development value)" if default.get_secret_value() else "(empty)"
        elif default in ("", None):
            shown = "(empty)"
        else:
            shown = f"`{default}`"
        rows.append(f"| `{env_name(name)}` | {shown} | {field.description} |")
    return "\n".join(rows) + "\n"
