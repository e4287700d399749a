"""The insight rollup: closed tasks and requests copied once into `task_stat` and `request_stat`.

Analytics over a year of work (a million steps) cannot compute working hours per request: the
business calendar costs about 40 µs per duration. The rollup computes each duration once, when
the task or request has closed, and analytics aggregates the rollup rows in SQL.

    await roll_up(calendar)                # the periodic job (scheduler or embedded loop)
    await roll_up(calendar, limit=2_000)   # analytics, before answering: the newest closings

Invariants:
- A row is written once per task (`task_stat.task_id`) and per request (`request_stat.
  instance_id`), upserted, so two schedulers or a re-run write nothing twice.
- What to read next is found from a mark per kind (`insight_mark`): the newest `closed_at`
  already read. Each run re-reads from `SLACK` before the mark, so a row whose transaction
  committed late (with an earlier `closed_at`) is not missed; rows already present are skipped.
- Requests are rolled up before tasks: a finished request writes all of its tasks, with the
  working hours from each step's last visit to the request's closing (`remaining_hours`).
- Closed rows never change again (a closed task or request is final), so nothing is recomputed
  but the kept medians of the groups that got rows (`insight_figures`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
from piccolo.columns.combination import WhereRaw
from piccolo.query.functions.aggregate import Count

from forms import model as m
from forms.sensitive import MASK
from runtime import insight
from runtime.calendar import BusinessCalendar
from runtime.insight import DECIDED, FINISHED, week_of
from runtime.service.definitions import definition
from runtime.service.insight_figures import Touched
from runtime.service.insight_figures import refresh as refresh_figures
from runtime.service.insight_sql import Figures, all_of, hour_figures, on_postgres
from storage.database import write_transaction
from storage.tables import InsightMark, Instance, InstanceEvent, RequestStat, StepEstimate, Task, TaskStat

SLACK = dt.timedelta(minutes=10)
"""How far before its mark a run reads again: longer than any write transaction lasts."""
BATCH = 1_000
"""Rows read and written per transaction."""
ESTIMATE_EVERY = dt.timedelta(minutes=10)
"""How often `refresh_estimates` recomputes the completion estimates monitoring shows."""

_COUNTED = {"return": "returns", "reject": "rejections", "resubmit": "resubmissions"}
BUDGET_FIELDS = ("budget", "total_amount")
"""Form fields read as a request's budget, the first one present."""


class Rolled(msgspec.Struct, frozen=True, kw_only=True):
    """What one run wrote: new request rows, new task rows, and whether more were waiting."""

    requests: int = 0
    tasks: int = 0
    more: bool = False


async def roll_up(calendar: BusinessCalendar, *, limit: int | None = None) -> Rolled:
    """Roll up what closed since the last run, at most `limit` new rows of each kind (None: all),
    then recompute the kept figures of the groups that got rows (all of them the first time)."""
    touched = Touched()
    requests, more_requests = await _roll_up_requests(calendar, limit, touched)
    tasks, more_tasks = await _roll_up_tasks(calendar, limit, touched)
    await refresh_figures(touched)
    return Rolled(requests=requests, tasks=tasks, more=more_requests or more_tasks)


# -- marks ------------------------------------------------------------------------------------


async def _mark(name: str) -> dt.datetime | None:
    row = await InsightMark.select(InsightMark.mark).where(InsightMark.name == name).first()
    return None if row is None else row["mark"] - SLACK


async def _advance(name: str, mark: dt.datetime) -> None:
    """Move the mark forward to `mark` (never back: another run may have gone further)."""
    await InsightMark.insert(InsightMark(name=name, mark=mark)).on_conflict(
        target=InsightMark.name, action="DO NOTHING"
    )
    await InsightMark.update({InsightMark.mark: mark}).where(
        (InsightMark.name == name) & (InsightMark.mark < mark)
    )


def _after(table: Any, cursor: tuple[dt.datetime, int] | None, start: dt.datetime | None) -> Any:
    """Rows after the keyset `cursor` (closed_at, id), or from `start` on the first batch. A row
    comparison, so the (closed_at, id) index serves it on both engines."""
    if cursor is not None:
        name = table._meta.tablename
        return WhereRaw(f'("{name}"."closed_at", "{name}"."id") > ({{}}, {{}})', *cursor)
    if start is not None:
        return table.closed_at >= start
    return None


# -- requests ---------------------------------------------------------------------------------


