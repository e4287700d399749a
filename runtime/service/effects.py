"""Applying the engine's effects to the tables, inside the command's write transaction.

One call writes, in a few batched statements: the event-log rows (the command itself first,
then every derived fact in effect order), new tasks, closed tasks and moved deadlines, new
and cancelled timers, and the outbox messages (notifications, plugin calls, and the
"task_assigned" notice every new task implies). Inserts come before updates, so a task or
timer created and closed in the same step ends up closed.

`update_form_data` is not applied here: it changes the instance row, which the caller
writes (`runtime.service.pipeline`).

The statements are SQL text made once per shape (table, columns, number of rows) and run with
`storage.raw_sql`: a command writes a handful of rows into several tables, and building each
statement through the query builder cost more than running it. On PostgreSQL they go out in
two statements (`WriteBatch`): the event rows with the new tasks (whose ids the outbox
messages need), then everything else (with the command's audit entry when the caller passes
its batch); a write to a row an earlier pending write touched (a timer scheduled and cancelled
in one step) waits for it.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

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
from storage.raw_sql import WriteBatch, fetch, insert_sql
from storage.tables import InstanceEvent, OutboxMessage, Task, Timer

if TYPE_CHECKING:
    from piccolo.table import Table

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
    *,
    last_seq: int | None = None,
    writes: WriteBatch | None = None,
) -> None:
    """Write `records` (the command's own rows) and every effect of its step.

    `last_seq`: the instance's last event number when the caller knows it (0 for a new
    instance); else it is read. `writes`: a batch the caller flushes later, with writes of
    its own (the audit entry); without it the writes are flushed here.
    """
    batch = writes if writes is not None else WriteBatch(Task)
    await _write_effects(batch, instance, records, effects, now, last_seq)
    if writes is None:
        await batch.flush()


async def _write_effects(
    writes: WriteBatch,
    instance: outbox.InstanceRef,
    records: Sequence[CommandRecord],
    effects: Sequence[Effect],
    now: dt.datetime,
    last_seq: int | None,
) -> None:
    await _record_events(writes, instance.id, records, effects, now, last_seq)
    created = [e for e in effects if isinstance(e, CreateTask)]
    task_ids = await _create_tasks(writes, instance.id, created, now) if created else {}
    closed = [e for e in effects if isinstance(e, CloseTask)]
    if closed:
        await _close_tasks(writes, closed, now)
    for moved in (e for e in effects if isinstance(e, SetTaskDue)):
        await writes.write(_SET_DUE, moved.due_at, moved.task_id, touches=[("task", moved.task_id)])
    scheduled = [e for e in effects if isinstance(e, ScheduleTimer)]
    if scheduled:
        await _schedule_timers(writes, instance.id, scheduled)
    cancelled = [e.timer_id for e in effects if isinstance(e, CancelTimer)]
    if cancelled:
        await writes.write(
            _cancel_timers_sql(len(cancelled)),
            TIMER_CANCELLED,
            *cancelled,
            TIMER_PENDING,
            touches=[("timer", key) for key in cancelled],
        )
    await _queue_messages(writes, instance, effects, task_ids, now)


def last_seq_sql(instance_column: str) -> str:
    """A scalar subquery: the last event number of the instance whose id is `instance_column`."""
    return (
        '(SELECT COALESCE(MAX("seq"), 0) FROM "instance_event" '
        f'WHERE "instance_event"."instance" = {instance_column})'
    )


async def insert_rows(
    table: type[Table], columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]], tail: str = ""
) -> list[dict[str, Any]]:
    """Insert `rows` (values in the order of `columns`) in one statement; what `tail` returns."""
    return await fetch(table, *_insert(table, columns, rows, tail))


def _insert(
    table: type[Table], columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]], tail: str = ""
) -> tuple[Any, ...]:
    """The template and values of `insert_rows`, for a `WriteBatch`."""
    return (
        insert_sql(table._meta.tablename, columns, len(rows), tail),
        *(value for row in rows for value in row),
    )


def _placeholders(count: int) -> str:
    return ", ".join(["{}"] * count)


_SET_DUE = 'UPDATE "task" SET "due_at" = {} WHERE "task_key" = {}'
_LAST_SEQ = f'SELECT {last_seq_sql("{}")} AS "seq"'
_EVENT_COLUMNS = ("instance", "seq", "at", "actor_id", "kind", "node_id", "task_key", "data")
_TASK_COLUMNS = (
    "task_key",
    "instance",
    "node_id",
    "kind",
    "title",
    "assignee",
    "status",
    "outcome",
    "reason",
    "created_at",
    "due_at",
    "closed_at",
    "closed_by",
)
_TIMER_COLUMNS = ("timer_key", "instance", "kind", "task_key", "node_id", "due_at", "status", "fired_at")
_OUTBOX_COLUMNS = (
    "key",
    "actor",
    "payload",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "created_at",
    "sent_at",
)


@functools.cache
def _cancel_timers_sql(count: int) -> str:
    return f'UPDATE "timer" SET "status" = {{}} WHERE "timer_key" IN ({_placeholders(count)}) AND "status" = {{}}'


@functools.cache
def _close_tasks_sql(count: int) -> str:
    return (
        'UPDATE "task" SET "status" = {}, "outcome" = {}, "closed_at" = {}, "closed_by" = {} '
        f'WHERE "task_key" IN ({_placeholders(count)})'
    )


async def _record_events(
    writes: WriteBatch,
    instance_id: int,
    records: Sequence[CommandRecord],
    effects: Sequence[Effect],
    now: dt.datetime,
    last_seq: int | None,
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
    if last_seq is None:
        found = await fetch(InstanceEvent, _LAST_SEQ, instance_id)
        last_seq = int(found[0]["seq"] or 0)
    await writes.write(
        *_insert(
            InstanceEvent,
            _EVENT_COLUMNS,
            [
                (
                    instance_id,
                    last_seq + index,
                    now,
                    row.actor,
                    row.kind,
                    row.node_id,
                    row.task_key,
                    json_text(row.data),
                )
                for index, row in enumerate(rows, start=1)
            ],
        )
    )


async def _create_tasks(
    writes: WriteBatch, instance_id: int, created: list[CreateTask], now: dt.datetime
) -> dict[str, int]:
    """Insert the new tasks (with the writes pending before them); their row ids by task key."""
    rows = await writes.flush(
        *_insert(
            Task,
            _TASK_COLUMNS,
            [
                (
                    effect.task_id,
                    instance_id,
                    effect.node_id,
                    str(effect.kind),
                    effect.title[:200],
                    effect.assignee,
                    TASK_OPEN,
                    None,
                    json_text(effect.reason),
                    now,
                    effect.due_at,
                    None,
                    None,
                )
                for effect in created
            ],
            ' RETURNING "id", "task_key"',
        )
    )
    return {row["task_key"]: row["id"] for row in rows}


async def _close_tasks(writes: WriteBatch, closed: list[CloseTask], now: dt.datetime) -> None:
    groups: dict[tuple[str, int | None], list[str]] = defaultdict(list)
    for effect in closed:
        groups[(str(effect.outcome), effect.actor)].append(effect.task_id)
    for (outcome, actor), keys in groups.items():
        await writes.write(
            _close_tasks_sql(len(keys)),
            TASK_CLOSED,
            outcome,
            now,
            actor,
            *keys,
            touches=[("task", key) for key in keys],
        )


async def _schedule_timers(writes: WriteBatch, instance_id: int, scheduled: list[ScheduleTimer]) -> None:
    await writes.write(
        *_insert(
            Timer,
            _TIMER_COLUMNS,
            [
                (
                    effect.timer_id,
                    instance_id,
                    str(effect.kind),
                    effect.task_id,
                    effect.node_id,
                    effect.due_at,
                    TIMER_PENDING,
                    None,
                )
                for effect in scheduled
            ],
        ),
        touches=[("timer", effect.timer_id) for effect in scheduled],
    )


async def _queue_messages(
    writes: WriteBatch,
    instance: outbox.InstanceRef,
    effects: Sequence[Effect],
    task_ids: dict[str, int],
    now: dt.datetime,
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
    await writes.write(
        *_insert(
            OutboxMessage,
            _OUTBOX_COLUMNS,
            [
                (key, actor, json_text(payload), "pending", 0, now, "", now, None)
                for key, actor, payload in messages
            ],
            ' ON CONFLICT ("key") DO NOTHING',
        )
    )
