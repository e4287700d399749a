"""Durations, rates and rankings computed from task and request rows, in working hours.

Every function takes rows and a `BusinessCalendar` (and `now` where open work counts) and
returns Structs; nothing reads the clock or a database. A task's duration runs from its
creation to its closing, counted in working hours, and exists only for decided tasks
(approved, rejected, returned, completed): a task closed because another approver decided,
or because the request was withdrawn, measures nobody's work.

The bottleneck ranking orders steps by their median duration, then by the 90th percentile,
then by how many tasks were decided there (more evidence first).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from runtime.calendar import BusinessCalendar
from runtime.insight.records import (
    CostDeviation,
    Estimate,
    RepeatedRejection,
    RequestRecord,
    StepStats,
    TaskRecord,
    TemplateStats,
    WeekStats,
)
from runtime.insight.stats import PLACES, median, percentile, rate

FINISHED = frozenset({"archived", "rejected"})
"""Statuses that end a request by the flow itself; withdrawn and cancelled ones did not finish."""

StepKey = tuple[str, str]
"""(template key, node id)"""


def task_hours(task: TaskRecord, calendar: BusinessCalendar) -> float | None:
    """Working hours from the task's creation to its decision; None unless it was decided."""
    if not task.decided or task.closed_at is None:
        return None
    return calendar.working_hours_between(task.created_at, task.closed_at)


def waited_hours(since: dt.datetime, now: dt.datetime, calendar: BusinessCalendar) -> float:
    """Working hours an open task has waited so far (never negative)."""
    return round(max(0.0, calendar.working_hours_between(since, now)), PLACES)


def is_overdue(task: TaskRecord, now: dt.datetime) -> bool:
    """Decided after its deadline, or still open past it."""
    if task.due_at is None:
        return False
    end = task.closed_at if task.closed_at is not None else now
    return end > task.due_at


def _late(task: TaskRecord) -> bool:
    return task.closed_at is not None and task.due_at is not None and task.closed_at > task.due_at


def step_stats(tasks: Iterable[TaskRecord], calendar: BusinessCalendar) -> list[StepStats]:
    """One entry per step with decided tasks, in the order the steps were first reached."""
    groups: dict[StepKey, list[TaskRecord]] = defaultdict(list)
    for task in sorted(tasks, key=lambda t: (t.created_at, t.instance_id)):
        if task.decided:
            groups[(task.template, task.node_id)].append(task)
    result = []
    for (template, node_id), decided in groups.items():
        hours = [h for h in (task_hours(t, calendar) for t in decided) if h is not None]
        with_due = [t for t in decided if t.due_at is not None]
        result.append(
            StepStats(
                template=template,
                node_id=node_id,
                step=decided[-1].step,
                decided=len(decided),
                median_hours=median(hours),
                p90_hours=percentile(hours, 90),
                return_rate=rate(sum(t.outcome == "returned" for t in decided), len(decided)),
                rejection_rate=rate(sum(t.outcome == "rejected" for t in decided), len(decided)),
                overdue_rate=rate(sum(_late(t) for t in with_due), len(with_due)),
            )
        )
    return result


def bottlenecks(stats: Iterable[StepStats], limit: int = 10) -> list[StepStats]:
    """The slowest steps first: by median, then 90th percentile, then evidence."""
    timed = [s for s in stats if s.median_hours is not None]
    timed.sort(
        key=lambda s: (-(s.median_hours or 0.0), -(s.p90_hours or 0.0), -s.decided, s.template, s.node_id)
    )
    return timed[:limit]


def template_stats(
    requests: Iterable[RequestRecord],
    tasks: Iterable[TaskRecord],
    calendar: BusinessCalendar,
    now: dt.datetime,
) -> list[TemplateStats]:
    """One entry per template, in template-key order."""
    overdue_requests = {t.instance_id for t in tasks if is_overdue(t, now)}
    groups: dict[str, list[RequestRecord]] = defaultdict(list)
    for request in requests:
        groups[request.template].append(request)
    result = []
    for template in sorted(groups):
        rows = groups[template]
        finished = [r for r in rows if r.status in FINISHED and r.closed_at is not None]
        hours = [calendar.working_hours_between(r.submitted_at, r.closed_at) for r in finished if r.closed_at]
        result.append(
            TemplateStats(
                template=template,
                requests=len(rows),
                finished=len(finished),
                median_hours=median(hours),
                p90_hours=percentile(hours, 90),
                return_rate=rate(sum(r.returns > 0 for r in rows), len(rows)),
                rejection_rate=rate(sum(r.status == "rejected" for r in finished), len(finished)),
                overdue_rate=rate(sum(r.instance_id in overdue_requests for r in rows), len(rows)),
                resubmissions=sum(r.resubmissions for r in rows),
            )
        )
    return result


