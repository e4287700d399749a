"""The mutable working set of one `advance` call, turned back into a frozen state at the end.

Handlers change dicts here instead of rebuilding frozen structs at every move; `finish`
builds the new `InstanceState` once. Effects are collected in order.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Mapping
from typing import Any, NamedTuple

from runtime.flow._compiled import CompiledFlow
from runtime.flow.assignees import RuleInput
from runtime.flow.effects import Effect, Notify, RecordEvent, SetStatus
from runtime.flow.environment import Environment, sequential_id
from runtime.flow.errors import TransitionError
from runtime.flow.graph import ApprovalNode, PluginNode, Sla
from runtime.flow.lifecycle import TRANSITIONS, Status
from runtime.flow.plugins import plugin_approval
from runtime.flow.state import ApprovalRun, InstanceState, OpenTask, PendingChange, Token


class Step(NamedTuple):
    """What `advance` returns: the new state and the effects to apply with it."""

    state: InstanceState
    effects: tuple[Effect, ...]


class Work:
    __slots__ = (
        "_id_prefix",
        "_initiator_view",
        "_rule_input",
        "approvals",
        "change",
        "chosen",
        "deadlines",
        "effects",
        "env",
        "flow",
        "last_urged_at",
        "now",
        "pending",
        "runs",
        "seq",
        "state",
        "status",
        "submitted_at",
        "tasks",
        "tokens",
        "urgent",
    )

    def __init__(self, flow: CompiledFlow, state: InstanceState, now: dt.datetime, env: Environment) -> None:
        self.flow = flow
        self.state = state
        self.now = now
        self.env = env
        self.status = state.status
        self.seq = state.seq
        self.urgent = state.urgent
        self.tokens: dict[str, Token] = {token.id: token for token in state.tokens}
        self.tasks: dict[str, OpenTask] = {task.id: task for task in state.tasks}
        self.runs: dict[str, ApprovalRun] = {run.node: run for run in state.runs}
        self.approvals = state.approvals
        self.chosen = state.chosen
        self.submitted_at = state.submitted_at
        self.last_urged_at = state.last_urged_at
        self.change: PendingChange | None = state.change
        self.effects: list[Effect] = []
        self.pending: deque[Token] = deque()
        self._initiator_view: dict[str, Any] | None = None
        self._rule_input: RuleInput | None = None
        # The default ids are "<instance>-<seq>": formatted here, without a call per id.
        self._id_prefix = f"{state.instance_id}-" if env.new_id is sequential_id else None
        self.deadlines: dict[Sla, tuple[dt.datetime, dt.datetime | None, dt.datetime]] = {}
        """SLA -> its (due, reminder, overdue) times from `now`, computed once per step. Keyed by
        value: a resumed step's SLA is a short-lived copy whose id() a later copy may reuse."""

    # -- ids and keys -------------------------------------------------------------------

    def new_id(self) -> str:
        self.seq += 1
        if self._id_prefix is not None:
            return f"{self._id_prefix}{self.seq}"
        return self.env.new_id(self.state.instance_id, self.seq)

    def key(self) -> str:
        """An idempotency key unique within the instance: "<instance>:<version>:<effect index>"."""
        return f"{self.state.instance_id}:{self.state.version + 1}:{len(self.effects)}"

    # -- effects ------------------------------------------------------------------------

    def emit(self, effect: Effect) -> None:
        self.effects.append(effect)

    def record(
        self,
        kind: str,
        *,
        node_id: str | None = None,
        task_id: str | None = None,
        actor: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.effects.append(
            RecordEvent(kind=kind, node_id=node_id, task_id=task_id, actor=actor, data=data or {})
        )

    def notify(self, recipients: tuple[int, ...], template: str, payload: dict[str, Any]) -> None:
        if recipients:
            self.effects.append(
                Notify(recipients=recipients, template=template, payload=payload, key=self.key())
            )

    def set_status(self, status: Status) -> None:
        """Change status through the transition table; a change it does not list raises."""
        if status is self.status:
            return
        if status not in TRANSITIONS[self.status]:
            raise TransitionError(
                f"status {self.status} cannot change to {status}", status=self.status, attempted=status
            )
        self.effects.append(SetStatus(status=status, previous=self.status))
        self.status = status

    # -- reading the environment --------------------------------------------------------

    @property
    def initiator(self) -> int:
        return self.env.initiator

    @property
    def is_urgent(self) -> bool:
        return self.urgent or self.env.urgent

    def rule_input(self, node_id: str) -> RuleInput:
        chosen = self.chosen.get(node_id) if self.chosen else None
        if chosen:
            return RuleInput(self.env.org, self.env.initiator, self.env.form, chosen)
        if self._rule_input is None:  # the same for every node nobody was chosen for
            self._rule_input = RuleInput(self.env.org, self.env.initiator, self.env.form, ())
        return self._rule_input

    def initiator_view(self) -> Mapping[str, Any]:
        """The initiator's attributes as branch conditions see them (`initiator.<attr>`)."""
        if self._initiator_view is None:
            self._initiator_view = initiator_attributes(self.env)
        return self._initiator_view

    def approval_node(self, node_id: str) -> ApprovalNode | None:
        """The approval settings tasks at `node_id` follow: the approval node itself, or for a
        plugin node with open tasks, the approval node its `PluginTasks` decision behaves as."""
        node = self.flow.nodes.get(node_id)
        if isinstance(node, ApprovalNode):
            return node
        run = self.runs.get(node_id)
        if isinstance(node, PluginNode) and run is not None and run.plugin is not None:
            return plugin_approval(node, run.plugin)
        return None

    def open_tasks(self, node_id: str) -> list[OpenTask]:
        return [task for task in self.tasks.values() if task.node == node_id]

    # -- the result ---------------------------------------------------------------------

    def finish(self) -> Step:
        state = self.state
        new = InstanceState(
            instance_id=state.instance_id,
            schema_version=state.schema_version,
            status=self.status,
            version=state.version + 1,
            seq=self.seq,
            urgent=self.urgent,
            tokens=tuple(self.tokens.values()),
            tasks=tuple(self.tasks.values()),
            runs=tuple(self.runs.values()),
            approvals=self.approvals,
            chosen=self.chosen,
            submitted_at=self.submitted_at,
            last_urged_at=self.last_urged_at,
            change=self.change,
        )
        return Step(new, tuple(self.effects))


def initiator_attributes(env: Environment) -> dict[str, Any]:
    org = env.org
    person = org.people.get(env.initiator)
    department = org.department_of(env.initiator)
    return {
        "id": env.initiator,
        "name": person.name if person else "",
        "department": department.name if department else "",
        "department_id": department.id if department else None,
        "department_code": department.code if department else "",
        "position": person.position if person else "",
        "roles": list(person.roles) if person else [],
        "manager_id": org.manager_of(env.initiator),
    }
