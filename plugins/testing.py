"""The test kit: run a plugin's hooks against a fake context in plain pytest.

No database, server or broker: the organisation is a small in-memory directory
(`sample_org`), the clock a fixed instant, secrets a dict, contacts a dict.

    from plugins.testing import StepKit, FINANCE

    kit = StepKit(FinanceCoReview())
    decision = kit.decide({"amount_field": "budget"}, data={"budget": Decimal("80000")})
    assert isinstance(decision, OpenTasks)
    assert kit.check({"amount_field": "budget"}, fields={"budget": "money"}) == []
    result = kit.perform({"url": "http://127.0.0.1:8001/hook", "secret": "crm"}, secrets={"crm": "s3cret"})
    run = kit.run({"amount_field": "budget"}, data={"budget": Decimal("80000")})  # through the engine
    assert run.assignees() == [FINANCE]
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from plugins.config import StepConfig
from plugins.decisions import CallResult, Decision
from plugins.errors import ConfigInvalid
from plugins.inputs import CallInput, Contacts, NoContacts, StepInput, step_input
from plugins.registry import RegisteredStep, Registry
from plugins.settings import SmtpSettings
from plugins.step import NodeSite
from runtime.calendar import BusinessCalendar
from runtime.flow import Environment, FlowGraph, InstanceState, Status, Step, advance, new_instance
from runtime.flow.effects import CallPlugin, Effect
from runtime.flow.events import Approve, Event, PluginOutcome, PluginResult, Reject, Submit
from runtime.flow.graph import Edge, EndNode, PluginNode, StartNode
from runtime.flow.org import Department, OrgDirectory, Person
from runtime.flow.plugins import PluginContext
from runtime.flow.state import OpenTask

ADMIN, VP, MARKETING_HEAD, STAFF, FINANCE_HEAD, FINANCE = 1, 2, 3, 4, 5, 6
"""The people of `sample_org`: a process admin, a vice-president (supervising leader), the
marketing head and a marketing employee (the default initiator), the finance head and a
finance specialist (role "finance_specialist")."""
HQ, MARKETING, FINANCE_DEPARTMENT = 10, 11, 12

MONDAY = dt.datetime(2025, 9, 22, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
"""The kit's default `now`: Monday 22 September 2025, 10:00 in Shanghai, a working morning."""


def sample_org() -> OrgDirectory:
    """A small organisation: head office, marketing (市场部, MKT) and finance (财务部, FIN)."""
    departments = [
        Department(id=HQ, name="总公司", code="HQ"),
        Department(
            id=MARKETING, name="市场部", code="MKT", parent_id=HQ, head_id=MARKETING_HEAD, leader_id=VP
        ),
        Department(id=FINANCE_DEPARTMENT, name="财务部", code="FIN", parent_id=HQ, head_id=FINANCE_HEAD),
    ]
    people = [
        Person(id=ADMIN, name="系统管理员", department_id=HQ, roles=("process_admin",)),
        Person(id=VP, name="李强", department_id=HQ, position="vice-president"),
        Person(id=MARKETING_HEAD, name="王芳", department_id=MARKETING, manager_id=VP),
        Person(id=STAFF, name="张伟", department_id=MARKETING, manager_id=MARKETING_HEAD),
        Person(id=FINANCE_HEAD, name="陈静", department_id=FINANCE_DEPARTMENT),
        Person(id=FINANCE, name="刘洋", department_id=FINANCE_DEPARTMENT, roles=("finance_specialist",)),
    ]
    return OrgDirectory.build(departments, people, process_admins=[ADMIN])


class FakeContacts:
    """Contacts from a dict: person id -> e-mail address."""

    def __init__(self, emails: Mapping[int, str] | None = None) -> None:
        self.addresses = dict(emails or {})

    async def emails(self, people: Sequence[int]) -> dict[int, str]:
        return {p: self.addresses[p] for p in people if p in self.addresses}


