"""The dramatiq actors: the work that leaves a request's transaction, each safe to run twice.

`register_actors(broker)` declares them on the broker configured at start-up (dramatiq binds
actors at declaration, so this runs after `configure_broker`). `broker_sender(broker)` is the
`send` the outbox relay uses. A message whose retries run out becomes an incident.

    notify        (key, payload)  in-app notifications (`runtime.notifications.deliver`)
    call_plugin   (key, payload)  a plugin step's call (`plugins.calls.run_call`): the plugin's
                                  side-effect hook with the outbox key as idempotency key, its
                                  result fed back as a `PluginResult`; the plugin's retry policy
                                  sets the back-off (`dramatiq.Retry`), and a call that fails
                                  for good is an incident with source "plugin"
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from plugins.calls import CallStatus, run_call
from runtime.notifications import deliver
from storage.tables import Incident

NOTIFY = "notify"
CALL_PLUGIN = "call_plugin"
RECORD_INCIDENT = "record_incident"
CALL_PLUGIN_MAX_RETRIES = 60
"""dramatiq's own ceiling; a plugin's retry policy (at most 50 attempts) ends earlier."""


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

    async def call_plugin(key: str, payload: dict[str, Any]) -> None:
        report = await run_call(key, payload, attempt=current_attempt(), now=dt.datetime.now(dt.UTC))
        if report.status is CallStatus.RETRY:
            raise dramatiq.Retry(report.message, delay=round(report.retry_in * 1_000))

    dramatiq.actor(
        actor_name=CALL_PLUGIN,
        broker=broker,
        max_retries=CALL_PLUGIN_MAX_RETRIES,
        min_backoff=1_000,
        max_backoff=600_000,
        on_retry_exhausted=RECORD_INCIDENT,
    )(call_plugin)
    dramatiq.actor(actor_name=RECORD_INCIDENT, broker=broker, max_retries=5)(record_incident)


def current_attempt() -> int:
    """How often the message being processed was retried before (0 the first time)."""
    message = CurrentMessage.get_current_message()
    return int(message.options.get("retries", 0)) if message is not None else 0


def broker_sender(broker: dramatiq.Broker):  # type: ignore[no-untyped-def]
    def send(actor_name: str, key: str, payload: dict[str, Any]) -> None:
        broker.get_actor(actor_name).send_with_options(args=(key, payload))

    return send
