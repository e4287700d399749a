"""Callbacks: an outside system answers a plugin call that waits for it (`WaitForCallback`).

    result = await accept_callback(call_id, raw_body, request.headers["X-Formflow-Signature"],
                                   now=now)

The body is JSON {"outcome": "continue" | "reject", "note": "...", "output": {...}} (every key
optional), signed like the webhook's own POST: HMAC-SHA256 of the raw body with the secret the
step's plugin names for callbacks (`callback_secret`). A valid callback is fed to the engine
as a `PluginResult` through the service, in one transaction. The same signed answer again (a
sender that lost our reply and retries) is answered as the first was and changes nothing. Errors (`plugins.errors`): `UnknownCall` (404: no step waits
for this call), `BadSignature` (401), `BadCallbackBody` (422).

Call ids are minted by the engine as "<request number>-<n>" (`runtime.flow.sequential_id`,
which the service uses), so the request is found by its number.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from plugins.calls import waits_on
from plugins.decisions import Outcome
from plugins.errors import BadCallbackBody, BadSignature, ConfigInvalid, UnknownCall
from plugins.registry import Registry, default_registry
from plugins.settings import DeliverySettings, delivery_settings
from plugins.signing import verify_signature
from runtime.flow.errors import TransitionError
from runtime.flow.events import PluginOutcome
from runtime.flow.graph import FlowGraph, PluginNode
from runtime.service._command import unchanged
from runtime.service.commands import report_plugin_result
from runtime.service.pipeline import load_instance
from runtime.service.views import CommandResult
from storage.tables import Instance, InstanceEvent

BODY_LIMIT = 64 * 1024
"""Largest callback body accepted (bytes)."""


class CallbackBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    outcome: Outcome = Outcome.CONTINUE
    note: Annotated[str, Meta(max_length=2_000)] = ""
    output: dict[str, Any] = {}


_decoder = msgspec.json.Decoder(CallbackBody)


async def accept_callback(
    call_id: str,
    body: bytes,
    signature: str,
    *,
    now: dt.datetime,
    registry: Registry | None = None,
    settings: DeliverySettings | None = None,
) -> CommandResult:
    """Verify and apply an outside system's answer to the call `call_id` (see the module)."""
    registry = registry or default_registry()
    settings = settings or delivery_settings()
    number, _, _ = call_id.rpartition("-")
    row = await Instance.select(Instance.id).where(Instance.number == number).first() if number else None
    if row is None:
        raise UnknownCall(f"no request waits for call {call_id!r}")
    loaded = await load_instance(row["id"])
    token = next((t for t in loaded.state.tokens if t.wait == call_id and not t.timer), None)
    flow = loaded.definition.flow
    node = next((n for n in flow.nodes if token is not None and n.id == token.node), None) if flow else None
    answered = False
    if not isinstance(node, PluginNode) or not waits_on(loaded.state, call_id):
        node = await _answered_at(loaded.id, call_id, flow)
        if node is None:
            raise UnknownCall(f"no step waits for call {call_id!r}")
        answered = True
    step = registry.get(node.plugin)
    try:
        secret_name = step.callback_secret(step.config(node.config)) if step is not None else None
    except ConfigInvalid:
        secret_name = None
    if secret_name is None:
        raise UnknownCall(f"the step of call {call_id!r} does not accept callbacks")
    secret = settings.secrets.get(secret_name)
    if secret is None or not verify_signature(secret, body, signature):
        raise BadSignature("the signature does not match the body")
    if len(body) > BODY_LIMIT:
        raise BadCallbackBody(f"the body is larger than {BODY_LIMIT} bytes")
    if answered:
        return unchanged(loaded)  # a signed repeat (the sender lost our answer): nothing changes
    try:
        answer = _decoder.decode(body) if body.strip() else CallbackBody()
    except msgspec.DecodeError as exc:
        raise BadCallbackBody(f"the body is not a callback: {exc}") from exc
    outcome = PluginOutcome.REJECT if answer.outcome == Outcome.REJECT else PluginOutcome.CONTINUE
    try:
        result = await report_plugin_result(
            loaded.id, call_id, now, outcome=outcome, output=answer.output, note=answer.note
        )
    except TransitionError as exc:
        raise UnknownCall(f"the request of call {call_id!r} has ended") from exc
    if result.row_version == loaded.row_version:
        raise UnknownCall(f"no step waits for call {call_id!r} any more")
    return result


async def _answered_at(instance_id: int, call_id: str, flow: FlowGraph | None) -> PluginNode | None:
    """The plugin step whose call `call_id` was already answered, from the request's events."""
    if flow is None:
        return None
    rows = (
        await InstanceEvent.select(InstanceEvent.node_id, InstanceEvent.data)
        .where((InstanceEvent.instance == instance_id) & (InstanceEvent.kind == "plugin_result"))
        .output(load_json=True)
    )
    node_id = next(
        (row["node_id"] for row in rows if row["node_id"] and (row["data"] or {}).get("call_id") == call_id),
        None,
    )
    node = next((n for n in flow.nodes if n.id == node_id), None)
    return node if isinstance(node, PluginNode) else None
