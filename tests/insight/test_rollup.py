"""The insight rollup on a real database: the figures it gives equal the pure functions', once.

The history of `tests.insight.history` (known working hours around China's 2025 National Day) is
written as request, task and event rows; analytics over the rollup must give exactly what
`runtime.insight` computes from the same records, on SQLite (durations read back and computed
in Python) and on PostgreSQL (ordered-set aggregates in SQL).
"""

from __future__ import annotations

import datetime as dt
import json

import msgspec
import pytest

from runtime.insight import (
    bottlenecks,
    completion_estimates,
    median,
    percentile,
    repeated_rejections,
    step_stats,
    template_stats,
    weekly_trends,
)
from runtime.service import insight
from runtime.service import insight_figures as figures
from runtime.service.insight_rollup import estimates, refresh_estimates, roll_up
from runtime.service.insight_sql import hour_figures
from storage.access import Principal, Role
from storage.tables import (
    Instance,
    InstanceEvent,
    Person,
    RequestStat,
    Task,
    TaskStat,
    TemplateVersion,
)
from tests.insight.history import CALENDAR, MARKETING, REQUESTS, TASKS, at

NOW = at(10, 21, 10)
ADMIN = Principal(id=-1, employee_no="x", name="x", department_id=None, roles=frozenset({Role.PROCESS_ADMIN}))


async def _write_history(only: set[int] | None = None) -> None:
    """The history's rows: all of them, or `only` those requests and their tasks."""
    version = await TemplateVersion.select(TemplateVersion.id).first()
    person = await Person.select(Person.id).first()
    assert version is not None and person is not None
    for r in REQUESTS:
        if only is not None and r.instance_id not in only:
            continue
        await Instance.insert(
            Instance(
                id=r.instance_id,
                number=r.number,
                template_key=r.template,
                template_version=version["id"],
                version=1,
                initiator=person["id"],
                department_id=r.department_id,
                title=r.title,
                status=r.status,
                data="{}",
                state="{}",
                created_at=r.submitted_at,
                submitted_at=r.submitted_at,
                updated_at=r.closed_at or r.submitted_at,
                closed_at=r.closed_at,
            )
        )
        seq = 0
        for kind, n in (("return", r.returns), ("reject", r.rejections), ("resubmit", r.resubmissions)):
            for _ in range(n):
                seq += 1
                await InstanceEvent.insert(
                    InstanceEvent(instance=r.instance_id, seq=seq, at=r.submitted_at, kind=kind, data="{}")
                )
    for i, t in enumerate(TASKS):
        if only is not None and t.instance_id not in only:
            continue
        await Task.insert(
            Task(
                task_key=f"{t.instance_id}:{t.node_id}:{i}",
                instance=t.instance_id,
                node_id=t.node_id,
                kind="approval",
                title=t.step,
                assignee=person["id"],
                status="closed" if t.closed_at else "open",
                outcome=t.outcome,
                reason=json.dumps({}),
                created_at=t.created_at,
                due_at=t.due_at,
                closed_at=t.closed_at,
            )
        )


@pytest.fixture()
async def history(db: None) -> None:
    await _write_history()


async def test_a_second_run_writes_nothing_twice(history: None) -> None:
    first = await roll_up(CALENDAR)
    closed_tasks = sum(t.closed_at is not None for t in TASKS)
    closed_requests = sum(r.closed_at is not None for r in REQUESTS)
    assert (first.requests, first.tasks, first.more) == (closed_requests, 0, False)
    assert await TaskStat.count() == closed_tasks  # a finished request writes its tasks too
    again = await roll_up(CALENDAR)
    assert (again.requests, again.tasks) == (0, 0)
    assert await TaskStat.count() == closed_tasks and await RequestStat.count() == closed_requests


async def test_a_bounded_run_leaves_the_rest_for_the_next(history: None) -> None:
    first = await roll_up(CALENDAR, limit=2)
    assert first.requests == 2 and first.more
    await roll_up(CALENDAR)
    assert await RequestStat.count() == sum(r.closed_at is not None for r in REQUESTS)


