"""What people do with a request: return, resubmit, transfer, add signers, withdraw, urge, mark
urgent, comment; and the errors the service maps to 403/409/422."""

from __future__ import annotations

import datetime as dt

import pytest

from runtime.flow import Status
from runtime.flow.effects import (
    CancelTimer,
    CloseTask,
    CreateTask,
    Notify,
    ScheduleTimer,
    SetTaskDue,
    TaskOutcome,
)
from runtime.flow.errors import (
    ActionNotAllowedError,
    InvalidCommandError,
    NotAssigneeError,
    NotPermittedError,
    TaskNotOpenError,
    TransitionError,
    UrgeTooSoonError,
)
from runtime.flow.events import (
    AddSigner,
    Approve,
    Archive,
    Cancel,
    Comment,
    MarkUrgent,
    Reject,
    Return,
    SignerPosition,
    Submit,
    TaskCompleted,
    Transfer,
    Urge,
    Withdraw,
)
from runtime.flow.graph import (
    Action,
    ApprovalMode,
    EndNode,
    JoinNode,
    ParallelNode,
    ResubmitFrom,
    Sla,
    StartNode,
)
from runtime.flow.state import TaskOrigin
from tests.runtime.driver import Driver
from tests.runtime.graphs import approval, chain, graph
from tests.runtime.org import ADMIN, FIN_HEAD, FINANCE, HR_HEAD, MKT_HEAD, MONDAY, PUR_HEAD, STAFF, VP, env


def started(*nodes, **options) -> Driver:  # type: ignore[no-untyped-def]
    driver = Driver(chain(*nodes, **options), env(), MONDAY)
    driver.apply(Submit(actor=STAFF))
    return driver


def act(driver: Driver, person: int, event_type, node: str | None = None, after=None, **fields):  # type: ignore[no-untyped-def]
    event = event_type(actor=person, task_id=driver.task_of(person, node).id, **fields)
    return driver.apply(event, after=after) if after else driver.apply(event)


# -- return and resubmit ----------------------------------------------------------------------


def test_return_to_applicant_pauses_and_resubmit_resumes_at_the_returning_step() -> None:
    driver = started(approval("a", MKT_HEAD), approval("b", VP))
    act(driver, MKT_HEAD, Approve)
    act(driver, VP, Return, note="需补充竞品分析数据")
    assert driver.status is Status.RETURNED
    assert driver.state.tasks == () and driver.state.runs == ()
    assert [t.node for t in driver.state.tokens] == ["b"]  # kept for the resubmission
    assert len(driver.of_type(CancelTimer)) == 2  # the SLA clock stops
    (notice,) = driver.of_type(Notify)
    assert notice.recipients == (STAFF,) and notice.template == "returned"
    assert notice.payload["note"] == "需补充竞品分析数据"
    assert driver.state.tokens[0].sla_left == pytest.approx(16 - 5 / 60)  # open for 5 minutes
    driver.apply(Submit(actor=STAFF), after=dt.timedelta(days=3))
    assert driver.status is Status.IN_APPROVAL
    assert driver.assignees() == [VP]  # the same step; its clock resumes where it stopped
    (created,) = driver.of_type(CreateTask)
    resumed = driver.env.calendar.add_working_hours(driver.now, 16 - 5 / 60)
    assert abs((created.due_at - resumed).total_seconds()) < 1  # type: ignore[operator]
    assert driver.state.tokens[0].sla_left is None
    assert driver.state.approvals == {"a": (MKT_HEAD,)}


def test_an_overdue_step_returned_and_resubmitted_is_due_at_once() -> None:
    driver = started(approval("a", MKT_HEAD))
    act(driver, MKT_HEAD, Return, note="补充", after=dt.timedelta(days=10))
    assert driver.state.tokens[0].sla_left == 0
    driver.apply(Submit(actor=STAFF))
    assert driver.task_of(MKT_HEAD).due_at == driver.now


def test_parallel_steps_resumed_together_keep_each_their_own_remaining_time() -> None:
    """Two parallel approvals with different SLAs, returned and resubmitted: each resumes with
    what was left of its own clock (the deadlines of one step were once shared by SLA object
    identity, and the resumed SLAs are short-lived objects that can share an address)."""
    flow = graph(
        [
            StartNode(id="start"),
            ParallelNode(id="p"),
            approval("a", MKT_HEAD, sla=Sla(working_hours=2.0)),
            approval("b", PUR_HEAD, sla=Sla(working_hours=16.0)),
            JoinNode(id="j"),
            EndNode(id="end"),
        ],
        [("start", "p"), ("p", "a"), ("p", "b"), ("a", "j"), ("b", "j"), ("j", "end")],
    )
    driver = Driver(flow, env(), MONDAY)
    driver.apply(Submit(actor=STAFF))
    act(driver, MKT_HEAD, Return, note="补充")  # both clocks ran 5 minutes
    driver.apply(Submit(actor=STAFF), after=dt.timedelta(days=1))
    for person, hours in ((MKT_HEAD, 2), (PUR_HEAD, 16)):
        resumed = driver.env.calendar.add_working_hours(driver.now, hours - 5 / 60)
        due = driver.task_of(person).due_at
        assert due is not None and abs((due - resumed).total_seconds()) < 1, (person, due, resumed)
    assert driver.replay() == driver.state


