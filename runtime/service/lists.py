"""Lists: the caller's requests (or every request they may see), their inbox, the badge counts.

Scopes are SQL clauses (`runtime.service.visibility`); each list is one count and one page
query with the names joined in. The open inbox is small (one person's open tasks), so it is
sorted in Python: urgent or overdue first, then by due time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from runtime.flow import Status
from runtime.service import reasons
from runtime.service.effects import TASK_CLOSED, TASK_OPEN
from runtime.service.org_directory import person_names
from runtime.service.views import (
    Counts,
    InstancePage,
    InstanceRow,
    PersonRef,
    TaskPage,
    TaskRow,
    status_label,
)
from runtime.service.visibility import visible_instances
from storage.access import Principal
from storage.tables import Instance, Task

PAGE_SIZE = 20
INBOX_LIMIT = 1_000
"""Open tasks read for one inbox; more than this many open tasks is a problem of its own."""


async def list_instances(
    principal: Principal,
    *,
    mine: bool = True,
    status: Status | None = None,
    page: int = 1,
    page_size: int = PAGE_SIZE,
    locale: str = "zh-CN",
) -> InstancePage:
    """The caller's own requests (`mine`), or every request they may see; newest change first."""
    where = (Instance.initiator == principal.id) if mine else visible_instances(principal)
    if status is not None:
        where = where & (Instance.status == status.value)
    total = await Instance.count().where(where)
    rows = await (
        Instance.select(
            Instance.id,
            Instance.number,
            Instance.title,
            Instance.template_key,
            Instance.template_version._.template._.name_zh.as_alias("name_zh"),
            Instance.template_version._.template._.name_en.as_alias("name_en"),
            Instance.status,
            Instance.current_step,
            Instance.urgent,
            Instance.initiator,
            Instance.initiator.name.as_alias("initiator_name"),
            Instance.created_at,
            Instance.submitted_at,
            Instance.updated_at,
        )
        .where(where)
        .order_by(Instance.updated_at, ascending=False)
        .order_by(Instance.id, ascending=False)
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    items = [
        InstanceRow(
            id=row["id"],
            number=row["number"],
            title=row["title"],
            template=row["template_key"],
            template_name=(row["name_en"] or row["name_zh"]) if locale == "en" else row["name_zh"],
            status=row["status"],
            status_label=status_label(row["status"], locale),
            current_step=row["current_step"],
            urgent=row["urgent"],
            initiator=PersonRef(id=row["initiator"], name=row["initiator_name"]),
            created_at=row["created_at"],
            submitted_at=row["submitted_at"],
            updated_at=row["updated_at"],
        )
        for row in rows
    ]
    return InstancePage(items=items, total=total, page=page, page_size=page_size)


async def list_tasks(
    principal: Principal,
    now: dt.datetime,
    *,
    done: bool = False,
    page: int = 1,
    page_size: int = PAGE_SIZE,
    locale: str = "zh-CN",
) -> TaskPage:
    """The caller's open tasks (urgent or overdue first), or the ones closed (newest first)."""
    where = (Task.assignee == principal.id) & (Task.status == (TASK_CLOSED if done else TASK_OPEN))
    query = Task.select(
        Task.id,
        Task.instance,
        Task.instance.number.as_alias("number"),
        Task.instance.title.as_alias("instance_title"),
        Task.instance.template_key.as_alias("template"),
        Task.instance.urgent.as_alias("urgent"),
        Task.instance.initiator.as_alias("initiator"),
        Task.instance._.initiator._.name.as_alias("initiator_name"),
        Task.title,
        Task.kind,
        Task.node_id,
        Task.status,
        Task.outcome,
        Task.created_at,
        Task.due_at,
        Task.closed_at,
        Task.reason,
    ).where(where)
    if done:
        total = await Task.count().where(where)
        rows = await (
            query.order_by(Task.closed_at, ascending=False)
            .order_by(Task.id, ascending=False)
            .limit(page_size)
            .offset((page - 1) * page_size)
            .output(load_json=True)
        )
    else:
        everything = await query.limit(INBOX_LIMIT).output(load_json=True)
        everything.sort(key=lambda row: _inbox_order(row, now))
        total = len(everything)
        rows = everything[(page - 1) * page_size : page * page_size]
    names = await person_names(p for row in rows for p in reasons.people_in(row["reason"] or {}))
    items = [_task_row(row, now, names, locale) for row in rows]
    return TaskPage(items=items, total=total, page=page, page_size=page_size)


def _overdue(row: dict[str, Any], now: dt.datetime) -> bool:
    return row["status"] == TASK_OPEN and row["due_at"] is not None and row["due_at"] < now


def _inbox_order(row: dict[str, Any], now: dt.datetime) -> tuple[bool, dt.datetime, int]:
    pressing = row["urgent"] or _overdue(row, now)
    return (not pressing, row["due_at"] or dt.datetime.max.replace(tzinfo=dt.UTC), row["id"])


def _task_row(row: dict[str, Any], now: dt.datetime, names: dict[int, str], locale: str) -> TaskRow:
    reason = row["reason"] or {}
    return TaskRow(
        id=row["id"],
        instance_id=row["instance"],
        number=row["number"],
        instance_title=row["instance_title"],
        template=row["template"],
        title=row["title"],
        kind=row["kind"],
        node_id=row["node_id"],
        status=row["status"],
        outcome=row["outcome"],
        urgent=row["urgent"],
        overdue=_overdue(row, now),
        created_at=row["created_at"],
        due_at=row["due_at"],
        closed_at=row["closed_at"],
        initiator=PersonRef(id=row["initiator"], name=row["initiator_name"]),
        reason=reason,
        why=reasons.why(reason, names, locale),
    )


async def navigation_counts(principal: Principal, now: dt.datetime) -> Counts:
    """Open tasks (and how many of them are overdue), own drafts, own returned requests."""
    mine_open = (Task.assignee == principal.id) & (Task.status == TASK_OPEN)
    own = Instance.initiator == principal.id
    return Counts(
        open_tasks=await Task.count().where(mine_open),
        overdue_tasks=await Task.count().where(mine_open & (Task.due_at < now)),
        drafts=await Instance.count().where(own & (Instance.status == Status.DRAFT.value)),
        returned=await Instance.count().where(own & (Instance.status == Status.RETURNED.value)),
    )
