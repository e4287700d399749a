"""Lists: the caller's requests (or every request they may see), their inbox, the requests
copied to them, the badge counts.

Scopes are SQL clauses (`runtime.service.visibility`); each list is one count and one page
query with the names joined in, filtered, ordered and paged in SQL (the open inbox: urgent or
overdue first, then by due time). `request_progress` reads where a page of requests stands in a
fixed number of queries, whatever the page's length.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from piccolo.querystring import QueryString

from runtime.flow import Status
from runtime.service import reasons
from runtime.service.detail import STEP_EVENTS, entry_view, task_view
from runtime.service.effects import TASK_CLOSED, TASK_OPEN
from runtime.service.org_directory import person_names
from runtime.service.views import (
    CopyPage,
    CopyRow,
    Counts,
    InboxFacets,
    InstancePage,
    InstanceRow,
    PersonRef,
    RequestProgress,
    TaskPage,
    TaskRow,
    status_label,
)
from runtime.service.visibility import CC_EVENT, names_recipient, visible_instances
from storage.access import Principal
from storage.tables import Instance, InstanceEvent, Task

PAGE_SIZE = 20


async def list_instances(
    principal: Principal,
    *,
    mine: bool = True,
    status: Status | None = None,
    statuses: Sequence[Status] = (),
    page: int = 1,
    page_size: int = PAGE_SIZE,
    locale: str = "zh-CN",
) -> InstancePage:
    """The caller's own requests (`mine`), or every request they may see, in `status` or any of
    `statuses` (all when neither is given); newest change first."""
    where = (Instance.initiator == principal.id) if mine else visible_instances(principal)
    wanted = [*statuses, *([status] if status is not None else [])]
    if wanted:
        where = where & Instance.status.is_in(sorted({s.value for s in wanted}))
    total = await Instance.count().where(where)
    rows = await (
        Instance.select(
            Instance.id,
            Instance.number,
            Instance.title,
            Instance.template_key,
            Instance.template_version._.version.as_alias("version_no"),
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
            template_version=row["version_no"],
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
    template: str = "",
    applicant: int | None = None,
    overdue: bool = False,
    page: int = 1,
    page_size: int = PAGE_SIZE,
    locale: str = "zh-CN",
) -> TaskPage:
    """The caller's open tasks (urgent or overdue first, then by due time), or the ones closed
    (newest first); only those of `template`, of `applicant`'s requests, or `overdue` if asked."""
    where = _task_filter(principal, now, done=done, template=template, applicant=applicant, overdue=overdue)
    # The page's ids first, from the task rows alone; then the 20 rows with their instance
    # and applicant. Joining before the LIMIT joined every open task (5,000 in a busy inbox).
    ordered = Task.select(Task.id).where(where)
    if done:
        ordered = ordered.order_by(Task.closed_at, ascending=False).order_by(Task.id, ascending=False)
    else:
        ordered = (
            ordered.order_by(_pressing_first(now))
            .order_by(QueryString('"task"."due_at" IS NULL'))
            .order_by(Task.due_at)
            .order_by(Task.id)
        )
    total = await Task.count().where(where)
    ids = [row["id"] for row in await ordered.limit(page_size).offset((page - 1) * page_size)]
    rows = await _task_rows(ids)
    names = await person_names(p for row in rows for p in reasons.people_in(row["reason"] or {}))
    items = [_task_row(row, now, names, locale) for row in rows]
    return TaskPage(items=items, total=total, page=page, page_size=page_size)


async def _task_rows(ids: list[int]) -> list[dict[str, Any]]:
    """The tasks `ids` with their instance and applicant, in the order of `ids`."""
    if not ids:
        return []
    rows = await (
        Task.select(
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
        )
        .where(Task.id.is_in(ids))
        .output(load_json=True)
    )
    position = {task_id: index for index, task_id in enumerate(ids)}
    return sorted(rows, key=lambda row: position[row["id"]])


def _task_filter(
    principal: Principal,
    now: dt.datetime,
    *,
    done: bool,
    template: str = "",
    applicant: int | None = None,
    overdue: bool = False,
) -> Any:
    where = (Task.assignee == principal.id) & (Task.status == (TASK_CLOSED if done else TASK_OPEN))
    if template:
        where = where & (Task.instance.template_key == template)
    if applicant is not None:
        where = where & (Task.instance.initiator == applicant)
    if overdue:
        where = where & (Task.status == TASK_OPEN) & (Task.due_at < now)
    return where


def _pressing_first(now: dt.datetime) -> QueryString:
    """0 for a task that is overdue or on an urgent request, else 1 (an ORDER BY term)."""
    return QueryString(
        'CASE WHEN "task"."due_at" < {} OR EXISTS (SELECT 1 FROM "instance" AS i'
        ' WHERE i."id" = "task"."instance" AND i."urgent") THEN 0 ELSE 1 END',
        now,
    )


