"""The guide's worked example, marketing activity approval, end to end on the pure engine.

The demo flow's finance co-review is the built-in finance-co-review step, so the engine is
given the built-in steps (`PLUGINS`), as the service gives them."""

from __future__ import annotations

import datetime as dt

import pytest

from runtime.flow import Environment, Status, encode, preview_route
from runtime.flow.effects import CreateTask, Notify, RecordEvent, SetStatus, UpdateFormData
from runtime.flow.errors import InvalidCommandError, NotPermittedError
from runtime.flow.events import (
    Approve,
    ChangeRequestCancel,
    ChangeRequestSubmit,
    Reject,
    Return,
    Submit,
    SummarySubmitted,
    TaskCompleted,
)
from runtime.flow.lifecycle import TRANSITIONS
from tests.plugins.marketing import FLOW, PLUGINS
from tests.runtime.driver import Driver
from tests.runtime.org import FINANCE, MKT_HEAD, MONDAY, STAFF, VP, env, marketing_form


def marketing(budget: int = 200_000) -> Environment:
    """The environment of a marketing request with `budget`, the built-in steps included."""
    return env(marketing_form(budget), plugins=PLUGINS)


def run_to_execution(budget: int, **submit) -> Driver:  # type: ignore[no-untyped-def]
    driver = Driver(FLOW, marketing(budget), MONDAY)
    driver.apply(Submit(actor=STAFF, **submit))
    assert driver.status is Status.IN_APPROVAL
    for person in (MKT_HEAD, VP, FINANCE):
        if driver.state.status is not Status.IN_APPROVAL:
            break
        driver.apply(Approve(actor=person, task_id=driver.task_of(person).id, comment="同意"))
    return driver


@pytest.mark.parametrize(
    ("budget", "approvers"),
    [(200_000, ["dept_head", "leader", "finance"]), (30_000, ["dept_head", "leader"])],
)
def test_whole_process_from_submit_to_archive(budget: int, approvers: list[str]) -> None:
    driver = run_to_execution(budget)
    assert list(driver.state.approvals) == approvers
    assert driver.status is Status.EXECUTING
    statuses = [s.status for s in driver.of_type(SetStatus, driver.effects)]
    assert statuses == [Status.IN_APPROVAL, Status.EXECUTING]
    # the applicant is told (CC) and gets the first stage
    assert "cc" in [n.template for n in driver.of_type(Notify, driver.effects)]
    for stage in ("venue", "materials", "execution"):
        assert [t.node for t in driver.tasks()] == [stage]
        driver.apply(
            TaskCompleted(
                actor=STAFF, task_id=driver.task_of(STAFF).id, result="完成", attachments=("photo-1",)
            )
        )
    assert driver.status is Status.AWAITING_SUMMARY
    summary = driver.task_of(STAFF, "summary")
    assert summary.due_at == driver.env.calendar.closing(dt.date(2025, 11, 10))  # 3 working days after Nov 5
    driver.apply(SummarySubmitted(actor=STAFF, note="实际花费 18.6 万", attachments=("report.pdf",)))
    assert driver.status is Status.ARCHIVED
    assert driver.state.tokens == () and driver.state.tasks == () and driver.state.runs == ()
    assert driver.replay() == driver.state


def test_why_each_approver_was_chosen() -> None:
    driver = run_to_execution(200_000)
    reasons = {
        c.node_id: c.reason for c in driver.of_type(CreateTask, driver.effects) if c.kind == "approval"
    }
    assert reasons == {
        "dept_head": {"rule": "department_head", "department": "市场部"},
        "leader": {"rule": "supervising_leader", "department": "市场部"},
        # finance is chosen by its role, because the budget is over the co-review threshold
        "finance": {
            "rule": "role",
            "role": "finance_specialist",
            "plugin": "finance-co-review",
            "because": "amount_over_threshold",
            "field": "budget",
            "amount": "200,000.00",
            "threshold": "50,000.00",
            "why_zh": "金额 200,000.00 超过财务联审金额 50,000.00",
            "why_en": "the amount 200,000.00 exceeds the finance co-review threshold 50,000.00",
        },
    }


