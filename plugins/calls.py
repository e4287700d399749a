"""One plugin call, as the `call_plugin` actor runs it: decide again, perform, report back.

The service writes an outbox message "call_plugin" for every `CallPlugin` effect, in the
transaction that made the step wait (`runtime.service.outbox`); the relay hands it to the
actor, which calls `run_call(key, payload, attempt=..., now=...)`:

1. Load the request. If no step waits on the call any more (answered, withdrawn, ended), stop:
   a message delivered twice does nothing the second time.
2. Ask the plugin's pure `decide` again, with the same input the engine gave it.
   - `Perform` -> run `perform` (the side effect) with `idempotency_key` = the outbox key, the
     same on every retry, and report its result as a `PluginResult` event through the service
     (`report_plugin_result`); `WaitForCallback` from either -> the timeline notes the wait (once
     per call), nothing more (a callback will answer); `Fail` or an exception -> retry or
     incident (below).
   - a decision only the engine applies (tasks, a timer, completing with notices) -> a
     `PluginResult` with outcome "retry", so the engine asks the plugin itself. This is also how
     a step whose `decide` failed inside the engine recovers once the plugin works again.
3. On failure: with retries left (the plugin's `retry_policy`, and the error `retryable`), the
   report says RETRY with the back-off to wait; otherwise an `Incident` (source "plugin") is
   written that an admin can retry or skip (`plugins.incidents`); the step keeps waiting and
   the request's other branches go on.

Nothing here raises for a plugin's failure; an infrastructure failure while writing the
incident itself propagates, so dramatiq retries the message.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from plugins import _timeline
from plugins._engine import node_title, to_engine
from plugins.decisions import CallResult, Complete, Decision, Fail, Outcome, Perform, WaitForCallback
from plugins.errors import EngineLacksPlugin, PluginUnavailable, StepFailed
from plugins.incidents import open_incident
from plugins.inputs import CallInput, Contacts, StepInput, step_input
from plugins.registry import RegisteredStep, Registry, default_registry
from plugins.settings import DeliverySettings, delivery_settings
from plugins.step import RetryPolicy
from runtime.flow.errors import TransitionError
from runtime.flow.events import PluginOutcome
from runtime.flow.graph import PluginNode
from runtime.flow.plugins import PluginContext, PluginFail, PluginTimer
from runtime.flow.state import InstanceState
from runtime.service.commands import report_plugin_result
from runtime.service.form_data import engine_form
from runtime.service.org_directory import load_org_directory
from runtime.service.pipeline import CALENDAR, LoadedInstance, load_instance
from storage.database import write_transaction
from storage.tables import InstanceEvent, Person

log = logging.getLogger("formflow.plugins")


class CallMessage(msgspec.Struct, frozen=True, kw_only=True):
    """The payload of a "call_plugin" outbox message."""

    call_id: str
    plugin: str
    node_id: str
    instance_id: int
    number: str = ""
    config: dict[str, Any] = {}


class CallStatus(enum.StrEnum):
    DONE = "done"  # the result was reported; the step moved on
    WAITING = "waiting"  # an outside system answers later (a callback)
    STALE = "stale"  # nothing waits on this call any more: nothing was done
    RETRY = "retry"  # failed; run the message again after `retry_in` seconds
    INCIDENT = "incident"  # failed for good; `incident_id` is the admin's incident


class CallReport(msgspec.Struct, frozen=True, kw_only=True):
    status: CallStatus
    message: str = ""
    retry_in: float = 0.0
    incident_id: int | None = None


class DatabaseContacts:
    """E-mail addresses from the people table."""

    async def emails(self, people: Sequence[int]) -> dict[int, str]:
        if not people:
            return {}
        rows = await Person.select(Person.id, Person.email).where(
            Person.id.is_in(list(people)) & (Person.email != "")
        )
        return {row["id"]: row["email"] for row in rows}


async def run_call(
    key: str,
    payload: Mapping[str, Any],
    *,
    attempt: int,
    now: dt.datetime,
    registry: Registry | None = None,
    settings: DeliverySettings | None = None,
    contacts: Contacts | None = None,
) -> CallReport:
    """Run one call (see the module docstring); `attempt` counts from 0, `now` is aware."""
    registry = registry or default_registry()
    try:
        message = msgspec.convert(dict(payload), CallMessage)
    except msgspec.ValidationError as exc:
        reason = f"malformed call message: {exc}"
        incident = await open_incident(key, dict(payload), reason, attempt + 1, now)
        return CallReport(status=CallStatus.INCIDENT, message=reason, incident_id=incident)
    step = registry.get(message.plugin)
    try:
        return await _run(key, message, step, registry, attempt, now, settings, contacts)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"[:2_000] if not isinstance(exc, StepFailed) else exc.reason
        policy = _policy(step, message)
        if getattr(exc, "retryable", True) and attempt + 1 < policy.attempts:
            delay = policy.delay(attempt).total_seconds()
            log.info("plugin call %s (%s) failed, retrying in %.1f s: %s", key, message.plugin, delay, reason)
            return CallReport(status=CallStatus.RETRY, message=reason, retry_in=delay)
        body = msgspec.to_builtins(message)
        incident = await open_incident(key, body, reason, attempt + 1, now)
        log.warning("plugin call %s (%s) is now incident %s: %s", key, message.plugin, incident, reason)
        return CallReport(status=CallStatus.INCIDENT, message=reason, incident_id=incident)


async def _run(
    key: str,
    message: CallMessage,
    step: RegisteredStep | None,
    registry: Registry,
    attempt: int,
    now: dt.datetime,
    settings: DeliverySettings | None,
    contacts: Contacts | None,
) -> CallReport:
    loaded = await load_instance(message.instance_id)
    if not waits_on(loaded.state, message.call_id):
        return CallReport(status=CallStatus.STALE)
    if step is None:
        problem = registry.problem_for(message.plugin)
        why = f"disabled: {problem.message}" if problem else "not installed"
        raise PluginUnavailable(f"step plugin {message.plugin!r} is {why}")
    node = _node(loaded, message.node_id)
    given = await _step_input(step, node, loaded, now)
    decision: Decision = step.decide(given)
    if isinstance(decision, Perform):
        settings = settings or delivery_settings()
        call = CallInput(
            step=given,
            call_id=message.call_id,
            idempotency_key=key,
            attempt=attempt,
            secrets=settings.secrets,
            smtp=settings.smtp,
            contacts=contacts or DatabaseContacts(),
            public_url=settings.public_url,
        )
        return await _apply(message, await step.perform(call), now, loaded.row_version)
    if isinstance(decision, Fail | WaitForCallback):
        return await _apply(message, decision, now, loaded.row_version)
    _check_for_engine(decision, step.name, now)
    return await _hand_back(loaded, message, decision, now)


def waits_on(state: InstanceState, call_id: str) -> bool:
    """Whether a token of the instance waits for the plugin call `call_id`."""
    return any(token.wait == call_id and not token.timer for token in state.tokens)


async def _step_input(
    step: RegisteredStep, node: PluginNode, loaded: LoadedInstance, now: dt.datetime
) -> StepInput[Any]:
    context = PluginContext(
        instance_id=loaded.state.instance_id,
        node_id=node.id,
        initiator=loaded.initiator,
        form=engine_form(loaded.definition.schema, loaded.data),
        now=now,
        org=await load_org_directory(),
        calendar=CALENDAR,
        urgent=loaded.urgent or loaded.state.urgent,
    )
    return step_input(step.config(node.config), context, title=node_title(node), calendar=CALENDAR)


def _node(loaded: LoadedInstance, node_id: str) -> PluginNode:
    flow = loaded.definition.runnable_flow()
    node = next((n for n in flow.nodes if n.id == node_id), None)
    if not isinstance(node, PluginNode):
        raise StepFailed(f"the flow has no plugin step {node_id!r}", retryable=False)
    return node


async def _apply(message: CallMessage, result: CallResult, now: dt.datetime, version: int) -> CallReport:
    if isinstance(result, WaitForCallback):
        data = {"plugin": message.plugin, "call_id": message.call_id, "note": result.note}
        async with write_transaction(InstanceEvent._meta.db):
            await _timeline.note(message.instance_id, _timeline.WAITING, message.node_id, data, now, once=True)
        return CallReport(status=CallStatus.WAITING, message=result.note)
    if isinstance(result, Fail):
        raise StepFailed(result.reason, retryable=result.retry)
    if not isinstance(result, Complete):
        raise StepFailed(f"perform returned {type(result).__name__}, not a result", retryable=False)
    outcome = PluginOutcome.REJECT if result.outcome == Outcome.REJECT else PluginOutcome.CONTINUE
    return await _report(message, now, version, outcome, output=result.output, note=result.note)


def _check_for_engine(decision: Decision, plugin: str, now: dt.datetime) -> None:
    """Refuse what the engine would turn into a failure again (and so into a new call)."""
    engine = to_engine(decision, plugin)
    if isinstance(engine, PluginFail):
        raise StepFailed(engine.reason)
    if isinstance(engine, PluginTimer) and (engine.due_at.tzinfo is None or engine.due_at <= now):
        raise StepFailed(f"timer due at {engine.due_at.isoformat()} is not after now", retryable=False)


async def _hand_back(
    loaded: LoadedInstance, message: CallMessage, decision: Decision, now: dt.datetime
) -> CallReport:
    """Let the engine ask the plugin itself; it applies tasks, timers and notices."""
    report = await _report(message, now, loaded.row_version, PluginOutcome.RETRY)
    if report.status is not CallStatus.STALE:
        return report
    if isinstance(decision, Complete):  # the engine lacks the plugin: report the result itself
        return await _apply(message, decision, now, loaded.row_version)
    raise EngineLacksPlugin(
        f"step plugin {message.plugin!r} decided {type(decision).__name__}, which only the engine can "
        "apply, but the service's Environment.plugins lacks it (use plugins.engine_plugins())"
    )


async def _report(
    message: CallMessage,
    now: dt.datetime,
    version: int,
    outcome: PluginOutcome,
    *,
    output: dict[str, Any] | None = None,
    note: str = "",
) -> CallReport:
    """Feed the result to the engine; STALE when it changed nothing (`version`: the row
    version the call was checked against)."""
    try:
        result = await report_plugin_result(
            message.instance_id, message.call_id, now, outcome=outcome, output=output, note=note[:2_000]
        )
    except TransitionError:  # the request ended meanwhile: nothing waits for this result
        return CallReport(status=CallStatus.STALE)
    if result.row_version == version:
        return CallReport(status=CallStatus.STALE)
    return CallReport(status=CallStatus.DONE, message=str(outcome))


def _policy(step: RegisteredStep | None, message: CallMessage) -> RetryPolicy:
    if step is None:
        return RetryPolicy()
    try:
        return step.retry_policy(step.config(message.config))
    except Exception:  # a config that does not decode: the default policy
        return step.retry_policy(None)
