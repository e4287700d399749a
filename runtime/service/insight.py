"""Insight queries: monitoring of requests in flight, analytics and exports, scoped to the viewer.

Every query carries the data scope of `insight.view` as a SQL clause (`storage.access.
scope_filter` on the request's initiator and department), so a department head reads only
the requests of the departments they head, whichever page, API or export asks. Drafts are
never counted.

Analytics reads closed work from the insight rollup (`insight_rollup`: `task_stat`,
`request_stat`, whose working hours the business calendar computed once) and aggregates it in
SQL: counts and rates as sums, medians and nearest-rank p90 as ordered-set aggregates on
PostgreSQL (`insight_sql`). Requests in flight (not rolled up until they close) are read live.
Weekly trends cover the last `TREND_WEEKS` weeks unless a start date is chosen. Monitoring
pages the open tasks with the indexes of the rollup migration and shows the expected closing
from `step_estimate`.

Exports read in batches of `EXPORT_BATCH` rows by id (keyset), so their memory stays flat
however many rows they write. Sensitive form fields in exports are masked exactly as on a
request's page: "****" for everyone but the initiator and the holders of the field's roles.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec
from piccolo.columns.combination import WhereRaw
from piccolo.query import OrderByRaw
from piccolo.query.functions.aggregate import Count

from forms import model as m
from forms.permissions import PermissionMask, mask_for_read
from forms.sensitive import mask_sensitive
from runtime import insight
from runtime.calendar import BusinessCalendar
from runtime.flow import Status
from runtime.insight import RequestRecord, TaskRecord
from runtime.insight.cells import Cell, cell
from runtime.service import insight_figures as figures
from runtime.service.definitions import definition
from runtime.service.effects import TASK_OPEN
from runtime.service.insight_rollup import BUDGET_FIELDS, roll_up
from runtime.service.insight_rollup import decimal_of as _decimal
from runtime.service.insight_rollup import estimates as completion_estimates
from runtime.service.insight_sql import all_of, on_postgres
from runtime.service.views import status_label
from storage.access import Permission, Principal, Scope, scope_filter
from storage.tables import (
    Department,
    Instance,
    InstanceEvent,
    Person,
    ProcessTemplate,
    RequestStat,
    Task,
    TaskStat,
    TemplateVersion,
)

PAGE_SIZE = 20
ON_DEMAND_ROLLUP = 2_000
"""Rows of each kind an analytics view rolls up before answering; the periodic job does the rest."""
TREND_WEEKS = 26
"""Weeks of the weekly trends when no start date is chosen."""
EXPORT_BATCH = 500
REPORT_LIMIT = 50
"""Rows of the "repeatedly sent back" and cost-deviation reports on a page."""
RUNNING = (Status.IN_APPROVAL.value, Status.EXECUTING.value, Status.AWAITING_SUMMARY.value)
EXPORT_KINDS = ("requests", "tasks", "records", "durations", "costs")


class Filters(msgspec.Struct, frozen=True, kw_only=True):
    """What the viewer narrowed the view to; dates are local calendar days, both included."""

    template: str | None = None
    department_id: int | None = None
    step: str | None = None
    overdue: bool = False
    since: dt.date | None = None
    until: dt.date | None = None


class Option(msgspec.Struct, frozen=True, kw_only=True):
    value: str
    label: str


class MonitorRow(msgspec.Struct, frozen=True, kw_only=True):
    """An open task of a request in flight: who holds it, how long it has waited, when it ends."""

    task_id: int
    instance_id: int
    number: str
    title: str
    template: str
    template_name: str
    department: str
    node_id: str
    step: str
    assignee: str
    waiting_since: dt.datetime
    waited_hours: float
    due_at: dt.datetime | None
    overdue: bool
    expected_at: dt.datetime | None
    """When the request is expected to close, from the step's history; None without history."""


class Group(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    label: str
    count: int


class MonitorPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[MonitorRow]
    total: int
    overdue: int
    page: int
    page_size: int
    by_template: list[Group]
    by_step: list[Group]
    by_department: list[Group]


class StepView(msgspec.Struct, frozen=True, kw_only=True):
    template_name: str
    stats: insight.StepStats


class Analytics(msgspec.Struct, frozen=True, kw_only=True):
    templates: list[insight.TemplateStats]
    template_names: dict[str, str]
    steps: list[StepView]
    bottlenecks: list[StepView]
    weeks: list[insight.WeekStats]
    repeated: list[insight.RepeatedRejection]
    costs: list[insight.CostDeviation]
    department_names: dict[int, str]
    truncated: bool
    """True while the rollup has a backlog: work closed in the last minutes may not count yet."""


class Export(NamedTuple):
    """An export's header and its rows, read in batches as they are consumed."""

    header: list[str]
    rows: AsyncIterator[list[Cell]]


# -- scope and filters ------------------------------------------------------------------------


def _instance_clause(principal: Principal, filters: Filters, calendar: BusinessCalendar, inst: Any) -> Any:
    """The viewer's scope and the filters on the instance columns reached through `inst`
    (`Instance` itself, or a foreign key to it such as `Task.instance`)."""
    clauses = [
        inst.submitted_at.is_not_null(),
        scope_filter(principal, Permission.INSIGHT_VIEW, inst.initiator, inst.department_id),
    ]
    if filters.template:
        clauses.append(inst.template_key == filters.template)
    if filters.department_id is not None:
        clauses.append(inst.department_id == filters.department_id)
    if filters.since is not None:
        clauses.append(inst.submitted_at >= _midnight(filters.since, calendar))
    if filters.until is not None:
        clauses.append(inst.submitted_at < _midnight(filters.until + dt.timedelta(days=1), calendar))
    return all_of(*clauses)


def _midnight(day: dt.date, calendar: BusinessCalendar) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), calendar.timezone)