def test_return_with_a_note_and_resubmit() -> None:
    driver = Driver(FLOW, marketing(200_000), MONDAY)
    driver.apply(Submit(actor=STAFF))
    driver.apply(Approve(actor=MKT_HEAD, task_id=driver.task_of(MKT_HEAD).id))
    driver.apply(Return(actor=VP, task_id=driver.task_of(VP).id, note="需补充竞品分析数据"))
    assert driver.status is Status.RETURNED
    driver.apply(Submit(actor=STAFF), after=dt.timedelta(days=1))
    assert driver.status is Status.IN_APPROVAL and driver.assignees() == [VP]
    driver.apply(Approve(actor=VP, task_id=driver.task_of(VP).id))
    assert driver.assignees() == [FINANCE]


def test_reject_ends_the_request() -> None:
    driver = Driver(FLOW, marketing(200_000), MONDAY)
    driver.apply(Submit(actor=STAFF))
    driver.apply(Reject(actor=MKT_HEAD, task_id=driver.task_of(MKT_HEAD).id, comment="不符合预算"))
    assert driver.status is Status.REJECTED
    assert [n.template for n in driver.of_type(Notify)] == ["rejected"]


def test_urgent_request_is_due_in_24_hours() -> None:
    driver = Driver(FLOW, marketing(200_000), MONDAY.replace(hour=17))
    driver.apply(Submit(actor=STAFF, urgent=True))
    task = driver.task_of(MKT_HEAD)
    assert task.due_at == driver.now + dt.timedelta(hours=24)


def test_change_request_during_execution_is_approved_then_applied() -> None:
    driver = run_to_execution(200_000)
    changes = {"start_date": "2025-11-10", "end_date": "2025-11-12"}
    with pytest.raises(NotPermittedError):
        driver.apply(ChangeRequestSubmit(actor=VP, changes=changes, reason="场地档期调整"))
    driver.apply(ChangeRequestSubmit(actor=STAFF, changes=changes, reason="场地档期调整"))
    review = driver.task_of(MKT_HEAD, "@change")
    assert review.reason == {"rule": "department_head", "department": "市场部", "for": "change_request"}
    assert driver.status is Status.EXECUTING
    with pytest.raises(InvalidCommandError):
        driver.apply(ChangeRequestSubmit(actor=STAFF, changes={"budget": 1}, reason="再改"))
    driver.apply(Approve(actor=MKT_HEAD, task_id=review.id))
    (update,) = driver.of_type(UpdateFormData)
    assert update.changes == changes
    assert update.diff["end_date"] == {"before": dt.date(2025, 11, 5), "after": "2025-11-12"}
    assert driver.state.change is None


def test_change_request_rejected_or_cancelled_changes_nothing() -> None:
    driver = run_to_execution(30_000)
    driver.apply(ChangeRequestSubmit(actor=STAFF, changes={"budget": 40_000}, reason="追加预算"))
    driver.apply(Reject(actor=MKT_HEAD, task_id=driver.task_of(MKT_HEAD, "@change").id, comment="不同意"))
    assert driver.of_type(UpdateFormData) == [] and driver.status is Status.EXECUTING
    assert [n.template for n in driver.of_type(Notify)] == ["change_rejected"]
    driver.apply(ChangeRequestSubmit(actor=STAFF, changes={"budget": 40_000}, reason="追加预算"))
    driver.apply(ChangeRequestCancel(actor=STAFF))
    assert driver.tasks("@change") == [] and driver.state.change is None


