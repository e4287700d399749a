"""Approvers' decisions on a task: approve, reject, return with a note, transfer, add signers.

The task is named by its row id in the `task` table; a task on a request the caller may not
see is not found. Whether the caller may act on it is the engine's call (403 otherwise).
"""

from __future__ import annotations

import datetime as dt

from runtime.flow.errors import InvalidCommandError
from runtime.flow.events import AddSigner, Approve, Event, Reject, Return, Transfer
from runtime.service._command import run_command
from runtime.service.caller import Caller
from runtime.service.effects import CommandRecord
from runtime.service.errors import InstanceNotFound, TaskNotFound
from runtime.service.idempotency import IdempotencyKey
from runtime.service.pipeline import load_task_instance, one_transaction
from runtime.service.requests import TaskAction, TaskActionRequest
from runtime.service.views import CommandResult


@one_transaction
async def act_on_task(
    caller: Caller,
    task_id: int,
    request: TaskActionRequest,
    now: dt.datetime,
    *,
    idempotency: IdempotencyKey | None = None,
) -> CommandResult:
    """Approve, reject, return, transfer or add signers on a task (its table id)."""
    try:
        task = await load_task_instance(task_id, visible_to=caller.principal)
    except InstanceNotFound as exc:
        raise TaskNotFound(task_id) from exc
    if task is None:
        raise TaskNotFound(task_id)
    loaded = task.instance
    event = _task_event(caller.id, task.task_key, request)
    data = {
        key: value
        for key, value in (
            ("comment", request.comment),
            ("note", request.note),
            ("to", request.to),
            ("to_node", request.to_node),
            ("people", request.people),
            ("position", request.position),
        )
        if value
    }
    record = CommandRecord(str(request.action), caller.id, task.node_id, task.task_key, data)
    return await run_command(
        caller, loaded, event, record, now, action=str(request.action), idempotency=idempotency
    )


def _task_event(actor: int, task_key: str, request: TaskActionRequest) -> Event:
    note = request.note or request.comment
    match request.action:
        case TaskAction.APPROVE:
            return Approve(actor=actor, task_id=task_key, comment=request.comment)
        case TaskAction.REJECT:
            return Reject(actor=actor, task_id=task_key, comment=request.comment)
        case TaskAction.RETURN:
            if not request.note.strip():
                raise InvalidCommandError("a return needs a note saying what to add", field="note")
            return Return(actor=actor, task_id=task_key, note=request.note, to_node=request.to_node)
        case TaskAction.TRANSFER:
            if request.to is None:
                raise InvalidCommandError("say whom to transfer the task to", field="to")
            return Transfer(actor=actor, task_id=task_key, to=request.to, note=note)
        case TaskAction.ADD_SIGNER:
            if not request.people:
                raise InvalidCommandError("name the people to add", field="people")
            if request.position is None:
                raise InvalidCommandError(
                    "say where the signers go: before, after or alongside", field="position"
                )
            return AddSigner(
                actor=actor,
                task_id=task_key,
                people=tuple(request.people),
                position=request.position,
                note=note,
            )
    raise InvalidCommandError(f"unknown action {request.action}", field="action")  # pragma: no cover