async def inbox_facets(principal: Principal, now: dt.datetime, *, done: bool = False) -> InboxFacets:
    """The templates and the applicants among the caller's open (or closed) tasks, for filters."""
    where = _task_filter(principal, now, done=done)
    templates = await Task.select(Task.instance.template_key.as_alias("template")).where(where).distinct()
    people = await (
        Task.select(Task.instance.initiator.as_alias("id"), Task.instance._.initiator._.name.as_alias("name"))
        .where(where)
        .distinct()
    )
    return InboxFacets(
        templates=sorted({row["template"] for row in templates}),
        applicants=sorted(
            (PersonRef(id=row["id"], name=row["name"]) for row in people), key=lambda p: (p.name, p.id)
        ),
    )


async def request_progress(
    principal: Principal, instance_ids: Sequence[int], now: dt.datetime, locale: str = "zh-CN"
) -> dict[int, RequestProgress]:
    """Where each of these requests stands (those `principal` may see), in three queries: their
    open tasks, the events that move their steps, and the names of the people in them."""
    ids = sorted(set(instance_ids))
    if not ids:
        return {}
    seen = Instance.select(Instance.id).where(Instance.id.is_in(ids) & visible_instances(principal))
    tasks = await (
        Task.select(
            Task.id,
            Task.instance,
            Task.node_id,
            Task.title,
            Task.kind,
            Task.assignee,
            Task.created_at,
            Task.due_at,
            Task.reason,
        )
        .where(Task.instance.is_in(seen) & (Task.status == TASK_OPEN))
        .order_by(Task.id)
        .output(load_json=True)
    )
    events = await (
        InstanceEvent.select(
            InstanceEvent.instance,
            InstanceEvent.seq,
            InstanceEvent.at,
            InstanceEvent.kind,
            InstanceEvent.actor_id,
            InstanceEvent.node_id,
            InstanceEvent.data,
        )
        .where(InstanceEvent.instance.is_in(seen) & InstanceEvent.kind.is_in(sorted(STEP_EVENTS)))
        .order_by(InstanceEvent.instance)
        .order_by(InstanceEvent.seq)
        .output(load_json=True)
    )
    mentioned: set[int] = set()
    for task in tasks:
        mentioned.add(task["assignee"])
        mentioned.update(reasons.people_in(task["reason"] or {}))
    for event in events:
        if event["actor_id"] is not None:
            mentioned.add(event["actor_id"])
        assignee = (event["data"] or {}).get("assignee")
        if isinstance(assignee, int):
            mentioned.add(assignee)
        reason = (event["data"] or {}).get("reason")
        if isinstance(reason, dict):
            mentioned.update(reasons.people_in(reason))
    names = await person_names(mentioned)
    found = {
        row_id: RequestProgress(instance_id=row_id, tasks=[], steps=[])
        for row_id in {task["instance"] for task in tasks} | {event["instance"] for event in events}
    }
    for task in tasks:
        found[task["instance"]].tasks.append(task_view(task, principal.id, {}, names, now, locale))
    for event in events:
        found[event["instance"]].steps.append(entry_view(event, {}, names, locale))
    return found


async def list_copies(
    principal: Principal, *, page: int = 1, page_size: int = PAGE_SIZE, locale: str = "zh-CN"
) -> CopyPage:
    """The requests copy steps (抄送) sent to the caller, newest copy first."""
    where = (InstanceEvent.kind == CC_EVENT) & names_recipient(principal.id)
    total = await InstanceEvent.count().where(where)
    rows = await (
        InstanceEvent.select(
            InstanceEvent.instance,
            InstanceEvent.at,
            InstanceEvent.instance.number.as_alias("number"),
            InstanceEvent.instance.title.as_alias("title"),
            InstanceEvent.instance.template_key.as_alias("template"),
            InstanceEvent.instance._.template_version._.template._.name_zh.as_alias("name_zh"),
            InstanceEvent.instance._.template_version._.template._.name_en.as_alias("name_en"),
            InstanceEvent.instance.status.as_alias("status"),
            InstanceEvent.instance.initiator.as_alias("initiator"),
            InstanceEvent.instance._.initiator._.name.as_alias("initiator_name"),
        )
        .where(where)
        .order_by(InstanceEvent.at, ascending=False)
        .order_by(InstanceEvent.id, ascending=False)
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    items = [
        CopyRow(
            instance_id=row["instance"],
            number=row["number"],
            title=row["title"],
            template=row["template"],
            template_name=(row["name_en"] or row["name_zh"]) if locale == "en" else row["name_zh"],
            status=row["status"],
            status_label=status_label(row["status"], locale),
            initiator=PersonRef(id=row["initiator"], name=row["initiator_name"]),
            copied_at=row["at"],
        )
        for row in rows
    ]
    return CopyPage(items=items, total=total, page=page, page_size=page_size)


def _overdue(row: dict[str, Any], now: dt.datetime) -> bool:
    return row["status"] == TASK_OPEN and row["due_at"] is not None and row["due_at"] < now


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