def weekly_trends(
    requests: Iterable[RequestRecord], tasks: Iterable[TaskRecord], calendar: BusinessCalendar
) -> list[WeekStats]:
    """Submitted and finished requests and the median decided-task duration per week, oldest first."""
    submitted: dict[dt.date, int] = defaultdict(int)
    finished: dict[dt.date, int] = defaultdict(int)
    hours: dict[dt.date, list[float]] = defaultdict(list)
    for request in requests:
        submitted[week_of(request.submitted_at, calendar)] += 1
        if request.status in FINISHED and request.closed_at is not None:
            finished[week_of(request.closed_at, calendar)] += 1
    for task in tasks:
        took = task_hours(task, calendar)
        if took is not None and task.closed_at is not None:
            hours[week_of(task.closed_at, calendar)].append(took)
    weeks = sorted(set(submitted) | set(finished) | set(hours))
    return [
        WeekStats(
            week=w,
            submitted=submitted.get(w, 0),
            finished=finished.get(w, 0),
            median_task_hours=median(hours.get(w, [])),
        )
        for w in weeks
    ]


def repeated_rejections(requests: Iterable[RequestRecord], threshold: int = 2) -> list[RepeatedRejection]:
    """Requests sent back (returned or rejected) at least `threshold` times; most sent back first."""
    found = [r for r in requests if r.returns + r.rejections >= threshold]
    found.sort(key=lambda r: (-(r.returns + r.rejections), r.number))
    return [
        RepeatedRejection(
            instance_id=r.instance_id,
            number=r.number,
            title=r.title,
            template=r.template,
            department_id=r.department_id,
            returns=r.returns,
            rejections=r.rejections,
            status=r.status,
        )
        for r in found
    ]


def cost_deviations(requests: Iterable[RequestRecord]) -> list[CostDeviation]:
    """Requests with a budget and a reported actual spend; the largest overspend first."""
    result = []
    for r in requests:
        if r.budget is None or r.actual_spend is None:
            continue
        deviation = r.actual_spend - r.budget
        result.append(
            CostDeviation(
                instance_id=r.instance_id,
                number=r.number,
                title=r.title,
                template=r.template,
                department_id=r.department_id,
                budget=r.budget,
                actual=r.actual_spend,
                deviation=deviation,
                ratio=round(float(deviation / r.budget), 4) if r.budget != Decimal(0) else None,
            )
        )
    result.sort(key=lambda c: (-c.deviation, c.number))
    return result


def completion_estimates(
    tasks: Iterable[TaskRecord], requests: Iterable[RequestRecord], calendar: BusinessCalendar
) -> dict[StepKey, Estimate]:
    """Per step: the median working hours from a task's creation there to its request's closing.

    Only finished requests (archived or rejected) count; a step reached twice by one request
    (after a return) counts from its last visit.
    """
    closed = {r.instance_id: r.closed_at for r in requests if r.status in FINISHED and r.closed_at}
    entered: dict[tuple[int, str, str], dt.datetime] = {}
    for task in tasks:
        if task.instance_id in closed:
            key = (task.instance_id, task.template, task.node_id)
            if key not in entered or task.created_at > entered[key]:
                entered[key] = task.created_at
    samples: dict[StepKey, list[float]] = defaultdict(list)
    for (instance_id, template, node_id), at in entered.items():
        end = closed[instance_id]
        assert end is not None
        samples[(template, node_id)].append(max(0.0, calendar.working_hours_between(at, end)))
    return {
        key: Estimate(
            template=key[0], node_id=key[1], median_hours=median(values) or 0.0, samples=len(values)
        )
        for key, values in samples.items()
    }


def expected_completion(
    entered_at: dt.datetime, now: dt.datetime, estimate: Estimate | None, calendar: BusinessCalendar
) -> dt.datetime | None:
    """When a request that entered a step at `entered_at` is expected to close.

    The step's median time to closing, counted from the entry; a request already past it is
    expected at the next working moment from `now` (it is late, not finished). None without
    history for the step.
    """
    if estimate is None:
        return None
    remaining = estimate.median_hours - max(0.0, calendar.working_hours_between(entered_at, now))
    return calendar.add_working_hours(now, remaining) if remaining > 0 else now


def step_titles(tasks: Sequence[TaskRecord]) -> Mapping[StepKey, str]:
    """The latest title seen for each step."""
    titles: dict[StepKey, str] = {}
    for task in sorted(tasks, key=lambda t: t.created_at):
        titles[(task.template, task.node_id)] = task.step
    return titles


def week_of(instant: dt.datetime, calendar: BusinessCalendar) -> dt.date:
    """The Monday (a local calendar day) of the week `instant` falls in."""
    day = calendar.local_date(instant)
    return day - dt.timedelta(days=day.weekday())
