"""Reading and writing the stored shapes: flow graphs and instance states as JSON.

Stored states carry `schema_version`; `decode_state` upgrades an older one through
`STATE_MIGRATIONS` (small pure functions over the decoded dict, one per version step)
before typing it, so an instance saved by an older release keeps running.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from runtime.flow.errors import GraphDecodeError, StateDecodeError
from runtime.flow.graph import GRAPH_SCHEMA_VERSION, FlowGraph
from runtime.flow.state import STATE_SCHEMA_VERSION, InstanceState

STATE_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}
"""version -> function turning a state dict of that version into one of version + 1."""

_graph_decoder = msgspec.json.Decoder(FlowGraph)
_state_decoder = msgspec.json.Decoder(InstanceState)
_encoder = msgspec.json.Encoder()


def decode_graph(data: bytes | str) -> FlowGraph:
    """A flow graph from its stored JSON; every format problem raises `GraphDecodeError`."""
    try:
        graph = _graph_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise GraphDecodeError(f"flow graph does not decode: {exc}") from exc
    if graph.schema_version != GRAPH_SCHEMA_VERSION:
        raise GraphDecodeError(f"flow graph schema {graph.schema_version} is not {GRAPH_SCHEMA_VERSION}")
    return graph


def graph_from_dict(data: dict[str, Any]) -> FlowGraph:
    """A flow graph from already parsed JSON (e.g. a JSON column)."""
    try:
        return msgspec.convert(data, FlowGraph)
    except msgspec.ValidationError as exc:
        raise GraphDecodeError(f"flow graph does not decode: {exc}") from exc


def encode(value: FlowGraph | InstanceState) -> bytes:
    return _encoder.encode(value)


def decode_state(data: bytes | str) -> InstanceState:
    """An instance state from its stored JSON, upgraded to the current schema version."""
    try:
        state = _state_decoder.decode(data)
        if state.schema_version == STATE_SCHEMA_VERSION:
            return state
    except msgspec.ValidationError:
        pass  # an older shape: upgrade it below
    except msgspec.DecodeError as exc:
        raise StateDecodeError(f"instance state does not decode: {exc}") from exc
    raw = msgspec.json.decode(data)
    version = raw.get("schema_version") if isinstance(raw, dict) else None
    if not isinstance(version, int) or version > STATE_SCHEMA_VERSION:
        raise StateDecodeError(f"unknown state schema version {version!r}")
    while version < STATE_SCHEMA_VERSION:
        migrate = STATE_MIGRATIONS.get(version)
        if migrate is None:
            raise StateDecodeError(f"no migration from state schema version {version}")
        raw = migrate(raw)
        version += 1
        raw["schema_version"] = version
    try:
        return msgspec.convert(raw, InstanceState)
    except msgspec.ValidationError as exc:
        raise StateDecodeError(f"upgraded instance state does not validate: {exc}") from exc
