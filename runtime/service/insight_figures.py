"""Analytics' medians kept ready, for the whole organisation and for each department.

A median or a 90th percentile cannot be added up from parts: computed when asked, it reads
every decided task in the viewer's scope, a million rows and about half a second on
PostgreSQL however they are indexed. So each rollup run (`insight_rollup.roll_up`) recomputes
the figures of the groups it added rows to, from all of the groups' rows, and keeps them in
`insight_figure`, one row per kind, scope and group:

    step      per (template, step): decided tasks, when the step was first reached, its title,
              the has_due / late / returned / rejected sums, median and p90 working hours
    template  per template: closed requests, finished, rejected, sent back, overdue,
              resubmissions, and the finished ones' median and p90 working hours
    week      per week: closed requests submitted and finished in it, and the median working
              hours of the tasks decided in it

`scope` is a department id, or `WHOLE` for the whole organisation. Analytics reads them for the
views that are the whole organisation (a viewer who sees everything, no filter) or exactly one
department (a head whose reach is that one department, no filter, and none of their own
requests filed elsewhere); every other view aggregates the rollup rows when asked, as before,
over the smaller share of rows it covers. Requests in flight are never kept: analytics reads
them live and adds them in.

The figures are the same numbers either way (`tests/insight/test_rollup.py` compares them).
They are complete once the first run after installation has built them all; until then
(`FIGURES_MARK` absent) analytics aggregates when asked.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from piccolo.columns.combination import WhereRaw
from piccolo.query.functions.aggregate import Count, Max, Min, Sum
from piccolo.querystring import QueryString

from runtime import insight
from runtime.service.effects import insert_rows
from runtime.service.insight_sql import (
    Figures,
    all_of,
    date_of,
    figures_of,
    hour_figures,
    on_postgres,
    percentile_columns,
)
from storage.access import Permission, Principal, Scope
from storage.database import write_transaction
from storage.tables import InsightFigure, InsightMark, RequestStat, TaskStat

WHOLE = -1
"""The scope of the figures of the whole organisation."""
FIGURES_MARK = "figures"
"""The `insight_mark` row written once every group's figures have been built."""
STEP, TEMPLATE, WEEK = "step", "template", "week"
TEMPLATE_SUMS = ("requests", "finished", "rejected", "returned", "overdue", "resubmissions")
WEEK_SUMS = ("submitted", "finished")
_BATCH = 300
_VALUES = {
    "template_key": "",
    "node_id": "",
    "week": None,
    "step": "",
    "first": None,
    "cases": 0,
    "has_due": 0,
    "late": 0,
    "returned": 0,
    "rejected": 0,
    "requests": 0,
    "finished": 0,
    "overdue": 0,
    "resubmissions": 0,
    "submitted": 0,
    "median_hours": None,
    "p90_hours": None,
}
_COLUMNS = ("kind", "scope", "key", *_VALUES)
_UPSERT = ' ON CONFLICT ("kind", "scope", "key") DO UPDATE SET ' + ", ".join(
    f'"{c}" = EXCLUDED."{c}"' for c in _VALUES
)

Totals = dict[str, int]


@dataclasses.dataclass
class Touched:
    """The groups a rollup run added rows to; `everything` rebuilds them all."""

    steps: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    templates: set[str] = dataclasses.field(default_factory=set)
    weeks: set[dt.date] = dataclasses.field(default_factory=set)
    everything: bool = False

    def add_task(self, row: Mapping[str, Any]) -> None:
        if row["working_hours"] is not None:
            self.steps.add((row["template_key"], row["node_id"]))
            self.weeks.add(row["closed_week"])

    def add_request(self, row: Mapping[str, Any]) -> None:
        self.templates.add(row["template_key"])
        self.weeks.update((row["submitted_week"], row["closed_week"]))

    def __bool__(self) -> bool:
        return self.everything or bool(self.steps or self.templates or self.weeks)


