"""The outbox relay: hands pending outbox rows to the broker, at least once, never losing one.

A scheduler job claims due pending rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the IMMEDIATE
write lock on SQLite, so several schedulers never claim the same row), sends each to its
dramatiq actor, and marks it sent in the same transaction. A send that fails (broker down)
leaves the row pending with a growing back-off, so the user's action that wrote it has already
succeeded and the message goes out once the broker is back. A row that still fails after
`MAX_ATTEMPTS` becomes an incident an admin can see and retry.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import msgspec
from piccolo.engine.postgres import PostgresEngine

from storage.database import write_transaction
from storage.tables import Incident, OutboxMessage

log = logging.getLogger("formflow.relay")

MAX_ATTEMPTS = 20
MAX_BACKOFF_SECONDS = 600

Send = Callable[[str, str, dict[str, Any]], None]
"""send(actor_name, key, payload): enqueue one message; raises when the broker refuses it."""


class RelayReport(msgspec.Struct, frozen=True, kw_only=True):
    sent: int = 0
    deferred: int = 0
    failed: int = 0


def backoff(attempts: int) -> dt.timedelta:
    """1 s, 2 s, 4 s ... capped at ten minutes."""
    return dt.timedelta(seconds=min(2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))


async def relay_outbox(send: Send, now: dt.datetime, limit: int = 200) -> RelayReport:
    """Send up to `limit` due pending messages; one transaction for the batch."""
    sent = deferred = failed = 0
    async with write_transaction(OutboxMessage._meta.db):
        query = (
            OutboxMessage.select(
                OutboxMessage.id,
                OutboxMessage.key,
                OutboxMessage.actor,
                OutboxMessage.payload,
                OutboxMessage.attempts,
            )
            .where((OutboxMessage.status == "pending") & (OutboxMessage.next_attempt_at <= now))
            .order_by(OutboxMessage.id)
            .limit(limit)
            .output(load_json=True)
        )
        if isinstance(OutboxMessage._meta.db, PostgresEngine):
            query = query.lock_rows("UPDATE", skip_locked=True)
        for row in await query:
            try:
                send(row["actor"], row["key"], dict(row["payload"]))
            except Exception as exc:
                attempts = row["attempts"] + 1
                error = f"{type(exc).__name__}: {exc}"[:2000]
                if attempts >= MAX_ATTEMPTS:
                    failed += 1
                    await OutboxMessage.update(
                        {
                            OutboxMessage.status: "failed",
                            OutboxMessage.attempts: attempts,
                            OutboxMessage.last_error: error,
                        }
                    ).where(OutboxMessage.id == row["id"])
                    await Incident.insert(
                        Incident(
                            created_at=now,
                            source="outbox",
                            key=row["key"],
                            message=error,
                            payload={"actor": row["actor"], "outbox_id": row["id"]},
                        )
                    )
                else:
                    deferred += 1
                    await OutboxMessage.update(
                        {
                            OutboxMessage.attempts: attempts,
                            OutboxMessage.last_error: error,
                            OutboxMessage.next_attempt_at: now + backoff(attempts),
                        }
                    ).where(OutboxMessage.id == row["id"])
                continue
            sent += 1
            await OutboxMessage.update(
                {
                    OutboxMessage.status: "sent",
                    OutboxMessage.sent_at: now,
                    OutboxMessage.attempts: row["attempts"] + 1,
                }
            ).where(OutboxMessage.id == row["id"])
    if deferred or failed:
        log.warning("outbox: %d sent, %d deferred (broker unavailable?), %d failed", sent, deferred, failed)
    return RelayReport(sent=sent, deferred=deferred, failed=failed)


async def retry_incident(incident_id: int, person_id: int, now: dt.datetime) -> bool:
    """Put an outbox incident's message back in the queue and mark the incident resolved."""
    async with write_transaction(Incident._meta.db):
        incident = await Incident.select().where(Incident.id == incident_id).first().output(load_json=True)
        if incident is None or incident["resolved_at"] is not None:
            return False
        if incident["source"] == "outbox":
            await OutboxMessage.update(
                {
                    OutboxMessage.status: "pending",
                    OutboxMessage.attempts: 0,
                    OutboxMessage.next_attempt_at: now,
                }
            ).where(OutboxMessage.key == incident["key"])
        await Incident.update({Incident.resolved_at: now, Incident.resolved_by: person_id}).where(
            Incident.id == incident_id
        )
    return True