def test_resubmit_from_start_when_the_flow_says_so() -> None:
    driver = started(approval("a", MKT_HEAD), approval("b", VP), resubmit_from=ResubmitFrom.START)
    act(driver, MKT_HEAD, Approve)
    act(driver, VP, Return, note="重新走一遍")
    driver.apply(Submit(actor=STAFF))
    assert driver.assignees() == [MKT_HEAD] and driver.state.approvals == {}


def test_return_to_an_earlier_node_reenters_it() -> None:
    driver = started(approval("a", MKT_HEAD), approval("b", PUR_HEAD), approval("c", VP))
    act(driver, MKT_HEAD, Approve)
    act(driver, PUR_HEAD, Approve)
    act(driver, VP, Return, note="请重新核对预算", to_node="a")
    assert driver.status is Status.IN_APPROVAL
    assert driver.assignees() == [MKT_HEAD]
    assert driver.state.approvals == {}  # decisions from the target on are void
    act(driver, MKT_HEAD, Approve)
    assert driver.assignees() == [PUR_HEAD]


@pytest.mark.parametrize(
    ("target", "reason"), [("c", "not decided yet"), ("ghost", "unknown"), ("start", "not approval")]
)
def test_return_target_must_be_an_earlier_approval(target: str, reason: str) -> None:
    driver = started(approval("a", MKT_HEAD), approval("b", VP), approval("c", FINANCE))
    act(driver, MKT_HEAD, Approve)
    with pytest.raises(InvalidCommandError) as caught:
        act(driver, VP, Return, note="x", to_node=target)
    assert caught.value.field == "to_node"


def test_return_into_a_parallel_region_is_refused() -> None:
    flow = graph(
        [
            StartNode(id="start"),
            ParallelNode(id="p"),
            approval("a", MKT_HEAD),
            approval("b", PUR_HEAD),
            JoinNode(id="j"),
            approval("c", VP),
            EndNode(id="end"),
        ],
        [("start", "p"), ("p", "a"), ("p", "b"), ("a", "j"), ("b", "j"), ("j", "c"), ("c", "end")],
    )
    driver = Driver(flow, env(), MONDAY)
    driver.apply(Submit(actor=STAFF))
    act(driver, MKT_HEAD, Approve)
    act(driver, PUR_HEAD, Approve)
    with pytest.raises(InvalidCommandError):
        act(driver, VP, Return, note="x", to_node="a")


def test_a_return_needs_a_note() -> None:
    driver = started(approval("a", MKT_HEAD))
    with pytest.raises(InvalidCommandError) as caught:
        act(driver, MKT_HEAD, Return, note="   ")
    assert caught.value.field == "note"


# -- transfer and add signer ------------------------------------------------------------------


def test_transfer_hands_the_task_over_with_the_reason() -> None:
    driver = started(approval("a", MKT_HEAD))
    old = driver.task_of(MKT_HEAD)
    act(driver, MKT_HEAD, Transfer, to=HR_HEAD, note="出差，请代审")
    (closed,) = driver.of_type(CloseTask)
    assert (closed.task_id, closed.outcome) == (old.id, TaskOutcome.TRANSFERRED)
    (created,) = driver.of_type(CreateTask)
    assert created.assignee == HR_HEAD and created.reason == {"rule": "transfer", "from": MKT_HEAD}
    act(driver, HR_HEAD, Approve)
    assert driver.status is Status.ARCHIVED and driver.state.approvals == {"a": (HR_HEAD,)}


@pytest.mark.parametrize(("to", "why"), [(999, "unknown person"), (MKT_HEAD, "already has a task")])
def test_transfer_refusals(to: int, why: str) -> None:
    driver = started(approval("a", MKT_HEAD))
    with pytest.raises(InvalidCommandError, match=why):
        act(driver, MKT_HEAD, Transfer, to=to)


