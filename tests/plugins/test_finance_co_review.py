"""财务联审 through the engine: the marketing-activity flow with the finance-co-review step."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import pytest

from plugins import validate_plugin_nodes
from runtime.flow import FlowGraph, Status, decode_state, encode, preview_route
from runtime.flow.effects import CreateTask, Notify, RecordEvent
from runtime.flow.events import Approve, Reject, Submit, TimerFired, TimerKind, Transfer
from runtime.flow.graph import Edge, JoinNode, ParallelNode, PluginNode
from tests.plugins.marketing import FLOW, FORM, PLUGINS, REGISTRY
from tests.runtime.driver import Driver
from tests.runtime.org import (
    CALENDAR,
    FIN_HEAD,
    FINANCE,
    MKT_HEAD,
    MONDAY,
    STAFF,
    VP,
    env,
    marketing_form,
)

WHY = {
    "because": "amount_over_threshold",
    "field": "budget",
    "amount": "200,000.00",
    "threshold": "50,000.00",
    "why_zh": "金额 200,000.00 超过财务联审金额 50,000.00",
    "why_en": "the amount 200,000.00 exceeds the finance co-review threshold 50,000.00",
    "rule": "role",
    "role": "finance_specialist",
    "plugin": "finance-co-review",
}


def with_config(graph: FlowGraph = FLOW, **changes: Any) -> FlowGraph:
    """The flow with the finance step's config changed."""
    nodes = tuple(
        msgspec.structs.replace(n, config={**n.config, **changes}) if isinstance(n, PluginNode) else n
        for n in graph.nodes
    )
    return msgspec.structs.replace(graph, nodes=nodes)


def run_to_finance(budget: int, graph: FlowGraph = FLOW) -> Driver:
    driver = Driver(graph, env(marketing_form(budget), plugins=PLUGINS), MONDAY)
    driver.apply(Submit(actor=STAFF))
    driver.apply(Approve(actor=MKT_HEAD, task_id=driver.task_of(MKT_HEAD).id, comment="同意"))
    driver.apply(Approve(actor=VP, task_id=driver.task_of(VP).id, comment="同意"))
    return driver


def test_the_flow_and_its_finance_step_are_valid() -> None:
    assert validate_plugin_nodes(FLOW, FORM, registry=REGISTRY) == []


def test_over_the_threshold_a_finance_task_appears_with_its_reason() -> None:
    driver = run_to_finance(200_000)
    assert driver.status is Status.IN_APPROVAL
    task = driver.task_of(FINANCE, "finance")
    assert task.reason == WHY
    (created,) = driver.of_type(CreateTask)
    assert created.title == "财务联审" and created.due_at == CALENDAR.add_working_hours(driver.now, 16)
    driver.apply(Approve(actor=FINANCE, task_id=task.id, comment="预算合理"))
    assert driver.status is Status.EXECUTING
    assert list(driver.state.approvals) == ["dept_head", "leader", "finance"]
    assert driver.replay() == driver.state


@pytest.mark.parametrize("budget", [30_000, 50_000])
def test_at_or_under_the_threshold_there_is_no_finance_task(budget: int) -> None:
    driver = run_to_finance(budget)
    assert driver.status is Status.EXECUTING
    assert [t.node for t in driver.tasks()] == ["venue"]
    (passed,) = [e for e in driver.effects if isinstance(e, RecordEvent) and e.kind == "plugin_continued"]
    assert passed.node_id == "finance" and "无需财务联审" in passed.data["note"]


def test_a_finance_rejection_rejects_the_request_by_default() -> None:
    driver = run_to_finance(200_000)
    driver.apply(Reject(actor=FINANCE, task_id=driver.task_of(FINANCE).id, comment="超出年度预算"))
    assert driver.status is Status.REJECTED
    assert driver.state.tokens == () and driver.state.tasks == ()
    assert [n.template for n in driver.of_type(Notify)] == ["rejected"]


def test_a_finance_rejection_can_return_the_request_to_the_applicant() -> None:
    driver = run_to_finance(200_000, with_config(on_reject="return"))
    driver.apply(Reject(actor=FINANCE, task_id=driver.task_of(FINANCE).id, comment="请压缩预算"))
    assert driver.status is Status.RETURNED
    returned = driver.of_type(Notify)[-1]
    assert (returned.template, returned.payload["note"]) == ("returned", "请压缩预算")
    # resubmitted over the threshold: finance reviews again (the step is decided anew)
    driver.apply(Submit(actor=STAFF), after=dt.timedelta(days=1))
    assert driver.status is Status.IN_APPROVAL and driver.assignees() == [FINANCE]
    driver.apply(Reject(actor=FINANCE, task_id=driver.task_of(FINANCE).id, comment="仍然超支"))
    # resubmitted with a smaller budget: no finance review, straight to execution
    driver.env = env(marketing_form(40_000), plugins=PLUGINS)
    driver.apply(Submit(actor=STAFF), after=dt.timedelta(days=1))
    assert driver.status is Status.EXECUTING