def _task_clause(principal: Principal, filters: Filters, calendar: BusinessCalendar, now: dt.datetime) -> Any:
    clauses = [_instance_clause(principal, filters, calendar, Task.instance)]
    if filters.step:
        clauses.append(Task.node_id == filters.step)
    if filters.overdue:
        clauses.append(Task.due_at.is_not_null() & (Task.due_at < now) & (Task.status == TASK_OPEN))
    return all_of(*clauses)


# -- names ------------------------------------------------------------------------------------


async def template_names(locale: str) -> dict[str, str]:
    rows = await ProcessTemplate.select(ProcessTemplate.key, ProcessTemplate.name_zh, ProcessTemplate.name_en)
    return {r["key"]: (r["name_en"] or r["name_zh"]) if locale == "en" else r["name_zh"] for r in rows}


async def department_names(locale: str) -> dict[int, str]:
    rows = await Department.select(Department.id, Department.name_zh, Department.name_en)
    return {r["id"]: (r["name_en"] or r["name_zh"]) if locale == "en" else r["name_zh"] for r in rows}


async def _names(locale: str) -> tuple[dict[str, str], dict[int, str]]:
    return await template_names(locale), await department_names(locale)


async def filter_options(principal: Principal, filters: Filters, locale: str) -> dict[str, list[Option]]:
    """Templates, the departments in the viewer's reach, and the steps of the chosen template."""
    templates = await template_names(locale)
    departments = await department_names(locale)
    if principal.scope(Permission.INSIGHT_VIEW) < Scope.ALL:
        departments = {k: v for k, v in departments.items() if k in principal.reach}
    steps: list[Option] = []
    if filters.template:
        rows = await (
            Task.select(Task.node_id, Task.title)
            .where(Task.instance.template_key == filters.template)
            .distinct()
            .limit(200)
        )
        seen: dict[str, str] = {}
        for row in rows:
            seen.setdefault(row["node_id"], row["title"] or row["node_id"])
        steps = [Option(value=k, label=v) for k, v in sorted(seen.items(), key=lambda kv: kv[1])]
    return {
        "templates": [Option(value=k, label=v) for k, v in sorted(templates.items(), key=lambda kv: kv[1])],
        "departments": [
            Option(value=str(k), label=v) for k, v in sorted(departments.items(), key=lambda kv: kv[1])
        ],
        "steps": steps,
    }


# -- rollup rows ------------------------------------------------------------------------------


def _stat_clause(principal: Principal, filters: Filters, calendar: BusinessCalendar, table: Any) -> Any:
    """The viewer's scope and the filters on a rollup table (`TaskStat` or `RequestStat`), whose
    rows carry their request's initiator, department and submission."""
    clauses = [scope_filter(principal, Permission.INSIGHT_VIEW, table.initiator_id, table.department_id)]
    if filters.template:
        clauses.append(table.template_key == filters.template)
    if filters.department_id is not None:
        clauses.append(table.department_id == filters.department_id)
    if filters.since is not None:
        clauses.append(table.submitted_at >= _midnight(filters.since, calendar))
    if filters.until is not None:
        clauses.append(table.submitted_at < _midnight(filters.until + dt.timedelta(days=1), calendar))
    return all_of(*clauses)


def _where(*clauses: Any) -> Any:
    """`all_of`, for a clause that is never None (Piccolo's `where` wants one)."""
    result = all_of(*clauses)
    assert result is not None
    return result


_COUNTED = {"return": "returns", "reject": "rejections", "resubmit": "resubmissions"}


class _InFlight(NamedTuple):
    """Submitted requests not closed yet: read live (they are not rolled up until they close)."""

    records: list[RequestRecord]
    overdue: set[int]
    """Ids of those with a task decided after its deadline or still open past it at `now`."""


