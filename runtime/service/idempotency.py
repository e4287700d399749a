"""`Idempotency-Key`: the same key from the same person replays the first response.

The response is stored in the transaction of the action (`remember`), so an action and its
record commit together: either both exist or neither. `run_once` is the whole protocol:

    stored? -> replay it
    run the command (which calls `remember` inside its transaction)
    failed? -> a concurrent twin may have committed first: stored now? -> replay it

A key reused for a different request (another path or body) is refused, never replayed.
Records older than a day are purged by `purge_idempotency_records`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from runtime.flow import FlowError
from runtime.service.effects import json_text
from runtime.service.errors import ConflictError, IdempotencyKeyReused, ServiceError
from runtime.service.views import CommandResult
from storage.tables import IdempotencyRecord

RETENTION = dt.timedelta(days=1)


class IdempotencyKey(msgspec.Struct, frozen=True, kw_only=True):
    """The client's key, a fingerprint of the request (e.g. SHA-256 of method, path and body),
    and the status code a fresh success answers with."""

    key: str
    fingerprint: str
    status_code: int = 200


class Replay(msgspec.Struct, frozen=True, kw_only=True):
    """A stored first response."""

    status_code: int
    body: Any


def _scope(person_id: int, key: str) -> str:
    return f"{person_id}:{key}"


async def recall(person_id: int, idempotency: IdempotencyKey) -> Replay | None:
    row = await (
        IdempotencyRecord.select(
            IdempotencyRecord.fingerprint, IdempotencyRecord.status_code, IdempotencyRecord.body
        )
        .where(IdempotencyRecord.scope_key == _scope(person_id, idempotency.key))
        .first()
        .output(load_json=True)
    )
    if row is None:
        return None
    if row["fingerprint"] != idempotency.fingerprint:
        raise IdempotencyKeyReused(idempotency.key)
    return Replay(status_code=row["status_code"], body=row["body"])


async def remember(
    person_id: int, idempotency: IdempotencyKey, result: CommandResult, now: dt.datetime
) -> None:
    """Store the response; call inside the action's write transaction."""
    inserted = (
        await IdempotencyRecord.insert(
            IdempotencyRecord(
                scope_key=_scope(person_id, idempotency.key),
                person_id=person_id,
                fingerprint=idempotency.fingerprint,
                status_code=idempotency.status_code,
                body=json_text(result),
                created_at=now,
            )
        )
        .on_conflict(target=IdempotencyRecord.scope_key, action="DO NOTHING")
        .returning(IdempotencyRecord.id)
    )
    if not inserted:
        raise ConflictError("another request with the same Idempotency-Key was answered first")


async def run_once(
    person_id: int,
    idempotency: IdempotencyKey | None,
    command: Callable[[IdempotencyKey | None], Awaitable[CommandResult]],
) -> CommandResult | Replay:
    """Run `command` unless a response for this key is stored; then replay that response."""
    if idempotency is None:
        return await command(None)
    stored = await recall(person_id, idempotency)
    if stored is not None:
        return stored
    try:
        return await command(idempotency)
    except (ServiceError, FlowError):
        stored = await recall(person_id, idempotency)
        if stored is not None:
            return stored
        raise


async def purge_idempotency_records(now: dt.datetime, older_than: dt.timedelta = RETENTION) -> int:
    """Delete records older than `older_than`; a periodic job for the scheduler."""
    gone = (
        await IdempotencyRecord.delete()
        .where(IdempotencyRecord.created_at < now - older_than)
        .returning(IdempotencyRecord.id)
    )
    return len(gone)
