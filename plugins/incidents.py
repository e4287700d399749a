"""Plugin incidents: steps whose plugin failed for good, and what admins do about them.

A plugin call that raises, returns `Fail` without retry, or runs out of retries becomes an
`Incident` row with source "plugin" (`open_incident`, written by `plugins.calls`); its key is
the call's outbox key, its payload the call message. The step keeps waiting; nothing is lost.
A process admin then either

- retries it (`retry_incident`): the call's outbox message is queued again with a fresh retry
  budget, so the actor decides and performs once more; or
- skips it (`skip_incident`): the step is reported done ("continue") and the request goes on.

Both resolve the incident and write an audit entry; a resolved incident cannot be retried or
skipped again. Opening and retrying an incident are noted on the request's timeline
(`plugin_incident`, `plugin_retried`); a skip shows there as the step's result. Incidents dramatiq records when a `call_plugin` message exhausts its own
retries (source "actor:call_plugin") are handled the same way.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

import msgspec

from plugins import _timeline
from runtime.flow.errors import TransitionError
from runtime.flow.events import PluginOutcome
from runtime.service.commands import report_plugin_result
from runtime.service.outbox import CALL_PLUGIN
from storage import audit
from storage.database import write_transaction
from storage.tables import Incident, OutboxMessage

SOURCE = "plugin"
ACTOR_SOURCE = f"actor:{CALL_PLUGIN}"
SKIP_NOTE = "管理员跳过此步骤"


class PluginIncident(msgspec.Struct, frozen=True, kw_only=True):
    """An incident as the admin page lists it."""

    id: int
    created_at: dt.datetime
    key: str
    message: str
    plugin: str
    node_id: str
    instance_id: int | None
    number: str
    call_id: str
    attempts: int
    resolved_at: dt.datetime | None = None
    resolved_by: int | None = None


async def open_incident(key: str, call: dict[str, Any], message: str, attempts: int, now: dt.datetime) -> int:
    """Record that the call `key` failed for good; an open incident for it is updated instead."""
    payload = {"call": call, "attempts": attempts}
    async with write_transaction(Incident._meta.db):
        existing = await (
            Incident.select(Incident.id)
            .where((Incident.source == SOURCE) & (Incident.key == key) & Incident.resolved_at.is_null())
            .first()
        )
        if existing is not None:
            await Incident.update({Incident.message: message[:2_000], Incident.payload: payload}).where(
                Incident.id == existing["id"]
            )
            return int(existing["id"])
        rows = await Incident.insert(
            Incident(created_at=now, source=SOURCE, key=key[:200], message=message[:2_000], payload=payload)
        ).returning(Incident.id)
        incident = int(rows[0]["id"])
        await _note(call, _timeline.INCIDENT, now, incident=incident)  # the reason is for admins only
    return incident


async def plugin_incidents(*, open_only: bool = True, limit: int = 200) -> list[PluginIncident]:
    """The plugin incidents, newest first."""
    query = Incident.select().where(Incident.source.is_in([SOURCE, ACTOR_SOURCE]))
    if open_only:
        query = query.where(Incident.resolved_at.is_null())
    rows = await query.order_by(Incident.id, ascending=False).limit(limit).output(load_json=True)
    return [_view(row) for row in rows]


async def retry_incident(incident_id: int, person_id: int, now: dt.datetime) -> bool:
    """Queue the failed call again; False when there is no such open plugin incident."""
    async with write_transaction(Incident._meta.db):
        incident = await _open(incident_id)
        if incident is None:
            return False
        call = _call_of(incident)
        requeued = await (
            OutboxMessage.update(
                {
                    OutboxMessage.status: "pending",
                    OutboxMessage.attempts: 0,
                    OutboxMessage.next_attempt_at: now,
                    OutboxMessage.last_error: "",
                }
            )
            .where(OutboxMessage.key == incident["key"])
            .returning(OutboxMessage.id)
        )
        if not requeued:
            await OutboxMessage.insert(
                OutboxMessage(
                    key=incident["key"],
                    actor=CALL_PLUGIN,
                    payload=call,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
        await _resolve(incident, person_id, now, "incident.retry")
        await _note(call, _timeline.RETRIED, now, actor=person_id, incident=incident["id"])
    return True


async def skip_incident(incident_id: int, person_id: int, now: dt.datetime, note: str = "") -> bool:
    """Report the failed step done so that the request goes on; False when there is no such
    open plugin incident."""
    incident = await _open(incident_id)
    if incident is None:
        return False
    call = _call_of(incident)
    with contextlib.suppress(TransitionError):  # the request ended meanwhile: nothing to skip
        await report_plugin_result(
            int(call["instance_id"]),
            str(call["call_id"]),
            now,
            outcome=PluginOutcome.CONTINUE,
            output={"skipped_by": person_id, "incident": incident_id},
            note=(note or SKIP_NOTE)[:2_000],
        )
    async with write_transaction(Incident._meta.db):
        if await _open(incident_id) is None:
            return False
        await _resolve(incident, person_id, now, "incident.skip")
    return True


async def _note(call: dict[str, Any], kind: str, now: dt.datetime, *, actor: int | None = None, **data: Any) -> None:
    """Put the incident's fact on its request's timeline (a call without a request has none)."""
    instance = call.get("instance_id")
    if isinstance(instance, int) and not isinstance(instance, bool):
        details = {"plugin": call.get("plugin", ""), "call_id": call.get("call_id", ""), **data}
        await _timeline.note(instance, kind, str(call.get("node_id", "")), details, now, actor=actor)


async def _open(incident_id: int) -> dict[str, Any] | None:
    incident: dict[str, Any] | None = (
        await Incident.select().where(Incident.id == incident_id).first().output(load_json=True)
    )
    if incident is None or incident["resolved_at"] is not None:
        return None
    if incident["source"] not in (SOURCE, ACTOR_SOURCE):
        return None
    return incident


async def _resolve(incident: dict[str, Any], person_id: int, now: dt.datetime, action: str) -> None:
    await Incident.update({Incident.resolved_at: now, Incident.resolved_by: person_id}).where(
        Incident.id == incident["id"]
    )
    await audit.record(
        action,
        audit.Actor(id=person_id),
        target_type="incident",
        target_id=incident["id"],
        before={"message": incident["message"]},
        after={"key": incident["key"]},
        now=now,
    )


def _payload(incident: dict[str, Any]) -> dict[str, Any]:
    payload = incident["payload"]
    if isinstance(payload, str | bytes):
        payload = msgspec.json.decode(payload)
    return dict(payload or {})


def _call_of(incident: dict[str, Any]) -> dict[str, Any]:
    """The call message: ours keep it under "call", dramatiq's under "args" [key, payload]."""
    payload = _payload(incident)
    if "call" in payload:
        return dict(payload["call"])
    args = payload.get("args") or []
    return dict(args[1]) if len(args) > 1 and isinstance(args[1], dict) else {}


def _view(row: dict[str, Any]) -> PluginIncident:
    call = _call_of(row)
    attempts = _payload(row).get("attempts", 0)
    instance = call.get("instance_id")
    return PluginIncident(
        id=row["id"],
        created_at=row["created_at"],
        key=row["key"],
        message=row["message"],
        plugin=str(call.get("plugin", "")),
        node_id=str(call.get("node_id", "")),
        instance_id=int(instance) if isinstance(instance, int) else None,
        number=str(call.get("number", "")),
        call_id=str(call.get("call_id", "")),
        attempts=int(attempts) if isinstance(attempts, int) else 0,
        resolved_at=row["resolved_at"],
        resolved_by=row["resolved_by"],
    )
