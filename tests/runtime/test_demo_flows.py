"""Every demo flow previews, and runs from submit to archive when everyone says yes (the
built-in steps registered, as the service registers them)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from runtime.flow import Status, preview_route
from runtime.flow.effects import TaskKind
from runtime.flow.events import Approve, Submit, SummarySubmitted, TaskCompleted, TimerFired, TimerKind
from tests.plugins.marketing import PLUGINS
from tests.runtime.driver import Driver
from tests.runtime.org import DEMO_DIR, FIN, MKT_HEAD, MONDAY, PRD, PRD_HEAD, STAFF, demo_flow, env

FORMS: dict[str, dict[str, Any]] = {
    "marketing-activity": {"budget": Decimal(80_000), "start_date": "2025-10-20", "end_date": "2025-10-22"},
    "expense-reimbursement": {"total_amount": Decimal("6800.50")},
    "fixed-asset-request": {"procurement": "purchase"},
    "supplier-onboarding": {"risk_level": "high"},
    "new-employee-onboarding": {"manager": MKT_HEAD, "start_date": "2025-10-09", "department": FIN},
    "cross-department-project": {"lead_department": PRD, "owner": PRD_HEAD},
    "optimization-suggestion": {},
}
KEYS = sorted(path.name.removesuffix(".flow.json") for path in DEMO_DIR.glob("*.flow.json"))


def test_every_demo_flow_has_a_form_here() -> None:
    assert sorted(FORMS) == KEYS


@pytest.mark.parametrize("key", KEYS)
def test_demo_flow_previews_and_runs_to_the_end(key: str) -> None:
    flow = demo_flow(key)
    steps = preview_route(flow, env(FORMS[key], plugins=PLUGINS), MONDAY)
    assert steps and all(s.problem is None for s in steps)
    driver = Driver(flow, env(FORMS[key], plugins=PLUGINS), MONDAY)
    driver.apply(Submit(actor=STAFF))
    for _ in range(60):
        if driver.status is Status.ARCHIVED:
            break
        if driver.state.tasks:
            task = driver.state.tasks[0]
            if task.kind is TaskKind.STAGE:
                driver.apply(TaskCompleted(actor=task.assignee, task_id=task.id))
            elif task.kind is TaskKind.SUMMARY:
                driver.apply(SummarySubmitted(actor=task.assignee))
            else:
                driver.apply(Approve(actor=task.assignee, task_id=task.id))
        else:
            (waiting,) = [t for t in driver.state.tokens if t.wait]
            driver.apply(TimerFired(timer_id=waiting.wait, kind=TimerKind.WAIT), after=dt.timedelta(days=120))
    assert driver.status is Status.ARCHIVED
    assert driver.replay() == driver.state