@pytest.mark.parametrize("mode", [ApprovalMode.ANY, ApprovalMode.ALL])
def test_add_signer_before_decides_first_then_the_task_comes_back(mode: ApprovalMode) -> None:
    driver = started(approval("a", MKT_HEAD, mode=mode), approval("z", VP))
    act(driver, MKT_HEAD, AddSigner, people=(FINANCE, PUR_HEAD), position=SignerPosition.BEFORE)
    assert driver.assignees("a") == sorted((FINANCE, PUR_HEAD))
    assert [c.outcome for c in driver.of_type(CloseTask)] == [TaskOutcome.SUSPENDED]
    act(driver, FINANCE, Approve)
    assert driver.assignees("a") == [PUR_HEAD]
    act(driver, PUR_HEAD, Approve)
    back = driver.task_of(MKT_HEAD, "a")
    assert back.reason["rule"] == "people" and back.origin is TaskOrigin.RULE
    act(driver, MKT_HEAD, Approve)
    assert driver.assignees() == [VP]
    assert driver.state.approvals["a"] == (FINANCE, PUR_HEAD, MKT_HEAD)


def test_add_signer_after_approves_now_and_waits_for_them() -> None:
    driver = started(approval("a", MKT_HEAD, HR_HEAD, mode=ApprovalMode.ANY), approval("z", VP))
    act(driver, MKT_HEAD, AddSigner, people=(FINANCE,), position=SignerPosition.AFTER)
    assert driver.assignees("a") == [FINANCE]  # 或签: the other original approver is released
    (created,) = driver.of_type(CreateTask)
    assert created.reason == {"rule": "add_signer", "position": "after", "by": MKT_HEAD}
    act(driver, FINANCE, Approve)
    assert driver.assignees() == [VP]


def test_add_signer_after_in_sequential_mode_goes_next_in_line() -> None:
    driver = started(approval("a", MKT_HEAD, HR_HEAD, mode=ApprovalMode.SEQUENTIAL))
    act(driver, MKT_HEAD, AddSigner, people=(FINANCE,), position=SignerPosition.AFTER)
    assert driver.assignees() == [FINANCE]
    assert driver.task_of(FINANCE).reason["rule"] == "add_signer"
    act(driver, FINANCE, Approve)
    assert driver.assignees() == [HR_HEAD]
    act(driver, HR_HEAD, Approve)
    assert driver.state.approvals["a"] == (MKT_HEAD, FINANCE, HR_HEAD)


def test_add_signer_alongside_follows_the_node_mode() -> None:
    any_mode = started(approval("a", MKT_HEAD), approval("z", VP))
    act(any_mode, MKT_HEAD, AddSigner, people=(FINANCE,), position=SignerPosition.ALONGSIDE)
    assert any_mode.assignees("a") == sorted((MKT_HEAD, FINANCE))
    act(any_mode, FINANCE, Approve)  # 或签: the added one may decide
    assert any_mode.assignees() == [VP]

    all_mode = started(approval("a", MKT_HEAD, mode=ApprovalMode.ALL), approval("z", VP))
    act(all_mode, MKT_HEAD, AddSigner, people=(FINANCE,), position=SignerPosition.ALONGSIDE)
    act(all_mode, FINANCE, Approve)
    assert all_mode.assignees() == [MKT_HEAD]


def test_add_signer_refusals() -> None:
    driver = started(approval("a", MKT_HEAD, HR_HEAD, mode=ApprovalMode.ALL))
    with pytest.raises(InvalidCommandError, match="already has a task"):
        act(driver, MKT_HEAD, AddSigner, people=(HR_HEAD,), position=SignerPosition.AFTER)
    with pytest.raises(InvalidCommandError, match="unknown people"):
        act(driver, MKT_HEAD, AddSigner, people=(999,), position=SignerPosition.BEFORE)


def test_actions_the_node_does_not_allow() -> None:
    driver = started(approval("a", MKT_HEAD, actions=(Action.APPROVE, Action.REJECT)))
    with pytest.raises(ActionNotAllowedError):
        act(driver, MKT_HEAD, AddSigner, people=(FINANCE,), position=SignerPosition.BEFORE)
    with pytest.raises(ActionNotAllowedError):
        act(driver, MKT_HEAD, Transfer, to=FINANCE)
    with pytest.raises(ActionNotAllowedError):
        act(driver, MKT_HEAD, Return, note="x")


# -- withdraw, urge, urgent, comment, admin -----------------------------------------------------


def test_withdraw_by_the_initiator_only() -> None:
    driver = started(approval("a", MKT_HEAD))
    with pytest.raises(NotPermittedError):
        driver.apply(Withdraw(actor=MKT_HEAD))
    driver.apply(Withdraw(actor=STAFF, note="活动取消"))
    assert driver.status is Status.WITHDRAWN and driver.state.tasks == ()
    (notice,) = driver.of_type(Notify)
    assert notice.recipients == (MKT_HEAD,) and notice.template == "withdrawn"
    with pytest.raises(TransitionError):
        driver.apply(Submit(actor=STAFF))