async def _roll_up_requests(
    calendar: BusinessCalendar, limit: int | None, touched: Touched
) -> tuple[int, bool]:
    start = await _mark("requests")
    cursor: tuple[dt.datetime, int] | None = None
    written = 0
    while limit is None or written < limit:
        size = BATCH if limit is None else min(BATCH, limit - written)
        rows = await (
            Instance.select(
                Instance.id,
                Instance.number,
                Instance.title,
                Instance.template_key,
                Instance.department_id,
                Instance.initiator,
                Instance.status,
                Instance.submitted_at,
                Instance.closed_at,
            )
            .where(
                all_of(
                    Instance.closed_at.is_not_null(),
                    Instance.submitted_at.is_not_null(),
                    _after(Instance, cursor, start),
                )
            )
            .order_by(Instance.closed_at)
            .order_by(Instance.id)
            .limit(size)
        )
        if not rows:
            return written, False
        cursor = (rows[-1]["closed_at"], rows[-1]["id"])
        done = await _present(RequestStat, RequestStat.instance_id, [r["id"] for r in rows])
        fresh = [r for r in rows if r["id"] not in done]
        if fresh:
            await _write_requests(fresh, calendar, touched)
        written += len(fresh)
        await _advance("requests", cursor[0])
        if len(rows) < size:
            return written, False
    return written, True


async def _present(table: Any, column: Any, ids: Sequence[int]) -> set[int]:
    if not ids:
        return set()
    rows = await table.select(column.as_alias("id")).where(column.is_in(list(ids)))
    return {r["id"] for r in rows}


async def _write_requests(rows: list[dict[str, Any]], calendar: BusinessCalendar, touched: Touched) -> None:
    ids = [r["id"] for r in rows]
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    grouped = await (
        InstanceEvent.select(InstanceEvent.instance, InstanceEvent.kind, Count(alias="n"))
        .where(InstanceEvent.instance.is_in(ids) & InstanceEvent.kind.is_in(list(_COUNTED)))
        .group_by(InstanceEvent.instance, InstanceEvent.kind)
    )
    for g in grouped:
        counts[g["instance"]][_COUNTED[g["kind"]]] = g["n"]
    costs = await _costs(ids)
    tasks = await (
        Task.select(
            Task.id,
            Task.instance,
            Task.node_id,
            Task.title,
            Task.outcome,
            Task.created_at,
            Task.due_at,
            Task.closed_at,
        )
        .where(Task.instance.is_in(ids))
        .order_by(Task.id)
    )
    by_request: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for task in tasks:
        by_request[task["instance"]].append(task)
    request_rows: list[dict[str, Any]] = []
    task_rows: list[dict[str, Any]] = []
    for r in rows:
        own = by_request.get(r["id"], [])
        finished = r["status"] in FINISHED
        late = any(t["due_at"] is not None and (t["closed_at"] or r["closed_at"]) > t["due_at"] for t in own)
        request_rows.append(
            dict(
                instance_id=r["id"],
                number=r["number"],
                title=r["title"],
                template_key=r["template_key"],
                department_id=r["department_id"],
                initiator_id=r["initiator"],
                status=r["status"],
                submitted_at=r["submitted_at"],
                closed_at=r["closed_at"],
                working_hours=(
                    calendar.working_hours_between(r["submitted_at"], r["closed_at"]) if finished else None
                ),
                returns=counts[r["id"]].get("returns", 0),
                rejections=counts[r["id"]].get("rejections", 0),
                resubmissions=counts[r["id"]].get("resubmissions", 0),
                overdue=int(late),
                submitted_week=week_of(r["submitted_at"], calendar),
                closed_week=week_of(r["closed_at"], calendar),
                **costs.get(r["id"], _NO_COST),
            )
        )
        last_visits = _last_visits(own) if finished else set()
        for t in own:
            if t["closed_at"] is None:
                continue
            remaining = None
            if t["id"] in last_visits:
                remaining = max(0.0, calendar.working_hours_between(t["created_at"], r["closed_at"]))
            task_rows.append(_task_row(t, r, calendar, remaining))
    for row in request_rows:
        touched.add_request(row)
    for row in task_rows:
        touched.add_task(row)
    async with write_transaction(RequestStat._meta.db):
        await _insert(RequestStat, RequestStat.instance_id, request_rows)
        for start in range(0, len(task_rows), BATCH):
            await _insert(
                TaskStat, TaskStat.task_id, task_rows[start : start + BATCH], TaskStat.remaining_hours
            )


_NO_COST: dict[str, Any] = {"budget": None, "actual_spend": None, "deviation": None, "budget_roles": None}