async def test_analytics_over_the_rollup_equals_the_pure_figures(history: None) -> None:
    found = await insight.analytics(ADMIN, NOW, CALENDAR, insight.Filters())
    steps = step_stats(TASKS, CALENDAR)
    assert [v.stats for v in found.steps] == steps
    assert [v.stats for v in found.bottlenecks] == bottlenecks(steps)
    assert found.templates == template_stats(REQUESTS, TASKS, CALENDAR, NOW)
    assert found.weeks == weekly_trends(REQUESTS, TASKS, CALENDAR)
    assert [r.instance_id for r in found.repeated] == [r.instance_id for r in repeated_rejections(REQUESTS)]

    marketing = await insight.analytics(ADMIN, NOW, CALENDAR, insight.Filters(department_id=MARKETING))
    mine = [t for t in TASKS if t.department_id == MARKETING]
    assert [v.stats for v in marketing.steps] == step_stats(mine, CALENDAR)


MARKETING_HEAD = Principal(
    id=-2,
    employee_no="h",
    name="h",
    department_id=MARKETING,
    roles=frozenset({Role.DEPARTMENT_HEAD}),
    reach=frozenset({MARKETING}),
)


async def test_a_heads_figures_are_kept_for_their_department_and_equal_the_pure_ones(history: None) -> None:
    await roll_up(CALENDAR)
    assert await figures.scope_for(MARKETING_HEAD, True) == MARKETING  # read from the kept figures
    found = await insight.analytics(MARKETING_HEAD, NOW, CALENDAR, insight.Filters())
    tasks = [t for t in TASKS if t.department_id == MARKETING]
    requests = [r for r in REQUESTS if r.department_id == MARKETING]
    assert [v.stats for v in found.steps] == step_stats(tasks, CALENDAR)
    assert found.templates == template_stats(requests, tasks, CALENDAR, NOW)
    assert found.weeks == weekly_trends(requests, tasks, CALENDAR)
    # the same view, filtered, is aggregated when asked: the same figures
    assert await figures.scope_for(MARKETING_HEAD, False) is None
    filtered = await insight.analytics(
        MARKETING_HEAD, NOW, CALENDAR, insight.Filters(department_id=MARKETING)
    )
    assert filtered.steps == found.steps and filtered.templates == found.templates


async def test_a_head_whose_own_requests_were_filed_elsewhere_sees_them_too(history: None) -> None:
    initiator = await Person.select(Person.id).first()  # the history's initiator, in both departments
    assert initiator is not None
    head = msgspec.structs.replace(MARKETING_HEAD, id=initiator["id"])
    await roll_up(CALENDAR)
    assert await figures.scope_for(head, True) is None  # not one department's figures
    found = await insight.analytics(head, NOW, CALENDAR, insight.Filters())
    assert [v.stats for v in found.steps] == step_stats(TASKS, CALENDAR)


async def test_kept_figures_follow_what_closes_later(db: None) -> None:
    await _write_history(only={1, 2, 3, 5, 6})
    before = await insight.analytics(ADMIN, NOW, CALENDAR, insight.Filters())
    assert sum(v.stats.decided for v in before.steps) == len(
        [t for t in TASKS if t.instance_id != 4 and t.closed_at and t.outcome != "decided_by_other"]
    )
    await _write_history(only={4})  # request 4, the last to close, closes after the first view
    after = await insight.analytics(ADMIN, NOW, CALENDAR, insight.Filters())
    assert await figures.scope_for(ADMIN, True) == figures.WHOLE
    assert [v.stats for v in after.steps] == step_stats(TASKS, CALENDAR)
    assert after.templates == template_stats(REQUESTS, TASKS, CALENDAR, NOW)
    assert after.weeks == weekly_trends(REQUESTS, TASKS, CALENDAR)


