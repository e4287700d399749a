"""The dramatiq broker, chosen by URL: memory:// (in-process), redis://... or amqp://....

Import-time binding is dramatiq's pitfall: `@dramatiq.actor` binds to the global broker when
the module is imported, so `configure_broker` must run before any module that defines actors.

A Redis URL may carry two of dramatiq's broker options as query parameters (others go to the
Redis client): `heartbeat_timeout`, milliseconds without a heartbeat after which a worker
counts as dead and the jobs it fetched but never finished go back to the queue (default
60000), and `maintenance_chance`, how many broker commands in a million also look for such
workers (default 1000). A killed worker's job is redelivered once both have come round, e.g.
`redis://redis:6379/0?heartbeat_timeout=30000&maintenance_chance=10000`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO, CurrentMessage

REDIS_OPTIONS = {
    "heartbeat_timeout": (1_000, 24 * 3_600_000),
    "maintenance_chance": (1, 1_000_000),
}
"""The broker options a Redis URL may carry, with their allowed range."""


class BrokerURLError(ValueError):
    """The broker URL carries an option with a bad value; the message names it."""


def configure_broker(url: str) -> dramatiq.Broker:
    broker: dramatiq.Broker
    if url.startswith(("redis://", "rediss://")):
        from dramatiq.brokers.redis import RedisBroker

        client_url, options = redis_options(url)
        broker = RedisBroker(url=client_url, **options)
    elif url.startswith("amqp://"):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url)
    else:
        broker = StubBroker()
        broker.emit_after("process_boot")
    broker.add_middleware(AsyncIO())
    broker.add_middleware(CurrentMessage())
    dramatiq.set_broker(broker)
    return broker


def redis_options(url: str) -> tuple[str, dict[str, Any]]:
    """Split the broker options off a Redis URL: (the URL for the client, the options)."""
    parts = urlsplit(url)
    options: dict[str, Any] = {}
    rest: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in REDIS_OPTIONS:
            rest.append((name, value))
            continue
        low, high = REDIS_OPTIONS[name]
        if not (value.isdigit() and low <= int(value) <= high):
            raise BrokerURLError(f"broker URL option {name}: expected a whole number from {low} to {high}")
        options[name] = int(value)
    return urlunsplit(parts._replace(query=urlencode(rest))), options


def ping(broker: dramatiq.Broker) -> None:
    """Raise when the broker cannot be reached (used by the readiness check)."""
    client = getattr(broker, "client", None)
    if client is not None and hasattr(client, "ping"):
        client.ping()
        return
    connection = getattr(broker, "connection", None)
    if connection is not None and not connection.is_open:
        raise ConnectionError("broker connection is closed")
