"""Approval modes (或签 / 会签 / 依次), skip rules and empty policies."""

from __future__ import annotations

import pytest

from runtime.flow import Status
from runtime.flow.effects import CloseTask, CreateTask, RecordEvent, TaskOutcome
from runtime.flow.errors import NoAssigneeError
from runtime.flow.events import Approve, Reject, Submit
from runtime.flow.graph import ApprovalMode, EmptyPolicy
from runtime.flow.rules import DepartmentHeadRule, PeopleRule, RoleRule
from tests.runtime.driver import Driver
from tests.runtime.graphs import approval, chain
from tests.runtime.org import ADMIN, FIN_HEAD, FINANCE, HR_HEAD, MKT_HEAD, MONDAY, PUR_HEAD, STAFF, VP, env

THREE = (FIN_HEAD, HR_HEAD, PUR_HEAD)


def started(*nodes, **options) -> Driver:  # type: ignore[no-untyped-def]
    driver = Driver(chain(*nodes), env(**options), MONDAY)
    driver.apply(Submit(actor=driver.env.initiator))
    return driver


def approve(driver: Driver, person: int, node: str | None = None) -> None:
    driver.apply(Approve(actor=person, task_id=driver.task_of(person, node).id))


def test_any_first_approval_decides_and_closes_the_others() -> None:
    driver = started(approval("a", *THREE, mode=ApprovalMode.ANY), approval("b", VP))
    assert driver.assignees("a") == sorted(THREE)
    approve(driver, HR_HEAD)
    closes = {c.task_id: c.outcome for c in driver.of_type(CloseTask)}
    assert sorted(closes.values()) == [
        TaskOutcome.APPROVED,
        TaskOutcome.DECIDED_BY_OTHER,
        TaskOutcome.DECIDED_BY_OTHER,
    ]
    assert driver.assignees() == [VP]
    assert driver.state.approvals == {"a": (HR_HEAD,)}


def test_all_needs_everyone() -> None:
    driver = started(approval("a", *THREE, mode=ApprovalMode.ALL), approval("b", VP))
    approve(driver, FIN_HEAD)
    approve(driver, PUR_HEAD)
    assert driver.assignees() == [HR_HEAD]
    approve(driver, HR_HEAD)
    assert driver.assignees() == [VP]
    assert driver.state.approvals == {"a": (FIN_HEAD, PUR_HEAD, HR_HEAD)}


@pytest.mark.parametrize("mode", list(ApprovalMode))
def test_one_reject_rejects_the_request(mode: ApprovalMode) -> None:
    driver = started(approval("a", *THREE, mode=mode), approval("b", VP))
    first = driver.tasks()[0].assignee
    driver.apply(Reject(actor=first, task_id=driver.task_of(first).id, comment="预算不合理"))
    assert driver.status is Status.REJECTED
    assert driver.state.tasks == () and driver.state.tokens == () and driver.state.runs == ()
    outcomes = [c.outcome for c in driver.of_type(CloseTask)]
    assert outcomes[0] is TaskOutcome.REJECTED and set(outcomes[1:]) <= {TaskOutcome.CANCELLED}


def test_sequential_asks_one_at_a_time_in_order() -> None:
    driver = started(approval("a", *THREE, mode=ApprovalMode.SEQUENTIAL))
    for person in THREE:
        assert driver.assignees() == [person]
        approve(driver, person)
    assert driver.status is Status.ARCHIVED
    assert driver.state.approvals == {"a": THREE}


def test_skip_if_initiator() -> None:
    driver = started(
        approval("a", STAFF, skip_if_initiator=True),
        approval("b", STAFF, VP, skip_if_initiator=True, mode="all"),
    )
    skipped = [r for r in driver.of_type(RecordEvent) if r.kind == "node_skipped"]
    assert [(r.node_id, r.data["because"]) for r in skipped] == [("a", "approver_is_initiator")]
    assert driver.assignees() == [VP]  # the initiator is dropped, the others stay


def test_skip_if_approved_previous() -> None:
    driver = started(
        approval("a", MKT_HEAD),
        approval("b", MKT_HEAD, skip_if_approved_previous=True),
        approval("c", MKT_HEAD, VP, mode="all", skip_if_approved_previous=True),
    )
    approve(driver, MKT_HEAD)
    skipped = [r.node_id for r in driver.of_type(RecordEvent) if r.kind == "node_skipped"]
    assert skipped == ["b"]
    assert driver.assignees() == [VP]  # a skipped node counts as approved by the same person
    assert driver.state.approvals == {"a": (MKT_HEAD,), "b": (MKT_HEAD,)}


def test_empty_auto_approve() -> None:
    driver = started(
        approval("a", rule=RoleRule(role="nobody"), empty_policy=EmptyPolicy.AUTO_APPROVE), approval("b", VP)
    )
    (auto,) = [r for r in driver.of_type(RecordEvent) if r.kind == "auto_approved"]
    assert auto.node_id == "a" and auto.data["reason"] == {"rule": "role", "role": "nobody"}
    assert driver.assignees() == [VP]


def test_empty_to_process_admin_says_why() -> None:
    driver = started(approval("a", rule=RoleRule(role="nobody"), empty_policy=EmptyPolicy.TO_PROCESS_ADMIN))
    (created,) = driver.of_type(CreateTask)
    assert created.assignee == ADMIN
    assert created.reason == {"rule": "process_admin", "because": "no_assignee", "tried": "role"}


def test_empty_error_stops_the_submission() -> None:
    driver = Driver(
        chain(approval("a", rule=RoleRule(role="nobody"), empty_policy=EmptyPolicy.ERROR)), env(), MONDAY
    )
    with pytest.raises(NoAssigneeError) as caught:
        driver.apply(Submit(actor=STAFF))
    assert caught.value.node_id == "a" and not caught.value.retryable
    assert driver.status is Status.DRAFT


def test_no_admin_to_fall_back_to_is_an_error() -> None:
    from runtime.flow.org import OrgDirectory
    from tests.runtime.org import ORG

    lonely = OrgDirectory(departments=ORG.departments, people=ORG.people, role_members=ORG.role_members)
    driver = Driver(chain(approval("a", rule=RoleRule(role="nobody"))), env(org=lonely), MONDAY)
    with pytest.raises(NoAssigneeError):
        driver.apply(Submit(actor=STAFF))


def test_department_head_of_a_department_without_head() -> None:
    driver = started(approval("a", rule=DepartmentHeadRule(), empty_policy="auto_approve"), initiator=VP)
    assert driver.status is Status.ARCHIVED  # VP sits in HQ, which has no head


def test_sla_due_dates_on_tasks() -> None:
    driver = started(approval("a", rule=PeopleRule(ids=(FINANCE,))))
    (created,) = driver.of_type(CreateTask)
    task = driver.task_of(FINANCE)
    assert created.due_at == task.due_at == driver.env.calendar.add_working_hours(driver.now, 16)
    assert not created.due_is_estimate