async def _costs(ids: list[int]) -> dict[int, dict[str, Any]]:
    """Budget, actual spend (of the last summary report) and who may read the budget, of the
    requests that reported a spend."""
    spends: dict[int, Decimal] = {}
    reports = await (
        InstanceEvent.select(InstanceEvent.instance, InstanceEvent.data)
        .where(InstanceEvent.instance.is_in(ids) & (InstanceEvent.kind == "summary"))
        .order_by(InstanceEvent.id)
        .output(load_json=True)
    )
    for report in reports:
        amount = decimal_of((report["data"] or {}).get("actual_spend"))
        if amount is not None:
            spends[report["instance"]] = amount
    if not spends:
        return {}
    rows = await (
        Instance.select(
            Instance.id,
            Instance.data,
            Instance.template_version,
            Instance.template_version.published_at.as_alias("published_at"),
        )
        .where(Instance.id.is_in(sorted(spends)))
        .output(load_json=True)
    )
    found: dict[int, dict[str, Any]] = {}
    for row in rows:
        budget = await _budget(row)
        if budget is None:
            continue
        amount, roles = budget
        spend = spends[row["id"]]
        found[row["id"]] = {
            "budget": str(amount),
            "actual_spend": str(spend),
            "deviation": float(spend - amount),
            "budget_roles": roles,
        }
    return found


async def _budget(row: dict[str, Any]) -> tuple[Decimal, str | None] | None:
    """The first budget field with an amount, and None or (when the field is sensitive) the
    roles that may read it, comma-separated."""
    schema = (await definition(row["template_version"], row["published_at"])).schema
    data = row["data"] if isinstance(row["data"], dict) else msgspec.json.decode(row["data"] or "{}")
    fields = {f.key: f for f in m.value_fields(schema)}
    for key in BUDGET_FIELDS:
        amount = decimal_of(data.get(key))
        if amount is not None:
            field = fields.get(key)
            sensitive = field is not None and field.sensitive
            return amount, ",".join(field.sensitive_roles) if sensitive and field else None
    return None


def decimal_of(value: Any) -> Decimal | None:
    """A finite amount from a form or report value; None for anything else (masked, sealed, text)."""
    if value is None or value == MASK or isinstance(value, bool | dict | list):
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


def _last_visits(tasks: list[dict[str, Any]]) -> set[int]:
    """The ids of each step's last task (the newest creation, then the highest id)."""
    last: dict[str, tuple[dt.datetime, int]] = {}
    for t in tasks:
        key = (t["created_at"], t["id"])
        if t["node_id"] not in last or key > last[t["node_id"]]:
            last[t["node_id"]] = key
    return {i for _, i in last.values()}


# -- tasks ------------------------------------------------------------------------------------


async def _roll_up_tasks(calendar: BusinessCalendar, limit: int | None, touched: Touched) -> tuple[int, bool]:
    start = await _mark("tasks")
    cursor: tuple[dt.datetime, int] | None = None
    written = 0
    while limit is None or written < limit:
        size = BATCH if limit is None else min(BATCH, limit - written)
        rows = await (
            Task.select(
                Task.id,
                Task.instance,
                Task.node_id,
                Task.title,
                Task.outcome,
                Task.created_at,
                Task.due_at,
                Task.closed_at,
            )
            .where(all_of(Task.closed_at.is_not_null(), _after(Task, cursor, start)))
            .order_by(Task.closed_at)
            .order_by(Task.id)
            .limit(size)
        )
        if not rows:
            return written, False
        cursor = (rows[-1]["closed_at"], rows[-1]["id"])
        # only tasks of requests still open: a closed request's tasks come with it
        running = {
            r["id"]: r
            for r in await Instance.select(
                Instance.id,
                Instance.template_key,
                Instance.department_id,
                Instance.initiator,
                Instance.submitted_at,
            ).where(
                Instance.id.is_in(sorted({r["instance"] for r in rows}))
                & Instance.closed_at.is_null()
                & Instance.submitted_at.is_not_null()
            )
        }
        wanted = [r for r in rows if r["instance"] in running]
        done = await _present(TaskStat, TaskStat.task_id, [r["id"] for r in wanted])
        fresh = [_task_row(r, running[r["instance"]], calendar, None) for r in wanted if r["id"] not in done]
        if fresh:
            for row in fresh:
                touched.add_task(row)
            async with write_transaction(TaskStat._meta.db):
                await _insert(TaskStat, TaskStat.task_id, fresh)
        written += len(fresh)
        await _advance("tasks", cursor[0])
        if len(rows) < size:
            return written, False
    return written, True