async def _in_flight(
    principal: Principal, filters: Filters, calendar: BusinessCalendar, now: dt.datetime
) -> _InFlight:
    open_only = Instance.closed_at.is_null()
    rows = await Instance.select(
        Instance.id,
        Instance.number,
        Instance.title,
        Instance.template_key,
        Instance.department_id,
        Instance.status,
        Instance.submitted_at,
    ).where(_where(_instance_clause(principal, filters, calendar, Instance), open_only))
    counts: dict[int, dict[str, int]] = {}
    late: set[int] = set()
    ids = [r["id"] for r in rows]
    postgres = on_postgres(Task)
    # PostgreSQL takes the ids as one array (the indexes on the request column serve it, where
    # a join would scan every task); SQLite takes them in lists of EXPORT_BATCH
    step = max(len(ids), 1) if postgres else EXPORT_BATCH
    # PostgreSQL compares the instants; SQLite's are text, compared below
    past_due = WhereRaw('COALESCE("task"."closed_at", {}) > "task"."due_at"', now) if postgres else None
    for start in range(0, len(ids), step):
        chunk = ids[start : start + step]
        grouped = await (
            InstanceEvent.select(InstanceEvent.instance, InstanceEvent.kind, Count(alias="n"))
            .where(_member_of(InstanceEvent.instance, chunk) & InstanceEvent.kind.is_in(list(_COUNTED)))
            .group_by(InstanceEvent.instance, InstanceEvent.kind)
        )
        for g in grouped:
            counts.setdefault(g["instance"], {})[_COUNTED[g["kind"]]] = g["n"]
        deadlines = await Task.select(Task.instance, Task.due_at, Task.closed_at).where(
            _where(_member_of(Task.instance, chunk), Task.due_at.is_not_null(), past_due)
        )
        late |= {t["instance"] for t in deadlines if (t["closed_at"] or now) > t["due_at"]}
    records = [
        RequestRecord(
            instance_id=r["id"],
            number=r["number"],
            title=r["title"],
            template=r["template_key"],
            department_id=r["department_id"],
            status=r["status"],
            submitted_at=r["submitted_at"],
            returns=counts.get(r["id"], {}).get("returns", 0),
            rejections=counts.get(r["id"], {}).get("rejections", 0),
            resubmissions=counts.get(r["id"], {}).get("resubmissions", 0),
        )
        for r in rows
    ]
    return _InFlight(records=records, overdue=late)


def _member_of(column: Any, ids: list[int]) -> Any:
    """`column IN ids`: one array parameter on PostgreSQL, a list of placeholders on SQLite."""
    if on_postgres(column._meta.table):
        return WhereRaw(
            f'"{column._meta.table._meta.tablename}"."{column._meta.db_column_name}" = ANY({{}})', ids
        )
    return column.is_in(ids)


async def _costs(
    principal: Principal,
    filters: Filters,
    calendar: BusinessCalendar,
    in_flight: Sequence[RequestRecord],
    limit: int | None = REPORT_LIMIT,
) -> list[insight.CostDeviation]:
    """Budget against actual spend, the largest overspend first: closed requests from the rollup
    (whose budget the viewer may read), those in flight with a summary read live."""
    where = _where(
        _stat_clause(principal, filters, calendar, RequestStat), RequestStat.deviation.is_not_null()
    )
    roles = {str(role) for role in principal.roles}
    found: list[RequestRecord] = []
    offset = 0
    while limit is None or len(found) < limit:
        rows = await (
            RequestStat.select(
                RequestStat.instance_id,
                RequestStat.number,
                RequestStat.title,
                RequestStat.template_key,
                RequestStat.department_id,
                RequestStat.initiator_id,
                RequestStat.status,
                RequestStat.submitted_at,
                RequestStat.budget,
                RequestStat.actual_spend,
                RequestStat.budget_roles,
            )
            .where(where)
            .order_by(RequestStat.deviation, ascending=False)
            .order_by(RequestStat.number)
            .limit(EXPORT_BATCH)
            .offset(offset)
        )
        offset += EXPORT_BATCH
        for r in rows:
            masked = r["budget_roles"] is not None and r["initiator_id"] != principal.id
            if masked and not roles.intersection(filter(None, r["budget_roles"].split(","))):
                continue
            found.append(
                RequestRecord(
                    instance_id=r["instance_id"],
                    number=r["number"],
                    title=r["title"],
                    template=r["template_key"],
                    department_id=r["department_id"],
                    status=r["status"],
                    submitted_at=r["submitted_at"],
                    budget=Decimal(r["budget"]),
                    actual_spend=Decimal(r["actual_spend"]),
                )
            )
        if len(rows) < EXPORT_BATCH:
            break
    found += await _spends_in_flight(principal, filters, calendar, in_flight)
    return insight.cost_deviations(found)[:limit]


