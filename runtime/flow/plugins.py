"""The hook point for plugin steps: a plugin node is opaque to the engine.

When a token enters a `plugin` node, the engine asks the plugin registered under the node's
`plugin` name (`Environment.plugins`) for a decision, from a frozen input and without any
I/O. `PluginContinue` moves straight on; `PluginAwait` emits a `CallPlugin` effect and the
token waits for a `PluginResult` event with the call's id. A name nobody registered behaves
as `PluginAwait`: the work happens outside, in the plugin's actor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Protocol

from runtime.flow.graph import PluginNode
from runtime.flow.shape import Shape


class PluginContext(Shape, frozen=True, kw_only=True):
    instance_id: str
    node_id: str
    initiator: int
    form: Mapping[str, Any]
    now: dt.datetime


class PluginContinue(Shape, frozen=True, kw_only=True):
    """Nothing to wait for: the token moves on. `note` goes into the timeline."""

    note: str = ""


class PluginAwait(Shape, frozen=True, kw_only=True):
    """Hand the work to the plugin's actor and wait for its `PluginResult`."""


PluginDecision = PluginContinue | PluginAwait


class StepPlugin(Protocol):
    """What the engine needs from a step plugin: a pure decision on entering its node."""

    def enter(self, node: PluginNode, context: PluginContext) -> PluginDecision: ...