async def test_completion_estimates_come_from_the_rollup(history: None) -> None:
    await roll_up(CALENDAR)
    assert await refresh_estimates(NOW, CALENDAR)
    assert not await refresh_estimates(NOW + dt.timedelta(minutes=1), CALENDAR)  # fresh enough
    assert await estimates() == completion_estimates(TASKS, REQUESTS, CALENDAR)


@pytest.mark.parametrize(
    "values",
    [
        [4.0],
        [1.0, 2.0],
        [3.0, 1.0, 2.0],
        [0.5, 1.25, 2.0, 3.0],
        [i / 7 for i in range(1, 21)],
        [2.0] * 9 + [11.5],
    ],
)
async def test_database_percentiles_are_the_nearest_rank_ones(db: None, values: list[float]) -> None:
    for i, hours in enumerate(values):
        await TaskStat.insert(
            TaskStat(
                task_id=i + 1,
                instance_id=1,
                template_key="t",
                node_id="n",
                initiator_id=1,
                submitted_at=NOW,
                created_at=NOW,
                closed_at=NOW,
                working_hours=hours,
                closed_week=dt.date(2025, 10, 20),
            )
        )
    found = await hour_figures(TaskStat, [TaskStat.template_key], TaskStat.working_hours, None)
    assert found == {("t",): (median(values), percentile(values, 90), len(values))}


async def test_a_sensitive_budget_stays_out_of_the_cost_report_of_those_who_may_not_read_it(db: None) -> None:
    from builder.demo_templates import DEMO_DIR
    from storage.templates import publish_version

    form = json.loads((DEMO_DIR / "marketing-activity.form.json").read_text())

    def sensitive(node: object) -> None:
        if isinstance(node, dict):
            if node.get("key") == "budget":
                node["sensitive"], node["sensitive_roles"] = True, ["finance_specialist"]
            for value in node.values():
                sensitive(value)
        elif isinstance(node, list):
            for value in node:
                sensitive(value)

    sensitive(form)
    await publish_version(
        key="secret-budget",
        category="marketing",
        name_zh="保密预算",
        name_en="Secret budget",
        form=form,
        flow=None,
        change_note="test",
        effective_from=at(9, 1, 9),
        now=at(9, 1, 9),
        published_by=None,
    )
    initiator = await Person.select(Person.id).where(Person.employee_no == "e1001").first()
    version = (
        await TemplateVersion.select(TemplateVersion.id)
        .where(TemplateVersion.template.key == "secret-budget")
        .first()
    )
    assert initiator is not None and version is not None
    await Instance.insert(
        Instance(
            id=1,
            number="FL202510099",
            template_key="secret-budget",
            template_version=version["id"],
            version=1,
            initiator=initiator["id"],
            department_id=MARKETING,
            status="archived",
            data=json.dumps({"budget": 10000}),
            state="{}",
            created_at=at(10, 9, 9),
            submitted_at=at(10, 9, 9),
            updated_at=at(10, 10, 9),
            closed_at=at(10, 10, 9),
        )
    )
    await InstanceEvent.insert(
        InstanceEvent(
            instance=1, seq=1, at=at(10, 10, 9), kind="summary", data=json.dumps({"actual_spend": "12000"})
        )
    )

    def viewer(person: int, *roles: Role) -> Principal:
        return Principal(id=person, employee_no="x", name="x", department_id=None, roles=frozenset(roles))

    async def report(principal: Principal) -> list[str]:
        found = await insight.analytics(principal, NOW, CALENDAR, insight.Filters())
        return [str(c.deviation) for c in found.costs]

    assert await report(viewer(-1, Role.PROCESS_ADMIN)) == []  # an admin without the field's role
    assert await report(viewer(-1, Role.PROCESS_ADMIN, Role.FINANCE_SPECIALIST)) == ["2000"]
    assert await report(viewer(initiator["id"], Role.PROCESS_ADMIN)) == ["2000"]  # the initiator