# -- computing --------------------------------------------------------------------------------


async def step_rows(where: Any, *, by_department: bool = False) -> list[dict[str, Any]]:
    """Per (template, step[, department]) of the decided tasks `where`: count, first reached,
    title, sums, and `figures` (median, p90, count)."""
    keys = [TaskStat.template_key, TaskStat.node_id] + ([TaskStat.department_id] if by_department else [])
    postgres = on_postgres(TaskStat)
    rows = await (
        TaskStat.select(
            *keys,
            Count(alias="decided"),
            Min(TaskStat.created_at, alias="first"),
            Max(TaskStat.step, alias="step"),
            Sum(TaskStat.has_due, alias="has_due"),
            Sum(TaskStat.late, alias="late"),
            Sum(TaskStat.returned, alias="returned"),
            Sum(TaskStat.rejected, alias="rejected"),
            *(percentile_columns(TaskStat.working_hours) if postgres else []),
        )
        .where(where)
        .group_by(*keys)
    )
    python = {} if postgres else await hour_figures(TaskStat, keys, TaskStat.working_hours, where)
    names = [k._meta.name for k in keys]
    for r in rows:
        r["figures"] = figures_of(r, r["decided"]) if postgres else python[tuple(r[n] for n in names)]
    return rows


def step_stats(rows: Iterable[Mapping[str, Any]]) -> list[insight.StepStats]:
    """`step_rows` (or kept step figures) as `insight.StepStats`, in the order the steps were
    first reached."""
    ordered = sorted(rows, key=lambda r: (str(r["first"]), r["template_key"], r["node_id"]))
    return [
        insight.StepStats(
            template=r["template_key"],
            node_id=r["node_id"],
            step=r["step"],
            decided=r["decided"],
            median_hours=r["figures"][0],
            p90_hours=r["figures"][1],
            return_rate=insight.rate(r["returned"], r["decided"]),
            rejection_rate=insight.rate(r["rejected"], r["decided"]),
            overdue_rate=insight.rate(r["late"], r["has_due"]),
        )
        for r in ordered
    ]


async def template_totals(where: Any, *, by_department: bool = False) -> dict[tuple[Any, ...], Totals]:
    """`TEMPLATE_SUMS` of the closed requests `where`, per template[, department]."""
    keys = [RequestStat.template_key] + ([RequestStat.department_id] if by_department else [])
    grouped = await (
        RequestStat.select(
            *keys,
            RequestStat.status,
            Count(alias="n"),
            Sum(RequestStat.overdue, alias="overdue"),
            Sum(RequestStat.resubmissions, alias="resubmissions"),
            QueryString("SUM(CASE WHEN {} > 0 THEN 1 ELSE 0 END)", RequestStat.returns, alias="returned"),
        )
        .where(where)
        .group_by(*keys, RequestStat.status)
    )
    names = [k._meta.name for k in keys]
    totals: dict[tuple[Any, ...], Totals] = defaultdict(lambda: dict.fromkeys(TEMPLATE_SUMS, 0))
    for g in grouped:
        t = totals[tuple(g[n] for n in names)]
        t["requests"] += g["n"]
        t["finished"] += g["n"] if g["status"] in insight.FINISHED else 0
        t["rejected"] += g["n"] if g["status"] == "rejected" else 0
        t["returned"] += g["returned"] or 0
        t["overdue"] += g["overdue"] or 0
        t["resubmissions"] += g["resubmissions"] or 0
    return dict(totals)


async def template_hours(where: Any, *, by_department: bool = False) -> dict[tuple[Any, ...], Figures]:
    """(median, p90, count) of finished requests' working hours per template[, department]."""
    keys = [RequestStat.template_key] + ([RequestStat.department_id] if by_department else [])
    return await hour_figures(RequestStat, keys, RequestStat.working_hours, where)