class StepKit:
    """One plugin with a fake context. Every call may override `data`, `initiator`, `now`."""

    def __init__(
        self,
        plugin: Any,
        *,
        org: OrgDirectory | None = None,
        initiator: int = STAFF,
        now: dt.datetime = MONDAY,
        calendar: BusinessCalendar | None = None,
        secrets: Mapping[str, str] | None = None,
        smtp: SmtpSettings | None = None,
        contacts: Contacts | None = None,
        public_url: str = "",
    ) -> None:
        registry = Registry()
        self.step: RegisteredStep = registry.register(plugin, source="test")
        self.engine_plugins = registry.engine_plugins()
        self.org = org or sample_org()
        self.initiator = initiator
        self.now = now
        self.calendar = calendar or BusinessCalendar()
        self.secrets = dict(secrets or {})
        self.smtp = smtp
        self.contacts: Contacts = contacts or NoContacts()
        self.public_url = public_url

    def config(self, config: Mapping[str, Any] | StepConfig) -> StepConfig:
        """The config decoded and checked against the plugin's type (`ConfigInvalid` if not)."""
        if isinstance(config, StepConfig):
            return config
        return self.step.config(config)

    def input(
        self,
        config: Mapping[str, Any] | StepConfig,
        data: Mapping[str, Any] | None = None,
        *,
        node_id: str = "step",
        title: str = "",
        instance: str = "FL202509001",
        initiator: int | None = None,
        now: dt.datetime | None = None,
        urgent: bool = False,
    ) -> StepInput[Any]:
        """The frozen input the hooks get, as the engine would build it."""
        context = PluginContext(
            instance_id=instance,
            node_id=node_id,
            initiator=self.initiator if initiator is None else initiator,
            form=dict(data or {}),
            now=now or self.now,
            org=self.org,
            calendar=self.calendar,
            urgent=urgent,
        )
        return step_input(self.config(config), context, title=title or node_id, calendar=self.calendar)

    def decide(
        self, config: Mapping[str, Any] | StepConfig, data: Mapping[str, Any] | None = None, **given: Any
    ) -> Decision:
        """What `decide` returns for this config and data."""
        return self.step.decide(self.input(config, data, **given))

    def perform(
        self,
        config: Mapping[str, Any] | StepConfig,
        data: Mapping[str, Any] | None = None,
        *,
        call_id: str = "FL202509001-1",
        idempotency_key: str = "FL202509001:1:0",
        attempt: int = 0,
        **given: Any,
    ) -> CallResult:
        """What `perform` returns (exceptions propagate). From async tests use `perform_async`."""
        call = self._call(config, data, call_id, idempotency_key, attempt, given)
        return asyncio.run(self.step.perform(call))

    async def perform_async(
        self,
        config: Mapping[str, Any] | StepConfig,
        data: Mapping[str, Any] | None = None,
        *,
        call_id: str = "FL202509001-1",
        idempotency_key: str = "FL202509001:1:0",
        attempt: int = 0,
        **given: Any,
    ) -> CallResult:
        return await self.step.perform(self._call(config, data, call_id, idempotency_key, attempt, given))

    def _call(
        self,
        config: Mapping[str, Any] | StepConfig,
        data: Mapping[str, Any] | None,
        call_id: str,
        idempotency_key: str,
        attempt: int,
        given: dict[str, Any],
    ) -> CallInput[Any]:
        return CallInput(
            step=self.input(config, data, **given),
            call_id=call_id,
            idempotency_key=idempotency_key,
            attempt=attempt,
            secrets=self.secrets,
            smtp=self.smtp,
            contacts=self.contacts,
            public_url=self.public_url,
        )

    def check(
        self,
        config: Mapping[str, Any],
        *,
        fields: Mapping[str, str] | None = None,
        after: Iterable[str] = ("approval",),
        alongside: Iterable[str] = (),
    ) -> list[str]:
        """The design-time problems of `config`: the type's own (with paths), then `check`'s.

        `fields`: the form's field key -> type; `after`/`alongside`: the approval steps before
        and beside the step (one approval before it by default)."""
        try:
            decoded = self.step.config(config)
        except ConfigInvalid as exc:
            return exc.messages
        site = NodeSite(node_id="step", fields=fields, after=tuple(after), alongside=tuple(alongside))
        return self.step.check(decoded, site)

    def run(
        self,
        config: Mapping[str, Any],
        data: Mapping[str, Any] | None = None,
        *,
        title: str = "",
        initiator: int | None = None,
    ) -> FlowRun:
        """Submit a request whose flow is start -> this step -> end, through the real engine."""
        node = PluginNode(id="step", title=title, plugin=self.step.name, config=dict(config))
        graph = FlowGraph(
            key="plugin-test",
            nodes=(StartNode(id="start"), node, EndNode(id="end")),
            edges=(Edge(source="start", target="step"), Edge(source="step", target="end")),
        )
        env = Environment(
            org=self.org,
            calendar=self.calendar,
            initiator=self.initiator if initiator is None else initiator,
            form=dict(data or {}),
            plugins=self.engine_plugins,
        )
        run = FlowRun(graph, env, self.now)
        run.apply(Submit(actor=env.initiator))
        return run


class FlowRun:
    """A request going through the engine: apply events, read tasks, effects and status."""

    def __init__(self, graph: FlowGraph, env: Environment, now: dt.datetime) -> None:
        self.graph = graph
        self.env = env
        self.now = now
        self.state: InstanceState = new_instance("FL202509001")
        self.effects: list[Effect] = []

    def apply(self, event: Event, *, after: dt.timedelta = dt.timedelta(minutes=5)) -> Step:
        self.now += after
        step = advance(self.graph, self.state, event, self.now, self.env)
        self.state = step.state
        self.effects.extend(step.effects)
        return step

    @property
    def status(self) -> Status:
        return self.state.status

    @property
    def tasks(self) -> tuple[OpenTask, ...]:
        return self.state.tasks

    def assignees(self) -> list[int]:
        return sorted(task.assignee for task in self.state.tasks)

    def task_of(self, person: int) -> OpenTask:
        return next(task for task in self.state.tasks if task.assignee == person)

    def approve(self, person: int, comment: str = "") -> Step:
        return self.apply(Approve(actor=person, task_id=self.task_of(person).id, comment=comment))

    def reject(self, person: int, comment: str = "") -> Step:
        return self.apply(Reject(actor=person, task_id=self.task_of(person).id, comment=comment))

    def calls(self) -> list[CallPlugin]:
        """The plugin calls the engine asked for (what the actor would run)."""
        return [effect for effect in self.effects if isinstance(effect, CallPlugin)]

    def answer(self, outcome: PluginOutcome = PluginOutcome.CONTINUE, note: str = "") -> Step:
        """Report the latest call's result, as the actor or a callback would."""
        return self.apply(PluginResult(call_id=self.calls()[-1].call_id, outcome=outcome, note=note))


__all__ = [
    "ADMIN",
    "FINANCE",
    "FINANCE_DEPARTMENT",
    "FINANCE_HEAD",
    "HQ",
    "MARKETING",
    "MARKETING_HEAD",
    "MONDAY",
    "STAFF",
    "VP",
    "FakeContacts",
    "FlowRun",
    "StepKit",
    "sample_org",
]