async def _spends_in_flight(
    principal: Principal, filters: Filters, calendar: BusinessCalendar, in_flight: Sequence[RequestRecord]
) -> list[RequestRecord]:
    """Requests in flight that already reported a spend, with the budget the viewer may read."""
    event_where = _where(
        _instance_clause(principal, filters, calendar, InstanceEvent.instance),
        InstanceEvent.instance.closed_at.is_null(),
    )
    spends = await _actual_spends(event_where)
    if not spends:
        return []
    budgets = await _budgets(principal, sorted(spends))
    return [
        msgspec.structs.replace(r, budget=budgets.get(r.instance_id), actual_spend=spends[r.instance_id])
        for r in in_flight
        if r.instance_id in spends
    ]


async def _actual_spends(event_where: Any) -> dict[int, Decimal]:
    """The actual spend of each summary report (the last one, if a request has several)."""
    rows = await (
        InstanceEvent.select(InstanceEvent.instance, InstanceEvent.data)
        .where(_where(event_where, InstanceEvent.kind == "summary"))
        .order_by(InstanceEvent.id)
        .output(load_json=True)
    )
    spends: dict[int, Decimal] = {}
    for row in rows:
        amount = _decimal((row["data"] or {}).get("actual_spend"))
        if amount is not None:
            spends[row["instance"]] = amount
    return spends


async def _budgets(principal: Principal, ids: Sequence[int]) -> dict[int, Decimal]:
    """The budget field of each request, unless it is sensitive and masked for the viewer."""
    budgets: dict[int, Decimal] = {}
    for start in range(0, len(ids), EXPORT_BATCH):
        rows = await (
            Instance.select(
                Instance.id,
                Instance.initiator,
                Instance.data,
                Instance.template_version,
                Instance.template_version.published_at.as_alias("published_at"),
            )
            .where(Instance.id.is_in(list(ids[start : start + EXPORT_BATCH])))
            .output(load_json=True)
        )
        for row in rows:
            data = await _visible_data(principal, row)
            for key in BUDGET_FIELDS:
                amount = _decimal(data.get(key))
                if amount is not None:
                    budgets[row["id"]] = amount
                    break
    return budgets


async def _visible_data(principal: Principal, row: Mapping[str, Any]) -> dict[str, Any]:
    """A request's form data as the viewer may read it: hidden fields out, sensitive ones masked."""
    found = await definition(row["template_version"], row["published_at"])
    data = row["data"] if isinstance(row["data"], dict) else msgspec.json.decode(row["data"] or "{}")
    shown = mask_for_read(dict(data), PermissionMask())
    if row["initiator"] != principal.id:
        shown = mask_sensitive(shown, found.schema, [str(role) for role in principal.roles])
    return shown


# -- monitoring -------------------------------------------------------------------------------


