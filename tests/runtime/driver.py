"""A small driver for engine tests: applies events, keeps the event log, finds tasks."""

from __future__ import annotations

import datetime as dt
from typing import Any

from runtime.flow import Environment, FlowGraph, InstanceState, Status, Step, advance, new_instance
from runtime.flow.effects import Effect
from runtime.flow.events import Event
from runtime.flow.state import OpenTask


class Driver:
    def __init__(
        self, graph: FlowGraph, env: Environment, now: dt.datetime, instance_id: str = "FL1"
    ) -> None:
        self.graph = graph
        self.env = env
        self.now = now
        self.state: InstanceState = new_instance(instance_id)
        self.log: list[tuple[Event, dt.datetime]] = []
        self.effects: list[Effect] = []
        self.last: tuple[Effect, ...] = ()

    def apply(self, event: Event, *, after: dt.timedelta = dt.timedelta(minutes=5)) -> Step:
        self.now += after
        step = advance(self.graph, self.state, event, self.now, self.env)
        self.state = step.state
        self.log.append((event, self.now))
        self.last = step.effects
        self.effects.extend(step.effects)
        return step

    @property
    def status(self) -> Status:
        return self.state.status

    def tasks(self, node: str | None = None) -> list[OpenTask]:
        return [t for t in self.state.tasks if node is None or t.node == node]

    def task_of(self, person: int, node: str | None = None) -> OpenTask:
        found = [t for t in self.tasks(node) if t.assignee == person]
        assert len(found) == 1, f"expected one task of {person} at {node}: {self.state.tasks}"
        return found[0]

    def assignees(self, node: str | None = None) -> list[int]:
        return sorted(t.assignee for t in self.tasks(node))

    def of_type(self, kind: type[Any], effects: tuple[Effect, ...] | list[Effect] | None = None) -> list[Any]:
        return [e for e in (self.last if effects is None else effects) if isinstance(e, kind)]

    def replay(self) -> InstanceState:
        state = new_instance(self.state.instance_id)
        for event, when in self.log:
            state = advance(self.graph, state, event, when, self.env).state
        return state
