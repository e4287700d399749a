"""Which instances a person may see, as a SQL clause (deny by default, never filtered in Python).

A person sees an instance when the data scope of `process.view` reaches it (own / their
departments / all, `storage.access.scope_filter`), when they hold or held a task on it (an
approver from another department, such as finance), or when a copy step (抄送) named them: the
`cc_sent` event of the instance's log lists them among its recipients. Drafts stay private to
their initiator. `storage.attachments.may_read` applies the same rule to attachments.

`may_see` is the same rule for one instance row already read (a command's): the scope decides
from the row's columns, and only a person outside it costs a query (their tasks, their copies).
"""

from __future__ import annotations

from typing import Any

from piccolo.columns.combination import WhereRaw
from piccolo.engine.sqlite import SQLiteEngine

from runtime.flow import Status
from storage.access import Permission, Principal, Scope, scope_filter
from storage.raw_sql import fetch
from storage.tables import Instance, InstanceEvent, Task

CC_EVENT = "cc_sent"


def visible_instances(principal: Principal) -> Any:
    """A Piccolo WHERE clause on `Instance` for the instances `principal` may see."""
    not_a_draft_of_others = (Instance.status != Status.DRAFT.value) | (Instance.initiator == principal.id)
    scoped = scope_filter(principal, Permission.PROCESS_VIEW, Instance.initiator, Instance.department_id)
    if scoped is None:
        return not_a_draft_of_others
    involved = Instance.id.is_in(Task.select(Task.instance).where(Task.assignee == principal.id))
    return not_a_draft_of_others & (scoped | involved | copied_to(principal.id))


def copied_to(person_id: int) -> Any:
    """A WHERE clause on `Instance`: the instances a copy step sent to `person_id`."""
    return Instance.id.is_in(copies_of(person_id))


def copies_of(person_id: int) -> Any:
    """`SELECT instance FROM instance_event` for the copies (抄送) sent to `person_id`."""
    return InstanceEvent.select(InstanceEvent.instance).where(
        (InstanceEvent.kind == CC_EVENT) & names_recipient(person_id)
    )


def names_recipient(person_id: int) -> Any:
    """A WHERE clause on `InstanceEvent`: its `data.recipients` JSON list holds `person_id`
    (the JSON functions differ by engine)."""
    if isinstance(InstanceEvent._meta.db, SQLiteEngine):
        return WhereRaw(
            'EXISTS (SELECT 1 FROM json_each("instance_event"."data", \'$.recipients\') AS r'
            " WHERE r.value = {})",
            person_id,
        )
    return WhereRaw(
        '("instance_event"."data"::jsonb -> \'recipients\') @> jsonb_build_array({}::integer)', person_id
    )


async def may_see(
    principal: Principal, instance_id: int, *, initiator: int, department_id: int | None, status: str
) -> bool:
    """`visible_instances` for one instance row: True when `principal` may see it."""
    if status == Status.DRAFT.value and initiator != principal.id:
        return False
    scope = principal.scope(Permission.PROCESS_VIEW)
    if scope is Scope.ALL or (scope >= Scope.OWN and initiator == principal.id):
        return True
    if scope is Scope.DEPARTMENT and department_id is not None and department_id in principal.reach:
        return True
    held = await fetch(Task, _HELD, instance_id, principal.id)
    if held:
        return True
    copied = (
        await InstanceEvent.select(InstanceEvent.instance)
        .where(
            (InstanceEvent.instance == instance_id)
            & (InstanceEvent.kind == CC_EVENT)
            & names_recipient(principal.id)
        )
        .first()
    )
    return copied is not None


_HELD = 'SELECT 1 AS "held" FROM "task" WHERE "instance" = {} AND "assignee" = {} LIMIT 1'