async def monitor(
    principal: Principal,
    now: dt.datetime,
    calendar: BusinessCalendar,
    filters: Filters,
    *,
    page: int = 1,
    page_size: int = PAGE_SIZE,
    locale: str = "zh-CN",
) -> MonitorPage:
    """Open tasks of requests in flight, longest waiting first, with counts by template, step and department."""
    live = Filters(
        template=filters.template,
        department_id=filters.department_id,
        step=filters.step,
        overdue=filters.overdue,
    )
    where = all_of(
        _task_clause(principal, live, calendar, now),
        Task.status == TASK_OPEN,
        Task.instance.status.is_in(list(RUNNING)),
    )
    total = await Task.count().where(where)
    overdue = await Task.count().where(where & Task.due_at.is_not_null() & (Task.due_at < now))
    rows = await (
        Task.select(
            Task.id,
            Task.instance,
            Task.instance.number.as_alias("number"),
            Task.instance.title.as_alias("title"),
            Task.instance.template_key.as_alias("template"),
            Task.instance.department_id.as_alias("department_id"),
            Task.assignee.name.as_alias("assignee"),
            Task.node_id,
            Task.title.as_alias("step"),
            Task.created_at,
            Task.due_at,
        )
        .where(where)
        .order_by(Task.created_at)
        .order_by(Task.id)
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    templates = await template_names(locale)
    departments = await department_names(locale)
    estimates = await completion_estimates()
    items = [
        MonitorRow(
            task_id=r["id"],
            instance_id=r["instance"],
            number=r["number"],
            title=r["title"],
            template=r["template"],
            template_name=templates.get(r["template"], r["template"]),
            department=departments.get(r["department_id"], "") if r["department_id"] else "",
            node_id=r["node_id"],
            step=r["step"] or r["node_id"],
            assignee=r["assignee"] or "",
            waiting_since=r["created_at"],
            waited_hours=insight.waited_hours(r["created_at"], now, calendar),
            due_at=r["due_at"],
            overdue=r["due_at"] is not None and r["due_at"] < now,
            expected_at=insight.expected_completion(
                r["created_at"], now, estimates.get((r["template"], r["node_id"])), calendar
            ),
        )
        for r in rows
    ]
    return MonitorPage(
        items=items,
        total=total,
        overdue=overdue,
        page=page,
        page_size=page_size,
        by_template=await _groups(where, Task.instance.template_key, templates),
        by_step=await _groups(where, Task.title, {}),
        by_department=await _groups(where, Task.instance.department_id, departments),
    )


async def _groups(where: Any, column: Any, labels: Mapping[Any, str]) -> list[Group]:
    rows = await Task.select(column.as_alias("key"), Count(alias="n")).where(where).group_by(column)
    groups = [
        Group(key=str(r["key"] or ""), label=labels.get(r["key"], str(r["key"] or "—")), count=r["n"])
        for r in rows
    ]
    groups.sort(key=lambda g: (-g.count, g.label))
    return groups


# -- analytics --------------------------------------------------------------------------------


async def analytics(
    principal: Principal,
    now: dt.datetime,
    calendar: BusinessCalendar,
    filters: Filters,
    locale: str = "zh-CN",
) -> Analytics:
    """Per template and step: counts, working-hour medians and p90, rates, bottlenecks, weeks,
    repeatedly sent-back requests and cost deviations, over the viewer's scope and filters.

    Closed work is read from the rollup (what closed since the last periodic run is rolled up
    first, up to `ON_DEMAND_ROLLUP` rows); requests in flight are read live."""
    rolled = await roll_up(calendar, limit=ON_DEMAND_ROLLUP)
    kept = await figures.scope_for(principal, filters == Filters())
    # independent reads, each on its own pooled connection: the database runs them side by side;
    # the requests in flight are read alongside and merged in as each part ends
    in_flight = asyncio.ensure_future(_in_flight(principal, filters, calendar, now))

    async def costs() -> list[insight.CostDeviation]:
        return await _costs(principal, filters, calendar, (await in_flight).records)

    steps, per_template, weeks, repeated, costs_found, (templates, departments) = await asyncio.gather(
        _step_figures(principal, filters, calendar, kept),
        _template_figures(principal, filters, calendar, in_flight, kept),
        _week_figures(principal, filters, calendar, now, in_flight, kept),
        _repeated(principal, filters, calendar, in_flight),
        costs(),
        _names(locale),
    )

    def view(stats: insight.StepStats) -> StepView:
        return StepView(template_name=templates.get(stats.template, stats.template), stats=stats)

    return Analytics(
        templates=per_template,
        template_names=templates,
        steps=[view(s) for s in steps],
        bottlenecks=[view(s) for s in insight.bottlenecks(steps)],
        weeks=weeks,
        repeated=repeated,
        costs=costs_found,
        department_names=departments,
        truncated=rolled.more,
    )


def _task_stat_clause(principal: Principal, filters: Filters, calendar: BusinessCalendar) -> Any:
    clauses = [_stat_clause(principal, filters, calendar, TaskStat), TaskStat.working_hours.is_not_null()]
    if filters.step:
        clauses.append(TaskStat.node_id == filters.step)
    return _where(*clauses)


async def _step_figures(
    principal: Principal, filters: Filters, calendar: BusinessCalendar, kept: int | None
) -> list[insight.StepStats]:
    """`insight.step_stats` over the rollup's decided tasks, in the order the steps were first
    reached: the kept figures of scope `kept`, or aggregated now. A step's title is its greatest
    one (titles rarely change between versions)."""
    if kept is not None:
        return await figures.kept_steps(kept)
    return figures.step_stats(await figures.step_rows(_task_stat_clause(principal, filters, calendar)))


async def _template_figures(
    principal: Principal,
    filters: Filters,
    calendar: BusinessCalendar,
    flight: Awaitable[_InFlight],
    kept: int | None,
) -> list[insight.TemplateStats]:
    """`insight.template_stats`: closed requests from the rollup (kept figures of scope `kept`,
    or aggregated now), those in flight as read live."""
    if kept is not None:
        closed, hours = await figures.kept_templates(kept)
    else:
        where = _stat_clause(principal, filters, calendar, RequestStat)
        closed = await figures.template_totals(where)
        hours = await figures.template_hours(where)
    totals: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(figures.TEMPLATE_SUMS, 0))
    for (template,), sums in closed.items():
        totals[template].update(sums)
    in_flight = await flight
    for r in in_flight.records:
        t = totals[r.template]
        t["requests"] += 1
        t["returned"] += int(r.returns > 0)
        t["overdue"] += int(r.instance_id in in_flight.overdue)
        t["resubmissions"] += r.resubmissions
    result = []
    for template in sorted(totals):
        t = totals[template]
        mid, p90, _ = hours.get((template,), (None, None, 0))
        result.append(
            insight.TemplateStats(
                template=template,
                requests=t["requests"],
                finished=t["finished"],
                median_hours=mid,
                p90_hours=p90,
                return_rate=insight.rate(t["returned"], t["requests"]),
                rejection_rate=insight.rate(t["rejected"], t["finished"]),
                overdue_rate=insight.rate(t["overdue"], t["requests"]),
                resubmissions=t["resubmissions"],
            )
        )
    return result