def test_preview_route_for_both_budgets() -> None:
    big = preview_route(FLOW, marketing(200_000), MONDAY)
    assert [(s.node_id, s.kind, s.assignees) for s in big] == [
        ("dept_head", "approval", (MKT_HEAD,)),
        ("leader", "approval", (VP,)),
        ("finance", "approval", (FINANCE,)),
        ("approved_notice", "cc", (STAFF,)),
        ("venue", "stage", (STAFF,)),
        ("materials", "stage", (STAFF,)),
        ("execution", "stage", (STAFF,)),
        ("summary", "summary", (STAFF,)),
    ]
    calendar = env().calendar
    assert big[0].due_at == calendar.add_working_hours(MONDAY, 16)
    assert big[1].due_at == calendar.add_working_hours(MONDAY, 32)
    assert big[2].due_at == calendar.add_working_hours(MONDAY, 48)  # Sep 28 (Sunday) is a working day
    assert big[0].reasons == ({"rule": "department_head", "department": "市场部"},)
    small = preview_route(FLOW, marketing(30_000), MONDAY)
    assert "finance" not in [s.node_id for s in small]
    assert not any(s.due_is_estimate for s in big)


def test_preview_shows_skips_and_problems() -> None:
    from runtime.flow.graph import EmptyPolicy
    from runtime.flow.rules import RoleRule
    from tests.runtime.graphs import approval, chain

    flow = chain(
        approval("self", STAFF, skip_if_initiator=True),
        approval("nobody", rule=RoleRule(role="ghost"), empty_policy=EmptyPolicy.ERROR),
        approval("twice", MKT_HEAD, MKT_HEAD, mode="sequential"),
        key="preview",
    )
    steps = preview_route(flow, env(), MONDAY)
    assert [(s.node_id, s.skipped, s.problem) for s in steps] == [
        ("self", "approver_is_initiator", None),
        ("nobody", None, "no_assignee"),
        ("twice", None, None),
    ]
    assert steps[2].assignees == (MKT_HEAD,)


def test_preview_in_2027_marks_estimates() -> None:
    late = dt.datetime(2026, 12, 30, 10, tzinfo=MONDAY.tzinfo)
    steps = preview_route(FLOW, marketing(200_000), late)
    assert steps[0].due_at.year == 2027 and steps[0].due_is_estimate  # type: ignore[union-attr]


def test_state_size_does_not_grow_with_returns() -> None:
    driver = Driver(FLOW, marketing(200_000), MONDAY)
    driver.apply(Submit(actor=STAFF))
    sizes = []
    for cycle in range(1, 51):
        driver.apply(Return(actor=MKT_HEAD, task_id=driver.task_of(MKT_HEAD).id, note=f"第{cycle}次补充"))
        driver.apply(Submit(actor=STAFF))
        if cycle in (1, 50):
            sizes.append(len(encode(driver.state)))
    assert sizes[1] - sizes[0] <= 12  # only counters and ids gain digits
    driver.apply(Approve(actor=MKT_HEAD, task_id=driver.task_of(MKT_HEAD).id))
    sizes = []
    for cycle in range(1, 51):
        driver.apply(Return(actor=VP, task_id=driver.task_of(VP).id, note="重审", to_node="dept_head"))
        driver.apply(Approve(actor=MKT_HEAD, task_id=driver.task_of(MKT_HEAD).id))
        if cycle in (1, 50):
            sizes.append(len(encode(driver.state)))
    assert sizes[1] - sizes[0] <= 12
    assert driver.replay() == driver.state


def test_every_status_change_of_the_example_is_declared() -> None:
    driver = run_to_execution(200_000)
    for change in driver.of_type(SetStatus, driver.effects):
        assert change.status in TRANSITIONS[change.previous]


def test_records_for_the_timeline() -> None:
    driver = run_to_execution(30_000)
    kinds = [(r.kind, r.node_id) for r in driver.of_type(RecordEvent, driver.effects)]
    assert kinds == [
        ("node_completed", "dept_head"),
        ("node_completed", "leader"),
        ("plugin_continued", "finance"),
        ("cc_sent", "approved_notice"),
    ]
    (finance,) = [r for r in driver.of_type(RecordEvent, driver.effects) if r.node_id == "finance"]
    assert finance.data["note"] == "金额 30,000.00 未超过财务联审金额 50,000.00，无需财务联审"
