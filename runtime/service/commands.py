"""The commands on a request, each one transaction (`runtime.service.pipeline`); approvers'
decisions on tasks are in `runtime.service.task_actions`.

Every command loads the instance as the caller may see it (404 otherwise), lets the engine
decide (its `CommandError`s pass through: not the assignee, not allowed, wrong status, ...),
then writes state, events, tasks, timers, outbox, audit and the idempotency record at once.
A command the engine treats as a no-op (marking an urgent request urgent) writes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from runtime.flow import Status, Step
from runtime.flow.errors import InvalidCommandError, NotPermittedError
from runtime.flow.events import (
    ChangeRequestSubmit,
    Comment,
    MarkUrgent,
    PluginOutcome,
    PluginResult,
    Submit,
    SummarySubmitted,
    TaskCompleted,
    Urge,
    Withdraw,
)
from runtime.service._command import Links, finish, link_uploads, run_command, unchanged
from runtime.service.caller import Caller
from runtime.service.effects import TASK_OPEN, CommandRecord
from runtime.service.errors import FormInvalid, NotEditable, TaskNotFound
from runtime.service.form_data import attachment_refs, unknown_fields, validated
from runtime.service.idempotency import IdempotencyKey
from runtime.service.org_directory import load_org_directory
from runtime.service.pipeline import LoadedInstance, decide, load_instance, one_transaction, write_step
from runtime.service.requests import (
    ChangeRequestBody,
    CommentRequest,
    DataUpdate,
    NoteRequest,
    ProgressRequest,
    SubmitRequest,
    SummaryRequest,
)
from runtime.service.views import CommandResult
from storage import audit
from storage.database import write_transaction
from storage.raw_sql import fetch
from storage.tables import Instance, Task

_EDITABLE = frozenset({Status.DRAFT, Status.RETURNED})
_NOTE_LIMIT = 2_000


# -- the initiator's commands ---------------------------------------------------------------


@one_transaction
async def update_data(
    caller: Caller,
    instance_id: int,
    request: DataUpdate,
    now: dt.datetime,
    *,
    idempotency: IdempotencyKey | None = None,
) -> CommandResult:
    """Replace the data of a draft or a returned request (checked as a draft)."""
    loaded = await load_instance(instance_id, visible_to=caller.principal)
    _require_initiator(caller, loaded, "change the data")
    if loaded.status not in _EDITABLE:
        raise NotEditable(loaded.status)
    data = validated(loaded.definition, request.data, caller.validation_context(now), "draft")
    record = CommandRecord("data_updated", caller.id, data={"diff": _diff(loaded.data, data)})
    links = Links(attachment_refs(loaded.definition.schema, data), loaded.initiator)
    same_state = Step(loaded.state, ())  # a data edit is not an engine event
    async with write_transaction(Instance._meta.db):
        result = await write_step(loaded, same_state, [record], now, data=data)
        await link_uploads(links.refs, instance_id=loaded.id, owner_id=links.owner_id, now=now)
        await finish(caller, "update_data", result, before=loaded.status, now=now, idempotency=idempotency)
    return result


@one_transaction
async def submit(
    caller: Caller,
    instance_id: int,
    request: SubmitRequest,
    now: dt.datetime,
    *,
    idempotency: IdempotencyKey | None = None,
) -> CommandResult:
    """Submit a draft, or resubmit a returned request; the data must be complete now."""
    loaded = await load_instance(instance_id, visible_to=caller.principal)
    _require_initiator(caller, loaded, "submit")
    raw = request.data if request.data is not None else loaded.data
    data = validated(loaded.definition, raw, caller.validation_context(now), "submit")
    urgent = request.urgent or loaded.urgent or data.get("urgent") is True
    chosen = {node: tuple(people) for node, people in request.chosen.items()}
    event = Submit(actor=caller.id, urgent=urgent, chosen=chosen)
    kind = "resubmit" if loaded.status == Status.RETURNED else "submit"
    record_data: dict[str, Any] = {"urgent": urgent}
    if request.data is not None:
        record_data["diff"] = _diff(loaded.data, data)
    return await run_command(
        caller,
        loaded,
        event,
        CommandRecord(kind, caller.id, data=record_data),
        now,
        action=kind,
        idempotency=idempotency,
        data=data,
        links=Links(attachment_refs(loaded.definition.schema, data), loaded.initiator),
    )


@one_transaction
async def withdraw(
    caller: Caller,
    instance_id: int,
    request: NoteRequest,
    now: dt.datetime,
    *,
    idempotency: IdempotencyKey | None = None,
) -> CommandResult:
    return await _simple(
        caller, instance_id, Withdraw(actor=caller.id, note=request.note), "withdraw", now, idempotency
    )


@one_transaction
async def urge(
    caller: Caller,
    instance_id: int,
    request: NoteRequest,
    now: dt.datetime,
    *,
    idempotency: IdempotencyKey | None = None,
) -> CommandResult:
    """催办: notify the current assignees (at most once an hour, else `UrgeTooSoonError`)."""
    return await _simple(
        caller, instance_id, Urge(actor=caller.id, note=request.note), "urge", now, idempotency
    )


@one_transaction
async def mark_urgent(
    caller: Caller, instance_id: int, now: dt.datetime, *, idempotency: IdempotencyKey | None = None
) -> CommandResult:
    """加急: open approvals become due within their urgent hours (24 by default)."""
    return await _simple(caller, instance_id, MarkUrgent(actor=caller.id), "mark_urgent", now, idempotency)


@one_transaction
async def comment(
    caller: Caller,
    instance_id: int,
    request: CommentRequest,
    now: dt.datetime,
    *,
    idempotency: IdempotencyKey | None = None,
) -> CommandResult:
    """A comment by anyone who may see the request; it changes nothing but the timeline."""
    return await _simple(
        caller, instance_id, Comment(actor=caller.id, text=request.text), "comment", now, idempotency
    )


async def _simple(
    caller: Caller,
    instance_id: int,
    event: Withdraw | Urge | MarkUrgent | Comment,
    action: str,
    now: dt.datetime,
    idempotency: IdempotencyKey | None,
) -> CommandResult:
    loaded = await load_instance(instance_id, visible_to=caller.principal)
    data = {key: value for key in ("note", "text") if (value := getattr(event, key, ""))}
    record = CommandRecord(action, caller.id, data=data)
    return await run_command(caller, loaded, event, record, now, action=action, idempotency=idempotency)


@one_transaction
async def record_progress(
    caller: Caller,
    instance_id: int,
    request: ProgressRequest,
    now: dt.datetime,
    *,
    idempotency: IdempotencyKey | None = None,
) -> CommandResult:
    """A work stage is done: the execution record (result, exception note, photos)."""
    loaded = await load_instance(instance_id, visible_to=caller.principal)
    task = await _stage_task(loaded.id, caller.id, request.task_id)
    event = TaskCompleted(
        actor=caller.id,
        task_id=task["task_key"],
        result=request.result,
        note=request.note,
        attachments=tuple(request.attachments),
    )
    data = {"result": request.result, "note": request.note, "attachments": list(request.attachments)}
    refs = {uid: f"attachments[{index}]" for index, uid in enumerate(request.attachments)}
    return await run_command(
        caller,
        loaded,
        event,
        CommandRecord("progress", caller.id, task["node_id"], task["task_key"], data),
        now,
        action="progress",
        idempotency=idempotency,
        links=Links(refs, caller.id),
    )


@one_transaction
async def request_change(
    caller: Caller,
    instance_id: int,
    request: ChangeRequestBody,
    now: dt.datetime,
    *,
    idempotency: IdempotencyKey | None = None,
) -> CommandResult:
    """流程变更申请: the changed values are checked against the form now, applied once approved."""
    loaded = await load_instance(instance_id, visible_to=caller.principal)
    _require_initiator(caller, loaded, "request a change")
    ctx = caller.validation_context(now)
    unknown = unknown_fields(loaded.definition, request.changes, ctx)
    if unknown:
        raise FormInvalid(unknown)
    merged = validated(loaded.definition, {**loaded.data, **request.changes}, ctx, "submit")
    changes = {key: merged.get(key) for key in request.changes}
    event = ChangeRequestSubmit(actor=caller.id, changes=changes, reason=request.reason)
    refs = attachment_refs(loaded.definition.schema, changes)
    record = CommandRecord("change_request", caller.id, data={"changes": changes, "reason": request.reason})
    return await run_command(
        caller,
        loaded,
        event,
        record,
        now,
        action="change_request",
        idempotency=idempotency,
        links=Links(refs, loaded.initiator),
    )


@one_transaction
async def submit_summary(
    caller: Caller,
    instance_id: int,
    request: SummaryRequest,
    now: dt.datetime,
    *,
    idempotency: IdempotencyKey | None = None,
) -> CommandResult:
    """The summary report (actual spend, results, problems, files); the request is archived."""
    if request.actual_spend is not None and (
        request.actual_spend < 0 or not request.actual_spend.is_finite()
    ):
        raise InvalidCommandError("the actual spend must be an amount of at least 0", field="actual_spend")
    loaded = await load_instance(instance_id, visible_to=caller.principal)
    event = SummarySubmitted(
        actor=caller.id, note=_summary_note(request), attachments=tuple(request.attachments)
    )
    data = {
        "actual_spend": request.actual_spend,
        "results": request.results,
        "problems": request.problems,
        "note": request.note,
        "attachments": list(request.attachments),
    }
    refs = {uid: f"attachments[{index}]" for index, uid in enumerate(request.attachments)}
    return await run_command(
        caller,
        loaded,
        event,
        CommandRecord("summary", caller.id, data=data),
        now,
        action="summary",
        idempotency=idempotency,
        links=Links(refs, caller.id),
    )


def _summary_note(request: SummaryRequest) -> str:
    lines = []
    if request.actual_spend is not None:
        lines.append(f"实际花费：{_yuan(request.actual_spend)} 元")
    if request.results:
        lines.append(f"活动成果：{request.results}")
    if request.problems:
        lines.append(f"存在问题：{request.problems}")
    if request.note:
        lines.append(request.note)
    return "\n".join(lines)[:_NOTE_LIMIT]


def _yuan(amount: Decimal) -> str:
    return f"{amount:,.2f}"


# -- results from outside --------------------------------------------------------------------

PLUGIN_ACTOR = audit.Actor(name="formflow plugin")


@one_transaction
async def report_plugin_result(
    instance_id: int,
    call_id: str,
    now: dt.datetime,
    *,
    outcome: PluginOutcome = PluginOutcome.CONTINUE,
    output: dict[str, Any] | None = None,
    note: str = "",
) -> CommandResult:
    """A plugin's actor reports back on a call (`call_plugin` outbox message). A result for a
    call nothing waits on any more changes nothing; on an ended request it is a `TransitionError`."""
    loaded = await load_instance(instance_id)
    event = PluginResult(call_id=call_id, outcome=outcome, output=output or {}, note=note)
    step = decide(loaded, event, now, await load_org_directory(loaded.org_token))
    if step.state is loaded.state:
        return unchanged(loaded)
    record = CommandRecord("plugin_result", None, data={"call_id": call_id, "outcome": str(outcome)})
    async with write_transaction(Instance._meta.db):
        result = await write_step(loaded, step, [record], now)
        await audit.record(
            "instance.plugin_result",
            PLUGIN_ACTOR,
            target_type="instance",
            target_id=loaded.number,
            before={"status": loaded.status},
            after={"status": result.status, "call_id": call_id},
            now=now,
        )
    return result


# -- helpers ---------------------------------------------------------------------------------


def _require_initiator(caller: Caller, loaded: LoadedInstance, what: str) -> None:
    if caller.id != loaded.initiator:
        raise NotPermittedError(f"only the initiator may {what}")


async def _stage_task(instance_id: int, person_id: int, task_id: int | None) -> dict[str, Any]:
    """The work-stage task a progress record is for: the one named, or the caller's only one."""
    if task_id is not None:
        rows = await fetch(Task, _NAMED_TASK, instance_id, task_id)
        if not rows:
            raise TaskNotFound(task_id)
        return rows[0]
    rows = await fetch(Task, _OPEN_STAGES, instance_id, person_id, TASK_OPEN, "stage")
    if len(rows) != 1:
        raise InvalidCommandError(
            f"you have {len(rows)} open stages on this request; name one with task_id", field="task_id"
        )
    return rows[0]


_TASK_COLUMNS = 'SELECT "id", "task_key", "node_id" FROM "task" WHERE "instance" = {}'
_NAMED_TASK = f'{_TASK_COLUMNS} AND "id" = {{}}'
_OPEN_STAGES = f'{_TASK_COLUMNS} AND "assignee" = {{}} AND "status" = {{}} AND "kind" = {{}}'


def _diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Field -> {"before", "after"} for the fields whose stored value changed."""
    keys = [key for key in {**before, **after} if key != "totals"]
    return {
        key: {"before": before.get(key), "after": after.get(key)}
        for key in keys
        if before.get(key) != after.get(key)
    }
