"""The dramatiq broker, chosen by URL: memory:// (in-process), redis://... or amqp://....

Import-time binding is dramatiq's pitfall: `@dramatiq.actor` binds to the global broker when
the module is imported, so `configure_broker` must run before any module that defines actors.
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO, CurrentMessage


def configure_broker(url: str) -> dramatiq.Broker:
    broker: dramatiq.Broker
    if url.startswith(("redis://", "rediss://")):
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=url)
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


def ping(broker: dramatiq.Broker) -> None:
    """Raise when the broker cannot be reached (used by the readiness check)."""
    client = getattr(broker, "client", None)
    if client is not None and hasattr(client, "ping"):
        client.ping()
        return
    connection = getattr(broker, "connection", None)
    if connection is not None and not connection.is_open:
        raise ConnectionError("broker connection is closed")
