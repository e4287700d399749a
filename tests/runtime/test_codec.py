"""Stored shapes: graphs and states round-trip through JSON; old states are upgraded."""

from __future__ import annotations

import msgspec
import pytest

from runtime.flow import advance, decode_state, encode, graph_from_dict, new_instance
from runtime.flow.codec import STATE_MIGRATIONS
from runtime.flow.errors import GraphDecodeError, StateDecodeError
from runtime.flow.events import Approve, Submit
from runtime.flow.state import STATE_SCHEMA_VERSION
from tests.runtime.driver import Driver
from tests.runtime.org import MKT_HEAD, MONDAY, STAFF, demo_flow, env, marketing_form


def running() -> Driver:
    driver = Driver(demo_flow("marketing-activity"), env(marketing_form()), MONDAY)
    driver.apply(Submit(actor=STAFF))
    return driver


def test_state_round_trip_continues_identically() -> None:
    driver = running()
    restored = decode_state(encode(driver.state))
    assert restored == driver.state
    event = Approve(actor=MKT_HEAD, task_id=driver.task_of(MKT_HEAD).id)
    assert advance(driver.graph, restored, event, MONDAY, driver.env) == advance(
        driver.graph, driver.state, event, MONDAY, driver.env
    )


def test_graph_round_trip() -> None:
    graph = demo_flow("marketing-activity")
    assert graph_from_dict(msgspec.json.decode(encode(graph))) == graph
    with pytest.raises(GraphDecodeError):
        graph_from_dict({"key": "x"})


def test_an_old_state_is_upgraded_by_its_migrations(monkeypatch: pytest.MonkeyPatch) -> None:
    current = msgspec.json.decode(encode(running().state))
    old = {**current, "schema_version": STATE_SCHEMA_VERSION - 1, "urgency": "normal"}
    old.pop("urgent", None)

    def upgrade(raw: dict) -> dict:  # type: ignore[type-arg]
        raw = dict(raw)
        raw["urgent"] = raw.pop("urgency") == "urgent"
        return raw

    monkeypatch.setitem(STATE_MIGRATIONS, STATE_SCHEMA_VERSION - 1, upgrade)
    upgraded = decode_state(msgspec.json.encode(old))
    assert upgraded.schema_version == STATE_SCHEMA_VERSION and upgraded.urgent is False
    assert upgraded == running().state


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"{", "does not decode"),
        (b'{"instance_id": "x", "schema_version": 99}', "unknown state schema version 99"),
        (b'{"instance_id": "x", "schema_version": -5}', "no migration from state schema version -5"),
        (b'{"instance_id": "x"}', "unknown state schema version None"),
    ],
)
def test_undecodable_states(document: bytes, message: str) -> None:
    with pytest.raises(StateDecodeError, match=message):
        decode_state(document)


def test_the_engine_refuses_a_state_that_was_not_upgraded() -> None:
    stale = msgspec.structs.replace(new_instance("x"), schema_version=STATE_SCHEMA_VERSION - 1)
    with pytest.raises(StateDecodeError):
        advance(demo_flow("marketing-activity"), stale, Submit(actor=STAFF), MONDAY, env())
