"""A broken plugin never takes the app down or loses a request: it becomes an incident.

The engine-level cases (a raising hook, a bad config, a disabled plugin, garbage returned)
are in test_engine_decisions.py and test_registry.py; here the actor's side: retries, the
incident, and recovery through the engine once the plugin works.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import runtime.service.creation as creation
import runtime.service.pipeline as pipeline
from plugins import Registry
from plugins.calls import CallStatus, run_call
from plugins.incidents import plugin_incidents, retry_incident
from plugins.registry import DisabledStep, PluginProblem
from storage.tables import Incident, Instance, OutboxMessage
from tests.plugins.steps import Flaky, Raising, Sleeper
from tests.plugins.support import hook_flow, plugin_calls, publish, start_request
from tests.service.support import Clock, open_task, person_id


def _registry(*steps: Any) -> Registry:
    registry = Registry()
    for step in steps:
        registry.register(step)
    return registry


@pytest.fixture()
def engine_knows(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Give the service's engine a registry's plugins (as `Environment.plugins`)."""

    def use(registry: Registry) -> None:
        plugins = registry.engine_plugins()
        monkeypatch.setattr(pipeline, "step_plugins", lambda: plugins)
        monkeypatch.setattr(creation, "step_plugins", lambda: plugins)

    yield use


async def _request(clock: Clock, plugin: str, config: dict[str, Any] | None = None) -> int:
    node = {"type": "plugin", "id": "probe", "title": "探测", "plugin": plugin, "config": config or {}}
    await publish("probe", hook_flow("probe", node), clock())
    return await start_request("probe", clock)


async def _attempts(call: dict[str, Any], registry: Registry, clock: Clock, count: int) -> list[Any]:
    return [
        await run_call(call["key"], call["payload"], attempt=n, now=clock(), registry=registry)
        for n in range(count)
    ]


async def test_a_raising_decide_is_retried_then_becomes_an_incident(db: None) -> None:
    clock = Clock()
    registry = _registry(Raising())
    instance_id = await _request(clock, "raising")
    (call,) = await plugin_calls()
    reports = await _attempts(call, registry, clock, 5)
    assert [r.status for r in reports] == [CallStatus.RETRY] * 4 + [CallStatus.INCIDENT]
    (incident,) = await plugin_incidents()
    assert (incident.message, incident.plugin, incident.instance_id) == (
        "RuntimeError: boom",
        "raising",
        instance_id,
    )
    row = await Instance.select(Instance.status).where(Instance.id == instance_id).first()
    assert row["status"] == "in_approval"


async def test_a_raising_perform_is_retried_and_a_retry_from_the_incident_succeeds(db: None) -> None:
    clock = Clock()
    flaky = Flaky()
    registry = _registry(flaky)
    instance_id = await _request(clock, "flaky", {"fail_times": 5})
    (call,) = await plugin_calls()
    reports = await _attempts(call, registry, clock, 5)
    assert reports[-1].status is CallStatus.INCIDENT
    assert reports[-1].message == "ConnectionError: the other system is down"
    assert set(flaky.performed) == {call["key"]}, "every attempt carries the same idempotency key"
    assert await retry_incident(reports[-1].incident_id, await person_id("admin"), clock())
    row = await OutboxMessage.select(OutboxMessage.status).where(OutboxMessage.key == call["key"]).first()
    assert row["status"] == "pending"
    assert (
        await run_call(call["key"], call["payload"], attempt=0, now=clock(), registry=registry)
    ).status is (CallStatus.DONE)
    await open_task(instance_id, "e2001", "dept_head")


async def test_a_result_that_says_do_not_retry_is_an_incident_at_once(db: None) -> None:
    clock = Clock()
    registry = _registry(Flaky())
    await _request(clock, "flaky", {"fail_times": 0, "limit": 0})
    (call,) = await plugin_calls()
    report = await run_call(call["key"], call["payload"], attempt=0, now=clock(), registry=registry)
    assert (report.status, report.message) == (CallStatus.INCIDENT, "the other system said no")


async def test_a_plugin_that_is_not_installed_is_an_incident_not_a_crash(db: None) -> None:
    clock = Clock()
    await _request(clock, "uninstalled")
    (call,) = await plugin_calls()
    reports = await _attempts(call, Registry(), clock, 5)
    assert reports[-1].status is CallStatus.INCIDENT
    assert reports[-1].message == "PluginUnavailable: step plugin 'uninstalled' is not installed"


async def test_a_bad_config_is_an_incident_at_once(db: None) -> None:
    clock = Clock()
    await _request(clock, "flaky", {"fail_times": "many"})
    (call,) = await plugin_calls()
    report = await run_call(call["key"], call["payload"], attempt=0, now=clock(), registry=_registry(Flaky()))
    assert report.status is CallStatus.INCIDENT
    assert report.message == "ConfigInvalid: flaky: config.fail_times: expected `int`, got `str`"


async def test_once_the_plugin_works_the_engine_applies_its_decision(db: None, engine_knows: Any) -> None:
    clock = Clock()
    head = await person_id("e2001")
    registry = _registry(Raising())
    engine_knows(registry)
    instance_id = await _request(clock, "raising", {"fail_times": 1, "person": head})
    (call,) = await plugin_calls()  # decide raised inside the engine: the step waits on a call
    report = await run_call(call["key"], call["payload"], attempt=0, now=clock(), registry=registry)
    assert report.status is CallStatus.DONE, "the actor decided again and handed the decision back"
    task = await open_task(instance_id, "e2001", "probe")
    assert task["reason"]["because"] == "probe" and task["reason"]["plugin"] == "raising"
    assert await Incident.count() == 0


async def test_without_the_plugin_the_engine_cannot_open_its_tasks_and_says_so(db: None) -> None:
    clock = Clock()
    registry = _registry(Raising())
    await _request(clock, "raising", {"fail_times": 0})
    (call,) = await plugin_calls()
    reports = await _attempts(call, registry, clock, 5)
    assert reports[-1].status is CallStatus.INCIDENT
    assert reports[-1].message.startswith("EngineLacksPlugin: step plugin 'raising' decided OpenTasks")


def test_a_disabled_plugins_steps_fail_with_the_load_problem() -> None:
    step = DisabledStep(PluginProblem(name="x", source="pkg", message="ImportError: nope"))
    decision = step.enter(None, None)  # type: ignore[arg-type]
    assert decision.reason == "step plugin 'x' is disabled: ImportError: nope"  # type: ignore[union-attr]


async def test_a_malformed_call_message_is_an_incident(db: None) -> None:
    report = await run_call("bad:1:0", {"plugin": "webhook"}, attempt=0, now=Clock()(), registry=Registry())
    assert report.status is CallStatus.INCIDENT and "malformed call message" in report.message
    (incident,) = await plugin_incidents()
    assert incident.key == "bad:1:0"


async def test_a_timer_in_the_past_is_not_handed_back_to_the_engine_forever(db: None) -> None:
    clock = Clock()
    config = {"until": clock().isoformat(), "past_timer": True}
    await _request(clock, "sleeper", config)
    (call,) = await plugin_calls()
    report = await run_call(
        call["key"], call["payload"], attempt=0, now=clock(), registry=_registry(Sleeper())
    )
    assert report.status is CallStatus.INCIDENT and "is not after now" in report.message