def _task_row(
    task: dict[str, Any], request: dict[str, Any], calendar: BusinessCalendar, remaining: float | None
) -> dict[str, Any]:
    closed: dt.datetime = task["closed_at"]
    due: dt.datetime | None = task["due_at"]
    decided = task["outcome"] in DECIDED
    return dict(
        task_id=task["id"],
        instance_id=task["instance"],
        template_key=request["template_key"],
        node_id=task["node_id"],
        step=task["title"] or task["node_id"],
        department_id=request["department_id"],
        initiator_id=request["initiator"],
        submitted_at=request["submitted_at"],
        created_at=task["created_at"],
        closed_at=closed,
        outcome=task["outcome"],
        working_hours=calendar.working_hours_between(task["created_at"], closed) if decided else None,
        has_due=int(due is not None),
        late=int(due is not None and closed > due),
        returned=int(task["outcome"] == "returned"),
        rejected=int(task["outcome"] == "rejected"),
        closed_week=week_of(closed, calendar),
        remaining_hours=remaining,
    )


_SQL_TYPES = {
    "Integer": "int4",
    "Serial": "int4",
    "Varchar": "text",
    "Timestamptz": "timestamptz",
    "DoublePrecision": "float8",
    "Date": "date",
}


async def _insert(table: Any, key: Any, rows: list[dict[str, Any]], update: Any = None) -> None:
    """Insert `rows` (column name -> value) unless their `key` is there; with `update`, set that
    column of the rows already there. On PostgreSQL one statement over arrays (`unnest`): a
    thousand rows cost a millisecond, where building Piccolo objects costs most of a second."""
    if not rows:
        return
    action = (
        "DO NOTHING"
        if update is None
        else f"DO UPDATE SET {update._meta.name} = EXCLUDED.{update._meta.name}"
    )
    if not on_postgres(table):
        await table.insert(*(table(**row) for row in rows)).on_conflict(
            target=key,
            action="DO NOTHING" if update is None else "DO UPDATE",
            values=[update] if update else [],
        )
        return
    columns = [c for c in table._meta.columns if c._meta.name in rows[0]]
    names = ", ".join(c._meta.name for c in columns)
    arrays = ", ".join(f"{{}}::{_SQL_TYPES[type(c).__name__]}[]" for c in columns)
    await table.raw(
        f"INSERT INTO {table._meta.tablename} ({names}) SELECT * FROM unnest({arrays})"
        f" ON CONFLICT ({key._meta.name}) {action}",
        *([row[c._meta.name] for row in rows] for c in columns),
    )


# -- completion estimates ---------------------------------------------------------------------


async def refresh_estimates(now: dt.datetime, calendar: BusinessCalendar, *, force: bool = False) -> bool:
    """Recompute the per-step completion estimates when older than `ESTIMATE_EVERY` (or `force`).

    True when they were recomputed. The median runs over every finished request's last visit
    of the step (`task_stat.remaining_hours`).
    """
    newest = (
        await StepEstimate.select(StepEstimate.computed_at)
        .order_by(StepEstimate.computed_at, ascending=False)
        .first()
    )
    if not force and newest is not None and now - newest["computed_at"] < ESTIMATE_EVERY:
        return False
    medians = await step_medians(TaskStat.remaining_hours, TaskStat.remaining_hours.is_not_null())
    rows = [
        StepEstimate(
            template_key=template,
            node_id=node_id,
            median_hours=figures[0],
            samples=figures[2],
            computed_at=now,
        )
        for (template, node_id), figures in medians.items()
        if figures[0] is not None
    ]
    async with write_transaction(StepEstimate._meta.db):
        await StepEstimate.delete(force=True)
        if rows:
            await StepEstimate.insert(*rows)
    return True


async def estimates() -> dict[tuple[str, str], insight.Estimate]:
    rows = await StepEstimate.select()
    return {
        (r["template_key"], r["node_id"]): insight.Estimate(
            template=r["template_key"],
            node_id=r["node_id"],
            median_hours=r["median_hours"],
            samples=r["samples"],
        )
        for r in rows
    }


# -- percentiles ------------------------------------------------------------------------------


async def step_medians(hours: Any, where: Any) -> dict[tuple[str, str], Figures]:
    """(median, nearest-rank p90, count) of `hours` per (template, step) of the rows `where`."""
    found = await hour_figures(TaskStat, [TaskStat.template_key, TaskStat.node_id], hours, where)
    return {(k[0], k[1]): v for k, v in found.items()}
