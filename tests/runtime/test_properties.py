"""Stateful property tests: random well-formed graphs driven by random event sequences.

After every event: an instance either has ended (no token, task or run left) or waits on
something (a task, a timer, a plugin call); tokens never duplicate or leak; the open tasks
and live timers the effects describe are exactly those the state holds; a refused event
changes nothing. At the end, replaying the event log from a fresh instance gives the same
state.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import hypothesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from runtime.flow import FlowGraph, InstanceState, Status, advance, new_instance, validate_graph
from runtime.flow.effects import CancelTimer, CloseTask, CreateTask, Effect, ScheduleTimer, TaskKind
from runtime.flow.errors import FlowError, FlowLoopError
from runtime.flow.events import (
    AddSigner,
    Approve,
    Archive,
    Cancel,
    ChangeRequestSubmit,
    Comment,
    Event,
    MarkUrgent,
    PluginOutcome,
    PluginResult,
    Reject,
    Return,
    SignerPosition,
    Submit,
    SummarySubmitted,
    TaskCompleted,
    TimerFired,
    TimerKind,
    Transfer,
    Urge,
    Withdraw,
)
from runtime.flow.graph import (
    ApprovalMode,
    ApprovalNode,
    BranchNode,
    CcNode,
    Edge,
    EmptyPolicy,
    EndNode,
    JoinNode,
    Node,
    OverdueAction,
    ParallelNode,
    PluginNode,
    Sla,
    StartNode,
    TaskNode,
    TaskPurpose,
    WaitNode,
)
from runtime.flow.lifecycle import TERMINAL
from runtime.flow.rules import AssigneeRule, InitiatorRule, PeopleRule, RoleRule
from tests.runtime.org import ADMIN, FINANCE, HR_HEAD, MKT_HEAD, MONDAY, PUR_HEAD, STAFF, VP, env

PEOPLE = (MKT_HEAD, VP, FINANCE, HR_HEAD, PUR_HEAD, STAFF)
RUNNING = {Status.IN_APPROVAL, Status.EXECUTING, Status.AWAITING_SUMMARY}


class _Builder:
    """Draws a well-formed flow: sequences of blocks, branches that merge, nested parallels."""

    def __init__(self, draw: Any) -> None:
        self.draw = draw
        self.nodes: list[Node] = [StartNode(id="start"), EndNode(id="end")]
        self.edges: list[Edge] = []
        self.count = 0

    def new_id(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def link(self, source: str, target: str, via: dict[str, Any]) -> None:
        self.edges.append(Edge(source=source, target=target, **via))

    def sequence(
        self, entry: str, via: dict[str, Any], exit_: str, depth: int, lengths: tuple[int, int]
    ) -> None:
        """Blocks from `entry` (the first edge carries `via`) to `exit_`."""
        current = entry
        for _ in range(self.draw(st.integers(*lengths))):
            current = self.block(current, via, depth)
            via = {}
        self.link(current, exit_, via)

    def block(self, previous: str, via: dict[str, Any], depth: int) -> str:
        kinds = ["approval", "approval", "approval", "task", "cc", "wait", "plugin", "summary"]
        if depth > 0:
            kinds += ["branch", "parallel"]
        kind = self.draw(st.sampled_from(kinds))
        if kind == "branch":
            return self.branch(previous, via, depth)
        if kind == "parallel":
            return self.parallel(previous, via, depth)
        node = self.simple(kind)
        self.nodes.append(node)
        self.link(previous, node.id, via)
        return node.id

    def simple(self, kind: str) -> Node:
        draw = self.draw
        node_id = self.new_id(kind[0])
        if kind == "approval":
            people = draw(st.lists(st.sampled_from(PEOPLE), max_size=3, unique=True))
            rule: AssigneeRule = PeopleRule(ids=tuple(people)) if people else RoleRule(role="nobody")
            sla = Sla(
                working_hours=draw(st.sampled_from([2.0, 16.0])),
                overdue_action=draw(st.sampled_from(list(OverdueAction))),
            )
            return ApprovalNode(
                id=node_id,
                assignees=rule,
                mode=draw(st.sampled_from(list(ApprovalMode))),
                empty_policy=draw(st.sampled_from([EmptyPolicy.AUTO_APPROVE, EmptyPolicy.TO_PROCESS_ADMIN])),
                skip_if_initiator=draw(st.booleans()),
                skip_if_approved_previous=draw(st.booleans()),
                sla=sla,
            )
        if kind in ("task", "summary"):
            owner: AssigneeRule = draw(st.sampled_from([InitiatorRule(), PeopleRule(ids=(HR_HEAD,))]))
            purpose = TaskPurpose.SUMMARY if kind == "summary" else TaskPurpose.STAGE
            return TaskNode(id=node_id, owner=owner, planned_days=draw(st.integers(0, 3)), purpose=purpose)
        if kind == "cc":
            return CcNode(id=node_id, recipients=InitiatorRule())
        if kind == "wait":
            return WaitNode(id=node_id, field="due", working_days=draw(st.integers(0, 3)))
        return PluginNode(id=node_id, plugin="external")

    def branch(self, previous: str, via: dict[str, Any], depth: int) -> str:
        branch = BranchNode(id=self.new_id("x"))
        merge = CcNode(id=self.new_id("m"), recipients=InitiatorRule())
        self.nodes += [branch, merge]
        self.link(previous, branch.id, via)
        threshold = self.draw(st.integers(0, 100))
        arms = [{"condition": f"form.amount > {threshold}"}, {"is_default": True}]
        for arm in arms:
            self.sequence(branch.id, arm, merge.id, depth - 1, (0, 2))
        return merge.id

    def parallel(self, previous: str, via: dict[str, Any], depth: int) -> str:
        split = ParallelNode(id=self.new_id("p"))
        join = JoinNode(id=self.new_id("j"))
        self.nodes += [split, join]
        self.link(previous, split.id, via)
        for _ in range(self.draw(st.integers(2, 3))):
            self.sequence(split.id, {}, join.id, depth - 1, (1, 2))
        return join.id


@st.composite
def flows(draw: Any) -> FlowGraph:
    builder = _Builder(draw)
    builder.sequence("start", {}, "end", 2, (1, 4))
    return FlowGraph(key=f"generated-{id(builder)}", nodes=tuple(builder.nodes), edges=tuple(builder.edges))


class InstanceMachine(RuleBasedStateMachine):
    """Drives one instance of a generated flow and checks the invariants after every event."""

    def __init__(self) -> None:
        super().__init__()
        self.state: InstanceState = new_instance("FLP")
        self.log: list[tuple[Event, dt.datetime]] = []
        self.now = MONDAY
        self.open_tasks: set[str] = set()
        self.live_timers: dict[str, TimerKind] = {}
        self.dead_timers: list[tuple[str, TimerKind]] = []
        self.calls: set[str] = set()

    @initialize(graph=flows(), amount=st.integers(0, 100), due_in=st.integers(-5, 20))
    def setup(self, graph: FlowGraph, amount: int, due_in: int) -> None:
        assert validate_graph(graph, {"amount", "due"}) == []
        self.graph = graph
        self.env = env({"amount": amount, "due": (MONDAY + dt.timedelta(days=due_in)).date()})

    # -- driving ----------------------------------------------------------------------------

    def candidates(self) -> list[Event]:
        state = self.state
        found: list[Event] = []
        if state.status in (Status.DRAFT, Status.RETURNED):
            found += [Submit(actor=STAFF, urgent=False)] * 3 + [Submit(actor=STAFF, urgent=True)]
        for task in state.tasks:
            me = task.assignee
            other = next(p for p in PEOPLE if p != me)
            if task.kind in (TaskKind.APPROVAL, TaskKind.CHANGE_REVIEW):
                found += [Approve(actor=me, task_id=task.id)] * 4 + [Reject(actor=me, task_id=task.id)]
                found.append(Transfer(actor=me, task_id=task.id, to=other))
            if task.kind is TaskKind.APPROVAL:
                found.append(Return(actor=me, task_id=task.id, note="补充材料"))
                found += [Return(actor=me, task_id=task.id, note="重审", to_node=n) for n in state.approvals]
                for position in SignerPosition:
                    found.append(AddSigner(actor=me, task_id=task.id, people=(other,), position=position))
            if task.kind is TaskKind.STAGE:
                found += [TaskCompleted(actor=me, task_id=task.id)] * 3
            if task.kind is TaskKind.SUMMARY:
                found += [SummarySubmitted(actor=me)] * 3
        found += [TimerFired(timer_id=t, kind=k) for t, k in self.live_timers.items()] * 2
        found += [TimerFired(timer_id=t, kind=k) for t, k in self.dead_timers[-2:]]
        for call in sorted(self.calls):
            found += [PluginResult(call_id=call)] * 3 + [
                PluginResult(call_id=call, outcome=PluginOutcome.REJECT)
            ]
        if state.status in RUNNING:
            found += [Urge(actor=STAFF), MarkUrgent(actor=STAFF), Comment(actor=VP, text="关注")]
            found += [Withdraw(actor=STAFF), Cancel(actor=ADMIN, reason="管理员取消"), Archive(actor=ADMIN)]
            found.append(ChangeRequestSubmit(actor=STAFF, changes={"amount": 1}, reason="调整"))
        return found

    @rule(data=st.data(), minutes=st.integers(1, 60 * 30))
    def act(self, data: st.DataObject, minutes: int) -> None:
        if self.state.status in TERMINAL:
            self.after_the_end()
            return
        event = data.draw(st.sampled_from(self.candidates()))
        now = self.now + dt.timedelta(minutes=minutes)
        before = self.state
        try:
            step = advance(self.graph, before, event, now, self.env)
        except FlowLoopError:
            raise
        except FlowError as refused:
            hypothesis.event(f"refused {type(refused).__name__}")
            assert self.state is before  # a refused event changes nothing
            return
        self.now = now
        if step.state is before:
            assert step.effects == ()
            return
        assert step.state.version == before.version + 1
        self.state = step.state
        self.log.append((event, now))
        hypothesis.event(f"reached {step.state.status}")
        hypothesis.event(f"applied {type(event).__name__}")
        self.track(step.effects, event)

    def after_the_end(self) -> None:
        """Late timers and plugin results change nothing; comments only count the version."""
        for timer_id, kind in self.dead_timers[-3:]:
            step = advance(
                self.graph, self.state, TimerFired(timer_id=timer_id, kind=kind), self.now, self.env
            )
            assert step.state is self.state and step.effects == ()
        step = advance(self.graph, self.state, Comment(actor=STAFF, text="回顾"), self.now, self.env)
        assert step.effects == () and step.state.version == self.state.version + 1

    def track(self, effects: tuple[Effect, ...], event: Event) -> None:
        if isinstance(event, TimerFired):
            self.live_timers.pop(event.timer_id, None)
            self.dead_timers.append((event.timer_id, event.kind))
        if isinstance(event, PluginResult):
            self.calls.discard(event.call_id)
        for effect in effects:
            if isinstance(effect, CreateTask):
                assert effect.task_id not in self.open_tasks
                self.open_tasks.add(effect.task_id)
            elif isinstance(effect, CloseTask):
                self.open_tasks.remove(effect.task_id)
            elif isinstance(effect, ScheduleTimer):
                self.live_timers[effect.timer_id] = effect.kind
            elif isinstance(effect, CancelTimer):
                kind = self.live_timers.pop(effect.timer_id)
                self.dead_timers.append((effect.timer_id, kind))
        self.calls = {t.wait for t in self.state.tokens if t.wait and t.wait not in self.live_timers}

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def tokens_are_unique_and_rest_where_something_waits(self) -> None:
        state = self.state
        ids = [t.id for t in state.tokens]
        assert len(ids) == len(set(ids))
        if getattr(self, "graph", None) is None:
            return
        nodes = {n.id: n for n in self.graph.nodes}
        runs = {r.node: r for r in state.runs}
        open_at = {t.node for t in state.tasks}
        waiting = False
        for token in state.tokens:
            node = nodes[token.node]
            if isinstance(node, ApprovalNode):
                run = runs.get(node.id)
                if state.status is not Status.RETURNED:
                    assert run is not None and run.token == token.id
                    assert node.id in open_at or run.queue or run.suspended
                    waiting = True
            elif isinstance(node, TaskNode):
                assert node.id in open_at or state.status is Status.RETURNED
                waiting = True
            elif isinstance(node, WaitNode | PluginNode):
                assert token.wait is not None or state.status is Status.RETURNED
                waiting = True
            else:
                assert isinstance(node, JoinNode), f"token resting on {node}"
                siblings = [
                    t for t in state.tokens if t.node == node.id and t.frames[-1:] == token.frames[-1:]
                ]
                assert len(siblings) < len([e for e in self.graph.edges if e.target == node.id]) + 1
        if state.status in TERMINAL:
            assert state.tokens == () and state.tasks == () and state.runs == () and state.change is None
        elif state.status in RUNNING:
            assert waiting, "a running instance must wait on a task, a timer or a plugin"
        elif state.status is Status.RETURNED:
            assert state.tasks == () and state.runs == () and state.tokens

    @invariant()
    def effects_describe_the_state(self) -> None:
        state = self.state
        assert {t.id for t in state.tasks} == self.open_tasks
        held = {timer for task in state.tasks for timer in task.timers}
        held |= {t.wait for t in state.tokens if t.wait in self.live_timers}
        assert held == set(self.live_timers)
        assert len({r.node for r in state.runs}) == len(state.runs)
        for task in state.tasks:
            if task.kind is TaskKind.CHANGE_REVIEW:
                assert state.change is not None

    def teardown(self) -> None:
        if getattr(self, "graph", None) is None:
            return
        replayed = new_instance("FLP")
        for event, when in self.log:
            replayed = advance(self.graph, replayed, event, when, self.env).state
        assert replayed == self.state


InstanceMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestInstanceMachine = InstanceMachine.TestCase
