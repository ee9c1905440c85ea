"""How every Kafka client of the platform authenticates to the brokers and encrypts: TLS and
SASL as the settings say, the same for producers, consumers and tools."""

from __future__ import annotations

from typing import Any

from aiokafka.helpers import create_ssl_context

from gridline.settings import Settings


def kafka_security(settings: Settings) -> dict[str, Any]:
    """The keyword arguments an aiokafka client takes for the configured protocol.

    `SSL` and `SASL_SSL` verify the brokers' certificates and names against
    GRIDLINE_KAFKA_SSL_CA_FILE (the system's CAs without it) and present the client
    certificate if one is set; `SASL_*` log in as this service's user.
    """
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(
            cafile=settings.kafka_ssl_ca_file,
            certfile=settings.kafka_ssl_cert_file,
            keyfile=settings.kafka_ssl_key_file,
        )
    if protocol.startswith("SASL_"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return options
