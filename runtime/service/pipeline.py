"""One command, one transaction: load, decide with the engine, write everything at once.

    @one_transaction                                            # the command's write transaction
    async def command(...):
        loaded = await load_instance(id, visible_to=principal)   # the row, its state, row_version
        step = decide(loaded, event, now, org)                      # pure: runtime.flow.advance
        await write_step(loaded, step, records, now)            # UPDATE ... WHERE row_version = ?
        ...                                                     # audit, idempotency, links

A command reads and writes on the one connection of its write transaction: a query outside a
transaction costs a connection of its own (a kept one on SQLite, `storage.sqlite_engine`; one
from the pool per query on PostgreSQL). On SQLite the write lock is taken at BEGIN, so
commands queue; on PostgreSQL two may load the same row. `write_step` updates the row only if
`row_version` is still the one loaded, and zero rows updated raises `ConflictError`: someone
else acted first, nothing was written.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, NamedTuple, ParamSpec, TypeVar

import msgspec

from forms import ValidationContext
from runtime.calendar import BusinessCalendar
from runtime.flow import Environment, InstanceState, OrgDirectory, Status, Step, advance, decode_state, encode
from runtime.flow.effects import UpdateFormData
from runtime.flow.events import Event
from runtime.flow.graph import JoinNode
from runtime.flow.lifecycle import TERMINAL
from runtime.service.caller import BUSINESS_TZ
from runtime.service.definitions import Definition, definition
from runtime.service.effects import CommandRecord, apply_effects, json_text, last_seq_sql
from runtime.service.errors import ConflictError, InstanceNotFound
from runtime.service.form_data import as_stored, engine_form, title_of
from runtime.service.outbox import InstanceRef
from runtime.service.views import CommandResult
from runtime.service.visibility import may_see
from storage.access import Principal
from storage.database import write_transaction
from storage.org import ORG_TOKEN_SQL
from storage.raw_sql import WriteBatch, fetch
from storage.tables import Instance

CALENDAR = BusinessCalendar()
"""The business calendar every deadline is computed with (Shanghai, statutory holidays)."""

CHANGE_STEP_TITLE = "流程变更申请"
_STEP_SEPARATOR = "、"


_P = ParamSpec("_P")
_R = TypeVar("_R")


def one_transaction(command: Callable[_P, Awaitable[_R]]) -> Callable[_P, Awaitable[_R]]:
    """Run the whole command, its reads included, in one write transaction (nested calls join it)."""

    @functools.wraps(command)
    async def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        async with write_transaction(Instance._meta.db):
            return await command(*args, **kwargs)

    return run


class LoadedInstance(NamedTuple):
    """An instance row as a command reads it; `row_version` is what the write must still find."""

    id: int
    number: str
    title: str
    row_version: int
    status: str
    initiator: int
    department_id: int | None
    urgent: bool
    data: dict[str, Any]
    state: InstanceState
    definition: Definition
    org_token: int | None = None
    """The organisation's revision token, read with the row (`load_org_directory(token)`)."""

    @property
    def ref(self) -> InstanceRef:
        return InstanceRef(id=self.id, number=self.number, title=self.title)


async def load_instance(instance_id: int, *, visible_to: Principal | None = None) -> LoadedInstance:
    """The instance, if it exists and (with `visible_to`) that person may see it."""
    rows = await fetch(Instance, _LOAD, instance_id)
    if not rows:
        raise InstanceNotFound(instance_id)
    return await _loaded(rows[0], visible_to)


class TaskOnInstance(NamedTuple):
    """A task named by its row id, read with its instance in one query."""

    task_key: str
    node_id: str
    instance: LoadedInstance


async def load_task_instance(task_id: int, *, visible_to: Principal | None = None) -> TaskOnInstance | None:
    """The task and its instance; None when there is no such task. Raises `InstanceNotFound`
    when `visible_to` may not see the instance."""
    rows = await fetch(Instance, _LOAD_BY_TASK, task_id)
    if not rows:
        return None
    row = rows[0]
    return TaskOnInstance(row["task_key"], row["task_node_id"], await _loaded(row, visible_to))


async def _loaded(row: Mapping[str, Any], visible_to: Principal | None) -> LoadedInstance:
    if visible_to is not None and not await may_see(
        visible_to,
        row["id"],
        initiator=row["initiator"],
        department_id=row["department_id"],
        status=row["status"],
    ):
        raise InstanceNotFound(row["id"])
    return LoadedInstance(
        id=row["id"],
        number=row["number"],
        title=row["title"],
        row_version=row["row_version"],
        status=row["status"],
        initiator=row["initiator"],
        department_id=row["department_id"],
        urgent=row["urgent"],
        data=_json_object(row["data"]),
        state=decode_state(_json_text(row["state"])),
        definition=await definition(row["template_version"], row["published_at"]),
        org_token=row["org_token"],
    )