async def _week_figures(
    principal: Principal,
    filters: Filters,
    calendar: BusinessCalendar,
    now: dt.datetime,
    flight: Awaitable[_InFlight],
    kept: int | None,
) -> list[insight.WeekStats]:
    """`insight.weekly_trends`, over the last `TREND_WEEKS` weeks unless a start date is chosen."""
    first = (
        None
        if filters.since is not None
        else insight.week_of(now, calendar) - dt.timedelta(weeks=TREND_WEEKS - 1)
    )
    if kept is not None:
        closed, hours = await figures.kept_weeks(kept, first)
    else:
        closed = await figures.week_totals(
            _stat_clause(principal, filters, calendar, RequestStat), first=first
        )
        task_where = _where(
            _task_stat_clause(principal, filters, calendar), TaskStat.closed_week >= first if first else None
        )
        hours = await figures.week_hours(task_where)
    submitted: dict[dt.date, int] = defaultdict(int)
    finished: dict[dt.date, int] = defaultdict(int)
    for (week,), sums in closed.items():
        submitted[week] += sums["submitted"]
        finished[week] += sums["finished"]
    mondays: dict[int, dt.date] = {}  # by quarter hour: every zone's offset is a multiple of it
    for request in (await flight).records:
        quarter = int(request.submitted_at.timestamp() // 900)
        week = mondays.get(quarter) or mondays.setdefault(
            quarter, insight.week_of(request.submitted_at, calendar)
        )
        if first is None or week >= first:
            submitted[week] += 1
    by_week = {key[0]: value for key, value in hours.items()}
    weeks = sorted(
        w
        for w in set(submitted) | set(finished) | set(by_week)
        if submitted[w] or finished[w] or w in by_week
    )
    return [
        insight.WeekStats(
            week=w,
            submitted=submitted.get(w, 0),
            finished=finished.get(w, 0),
            median_task_hours=by_week[w][0] if w in by_week else None,
        )
        for w in weeks
    ]


async def _repeated(
    principal: Principal, filters: Filters, calendar: BusinessCalendar, flight: Awaitable[_InFlight]
) -> list[insight.RepeatedRejection]:
    """Requests sent back at least twice: the most sent back of the rollup and of those in flight."""
    rows = await (
        RequestStat.select(
            RequestStat.instance_id,
            RequestStat.number,
            RequestStat.title,
            RequestStat.template_key,
            RequestStat.department_id,
            RequestStat.status,
            RequestStat.submitted_at,
            RequestStat.returns,
            RequestStat.rejections,
        )
        .where(
            _where(
                _stat_clause(principal, filters, calendar, RequestStat),
                WhereRaw("request_stat.returns + request_stat.rejections >= 2"),
            )
        )
        .order_by(OrderByRaw("request_stat.returns + request_stat.rejections"), ascending=False)
        .order_by(RequestStat.number)
        .limit(REPORT_LIMIT)
    )
    closed = [
        RequestRecord(
            instance_id=r["instance_id"],
            number=r["number"],
            title=r["title"],
            template=r["template_key"],
            department_id=r["department_id"],
            status=r["status"],
            submitted_at=r["submitted_at"],
            returns=r["returns"],
            rejections=r["rejections"],
        )
        for r in rows
    ]
    return insight.repeated_rejections(closed + (await flight).records)[:REPORT_LIMIT]


# -- exports ----------------------------------------------------------------------------------


def _hours(value: float | None) -> Cell:
    return None if value is None else round(value, 2)


async def export(
    kind: str,
    principal: Principal,
    now: dt.datetime,
    calendar: BusinessCalendar,
    filters: Filters,
    locale: str = "zh-CN",
) -> Export:
    """The rows of one export (`EXPORT_KINDS`), every text cell neutralised for spreadsheets."""
    if kind == "requests":
        return await _export_requests(principal, now, calendar, filters, locale)
    if kind == "tasks":
        return await _export_tasks(principal, now, calendar, filters, locale)
    if kind == "records":
        return await _export_records(principal, calendar, filters, locale)
    if kind == "durations":
        return await _export_durations(principal, now, calendar, filters, locale)
    if kind == "costs":
        return await _export_costs(principal, now, calendar, filters, locale)
    raise ValueError(f"unknown export {kind!r}")


async def _batches(
    query: Callable[[], Any], where: Any, id_column: Any
) -> AsyncIterator[list[dict[str, Any]]]:
    """Rows of a fresh `query()` in id order, `EXPORT_BATCH` at a time (keyset pagination, flat
    memory). A new query per batch: Piccolo's `where` adds to the query it is called on."""
    last = 0
    while True:
        rows = await query().where(all_of(where, id_column > last)).order_by(id_column).limit(EXPORT_BATCH)
        if not rows:
            return
        yield rows
        last = rows[-1]["id"]
        if len(rows) < EXPORT_BATCH:
            return


def _labels(locale: str, zh: Sequence[str], en: Sequence[str]) -> list[str]:
    return list(en if locale == "en" else zh)


async def _export_requests(
    principal: Principal, now: dt.datetime, calendar: BusinessCalendar, filters: Filters, locale: str
) -> Export:
    templates = await template_names(locale)
    departments = await department_names(locale)
    fields = await _template_fields(filters.template, locale)
    header = _labels(
        locale,
        [
            "编号",
            "标题",
            "流程",
            "部门",
            "申请人",
            "状态",
            "当前步骤",
            "提交时间",
            "结束时间",
            "耗时(工作小时)",
        ],
        [
            "Number",
            "Title",
            "Process",
            "Department",
            "Applicant",
            "Status",
            "Current step",
            "Submitted",
            "Closed",
            "Working hours",
        ],
    ) + [label for _, label in fields]
    tz = calendar.timezone

    def query() -> Any:
        return Instance.select(
            Instance.id,
            Instance.number,
            Instance.title,
            Instance.template_key,
            Instance.department_id,
            Instance.initiator,
            Instance.initiator.name.as_alias("initiator_name"),
            Instance.status,
            Instance.current_step,
            Instance.submitted_at,
            Instance.closed_at,
            Instance.data,
            Instance.template_version,
            Instance.template_version.published_at.as_alias("published_at"),
        ).output(load_json=True)

    where = _instance_clause(principal, filters, calendar, Instance)

    async def rows() -> AsyncIterator[list[Cell]]:
        async for batch in _batches(query, where, Instance.id):
            for r in batch:
                took = (
                    calendar.working_hours_between(r["submitted_at"], r["closed_at"])
                    if r["closed_at"] and r["submitted_at"]
                    else None
                )
                values: list[Any] = [
                    r["number"],
                    r["title"],
                    templates.get(r["template_key"], r["template_key"]),
                    departments.get(r["department_id"], "") if r["department_id"] else "",
                    r["initiator_name"],
                    status_label(r["status"], locale),
                    r["current_step"],
                    r["submitted_at"],
                    r["closed_at"],
                    _hours(took),
                ]
                if fields:
                    data = await _visible_data(principal, r)
                    values += [_field_value(data.get(key)) for key, _ in fields]
                yield [cell(v, tz) for v in values]

    return Export(header=header, rows=rows())


async def _template_fields(key: str | None, locale: str) -> list[tuple[str, str]]:
    """(key, label) of the scalar form fields of a template's newest published version (older
    requests show what they have of them); none without a template."""
    if not key:
        return []
    row = await (
        TemplateVersion.select(TemplateVersion.id, TemplateVersion.published_at)
        .where(TemplateVersion.template.key == key)
        .order_by(TemplateVersion.version, ascending=False)
        .first()
    )
    if row is None:
        return []
    found = await definition(row["id"], row["published_at"])
    skipped = (m.DetailTableField, m.AttachmentField)
    return [(f.key, f.label.get(locale)) for f in m.value_fields(found.schema) if not isinstance(f, skipped)]


def _field_value(value: Any) -> Any:
    if isinstance(value, list | dict):
        return msgspec.json.encode(value).decode()
    return value


async def _export_tasks(
    principal: Principal, now: dt.datetime, calendar: BusinessCalendar, filters: Filters, locale: str
) -> Export:
    templates = await template_names(locale)
    header = _labels(
        locale,
        [
            "编号",
            "流程",
            "步骤",
            "处理人",
            "状态",
            "结果",
            "创建时间",
            "截止时间",
            "处理时间",
            "耗时(工作小时)",
            "超时",
        ],
        [
            "Number",
            "Process",
            "Step",
            "Assignee",
            "Status",
            "Outcome",
            "Created",
            "Due",
            "Closed",
            "Working hours",
            "Overdue",
        ],
    )
    tz = calendar.timezone

    def query() -> Any:
        return Task.select(
            Task.id,
            Task.instance.number.as_alias("number"),
            Task.instance.template_key.as_alias("template"),
            Task.title,
            Task.node_id,
            Task.assignee.name.as_alias("assignee"),
            Task.status,
            Task.outcome,
            Task.created_at,
            Task.due_at,
            Task.closed_at,
        )

    where = _task_clause(principal, filters, calendar, now)

    async def rows() -> AsyncIterator[list[Cell]]:
        async for batch in _batches(query, where, Task.id):
            for r in batch:
                record = TaskRecord(
                    instance_id=0,
                    template=r["template"],
                    node_id=r["node_id"],
                    step=r["title"],
                    created_at=r["created_at"],
                    closed_at=r["closed_at"],
                    due_at=r["due_at"],
                    outcome=r["outcome"],
                )
                values: list[Any] = [
                    r["number"],
                    templates.get(r["template"], r["template"]),
                    r["title"] or r["node_id"],
                    r["assignee"],
                    r["status"],
                    r["outcome"] or "",
                    r["created_at"],
                    r["due_at"],
                    r["closed_at"],
                    _hours(insight.task_hours(record, calendar)),
                    "Y" if insight.is_overdue(record, now) else "",
                ]
                yield [cell(v, tz) for v in values]

    return Export(header=header, rows=rows())


RECORD_KINDS = ("progress", "summary", "change_request", "comment")
"""Event-log entries exported as execution records."""


async def _export_records(
    principal: Principal, calendar: BusinessCalendar, filters: Filters, locale: str
) -> Export:
    templates = await template_names(locale)
    header = _labels(
        locale,
        ["编号", "流程", "时间", "记录人", "类型", "步骤", "结果", "说明", "实际花费"],
        ["Number", "Process", "At", "By", "Kind", "Step", "Result", "Note", "Actual spend"],
    )
    tz = calendar.timezone

    def query() -> Any:
        return InstanceEvent.select(
            InstanceEvent.id,
            InstanceEvent.instance.number.as_alias("number"),
            InstanceEvent.instance.template_key.as_alias("template"),
            InstanceEvent.at,
            InstanceEvent.actor_id,
            InstanceEvent.kind,
            InstanceEvent.node_id,
            InstanceEvent.data,
        ).output(load_json=True)

    where = all_of(
        _instance_clause(principal, filters, calendar, InstanceEvent.instance),
        InstanceEvent.kind.is_in(list(RECORD_KINDS)),
    )

    async def rows() -> AsyncIterator[list[Cell]]:
        async for batch in _batches(query, where, InstanceEvent.id):
            names = await _person_names(r["actor_id"] for r in batch)
            for r in batch:
                data = r["data"] or {}
                note = data.get("note") or data.get("text") or data.get("reason") or data.get("results") or ""
                values: list[Any] = [
                    r["number"],
                    templates.get(r["template"], r["template"]),
                    r["at"],
                    names.get(r["actor_id"], ""),
                    r["kind"],
                    r["node_id"] or "",
                    data.get("result", ""),
                    note,
                    _decimal(data.get("actual_spend")),
                ]
                yield [cell(v, tz) for v in values]

    return Export(header=header, rows=rows())


async def _person_names(ids: Iterable[int | None]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = await Person.select(Person.id, Person.name).where(Person.id.is_in(wanted))
    return {r["id"]: r["name"] for r in rows}


async def _export_durations(
    principal: Principal, now: dt.datetime, calendar: BusinessCalendar, filters: Filters, locale: str
) -> Export:
    found = await analytics(principal, now, calendar, filters, locale)
    header = _labels(
        locale,
        ["流程", "步骤", "已处理", "中位耗时(工作小时)", "P90耗时(工作小时)", "退回率", "驳回率", "超时率"],
        [
            "Process",
            "Step",
            "Decided",
            "Median working hours",
            "P90 working hours",
            "Return rate",
            "Rejection rate",
            "Overdue rate",
        ],
    )
    tz = calendar.timezone

    async def rows() -> AsyncIterator[list[Cell]]:
        for view in found.steps:
            s = view.stats
            values: list[Any] = [
                view.template_name,
                s.step,
                s.decided,
                s.median_hours,
                s.p90_hours,
                s.return_rate,
                s.rejection_rate,
                s.overdue_rate,
            ]
            yield [cell(v, tz) for v in values]

    return Export(header=header, rows=rows())


async def _export_costs(
    principal: Principal, now: dt.datetime, calendar: BusinessCalendar, filters: Filters, locale: str
) -> Export:
    await roll_up(calendar, limit=ON_DEMAND_ROLLUP)
    in_flight = await _in_flight(principal, filters, calendar, now)
    costs = await _costs(principal, filters, calendar, in_flight.records, limit=None)
    templates = await template_names(locale)
    departments = await department_names(locale)
    header = _labels(
        locale,
        ["编号", "标题", "流程", "部门", "预算", "实际花费", "偏差", "偏差率"],
        [
            "Number",
            "Title",
            "Process",
            "Department",
            "Budget",
            "Actual spend",
            "Deviation",
            "Deviation ratio",
        ],
    )
    tz = calendar.timezone

    async def rows() -> AsyncIterator[list[Cell]]:
        for c in costs:
            values: list[Any] = [
                c.number,
                c.title,
                templates.get(c.template, c.template),
                departments.get(c.department_id, "") if c.department_id else "",
                c.budget,
                c.actual,
                c.deviation,
                c.ratio,
            ]
            yield [cell(v, tz) for v in values]

    return Export(header=header, rows=rows())
