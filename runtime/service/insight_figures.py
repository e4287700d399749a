"""Analytics' medians kept ready, for the whole organisation and for each department.

A median or a 90th percentile cannot be added up from parts: computed when asked, it reads
every decided task in the viewer's scope, a million rows and about half a second on
PostgreSQL however they are indexed. So each rollup run (`insight_rollup.roll_up`) recomputes
the figures of the groups it added rows to, from all of the groups' rows, and keeps them in
`insight_figure`, one row per kind, scope and group:

    step      per (template, step): decided tasks, when the step was first reached, its title,
              the has_due / late / returned / rejected sums, median and p90 working hours
    template  per template: the finished requests' median and p90 working hours
    week      per week: the median working hours of the tasks decided in it

`scope` is a department id, or `WHOLE` for the whole organisation. Analytics reads them for the
views that are the whole organisation (a viewer who sees everything, no filter) or exactly one
department (a head whose reach is that one department, no filter, and none of their own
requests filed elsewhere); every other view aggregates the rollup rows when asked, as before,
over the smaller share of rows it covers. Counts and sums are always read from the rollup.

The figures are the same numbers either way (`tests/insight/test_rollup.py` compares them).
They are complete once the first run after installation has built them all; until then
(`FIGURES_MARK` absent) analytics aggregates when asked.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from piccolo.columns.combination import WhereRaw
from piccolo.query.functions.aggregate import Count, Max, Min, Sum

from runtime import insight
from runtime.service.effects import insert_rows
from runtime.service.insight_sql import Figures, figures_of, hour_figures, on_postgres, percentile_columns
from storage.access import Permission, Principal, Scope
from storage.database import write_transaction
from storage.tables import InsightFigure, InsightMark, RequestStat, TaskStat

WHOLE = -1
"""The scope of the figures of the whole organisation."""
FIGURES_MARK = "figures"
"""The `insight_mark` row written once every group's figures have been built."""
STEP, TEMPLATE, WEEK = "step", "template", "week"
_BATCH = 400
_COLUMNS = (
    "kind",
    "scope",
    "key",
    "template_key",
    "node_id",
    "week",
    "step",
    "first",
    "cases",
    "has_due",
    "late",
    "returned",
    "rejected",
    "median_hours",
    "p90_hours",
)
_UPSERT = ' ON CONFLICT ("kind", "scope", "key") DO UPDATE SET ' + ", ".join(
    f'"{c}" = EXCLUDED."{c}"' for c in _COLUMNS[3:]
)


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
        if row["working_hours"] is not None:
            self.templates.add(row["template_key"])

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
    """`step_rows` (or stored step figures) as `insight.StepStats`, in the order the steps were
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


async def template_hours(where: Any, *, by_department: bool = False) -> dict[tuple[Any, ...], Figures]:
    """(median, p90, count) of finished requests' working hours per template[, department]."""
    keys = [RequestStat.template_key] + ([RequestStat.department_id] if by_department else [])
    return await hour_figures(RequestStat, keys, RequestStat.working_hours, where)


async def week_hours(where: Any, *, by_department: bool = False) -> dict[tuple[Any, ...], Figures]:
    """(median, p90, count) of decided tasks' working hours per week closed[, department]."""
    keys = [TaskStat.closed_week] + ([TaskStat.department_id] if by_department else [])
    return await hour_figures(TaskStat, keys, TaskStat.working_hours, where)


# -- keeping them -----------------------------------------------------------------------------


async def ready() -> bool:
    """True once every group's figures have been built."""
    return await InsightMark.exists().where(InsightMark.name == FIGURES_MARK)


async def refresh(touched: Touched) -> int:
    """Recompute and store the figures of the `touched` groups, at every scope; rows written."""
    if not touched.everything and not await ready():
        touched = Touched(everything=True)
    decided = TaskStat.working_hours.is_not_null()
    finished = RequestStat.working_hours.is_not_null()
    step_where: Any = decided
    week_where: Any = decided
    template_where: Any = finished
    if not touched.everything:
        step_where = decided & _pairs_in(touched.steps) if touched.steps else None
        week_where = decided & TaskStat.closed_week.is_in(sorted(touched.weeks)) if touched.weeks else None
        template_where = (
            finished & RequestStat.template_key.is_in(sorted(touched.templates))
            if touched.templates
            else None
        )
    rows: list[tuple[Any, ...]] = []
    if step_where is not None:
        for by_department in (False, True):
            for r in await step_rows(step_where, by_department=by_department):
                rows.append(_step_row(r, _scope_of(r, by_department)))
    if template_where is not None:
        for by_department in (False, True):
            for key, figures in (await template_hours(template_where, by_department=by_department)).items():
                rows.append(_figure_row(TEMPLATE, _key_scope(key, by_department), key[0], figures))
    if week_where is not None:
        for by_department in (False, True):
            for key, figures in (await week_hours(week_where, by_department=by_department)).items():
                rows.append(_figure_row(WEEK, _key_scope(key, by_department), key[0], figures))
    rows = [row for row in rows if row[1] is not None]
    async with write_transaction(InsightFigure._meta.db):
        for start in range(0, len(rows), _BATCH):
            await insert_rows(InsightFigure, _COLUMNS, rows[start : start + _BATCH], _UPSERT)
        if touched.everything:
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


def _scope_of(row: Mapping[str, Any], by_department: bool) -> int | None:
    return row["department_id"] if by_department else WHOLE


def _key_scope(key: tuple[Any, ...], by_department: bool) -> int | None:
    return key[1] if by_department else WHOLE


def _step_row(r: Mapping[str, Any], scope: int | None) -> tuple[Any, ...]:
    median, p90, _ = r["figures"]
    return (
        STEP,
        scope,
        f"{r['template_key']}\x1f{r['node_id']}",
        r["template_key"],
        r["node_id"],
        None,
        r["step"],
        r["first"],
        r["decided"],
        r["has_due"] or 0,
        r["late"] or 0,
        r["returned"] or 0,
        r["rejected"] or 0,
        median,
        p90,
    )


def _figure_row(kind: str, scope: int | None, group: Any, figures: Figures) -> tuple[Any, ...]:
    median, p90, count = figures
    template, week = (group, None) if kind == TEMPLATE else ("", _day(group))
    key = template if kind == TEMPLATE else week.isoformat()  # type: ignore[union-attr]
    return (kind, scope, key, template, "", week, "", None, count, 0, 0, 0, 0, median, p90)


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


async def stored_steps(scope: int) -> list[insight.StepStats]:
    rows = await InsightFigure.select().where((InsightFigure.kind == STEP) & (InsightFigure.scope == scope))
    return step_stats(
        {
            **r,
            "decided": r["cases"],
            "figures": (r["median_hours"], r["p90_hours"], r["cases"]),
        }
        for r in rows
    )


async def stored_hours(kind: str, scope: int, since: dt.date | None = None) -> dict[tuple[Any, ...], Figures]:
    """Stored template or week figures by group, as `hour_figures` gives them."""
    where = (InsightFigure.kind == kind) & (InsightFigure.scope == scope)
    if since is not None:
        where &= InsightFigure.week >= since
    rows = await InsightFigure.select(
        InsightFigure.template_key,
        InsightFigure.week,
        InsightFigure.cases,
        InsightFigure.median_hours,
        InsightFigure.p90_hours,
    ).where(where)
    return {
        (r["template_key"] if kind == TEMPLATE else _day(r["week"]),): (
            r["median_hours"],
            r["p90_hours"],
            r["cases"],
        )
        for r in rows
    }


def _day(value: Any) -> dt.date:
    """A date column's value (SQLite may hand back its ISO text)."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
