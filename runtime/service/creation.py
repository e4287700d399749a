"""Starting a request: a draft, or a draft submitted at once, numbered in the same transaction.

The request pins the template version in effect at `now`; later versions never change it.
Its data is validated as a draft (types and formats) or for submission (everything), and the
uploads it names are linked to it.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from runtime.flow import Environment, Status, advance, encode, new_instance
from runtime.flow.effects import Effect
from runtime.flow.events import Submit
from runtime.service._command import finish, link_uploads
from runtime.service.caller import Caller
from runtime.service.definitions import definition_in_effect
from runtime.service.effects import CommandRecord, apply_effects, insert_rows, json_text
from runtime.service.form_data import attachment_refs, engine_form, title_of, validated
from runtime.service.idempotency import IdempotencyKey
from runtime.service.numbering import next_number
from runtime.service.org_directory import load_org_directory
from runtime.service.outbox import InstanceRef
from runtime.service.pipeline import CALENDAR, current_step, one_transaction, step_plugins
from runtime.service.requests import CreateRequest
from runtime.service.views import CommandResult
from storage.database import write_transaction
from storage.tables import Instance

_INSTANCE_COLUMNS = (
    "number",
    "template_key",
    "template_version",
    "version",
    "initiator",
    "department_id",
    "title",
    "status",
    "urgent",
    "data",
    "state",
    "row_version",
    "current_step",
    "created_at",
    "submitted_at",
    "updated_at",
    "closed_at",
)


@one_transaction
async def create_instance(
    caller: Caller, request: CreateRequest, now: dt.datetime, *, idempotency: IdempotencyKey | None = None
) -> CommandResult:
    """Create a request from `request.template` for the caller; submit it when `request.submit`."""
    definition = await definition_in_effect(request.template, now)
    flow = definition.runnable_flow()
    mode: Literal["draft", "submit"] = "submit" if request.submit else "draft"
    data = validated(definition, request.data, caller.validation_context(now), mode)
    urgent = request.urgent or data.get("urgent") is True
    title = title_of(definition, data)
    org = await load_org_directory() if request.submit else None
    async with write_transaction(Instance._meta.db):
        number = await next_number(now)
        state = new_instance(number)
        effects: tuple[Effect, ...] = ()
        records = [
            CommandRecord(
                "created", caller.id, data={"template": definition.key, "version": definition.version}
            )
        ]
        if org is not None:
            env = Environment(
                org=org,
                calendar=CALENDAR,
                initiator=caller.id,
                form=engine_form(definition.schema, data),
                urgent=urgent,
                plugins=step_plugins(),
            )
            chosen = {node: tuple(people) for node, people in request.chosen.items()}
            state, effects = advance(
                flow, state, Submit(actor=caller.id, urgent=urgent, chosen=chosen), now, env
            )
            records.append(CommandRecord("submit", caller.id, data={"urgent": urgent}))
        step_title = current_step(definition, state)
        rows = await insert_rows(
            Instance,
            _INSTANCE_COLUMNS,
            [
                (
                    number,
                    definition.key,
                    definition.version_id,
                    definition.version,
                    caller.id,
                    caller.principal.department_id,
                    title,
                    str(state.status),
                    urgent,
                    json_text(data),
                    encode(state).decode(),
                    0,
                    step_title,
                    now,
                    state.submitted_at,
                    now,
                    None,
                )
            ],
            ' RETURNING "id"',
        )
        instance_id = rows[0]["id"]
        ref = InstanceRef(id=instance_id, number=number, title=title)
        await apply_effects(ref, records, effects, now, last_seq=0)
        refs = attachment_refs(definition.schema, data)
        await link_uploads(refs, instance_id=instance_id, owner_id=caller.id, now=now)
        result = CommandResult(
            id=instance_id, number=number, status=str(state.status), current_step=step_title, row_version=0
        )
        action = "submit" if state.status != Status.DRAFT else "create"
        detail = {"template": definition.key, "version": definition.version, "title": title}
        await finish(caller, action, result, before=None, now=now, idempotency=idempotency, detail=detail)
    return result
