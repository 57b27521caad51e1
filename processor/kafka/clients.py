"""Keyword arguments shared by every Kafka client the processor makes: address, security, client id.

Every producer, consumer and admin client is built with ``client_options(settings)`` so that TLS and SASL
settings apply everywhere at once.
"""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import KafkaError, SaslAuthenticationFailed

from processor.config import Settings


def client_options(settings: Settings, role: str | None = None) -> dict[str, Any]:
    """aiokafka client arguments for ``settings``; ``role`` suffixes the client id (e.g. "code-table")."""
    security = settings.security
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id if role is None else f"{settings.client_id}-{role}",
        "security_protocol": security.protocol,
    }
    if security.protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=security.ssl_cafile)
        if security.ssl_certfile:
            context.load_cert_chain(security.ssl_certfile, security.ssl_keyfile)
        options["ssl_context"] = context
    if security.protocol.startswith("SASL"):
        options["sasl_mechanism"] = security.sasl_mechanism
        options["sasl_plain_username"] = security.sasl_username
        options["sasl_plain_password"] = security.sasl_password
    return options


class KafkaAccessError(RuntimeError):
    """Kafka cannot be reached, or refused the credentials; the message says which and what to check."""


async def check_access(settings: Settings, timeout_ms: int = 10_000) -> None:
    """Connect to the first reachable bootstrap server and authenticate, or raise ``KafkaAccessError``.

    aiokafka reports a refused SASL login only as "unable to bootstrap"; this names the real cause.
    The password is never part of the message.
    """
    options = client_options(settings)
    options.pop("bootstrap_servers")
    last: Exception | None = None
    for address in settings.bootstrap_servers.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            connection = await create_conn(host, int(port), request_timeout_ms=timeout_ms, **options)
        except SaslAuthenticationFailed as err:
            security = settings.security
            raise KafkaAccessError(
                f"Kafka at {address} refused the login of user {security.sasl_username!r} with SASL "
                f"{security.sasl_mechanism}: check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD ({err})"
            ) from None
        except (OSError, KafkaError, ValueError) as err:
            last = err
            continue
        connection.close()
        return
    raise KafkaAccessError(f"cannot reach Kafka at {settings.bootstrap_servers}: {type(last).__name__}: {last}")
