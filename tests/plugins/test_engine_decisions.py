"""How the engine applies plugin decisions: timers, notices, rejection, retries, failures."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from plugins import Registry, discover
from runtime.flow import Status
from runtime.flow.effects import CallPlugin, CancelTimer, Notify, RecordEvent, ScheduleTimer, SetStatus
from runtime.flow.events import Approve, PluginOutcome, PluginResult, Submit, TimerFired, TimerKind, Withdraw
from runtime.flow.graph import Edge, EndNode, JoinNode, ParallelNode, PluginNode, StartNode
from runtime.flow.plugins import PluginContext, PluginDecision
from tests.plugins.steps import Garbage, Raising, Sleeper
from tests.runtime.driver import Driver
from tests.runtime.graphs import approval, chain, graph
from tests.runtime.org import MKT_HEAD, MONDAY, STAFF, VP, env

TOMORROW = MONDAY + dt.timedelta(days=1)


def engine(*plugins: Any) -> dict[str, Any]:
    registry = Registry()
    for plugin in plugins:
        registry.register(plugin)
    return dict(registry.engine_plugins())


def kinds(effects: Any, kind: str) -> list[RecordEvent]:
    return [e for e in effects if isinstance(e, RecordEvent) and e.kind == kind]


def test_a_timer_decision_waits_then_asks_the_plugin_again() -> None:
    flow = chain(
        PluginNode(id="nap", plugin="sleeper", config={"until": TOMORROW.isoformat()}), approval("z", VP)
    )
    driver = Driver(flow, env(plugins=engine(Sleeper())), MONDAY)
    driver.apply(Submit(actor=STAFF))
    (timer,) = driver.of_type(ScheduleTimer)
    assert (timer.kind, timer.due_at, timer.node_id) == (TimerKind.WAIT, TOMORROW, "nap")
    assert driver.state.tokens[0].timer and driver.status is Status.IN_APPROVAL
    stale = driver.apply(PluginResult(call_id=timer.timer_id))
    assert stale.effects == (), "a timer is not a call: a result for it changes nothing"
    driver.apply(TimerFired(timer_id=timer.timer_id, kind=TimerKind.WAIT), after=dt.timedelta(days=1))
    assert driver.assignees() == [VP]
    (notice,) = driver.of_type(Notify)
    assert (notice.template, notice.recipients, notice.payload) == (
        "plugin_notice",
        (STAFF,),
        {"node_id": "nap", "note": "醒了"},
    )
    assert driver.replay() == driver.state


def test_withdrawing_cancels_a_plugins_timer() -> None:
    flow = chain(PluginNode(id="nap", plugin="sleeper", config={"until": TOMORROW.isoformat()}))
    driver = Driver(flow, env(plugins=engine(Sleeper())), MONDAY)
    driver.apply(Submit(actor=STAFF))
    (timer,) = driver.of_type(ScheduleTimer)
    driver.apply(Withdraw(actor=STAFF))
    assert driver.of_type(CancelTimer) == [CancelTimer(timer_id=timer.timer_id)]


def test_a_timer_in_the_past_is_a_failure_not_a_loop() -> None:
    config = {"until": MONDAY.isoformat(), "past_timer": True}
    driver = Driver(
        chain(PluginNode(id="nap", plugin="sleeper", config=config)), env(plugins=engine(Sleeper())), MONDAY
    )
    driver.apply(Submit(actor=STAFF))
    (failed,) = kinds(driver.last, "plugin_failed")
    assert "is not after now" in failed.data["reason"]
    assert len(driver.of_type(CallPlugin)) == 1


def test_a_rejecting_plugin_at_the_start_rejects_the_request() -> None:
    flow = chain(
        PluginNode(id="auto", plugin="auto-decide", config={"when": "true", "then": "reject"}),
        approval("z", VP),
    )
    driver = Driver(flow, env(plugins=_builtins()), MONDAY)
    driver.apply(Submit(actor=STAFF))
    assert driver.status is Status.REJECTED and driver.state.tokens == ()
    assert [(s.previous, s.status) for s in driver.of_type(SetStatus)] == [
        (Status.DRAFT, Status.IN_APPROVAL),
        (Status.IN_APPROVAL, Status.REJECTED),
    ]


def test_a_rejection_on_one_branch_drops_the_others() -> None:
    nodes = [
        StartNode(id="start"),
        ParallelNode(id="split"),
        approval("a", MKT_HEAD),
        PluginNode(id="auto", plugin="auto-decide", config={"when": "true", "then": "reject"}),
        JoinNode(id="join"),
        EndNode(id="end"),
    ]
    edges = [
        ("start", "split"),
        ("split", "a"),
        ("split", "auto"),
        ("a", "join"),
        ("auto", "join"),
        ("join", "end"),
    ]
    driver = Driver(graph(nodes, edges), env(plugins=_builtins()), MONDAY)
    driver.apply(Submit(actor=STAFF))
    assert driver.status is Status.REJECTED
    assert driver.state.tasks == () and driver.state.tokens == ()


def test_a_raising_plugin_stops_its_own_branch_only() -> None:
    nodes = [
        StartNode(id="start"),
        ParallelNode(id="split"),
        approval("a", MKT_HEAD),
        PluginNode(id="bad", plugin="raising"),
        JoinNode(id="join"),
        approval("z", VP),
        EndNode(id="end"),
    ]
    edges = [
        ("start", "split"),
        ("split", "a"),
        ("split", "bad"),
        ("a", "join"),
        ("bad", "join"),
        ("join", "z"),
        ("z", "end"),
    ]
    driver = Driver(graph(nodes, edges), env(plugins=engine(Raising())), MONDAY)
    driver.apply(Submit(actor=STAFF))
    (failed,) = kinds(driver.last, "plugin_failed")
    assert failed.data["reason"] == "RuntimeError: boom"
    assert driver.assignees() == [MKT_HEAD], "the other branch goes on"
    driver.apply(Approve(actor=MKT_HEAD, task_id=driver.task_of(MKT_HEAD).id))
    assert driver.status is Status.IN_APPROVAL and driver.tasks() == [], "the join waits for the failed step"
    (call,) = [c for c in driver.effects if isinstance(c, CallPlugin)]
    driver.apply(PluginResult(call_id=call.call_id, outcome=PluginOutcome.CONTINUE, note="skipped by admin"))
    assert driver.assignees() == [VP]


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"fail_times": "x"}, "invalid config: config.fail_times: expected `int`, got `str`"),
        ({"colour": 1}, "invalid config: config: object contains unknown field `colour`"),
    ],
)
def test_a_step_with_a_bad_config_fails_visibly(config: dict[str, Any], reason: str) -> None:
    driver = Driver(
        chain(PluginNode(id="bad", plugin="raising", config=config)), env(plugins=engine(Raising())), MONDAY
    )
    driver.apply(Submit(actor=STAFF))
    (failed,) = kinds(driver.last, "plugin_failed")
    assert failed.data["reason"] == reason


def test_a_decision_that_is_not_a_decision_fails_visibly() -> None:
    driver = Driver(chain(PluginNode(id="g", plugin="garbage")), env(plugins=engine(Garbage())), MONDAY)
    driver.apply(Submit(actor=STAFF))
    (failed,) = kinds(driver.last, "plugin_failed")
    assert failed.data["reason"] == "garbage: decide returned str, not a decision"


def test_the_engine_survives_a_raw_plugin_that_raises() -> None:
    class Raw:
        def enter(self, node: PluginNode, context: PluginContext) -> PluginDecision:
            raise ZeroDivisionError("division by zero")

    driver = Driver(chain(PluginNode(id="raw", plugin="raw")), env(plugins={"raw": Raw()}), MONDAY)
    driver.apply(Submit(actor=STAFF))
    assert kinds(driver.last, "plugin_failed")[0].data["reason"] == "ZeroDivisionError: division by zero"


def test_a_retry_asks_a_registered_plugin_again() -> None:
    plugin = Raising()
    flow = chain(PluginNode(id="p", plugin="raising", config={"fail_times": 1}))
    driver = Driver(flow, env(plugins=engine(plugin)), MONDAY)
    driver.apply(Submit(actor=STAFF))
    (call,) = driver.of_type(CallPlugin)
    driver.apply(PluginResult(call_id=call.call_id, outcome=PluginOutcome.RETRY))
    assert driver.assignees() == [MKT_HEAD]
    assert driver.task_of(MKT_HEAD).reason == {"because": "probe", "rule": "people", "plugin": "raising"}


def test_a_retry_for_a_plugin_the_engine_does_not_know_changes_nothing() -> None:
    driver = Driver(chain(PluginNode(id="p", plugin="elsewhere")), env(), MONDAY)
    driver.apply(Submit(actor=STAFF))
    (call,) = driver.of_type(CallPlugin)
    assert driver.apply(PluginResult(call_id=call.call_id, outcome=PluginOutcome.RETRY)).effects == ()


def test_edges_from_a_plugin_step_with_tasks_work_like_an_approval() -> None:
    nodes = [
        StartNode(id="start"),
        PluginNode(id="p", plugin="raising", config={"fail_times": 0}),
        EndNode(id="end"),
    ]
    driver = Driver(
        graph(nodes, [Edge(source="start", target="p"), ("p", "end")]), env(plugins=engine(Raising())), MONDAY
    )
    driver.apply(Submit(actor=STAFF))
    driver.apply(Approve(actor=MKT_HEAD, task_id=driver.task_of(MKT_HEAD).id))
    assert driver.status is Status.ARCHIVED


def _builtins() -> dict[str, Any]:
    return dict(discover(found=[]).engine_plugins())


def test_the_engine_survives_a_raw_plugin_that_returns_nonsense() -> None:
    class Raw:
        def enter(self, node: PluginNode, context: PluginContext) -> PluginDecision:
            return {"approve": True}  # type: ignore[return-value]

    driver = Driver(chain(PluginNode(id="raw", plugin="raw")), env(plugins={"raw": Raw()}), MONDAY)
    driver.apply(Submit(actor=STAFF))
    assert kinds(driver.last, "plugin_failed")[0].data["reason"] == "raw returned dict, not a decision"
