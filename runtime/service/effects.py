"""Applying the engine's effects to the tables, inside the command's write transaction.

One call writes, in a few batched statements: the event-log rows (the command itself first,
then every derived fact in effect order), new tasks, closed tasks and moved deadlines, new
and cancelled timers, and the outbox messages (notifications, plugin calls, and the
"task_assigned" notice every new task implies). Inserts come before updates, so a task or
timer created and closed in the same step ends up closed.

`update_form_data` is not applied here: it changes the instance row, which the caller
writes (`runtime.service.pipeline`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec

from runtime.flow.effects import (
    CallPlugin,
    CancelTimer,
    CloseTask,
    CreateTask,
    Effect,
    Notify,
    RecordEvent,
    ScheduleTimer,
    SetStatus,
    SetTaskDue,
)
from runtime.service import outbox
from storage.tables import InstanceEvent, OutboxMessage, Task, Timer

TASK_OPEN = "open"
TASK_CLOSED = "closed"
TIMER_PENDING = "pending"
TIMER_FIRED = "fired"
TIMER_CANCELLED = "cancelled"
TIMER_FAILED = "failed"

_encoder = msgspec.json.Encoder()


class CommandRecord(NamedTuple):
    """The command's own event-log row: what was asked, by whom, with its comment or note."""

    kind: str
    actor: int | None
    node_id: str | None = None
    task_key: str | None = None
    data: dict[str, Any] = {}


def json_text(value: Any) -> str:
    """A JSON column value (amounts, dates and Structs included)."""
    return _encoder.encode(value).decode()


async def apply_effects(
    instance: outbox.InstanceRef,
    records: Sequence[CommandRecord],
    effects: Sequence[Effect],
    now: dt.datetime,
) -> None:
    """Write `records` (the command's own rows) and every effect of its step."""
    await _record_events(instance.id, records, effects, now)
    task_ids = await _create_tasks(instance.id, [e for e in effects if isinstance(e, CreateTask)], now)
    await _close_tasks([e for e in effects if isinstance(e, CloseTask)], now)
    for moved in (e for e in effects if isinstance(e, SetTaskDue)):
        await Task.update({Task.due_at: moved.due_at}).where(Task.task_key == moved.task_id)
    await _schedule_timers(instance.id, [e for e in effects if isinstance(e, ScheduleTimer)])
    cancelled = [e.timer_id for e in effects if isinstance(e, CancelTimer)]
    if cancelled:
        await Timer.update({Timer.status: TIMER_CANCELLED}).where(
            Timer.timer_key.is_in(cancelled) & (Timer.status == TIMER_PENDING)
        )
    await _queue_messages(instance, effects, task_ids, now)


async def _record_events(
    instance_id: int, records: Sequence[CommandRecord], effects: Sequence[Effect], now: dt.datetime
) -> None:
    rows = list(records)
    for effect in effects:
        if isinstance(effect, RecordEvent):
            rows.append(CommandRecord(effect.kind, effect.actor, effect.node_id, effect.task_id, effect.data))
        elif isinstance(effect, SetStatus):
            change = {"from": str(effect.previous), "to": str(effect.status)}
            rows.append(CommandRecord("status_changed", None, data=change))
        elif isinstance(effect, CreateTask):
            data: dict[str, Any] = {
                "assignee": effect.assignee,
                "kind": str(effect.kind),
                "title": effect.title,
                "reason": effect.reason,
                "due_at": effect.due_at,
            }
            rows.append(CommandRecord("task_created", None, effect.node_id, effect.task_id, data))
    if not rows:
        return
    last = await (
        InstanceEvent.select(InstanceEvent.seq)
        .where(InstanceEvent.instance == instance_id)
        .order_by(InstanceEvent.seq, ascending=False)
        .first()
    )
    seq = last["seq"] if last else 0
    await InstanceEvent.insert(
        *(
            InstanceEvent(
                instance=instance_id,
                seq=seq + index,
                at=now,
                actor_id=row.actor,
                kind=row.kind,
                node_id=row.node_id,
                task_key=row.task_key,
                data=json_text(row.data),
            )
            for index, row in enumerate(rows, start=1)
        )
    )


async def _create_tasks(instance_id: int, created: list[CreateTask], now: dt.datetime) -> dict[str, int]:
    """Insert the new tasks; their row ids by task key."""
    if not created:
        return {}
    rows = await Task.insert(
        *(
            Task(
                task_key=effect.task_id,
                instance=instance_id,
                node_id=effect.node_id,
                kind=str(effect.kind),
                title=effect.title[:200],
                assignee=effect.assignee,
                status=TASK_OPEN,
                reason=json_text(effect.reason),
                created_at=now,
                due_at=effect.due_at,
            )
            for effect in created
        )
    ).returning(Task.id, Task.task_key)
    return {row["task_key"]: row["id"] for row in rows}


async def _close_tasks(closed: list[CloseTask], now: dt.datetime) -> None:
    groups: dict[tuple[str, int | None], list[str]] = defaultdict(list)
    for effect in closed:
        groups[(str(effect.outcome), effect.actor)].append(effect.task_id)
    for (outcome, actor), keys in groups.items():
        await Task.update(
            {Task.status: TASK_CLOSED, Task.outcome: outcome, Task.closed_at: now, Task.closed_by: actor}
        ).where(Task.task_key.is_in(keys))


async def _schedule_timers(instance_id: int, scheduled: list[ScheduleTimer]) -> None:
    if not scheduled:
        return
    await Timer.insert(
        *(
            Timer(
                timer_key=effect.timer_id,
                instance=instance_id,
                kind=str(effect.kind),
                task_key=effect.task_id,
                node_id=effect.node_id,
                due_at=effect.due_at,
                status=TIMER_PENDING,
            )
            for effect in scheduled
        )
    )


async def _queue_messages(
    instance: outbox.InstanceRef, effects: Sequence[Effect], task_ids: dict[str, int], now: dt.datetime
) -> None:
    messages: list[tuple[str, str, Any]] = []
    for effect in effects:
        if isinstance(effect, CreateTask):
            messages.append(outbox.task_assigned(instance, effect, task_ids[effect.task_id]))
        elif isinstance(effect, Notify):
            messages.append(outbox.notification(instance, effect))
        elif isinstance(effect, CallPlugin):
            messages.append(outbox.plugin_call(instance, effect))
    if not messages:
        return
    await OutboxMessage.insert(
        *(
            OutboxMessage(
                key=key,
                actor=actor,
                payload=json_text(payload),
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            for key, actor, payload in messages
        )
    ).on_conflict(target=OutboxMessage.key, action="DO NOTHING")
