"""Routing: branches over form data and initiator attributes, parallel split/join with token
counting, CC, plugin steps, and the loop guard."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from runtime.flow import Status
from runtime.flow.effects import CallPlugin, Notify, RecordEvent
from runtime.flow.errors import FlowLoopError
from runtime.flow.events import Approve, PluginOutcome, PluginResult, Submit, TaskCompleted
from runtime.flow.graph import (
    BranchNode,
    CcNode,
    Edge,
    EndNode,
    JoinNode,
    ParallelNode,
    PluginNode,
    StartNode,
    TaskNode,
)
from runtime.flow.plugins import PluginAwait, PluginContext, PluginContinue, PluginDecision
from runtime.flow.rules import InitiatorRule, RoleRule
from tests.runtime.driver import Driver
from tests.runtime.graphs import approval, chain, graph
from tests.runtime.org import FINANCE, HR_HEAD, MKT_HEAD, MONDAY, PRD_STAFF, PUR_HEAD, STAFF, VP, env

S, E = StartNode(id="start"), EndNode(id="end")


def branchy() -> Any:
    return graph(
        [
            S,
            BranchNode(id="x"),
            approval("big", VP),
            approval("product", HR_HEAD),
            approval("small", MKT_HEAD),
            E,
        ],
        [
            ("start", "x"),
            Edge(source="x", target="big", condition="form.budget > 50000"),
            Edge(source="x", target="product", condition='initiator.department == "产品部"'),
            Edge(source="x", target="small", is_default=True),
            ("big", "end"),
            ("product", "end"),
            ("small", "end"),
        ],
    )


@pytest.mark.parametrize(
    ("form", "initiator", "expected"),
    [
        ({"budget": Decimal("200000")}, STAFF, VP),
        ({"budget": Decimal("50000")}, STAFF, MKT_HEAD),  # not over 50,000
        ({"budget": 60000.5}, PRD_STAFF, VP),  # conditions are tried in order
        ({"budget": 1}, PRD_STAFF, HR_HEAD),
        ({}, STAFF, MKT_HEAD),  # a missing field fails the condition, the default applies
        ({"budget": "lots"}, STAFF, MKT_HEAD),  # so does a type mismatch
    ],
)
def test_branch_conditions_in_order_then_default(form: dict[str, Any], initiator: int, expected: int) -> None:
    driver = Driver(branchy(), env(form, initiator=initiator), MONDAY)
    driver.apply(Submit(actor=initiator))
    assert driver.assignees() == [expected]
    (taken,) = [r for r in driver.of_type(RecordEvent) if r.kind == "branch_taken"]
    assert taken.node_id == "x"


def parallel_flow() -> Any:
    return graph(
        [
            S,
            ParallelNode(id="p"),
            approval("a", MKT_HEAD),
            ParallelNode(id="q"),
            approval("b1", HR_HEAD),
            approval("b2", PUR_HEAD),
            JoinNode(id="jq"),
            TaskNode(id="t", title="准备", owner=InitiatorRule()),
            JoinNode(id="jp"),
            approval("z", VP),
            E,
        ],
        [
            ("start", "p"),
            ("p", "a"),
            ("p", "q"),
            ("p", "t"),
            ("q", "b1"),
            ("q", "b2"),
            ("b1", "jq"),
            ("b2", "jq"),
            ("a", "jp"),
            ("jq", "jp"),
            ("t", "jp"),
            ("jp", "z"),
            ("z", "end"),
        ],
    )


def test_parallel_split_and_nested_join_count_tokens() -> None:
    driver = Driver(parallel_flow(), env(), MONDAY)
    driver.apply(Submit(actor=STAFF))
    assert driver.assignees() == sorted((MKT_HEAD, HR_HEAD, PUR_HEAD, STAFF))
    assert driver.status is Status.IN_APPROVAL  # the earliest phase names the status
    assert len(driver.state.tokens) == 4
    for person in (HR_HEAD, MKT_HEAD):
        driver.apply(Approve(actor=person, task_id=driver.task_of(person).id))
    waiting = sorted(t.node for t in driver.state.tokens)
    assert waiting == ["b2", "jp", "jq", "t"]  # a waits at the outer join, b1 at the inner one
    driver.apply(Approve(actor=PUR_HEAD, task_id=driver.task_of(PUR_HEAD).id))
    assert sorted(t.node for t in driver.state.tokens) == ["jp", "jp", "t"]
    assert driver.status is Status.EXECUTING
    driver.apply(TaskCompleted(actor=STAFF, task_id=driver.task_of(STAFF).id))
    assert [t.node for t in driver.state.tokens] == ["z"] and driver.state.tokens[0].frames == ()
    assert driver.status is Status.IN_APPROVAL
    driver.apply(Approve(actor=VP, task_id=driver.task_of(VP).id))
    assert driver.status is Status.ARCHIVED and driver.state.tokens == ()
    assert driver.replay() == driver.state


def test_cc_notifies_and_moves_on() -> None:
    driver = Driver(
        chain(CcNode(id="cc", title="抄送财务", recipients=RoleRule(role="finance_specialist"))),
        env(),
        MONDAY,
    )
    driver.apply(Submit(actor=STAFF))
    (notice,) = driver.of_type(Notify)
    assert notice.recipients == (FINANCE,) and notice.template == "cc"
    assert notice.payload["reason"] == {"rule": "role", "role": "finance_specialist"}
    assert driver.status is Status.ARCHIVED


class Recorder:
    def __init__(self, decision: PluginDecision) -> None:
        self.decision = decision
        self.seen: list[PluginContext] = []

    def enter(self, node: PluginNode, context: PluginContext) -> PluginDecision:
        self.seen.append(context)
        return self.decision


def plugin_flow() -> Any:
    return chain(
        PluginNode(id="co", title="财务联审", plugin="finance_co_review", config={"threshold": 50000}),
        approval("z", VP),
    )


def test_plugin_that_continues() -> None:
    plugin = Recorder(PluginContinue(note="预算未超限"))
    driver = Driver(plugin_flow(), env({"budget": 1}, plugins={"finance_co_review": plugin}), MONDAY)
    driver.apply(Submit(actor=STAFF))
    assert driver.assignees() == [VP]
    assert plugin.seen[0].node_id == "co" and plugin.seen[0].form == {"budget": 1}


@pytest.mark.parametrize("registered", [True, False])
def test_plugin_that_awaits_its_result(registered: bool) -> None:
    plugins = {"finance_co_review": Recorder(PluginAwait())} if registered else {}
    driver = Driver(plugin_flow(), env(plugins=plugins), MONDAY)
    driver.apply(Submit(actor=STAFF))
    (call,) = driver.of_type(CallPlugin)
    assert (call.plugin, call.node_id, call.config) == ("finance_co_review", "co", {"threshold": 50000})
    assert driver.status is Status.IN_APPROVAL and driver.state.tokens[0].wait == call.call_id
    stale = driver.apply(PluginResult(call_id="other", outcome=PluginOutcome.CONTINUE))
    assert stale.effects == ()
    driver.apply(PluginResult(call_id=call.call_id, output={"ok": True}))
    assert driver.assignees() == [VP]
    assert driver.apply(PluginResult(call_id=call.call_id)).effects == ()  # delivered twice: ignored


def test_plugin_that_rejects() -> None:
    driver = Driver(plugin_flow(), env(), MONDAY)
    driver.apply(Submit(actor=STAFF))
    (call,) = driver.of_type(CallPlugin)
    driver.apply(PluginResult(call_id=call.call_id, outcome=PluginOutcome.REJECT, note="超出年度预算"))
    assert driver.status is Status.REJECTED


def test_a_loop_that_never_waits_is_stopped() -> None:
    spinning = graph(
        [S, approval("a", rule=RoleRule(role="nobody"), empty_policy="auto_approve"), BranchNode(id="x"), E],
        [
            ("start", "a"),
            ("a", "x"),
            Edge(source="x", target="a", condition="true"),
            Edge(source="x", target="end", is_default=True),
        ],
        key="spin",
    )
    driver = Driver(spinning, env(), MONDAY)
    with pytest.raises(FlowLoopError):
        driver.apply(Submit(actor=STAFF))


def test_a_loop_back_waits_again() -> None:
    looping = graph(
        [S, approval("a", MKT_HEAD), BranchNode(id="x"), E],
        [
            ("start", "a"),
            ("a", "x"),
            Edge(source="x", target="a", condition="form.again == true"),
            Edge(source="x", target="end", is_default=True),
        ],
        key="loop",
    )
    driver = Driver(looping, env({"again": True}), MONDAY)
    driver.apply(Submit(actor=STAFF))
    driver.apply(Approve(actor=MKT_HEAD, task_id=driver.task_of(MKT_HEAD).id))
    assert driver.assignees() == [MKT_HEAD]