def test_urge_notifies_current_approvers_at_most_once_an_hour() -> None:
    driver = started(approval("a", MKT_HEAD, HR_HEAD, mode=ApprovalMode.ALL))
    driver.apply(Urge(actor=STAFF, note="活动临近"))
    (notice,) = driver.of_type(Notify)
    assert notice.template == "urge" and notice.recipients == (MKT_HEAD, HR_HEAD)
    with pytest.raises(UrgeTooSoonError) as caught:
        driver.apply(Urge(actor=STAFF), after=dt.timedelta(minutes=30))
    assert caught.value.retryable
    assert caught.value.retry_after == driver.state.last_urged_at + dt.timedelta(hours=1)  # type: ignore[operator]
    driver.apply(Urge(actor=STAFF), after=dt.timedelta(minutes=61))
    with pytest.raises(NotPermittedError):
        driver.apply(Urge(actor=MKT_HEAD), after=dt.timedelta(hours=2))


def test_mark_urgent_pulls_deadlines_in_to_24_hours() -> None:
    driver = started(approval("a", MKT_HEAD))
    task = driver.task_of(MKT_HEAD)
    driver.apply(MarkUrgent(actor=STAFF), after=dt.timedelta(hours=1))
    (moved,) = driver.of_type(SetTaskDue)
    assert moved.due_at == task.created_at + dt.timedelta(hours=24)
    assert len(driver.of_type(CancelTimer)) == 2 and len(driver.of_type(ScheduleTimer)) == 2
    assert driver.task_of(MKT_HEAD).due_at == moved.due_at
    unchanged = driver.apply(MarkUrgent(actor=STAFF))
    assert unchanged.effects == () and unchanged.state.version == driver.state.version


def test_urgent_at_submission_uses_calendar_hours() -> None:
    driver = Driver(chain(approval("a", MKT_HEAD)), env(), MONDAY.replace(hour=17))
    driver.apply(Submit(actor=STAFF, urgent=True))
    assert driver.task_of(MKT_HEAD).due_at == driver.now + dt.timedelta(hours=24)


def test_comment_changes_only_the_version() -> None:
    driver = started(approval("a", MKT_HEAD))
    before = driver.state
    step = driver.apply(Comment(actor=VP, text="请关注预算"))
    assert step.effects == ()
    assert step.state.version == before.version + 1
    with pytest.raises(InvalidCommandError):
        driver.apply(Comment(actor=None, text="x"))


def test_cancel_and_archive_are_for_process_admins() -> None:
    driver = started(approval("a", MKT_HEAD))
    with pytest.raises(NotPermittedError):
        driver.apply(Cancel(actor=STAFF, reason="x"))
    driver.apply(Cancel(actor=ADMIN, reason="重复提交"))
    assert driver.status is Status.CANCELLED
    with pytest.raises(TransitionError):
        driver.apply(Archive(actor=ADMIN))


# -- refusals the service maps to HTTP ----------------------------------------------------------


def test_acting_on_someone_elses_or_a_closed_task() -> None:
    driver = started(approval("a", MKT_HEAD, FIN_HEAD, mode=ApprovalMode.ANY), approval("b", VP))
    mine = driver.task_of(MKT_HEAD)
    with pytest.raises(NotAssigneeError):
        driver.apply(Approve(actor=VP, task_id=mine.id))
    other = driver.task_of(FIN_HEAD)
    act(driver, MKT_HEAD, Approve)
    with pytest.raises(TaskNotOpenError):  # 或签: decided by the other approver
        driver.apply(Approve(actor=FIN_HEAD, task_id=other.id))
    with pytest.raises(TaskNotOpenError):
        driver.apply(Reject(actor=MKT_HEAD, task_id=mine.id))


def test_refused_commands_leave_nothing_behind() -> None:
    driver = started(approval("a", MKT_HEAD))
    before = driver.state
    with pytest.raises(NotAssigneeError):
        driver.apply(Approve(actor=VP, task_id=driver.task_of(MKT_HEAD).id))
    assert driver.state is before


def test_stage_tasks_take_no_approval() -> None:
    from runtime.flow.graph import TaskNode
    from runtime.flow.rules import InitiatorRule

    driver = started(TaskNode(id="t", title="场地确认", owner=InitiatorRule()))
    task = driver.task_of(STAFF)
    with pytest.raises(ActionNotAllowedError):
        driver.apply(Approve(actor=STAFF, task_id=task.id))
    with pytest.raises(TransitionError):
        driver.apply(Withdraw(actor=STAFF))  # executing requests are not withdrawn
    driver.apply(TaskCompleted(actor=STAFF, task_id=task.id, result="场地已确认"))
    assert driver.status is Status.ARCHIVED
