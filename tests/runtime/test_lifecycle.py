"""The status table: complete, consistent with the events, and enforced."""

from __future__ import annotations

import typing

import pytest

from runtime.flow import TRANSITIONS, Status, advance, new_instance
from runtime.flow._compiled import compile_flow
from runtime.flow._work import Work
from runtime.flow.errors import TransitionError
from runtime.flow.events import Approve, Event, Submit, event_type
from runtime.flow.lifecycle import ACCEPTS, LABELS_ZH, TERMINAL
from tests.runtime.graphs import approval, chain
from tests.runtime.org import MKT_HEAD, MONDAY, STAFF, env

EVENT_TYPES = {cls.__struct_config__.tag for cls in typing.get_args(Event)}


def test_every_status_has_a_row_and_a_label() -> None:
    assert set(TRANSITIONS) == set(Status) == set(ACCEPTS) == set(LABELS_ZH)


def test_terminal_statuses_change_to_nothing() -> None:
    assert {s for s, targets in TRANSITIONS.items() if not targets} == TERMINAL


def test_accepted_events_exist_and_every_event_is_accepted_somewhere() -> None:
    accepted = set().union(*ACCEPTS.values())
    assert accepted <= EVENT_TYPES
    assert accepted == EVENT_TYPES


def test_every_status_is_reachable_from_draft() -> None:
    seen, frontier = {Status.DRAFT}, [Status.DRAFT]
    while frontier:
        for target in TRANSITIONS[frontier.pop()]:
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(Status)


def test_an_event_the_status_does_not_accept_is_refused() -> None:
    flow = chain(approval("a", MKT_HEAD))
    with pytest.raises(TransitionError) as caught:
        advance(flow, new_instance("x"), Approve(actor=MKT_HEAD, task_id="x-1"), MONDAY, env())
    assert (caught.value.status, caught.value.attempted) == ("draft", "approve")
    assert not caught.value.retryable
    assert event_type(Submit(actor=STAFF)) == "submit"


def test_a_status_change_outside_the_table_is_refused() -> None:
    flow = chain(approval("a", MKT_HEAD))
    work = Work(compile_flow(flow), new_instance("x"), MONDAY, env())
    with pytest.raises(TransitionError):
        work.set_status(Status.REJECTED)  # a draft is never rejected