_COLUMNS = (
    '"instance"."id", "instance"."number", "instance"."title", "instance"."row_version", '
    '"instance"."status", "instance"."initiator", "instance"."department_id", "instance"."urgent", '
    '"instance"."data", "instance"."state", "instance"."template_version", '
    f'"template_version"."published_at" AS "published_at", ({ORG_TOKEN_SQL}) AS "org_token"'
)
_LOAD = (
    f'SELECT {_COLUMNS} FROM "instance" '
    'JOIN "template_version" ON "template_version"."id" = "instance"."template_version" '
    'WHERE "instance"."id" = {}'
)
_LOAD_BY_TASK = (
    f'SELECT "task"."task_key", "task"."node_id" AS "task_node_id", {_COLUMNS} FROM "task" '
    'JOIN "instance" ON "instance"."id" = "task"."instance" '
    'JOIN "template_version" ON "template_version"."id" = "instance"."template_version" '
    'WHERE "task"."id" = {}'
)
"""The rows a command reads; whether the caller may see it is `runtime.service.visibility.may_see`."""


def step_plugins() -> Mapping[str, Any]:
    """The installed step plugins by name, for `Environment.plugins`.

    Imported here, not at the top: the plugin SDK's own service calls import this package.
    """
    from plugins.registry import engine_plugins

    return engine_plugins()


def environment(loaded: LoadedInstance, org: OrgDirectory) -> Environment:
    return Environment(
        org=org,
        calendar=CALENDAR,
        initiator=loaded.initiator,
        form=engine_form(loaded.definition.schema, loaded.data),
        urgent=loaded.urgent,
        plugins=step_plugins(),
    )


def decide(loaded: LoadedInstance, event: Event, now: dt.datetime, org: OrgDirectory) -> Step:
    """What the engine makes of `event` (raises the engine's `CommandError` when refused)."""
    return advance(loaded.definition.runnable_flow(), loaded.state, event, now, environment(loaded, org))


async def write_step(
    loaded: LoadedInstance,
    step: Step,
    records: Sequence[CommandRecord],
    now: dt.datetime,
    *,
    data: dict[str, Any] | None = None,
    writes: WriteBatch | None = None,
) -> CommandResult:
    """Write the new state, data and every effect; call inside the write transaction.
    With `writes`, the last of the effect rows stay pending in it for the caller to flush.

    `data` replaces the stored data (a resubmission with changes); an approved change request
    in the effects is merged in after it.
    """
    new_data = data if data is not None else loaded.data
    for change in (e for e in step.effects if isinstance(e, UpdateFormData)):
        new_data = _merge_change(loaded, new_data, change.changes, now)
    state = step.state
    step_title = current_step(loaded.definition, state)
    values: dict[str, Any] = {
        "state": encode(state).decode(),
        "status": str(state.status),
        "urgent": state.urgent or loaded.urgent,
        "current_step": step_title,
        "submitted_at": state.submitted_at,
        "updated_at": now,
        "row_version": loaded.row_version + 1,
    }
    title = loaded.title
    if new_data is not loaded.data:
        values["data"] = json_text(new_data)
        title = title_of(loaded.definition, new_data)
        values["title"] = title
    if state.status in TERMINAL and loaded.status != state.status:
        values["closed_at"] = now
    updated = await fetch(
        Instance, _update_sql(tuple(values)), *values.values(), loaded.id, loaded.row_version
    )
    if not updated:
        raise ConflictError()
    ref = InstanceRef(id=loaded.id, number=loaded.number, title=title)
    await apply_effects(ref, records, step.effects, now, last_seq=int(updated[0]["last_seq"]), writes=writes)
    return CommandResult(
        id=loaded.id,
        number=loaded.number,
        status=str(state.status),
        current_step=step_title,
        row_version=loaded.row_version + 1,
    )


@functools.cache
def _update_sql(columns: tuple[str, ...]) -> str:
    """The optimistic write of the instance row; it also returns the last event number."""
    assignments = ", ".join(f'"{column}" = {{}}' for column in columns)
    last_seq = last_seq_sql('"instance"."id"')
    return (
        f'UPDATE "instance" SET {assignments} WHERE "id" = {{}} AND "row_version" = {{}} '
        f'RETURNING {last_seq} AS "last_seq"'
    )


def current_step(definition: Definition, state: InstanceState) -> str:
    """The titles of the steps that are waiting now, e.g. "部门负责人审批" (empty when closed)."""
    if state.status in TERMINAL or state.status in (Status.DRAFT, Status.RETURNED):
        return ""
    nodes = {node.id: node for node in definition.flow.nodes} if definition.flow else {}
    titles: dict[str, None] = {}
    waiting = [task.node for task in state.tasks] + [
        token.node for token in state.tokens if not isinstance(nodes.get(token.node), JoinNode)
    ]
    for node_id in waiting:
        node = nodes.get(node_id)
        titles.setdefault((node.title or node.id) if node is not None else CHANGE_STEP_TITLE, None)
    return _STEP_SEPARATOR.join(titles)[:200]


def _merge_change(
    loaded: LoadedInstance, data: dict[str, Any], changes: Mapping[str, Any], now: dt.datetime
) -> dict[str, Any]:
    """The data with an approved change applied, computed fields and totals recomputed."""
    merged = {**data, **changes}
    ctx = ValidationContext(today=now.astimezone(BUSINESS_TZ).date())
    result = loaded.definition.form.validate(merged, ctx, mode="draft")
    return merged if result.errors else as_stored(result.data)


def _json_text(value: str | bytes | Any) -> str | bytes:
    return value if isinstance(value, str | bytes) else msgspec.json.encode(value)


def _json_object(value: str | bytes | Any) -> dict[str, Any]:
    decoded = msgspec.json.decode(value) if isinstance(value, str | bytes) else value
    return dict(decoded or {})