async def week_totals(
    where: Any,
    *,
    first: dt.date | None = None,
    weeks: Iterable[dt.date] | None = None,
    by_department: bool = False,
) -> dict[tuple[Any, ...], Totals]:
    """Closed requests `where` submitted and finished per week[, department], from week `first`
    on, or in `weeks` only."""
    totals: dict[tuple[Any, ...], Totals] = defaultdict(lambda: dict.fromkeys(WEEK_SUMS, 0))
    chosen = None if weeks is None else sorted(weeks)
    for name, column, extra in (
        ("submitted", RequestStat.submitted_week, None),
        ("finished", RequestStat.closed_week, RequestStat.working_hours.is_not_null()),
    ):
        keys = [column] + ([RequestStat.department_id] if by_department else [])
        clause = all_of(
            where,
            extra,
            column >= first if first is not None else None,
            column.is_in(chosen) if chosen is not None else None,
        )
        query = RequestStat.select(*keys, Count(alias="n")).group_by(*keys)
        for r in await (query.where(clause) if clause is not None else query):
            key = (date_of(r[column._meta.name]), *((r["department_id"],) if by_department else ()))
            totals[key][name] += r["n"]
    return dict(totals)


async def week_hours(where: Any, *, by_department: bool = False) -> dict[tuple[Any, ...], Figures]:
    """(median, p90, count) of decided tasks' working hours per week closed[, department]."""
    keys = [TaskStat.closed_week] + ([TaskStat.department_id] if by_department else [])
    found = await hour_figures(TaskStat, keys, TaskStat.working_hours, where)
    return {(date_of(key[0]), *key[1:]): figures for key, figures in found.items()}


# -- keeping them -----------------------------------------------------------------------------


async def ready() -> bool:
    """True once every group's figures have been built."""
    return await InsightMark.exists().where(InsightMark.name == FIGURES_MARK)


async def refresh(touched: Touched) -> int:
    """Recompute and store the figures of the `touched` groups, at every scope (all of them
    while they were never built); rows written."""
    if not touched.everything and not await ready():
        touched = Touched(everything=True)
    elif not touched:
        return 0
    every = touched.everything
    decided = TaskStat.working_hours.is_not_null()
    rows: list[tuple[Any, ...]] = []
    for by_department in (False, True):
        if every or touched.steps:
            where = decided if every else decided & _pairs_in(touched.steps)
            for r in await step_rows(where, by_department=by_department):
                median, p90, _ = r["figures"]
                rows.append(
                    _row(
                        STEP,
                        r["department_id"] if by_department else WHOLE,
                        f"{r['template_key']}\x1f{r['node_id']}",
                        template_key=r["template_key"],
                        node_id=r["node_id"],
                        step=r["step"],
                        first=r["first"],
                        cases=r["decided"],
                        has_due=r["has_due"] or 0,
                        late=r["late"] or 0,
                        returned=r["returned"] or 0,
                        rejected=r["rejected"] or 0,
                        median_hours=median,
                        p90_hours=p90,
                    )
                )
        if every or touched.templates:
            where = None if every else RequestStat.template_key.is_in(sorted(touched.templates))
            totals = await template_totals(where, by_department=by_department)
            hours = await template_hours(where, by_department=by_department)
            for key in totals.keys() | hours.keys():
                median, p90, cases = hours.get(key, (None, None, 0))
                scope = key[1] if by_department else WHOLE
                sums = totals.get(key, {})
                rows.append(
                    _row(
                        TEMPLATE,
                        scope,
                        key[0],
                        template_key=key[0],
                        cases=cases,
                        median_hours=median,
                        p90_hours=p90,
                        **sums,
                    )
                )
        if every or touched.weeks:
            weeks = None if every else touched.weeks
            totals = await week_totals(None, weeks=weeks, by_department=by_department)
            where = decided if weeks is None else decided & TaskStat.closed_week.is_in(sorted(weeks))
            hours = await week_hours(where, by_department=by_department)
            for key in totals.keys() | hours.keys():
                median, p90, cases = hours.get(key, (None, None, 0))
                scope = key[1] if by_department else WHOLE
                rows.append(
                    _row(
                        WEEK,
                        scope,
                        key[0].isoformat(),
                        week=key[0],
                        cases=cases,
                        median_hours=median,
                        p90_hours=p90,
                        **totals.get(key, {}),
                    )
                )
    rows = [row for row in rows if row[1] is not None]
    async with write_transaction(InsightFigure._meta.db):
        for start in range(0, len(rows), _BATCH):
            await insert_rows(InsightFigure, _COLUMNS, rows[start : start + _BATCH], _UPSERT)
        if every:
            now = dt.datetime.now(dt.UTC)
            await InsightMark.insert(InsightMark(name=FIGURES_MARK, mark=now)).on_conflict(
                target=InsightMark.name, action="DO NOTHING"
            )
    return len(rows)


