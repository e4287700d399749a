"""The dramatiq actors: the work that leaves a request's transaction, each safe to run twice.

`register_actors(broker)` declares them on the broker configured at start-up (dramatiq binds
actors at declaration, so this runs after `configure_broker`). `broker_sender(broker)` is the
`send` the outbox relay uses. A message whose retries run out becomes an incident.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import dramatiq

from runtime.notifications import deliver
from storage.tables import Incident

NOTIFY = "notify"
RECORD_INCIDENT = "record_incident"


def register_actors(broker: dramatiq.Broker) -> None:
    async def notify(key: str, payload: dict[str, Any]) -> None:
        await deliver(key, payload, dt.datetime.now(dt.UTC))

    async def record_incident(message: dict[str, Any], retry_info: dict[str, Any]) -> None:
        args = message.get("args") or [""]
        await Incident.insert(
            Incident(
                created_at=dt.datetime.now(dt.UTC),
                source=f"actor:{message.get('actor_name', '?')}"[:64],
                key=str(args[0])[:200],
                message=f"retries exhausted after {retry_info.get('retries', '?')} attempts",
                payload={"message_id": message.get("message_id"), "args": args[:2]},
            )
        )

    dramatiq.actor(
        actor_name=NOTIFY,
        broker=broker,
        max_retries=10,
        min_backoff=1_000,
        max_backoff=600_000,
        on_retry_exhausted=RECORD_INCIDENT,
    )(notify)
    dramatiq.actor(actor_name=RECORD_INCIDENT, broker=broker, max_retries=5)(record_incident)


def broker_sender(broker: dramatiq.Broker):  # type: ignore[no-untyped-def]
    def send(actor_name: str, key: str, payload: dict[str, Any]) -> None:
        broker.get_actor(actor_name).send_with_options(args=(key, payload))

    return send