def test_all_named_reviewers_must_approve() -> None:
    graph = with_config(reviewers={"kind": "people", "ids": [FINANCE, FIN_HEAD]}, mode="all")
    driver = run_to_finance(200_000, graph)
    assert driver.assignees() == [FIN_HEAD, FINANCE]
    assert driver.task_of(FIN_HEAD).reason["rule"] == "people"
    driver.apply(Approve(actor=FINANCE, task_id=driver.task_of(FINANCE).id))
    assert driver.status is Status.IN_APPROVAL and driver.assignees() == [FIN_HEAD]
    driver.apply(Approve(actor=FIN_HEAD, task_id=driver.task_of(FIN_HEAD).id))
    assert driver.status is Status.EXECUTING


def test_any_one_reviewer_decides() -> None:
    driver = run_to_finance(200_000, with_config(reviewers={"kind": "people", "ids": [FINANCE, FIN_HEAD]}))
    driver.apply(Approve(actor=FIN_HEAD, task_id=driver.task_of(FIN_HEAD).id))
    assert driver.status is Status.EXECUTING


def test_a_finance_task_can_be_transferred_and_keeps_its_sla() -> None:
    driver = run_to_finance(200_000)
    driver.apply(Transfer(actor=FINANCE, task_id=driver.task_of(FINANCE).id, to=FIN_HEAD, note="请陈静处理"))
    moved = driver.task_of(FIN_HEAD, "finance")
    assert moved.reason == {"rule": "transfer", "from": FINANCE}
    assert moved.due_at == CALENDAR.add_working_hours(driver.now, 16)


def test_an_overdue_finance_task_follows_the_configured_sla() -> None:
    sla = {"working_hours": 8, "remind_before_hours": None, "overdue_action": "auto_reject"}
    driver = run_to_finance(200_000, with_config(sla=sla, on_reject="return"))
    (timer,) = driver.task_of(FINANCE).timers
    driver.apply(TimerFired(timer_id=timer, kind=TimerKind.OVERDUE), after=dt.timedelta(days=2))
    assert driver.status is Status.RETURNED  # auto-rejected, and a rejection returns the request


def test_alongside_the_leader_on_a_parallel_branch() -> None:
    graph = alongside_flow()
    assert validate_plugin_nodes(graph, FORM, registry=REGISTRY) == []
    driver = Driver(graph, env(marketing_form(200_000), plugins=PLUGINS), MONDAY)
    driver.apply(Submit(actor=STAFF))
    driver.apply(Approve(actor=MKT_HEAD, task_id=driver.task_of(MKT_HEAD).id))
    assert driver.assignees() == [VP, FINANCE], "the leader and finance review at the same time"
    driver.apply(Approve(actor=FINANCE, task_id=driver.task_of(FINANCE).id))
    assert driver.status is Status.IN_APPROVAL
    driver.apply(Approve(actor=VP, task_id=driver.task_of(VP).id))
    assert driver.status is Status.EXECUTING


def alongside_flow() -> FlowGraph:
    graph = with_config(placement="alongside")
    nodes = (*graph.nodes, ParallelNode(id="split"), JoinNode(id="merge"))
    edges = [
        e for e in graph.edges if (e.source, e.target) not in {("dept_head", "leader"), ("leader", "finance")}
    ]
    edges = [e for e in edges if e.source != "finance"]
    edges += [
        Edge(source="dept_head", target="split"),
        Edge(source="split", target="leader"),
        Edge(source="split", target="finance"),
        Edge(source="leader", target="merge"),
        Edge(source="finance", target="merge"),
        Edge(source="merge", target="approved_notice"),
    ]
    return msgspec.structs.replace(graph, nodes=nodes, edges=tuple(edges))


@pytest.mark.parametrize(
    ("graph", "message"),
    [
        (
            with_config(placement="alongside"),
            "config.placement: 'alongside' needs this step on a parallel branch beside the approval "
            "step it reviews with",
        ),
        (with_config(amount_field="venue"), "config.amount_field: 'venue' is a text field, not an amount"),
        (with_config(amount_field="budgett"), "config.amount_field: unknown field 'budgett'"),
        (with_config(threshold=-5), "config.threshold: expected `float` >= 0.0"),
        (with_config(mode="sequential"), "config.mode: invalid enum value 'sequential'"),
        (with_config(colour="red"), "config: object contains unknown field `colour`"),
    ],
)
def test_config_problems_point_at_the_node(graph: FlowGraph, message: str) -> None:
    problems = validate_plugin_nodes(graph, FORM, registry=REGISTRY)
    assert [(p.node_id, p.message) for p in problems] == [("finance", message)]


def test_the_route_preview_shows_finance_only_over_the_threshold() -> None:
    big = preview_route(FLOW, env(marketing_form(200_000), plugins=PLUGINS), MONDAY)
    small = preview_route(FLOW, env(marketing_form(30_000), plugins=PLUGINS), MONDAY)
    assert [(s.node_id, s.kind, s.assignees) for s in big][:3] == [
        ("dept_head", "approval", (MKT_HEAD,)),
        ("leader", "approval", (VP,)),
        ("finance", "approval", (FINANCE,)),
    ]
    assert big[2].reasons == (WHY,)
    assert "finance" not in [s.node_id for s in small]


def test_a_state_with_plugin_tasks_is_stored_and_read_back() -> None:
    driver = run_to_finance(200_000, with_config(on_reject="return", mode="all"))
    assert decode_state(encode(driver.state)) == driver.state
    (run,) = driver.state.runs
    assert run.plugin is not None and run.plugin.on_reject == "return"
