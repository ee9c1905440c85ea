"""Kafka TLS and SASL settings reach every producer and consumer: the clients carry the SSL
context and the login, and over a real TLS connection they verify the broker against the CA
and present the service's certificate."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest

from gridline.bus.consumer import ConsumerRunner
from gridline.bus.producer import BrokerUnavailable, EventProducer
from gridline.bus.security import kafka_security
from gridline.settings import Settings
from tests.security.certs import Authority


async def _ignore(*_: Any) -> None:
    raise AssertionError("never called")


def _consumer_client(settings: Settings) -> Any:
    runner = ConsumerRunner(
        settings=settings,
        topic="t",
        group="g",
        db=None,  # type: ignore[arg-type]  # only kept: the runner is never started here
        handler=_ignore,
    )
    return runner._consumer._client


async def test_plaintext_by_default() -> None:
    settings = Settings()
    assert kafka_security(settings) == {"security_protocol": "PLAINTEXT"}
    producer = EventProducer(settings)
    assert producer._producer.client._ssl_context is None
    assert _consumer_client(settings)._security_protocol == "PLAINTEXT"


async def test_sasl_over_tls_reaches_producers_and_consumers(tmp_path: Path) -> None:
    ca = Authority()
    (tmp_path / "ca.crt").write_bytes(ca.pem)
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="gridline-intake",
        kafka_sasl_password="a password of its own",
        kafka_ssl_ca_file=tmp_path / "ca.crt",
    )
    for client in (EventProducer(settings)._producer.client, _consumer_client(settings)):
        assert client._security_protocol == "SASL_SSL"
        assert client._sasl_mechanism == "SCRAM-SHA-512"
        assert client._sasl_plain_username == "gridline-intake"
        assert client._sasl_plain_password == "a password of its own"
        context: ssl.SSLContext = client._ssl_context
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        assert context.cert_store_stats()["x509_ca"] == 1  # the CA file, not the system's


async def test_tls_verifies_the_broker_and_presents_the_services_certificate(
    tmp_path: Path,
) -> None:
    """A TLS listener standing in for the broker sees the handshake complete with intake's
    certificate; a broker certificate of another CA is refused by the client."""
    ca = Authority()
    client_cert, client_key, ca_file = ca.files("intake", tmp_path / "intake")
    seen: list[str] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peercert") or {}
        seen.extend(value for kind, value in peer.get("subjectAltName", ()) if kind == "DNS")
        writer.close()  # no Kafka here: the client gives up after the handshake

    for number, (broker_ca, expected) in enumerate(((ca, ["intake"]), (Authority(), []))):
        broker_files = broker_ca.files("kafka", tmp_path / f"broker-{number}")
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca_file)
        server_context.load_cert_chain(broker_files[0], broker_files[1])
        server_context.verify_mode = ssl.CERT_REQUIRED
        server = await asyncio.start_server(accept, "127.0.0.1", 0, ssl=server_context)
        port = server.sockets[0].getsockname()[1]
        seen.clear()
        settings = Settings(
            kafka_bootstrap=f"127.0.0.1:{port}",
            kafka_security_protocol="SSL",
            kafka_ssl_ca_file=ca_file,
            kafka_ssl_cert_file=client_cert,
            kafka_ssl_key_file=client_key,
            kafka_confirm_timeout_seconds=1,
        )
        with pytest.raises(BrokerUnavailable):
            await EventProducer(settings).start()
        server.close()
        await server.wait_closed()
        assert seen[:1] == expected