def _pairs_in(pairs: Iterable[tuple[str, str]]) -> Any:
    ordered = sorted(pairs)
    placeholders = ", ".join(["({}, {})"] * len(ordered))
    values = [value for pair in ordered for value in pair]
    return WhereRaw(f'("task_stat"."template_key", "task_stat"."node_id") IN ({placeholders})', *values)


def _row(kind: str, scope: int | None, key: str, **values: Any) -> tuple[Any, ...]:
    merged = {**_VALUES, **values}
    return (kind, scope, key, *(merged[c] for c in _VALUES))


# -- reading them -----------------------------------------------------------------------------


async def scope_for(principal: Principal, unfiltered: bool) -> int | None:
    """The figures' scope that is exactly this view, or None when the view must aggregate."""
    if not unfiltered or not await ready():
        return None
    scope = principal.scope(Permission.INSIGHT_VIEW)
    if scope is Scope.ALL:
        return WHOLE
    if scope is not Scope.DEPARTMENT or len(principal.reach) != 1:
        return None
    (department,) = principal.reach
    for table in (TaskStat, RequestStat):  # the viewer's own requests count too, wherever filed
        elsewhere = (table.initiator_id == principal.id) & (
            table.department_id.is_null() | (table.department_id != department)
        )
        if await table.exists().where(elsewhere):
            return None
    return department


async def _kept(kind: str, scope: int, since: dt.date | None = None) -> list[dict[str, Any]]:
    where = (InsightFigure.kind == kind) & (InsightFigure.scope == scope)
    if since is not None:
        where &= InsightFigure.week >= since
    rows: list[dict[str, Any]] = await InsightFigure.select().where(where)
    return rows


async def kept_steps(scope: int) -> list[insight.StepStats]:
    rows = await _kept(STEP, scope)
    return step_stats(
        {**r, "decided": r["cases"], "figures": (r["median_hours"], r["p90_hours"], r["cases"])} for r in rows
    )


async def kept_templates(scope: int) -> tuple[dict[tuple[Any, ...], Totals], dict[tuple[Any, ...], Figures]]:
    """`template_totals` and `template_hours` as kept."""
    rows = await _kept(TEMPLATE, scope)
    totals = {(r["template_key"],): {name: r[name] for name in TEMPLATE_SUMS} for r in rows}
    hours = {(r["template_key"],): _figures(r) for r in rows if r["cases"]}
    return totals, hours


async def kept_weeks(
    scope: int, since: dt.date | None
) -> tuple[dict[tuple[Any, ...], Totals], dict[tuple[Any, ...], Figures]]:
    """`week_totals` and `week_hours` as kept, from week `since` on."""
    rows = await _kept(WEEK, scope, since)
    totals = {(date_of(r["week"]),): {name: r[name] for name in WEEK_SUMS} for r in rows}
    hours = {(date_of(r["week"]),): _figures(r) for r in rows if r["cases"]}
    return totals, hours


def _figures(row: Mapping[str, Any]) -> Figures:
    return row["median_hours"], row["p90_hours"], row["cases"]
