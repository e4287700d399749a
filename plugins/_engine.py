"""A registered plugin as the engine sees it: `enter(node, context)` -> an engine decision.

The adapter decodes the node's config, builds the frozen `StepInput`, calls `decide` and
translates the SDK decision into the engine's (`runtime.flow.plugins`). Whatever goes wrong
(bad config, a raising hook, a hook returning something else) becomes `PluginFail` with the
reason, so a broken plugin stops its own step and the actor turns it into an incident.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec

from plugins.config import StepConfig
from plugins.decisions import (
    Complete,
    Fail,
    Notice,
    OpenTasks,
    Outcome,
    Perform,
    ScheduleTimer,
    WaitForCallback,
)
from plugins.errors import ConfigInvalid
from runtime.calendar import BusinessCalendar
from runtime.flow.graph import PluginNode
from runtime.flow.plugins import (
    PluginAwait,
    PluginContext,
    PluginContinue,
    PluginDecision,
    PluginFail,
    PluginNotice,
    PluginReject,
    PluginTasks,
    PluginTimer,
)

_DEFAULT_CALENDAR = BusinessCalendar()
_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)


def decode_config(name: str, config_type: type[StepConfig], raw: Mapping[str, Any]) -> StepConfig:
    """The node's config as `config_type`, or `ConfigInvalid` naming each bad path."""
    try:
        return msgspec.convert(dict(raw), config_type)
    except msgspec.ValidationError as exc:
        raise ConfigInvalid(name, [config_message(str(exc))]) from exc


def config_message(error: str) -> str:
    """A msgspec validation message as "config.<path>: <problem>"."""
    match = _AT.match(error)
    assert match is not None  # the pattern matches any text
    message = match.group("message")
    path = match.group("path") or ""
    return f"config{path}: {message[:1].lower()}{message[1:]}"


def to_engine(decision: object, plugin: str) -> PluginDecision:
    """The engine's form of an SDK decision; anything else is a failure of the plugin."""
    if isinstance(decision, Complete):
        if decision.outcome == Outcome.REJECT:
            return PluginReject(note=decision.note)
        return PluginContinue(note=decision.note, output=decision.output, notices=_notices(decision.notify))
    if isinstance(decision, OpenTasks):
        return PluginTasks(
            assignees=decision.assignees,
            mode=decision.mode,
            sla=decision.sla,
            on_reject=decision.on_reject,
            empty_policy=decision.empty_policy,
            actions=decision.actions,
            reason=dict(decision.why),
            title=decision.title,
            note=decision.note,
        )
    if isinstance(decision, Perform | WaitForCallback):
        return PluginAwait(note=decision.note, notices=_notices(decision.notify))
    if isinstance(decision, ScheduleTimer):
        return PluginTimer(due_at=decision.at, note=decision.note)
    if isinstance(decision, Fail):
        return PluginFail(reason=decision.reason)
    return PluginFail(reason=f"{plugin}: decide returned {type(decision).__name__}, not a decision")


def _notices(notices: tuple[Notice, ...]) -> tuple[PluginNotice, ...]:
    return tuple(PluginNotice(recipients=n.recipients, text=n.text) for n in notices if n.recipients)


def calendar_of(context: PluginContext) -> BusinessCalendar:
    return context.calendar if context.calendar is not None else _DEFAULT_CALENDAR


def failed(exc: BaseException) -> PluginFail:
    return PluginFail(reason=f"{type(exc).__name__}: {exc}"[:2_000])


def node_title(node: PluginNode) -> str:
    return node.title or node.id
