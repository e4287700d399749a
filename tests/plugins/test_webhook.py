"""The webhook step against a receiver on 127.0.0.1: signed, retried, an incident, retried once.

The actor's function (`plugins.calls.run_call`) is driven directly with attempt numbers, so
no back-off is waited for; the last test runs the real dramatiq actor on a StubBroker with a
10 ms back-off.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import dramatiq
import msgspec
import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO, CurrentMessage

from plugins import Complete, DeliverySettings, Fail, Outcome, Perform, WaitForCallback, sign
from plugins.builtin.webhook import Webhook, WebhookRefused
from plugins.callbacks import accept_callback
from plugins.calls import CallStatus, run_call
from plugins.errors import BadCallbackBody, BadSignature, UnknownCall
from plugins.incidents import plugin_incidents, retry_incident, skip_incident
from plugins.registry import discover
from plugins.settings import configure_delivery, delivery_settings
from plugins.testing import StepKit
from runtime.actors import broker_sender, register_actors
from runtime.relay import relay_outbox
from runtime.service import instance_detail
from storage.tables import Incident, Instance, OutboxMessage, Task
from tests.plugins.support import SECRET, Receiver, hook_flow, plugin_calls, publish, start_request
from tests.service.support import Clock, open_task, person_id, principal

REGISTRY = discover(found=[])
SETTINGS = DeliverySettings(secrets={"crm": SECRET}, public_url="https://flow.example.com")


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    with Receiver().running() as running:
        yield running


def config(url: str, **options: Any) -> dict[str, Any]:
    return {
        "url": url,
        "secret": "crm",
        "retries": 2,
        "backoff_seconds": 0.01,
        "timeout_seconds": 5,
        **options,
    }


# -- the step on its own, with the test kit --------------------------------------------------


def test_the_payload_is_signed_and_the_receiver_verifies_it(receiver: Receiver) -> None:
    kit = StepKit(Webhook(), secrets={"crm": SECRET})
    conf = config(receiver.url, fields=["activity_name", "budget"])
    assert isinstance(kit.decide(conf), Perform)
    result = kit.perform(
        conf, data={"activity_name": "新品发布会", "budget": Decimal("200000"), "phone": "138"}
    )
    assert result == Complete(outcome=Outcome.CONTINUE, output={"status": 200})
    (got,) = receiver.received
    assert got.verified and got.key == "FL202509001:1:0"
    body = got.json()
    assert body["data"] == {"activity_name": "新品发布会", "budget": "200000"}
    assert (body["call_id"], body["instance"], body["callback"]) == (
        "FL202509001-1",
        "FL202509001",
        {"expected": False, "call_id": "FL202509001-1"},
    )


def test_a_tampered_body_does_not_verify() -> None:
    body = b'{"budget": "200000"}'
    signature = sign(SECRET, body)
    from plugins import verify_signature

    assert verify_signature(SECRET, body, signature)
    assert not verify_signature(SECRET, body.replace(b"2", b"9"), signature)
    assert not verify_signature("another-secret", body, signature)


@pytest.mark.parametrize(
    ("status", "retried"), [(500, True), (503, True), (429, True), (404, False), (400, False)]
)
def test_server_errors_are_retried_client_errors_are_not(status: int, retried: bool) -> None:
    with Receiver(script=[status]).running() as receiver:
        kit = StepKit(Webhook(), secrets={"crm": SECRET})
        if retried:
            with pytest.raises(WebhookRefused, match=f"answered {status}"):
                kit.perform(config(receiver.url))
        else:
            result = kit.perform(config(receiver.url))
            assert isinstance(result, Fail) and not result.retry


def test_a_receiver_may_reject_the_request(receiver: Receiver) -> None:
    receiver.answer = msgspec.json.encode({"outcome": "reject", "note": "客户信用不足"})
    result = StepKit(Webhook(), secrets={"crm": SECRET}).perform(config(receiver.url))
    assert result == Complete(outcome=Outcome.REJECT, note="客户信用不足", output={"status": 200})


def test_a_missing_secret_fails_without_retrying(receiver: Receiver) -> None:
    result = StepKit(Webhook()).perform(config(receiver.url))
    assert result == Fail(reason="the secret 'crm' is not configured", retry=False)
    assert receiver.received == []


def test_waiting_for_a_callback_says_where_to_call(receiver: Receiver) -> None:
    kit = StepKit(Webhook(), secrets={"crm": SECRET}, public_url="https://flow.example.com/")
    assert isinstance(kit.perform(config(receiver.url, wait_for_callback=True)), WaitForCallback)
    callback = receiver.received[0].json()["callback"]
    assert callback == {
        "expected": True,
        "call_id": "FL202509001-1",
        "url": "https://flow.example.com/api/plugin-calls/FL202509001-1/callback",
    }


@pytest.mark.parametrize(
    ("changes", "problems"),
    [
        ({}, []),
        (
            {"url": "ftp://example.com"},
            [r"config.url: expected `str` matching regex '^https?://[^\\s/?#]+[^\\s]*$'"],
        ),
        ({"secret": "Has Spaces"}, [r"config.secret: expected `str` matching regex '^[a-z][a-z0-9_\\-]*$'"]),
        ({"timeout_seconds": 0}, ["config.timeout_seconds: expected `float` > 0.0"]),
        ({"fields": ["nope"]}, ["config.fields: unknown field 'nope'"]),
    ],
)
def test_webhook_config_problems(changes: dict[str, Any], problems: list[str]) -> None:
    kit = StepKit(Webhook())
    assert (
        kit.check({**config("https://crm.example.com/hook"), **changes}, fields={"budget": "money"})
        == problems
    )


# -- through the service, the actor's function and the incident actions ------------------------


@pytest.fixture()
def delivery() -> Iterator[DeliverySettings]:
    before = delivery_settings()
    configure_delivery(SETTINGS)
    yield SETTINGS
    configure_delivery(before)


async def _webhook_request(clock: Clock, url: str, **options: Any) -> int:
    node = {
        "type": "plugin",
        "id": "crm",
        "title": "同步到 CRM",
        "plugin": "webhook",
        "config": config(url, **options),
    }
    await publish("crm-sync", hook_flow("crm-sync", node), clock())
    return await start_request("crm-sync", clock)


async def _run(call: dict[str, Any], attempt: int, clock: Clock) -> Any:
    return await run_call(call["key"], call["payload"], attempt=attempt, now=clock(), registry=REGISTRY)


async def test_failures_are_retried_then_an_incident_then_a_retry_succeeds_exactly_once(
    db: None, delivery: DeliverySettings
) -> None:
    clock = Clock()
    with Receiver(script=[500, 500, 500, 500]).running() as receiver:
        instance_id = await _webhook_request(clock, receiver.url)
        (call,) = await plugin_calls()
        assert call["payload"]["plugin"] == "webhook" and call["payload"]["instance_id"] == instance_id

        reports = [await _run(call, attempt, clock) for attempt in range(3)]
        assert [r.status for r in reports] == [CallStatus.RETRY, CallStatus.RETRY, CallStatus.INCIDENT]
        assert [r.retry_in for r in reports[:2]] == [0.01, 0.02], "back-off doubles"
        assert len(receiver.received) == 3 and all(r.verified for r in receiver.received)
        assert {r.key for r in receiver.received} == {call["key"]}, "one idempotency key for every attempt"

        (incident,) = await plugin_incidents()
        assert (incident.plugin, incident.node_id, incident.instance_id, incident.attempts) == (
            "webhook",
            "crm",
            instance_id,
            3,
        )
        assert incident.message.startswith("WebhookRefused: POST") and "answered 500" in incident.message
        row = (
            await Instance.select(Instance.status, Instance.current_step)
            .where(Instance.id == instance_id)
            .first()
        )
        assert row == {"status": "in_approval", "current_step": "同步到 CRM"}, (
            "the step waits; nothing is lost"
        )

        receiver.script = []  # the receiver is back
        admin = await person_id("admin")
        assert await retry_incident(incident.id, admin, clock.advance(minutes=10))
        assert not await retry_incident(incident.id, admin, clock()), "an incident is retried once"
        sent: list[tuple[str, str, dict[str, Any]]] = []
        report = await relay_outbox(lambda actor, key, payload: sent.append((actor, key, payload)), clock())
        assert report.sent == 1 and sent[0][:2] == ("call_plugin", call["key"])
        done = await run_call(sent[0][1], sent[0][2], attempt=0, now=clock(), registry=REGISTRY)
        assert done.status is CallStatus.DONE
        assert receiver.accepted == {call["key"]: 1}

        # delivered again (a redelivered message): nothing waits any more, nothing is posted
        again = await run_call(sent[0][1], sent[0][2], attempt=0, now=clock(), registry=REGISTRY)
        assert again.status is CallStatus.STALE and len(receiver.received) == 4
        await relay_outbox(lambda actor, key, payload: sent.append((actor, key, payload)), clock())
        assert [s[0] for s in sent] == ["call_plugin", "notify"], "only the new task's notice goes out"
        assert receiver.accepted == {call["key"]: 1}, "the receiver got the call exactly once"

    await open_task(instance_id, "e2001", "dept_head")
    assert await Task.count().where(Task.instance == instance_id) == 1, "the step moved on once"
    detail = await instance_detail(await principal("e1001"), instance_id, clock())
    assert [e.kind for e in detail.timeline].count("task_created") == 1
    on_step = [(e.kind, e.actor.id if e.actor else None) for e in detail.timeline if e.node_id == "crm"]
    assert on_step == [
        ("node_entered", None),
        ("plugin_incident", None),
        ("plugin_retried", admin),
        ("plugin_result", None),
    ], "the timeline tells the incident and the admin's retry"


async def test_an_admin_can_skip_a_failed_step(db: None, delivery: DeliverySettings) -> None:
    clock = Clock()
    with Receiver(then=500).running() as receiver:
        instance_id = await _webhook_request(clock, receiver.url, retries=0)
        (call,) = await plugin_calls()
        report = await _run(call, 0, clock)
        assert report.status is CallStatus.INCIDENT
        admin = await person_id("admin")
        assert await skip_incident(
            report.incident_id, admin, clock.advance(minutes=5), note="CRM 维护中，手工同步"
        )
        assert not await skip_incident(report.incident_id, admin, clock())
    await open_task(instance_id, "e2001", "dept_head")
    incident = await Incident.select().where(Incident.id == report.incident_id).first()
    assert incident["resolved_by"] == admin
    detail = await instance_detail(await principal("e1001"), instance_id, clock())
    (noted, skipped) = [e for e in detail.timeline if e.node_id == "crm" and e.kind != "node_entered"]
    assert (noted.kind, noted.data["incident"]) == ("plugin_incident", report.incident_id)
    assert (skipped.kind, skipped.data["note"], skipped.data["output"]["skipped_by"]) == (
        "plugin_result",
        "CRM 维护中，手工同步",
        admin,
    )


async def test_a_callback_continues_a_waiting_step(db: None, delivery: DeliverySettings) -> None:
    clock = Clock()
    with Receiver().running() as receiver:
        instance_id = await _webhook_request(clock, receiver.url, wait_for_callback=True)
        (call,) = await plugin_calls()
        assert (await _run(call, 0, clock)).status is CallStatus.WAITING
        call_id = receiver.received[0].json()["callback"]["call_id"]
    body = msgspec.json.encode({"outcome": "continue", "note": "CRM 已建档", "output": {"crm_id": "C-1"}})
    with pytest.raises(BadSignature):
        await accept_callback(call_id, body, sign("wrong", body), now=clock(), registry=REGISTRY)
    with pytest.raises(UnknownCall):
        await accept_callback("FL209901001-3", body, sign(SECRET, body), now=clock(), registry=REGISTRY)
    with pytest.raises(BadCallbackBody):
        await accept_callback(call_id, b"[1]", sign(SECRET, b"[1]"), now=clock(), registry=REGISTRY)
    result = await accept_callback(
        call_id, body, sign(SECRET, body), now=clock.advance(minutes=1), registry=REGISTRY
    )
    assert result.status == "in_approval" and result.current_step == "部门负责人审批"
    # the sender lost our answer and sends the same callback again: the same answer, no change
    repeat = await accept_callback(call_id, body, sign(SECRET, body), now=clock(), registry=REGISTRY)
    assert repeat == result
    with pytest.raises(BadSignature):
        await accept_callback(call_id, body, sign("wrong", body), now=clock(), registry=REGISTRY)
    await open_task(instance_id, "e2001", "dept_head")


async def test_a_callback_may_reject_the_request(db: None, delivery: DeliverySettings) -> None:
    clock = Clock()
    with Receiver().running() as receiver:
        instance_id = await _webhook_request(clock, receiver.url, wait_for_callback=True)
        (call,) = await plugin_calls()
        await _run(call, 0, clock)
    body = b'{"outcome": "reject", "note": "CRM: customer blocked"}'
    result = await accept_callback(
        call["payload"]["call_id"], body, sign(SECRET, body), now=clock(), registry=REGISTRY
    )
    assert result.status == "rejected"
    row = await Instance.select(Instance.status).where(Instance.id == instance_id).first()
    assert row["status"] == "rejected"


# -- the real actor on a stub broker ------------------------------------------------------------


@pytest.fixture()
def stub_broker() -> Iterator[StubBroker]:
    broker = StubBroker()
    broker.emit_after("process_boot")
    broker.add_middleware(AsyncIO())
    broker.add_middleware(CurrentMessage())
    register_actors(broker)
    yield broker
    broker.close()


async def _drain(broker: StubBroker) -> None:
    import anyio

    worker = dramatiq.Worker(broker, worker_timeout=20)
    worker.start()
    try:
        await anyio.to_thread.run_sync(lambda: broker.join("default", fail_fast=True, timeout=20_000))
    finally:
        worker.stop()


async def test_the_call_plugin_actor_retries_with_back_off_then_reports(
    db: None, delivery: DeliverySettings, stub_broker: StubBroker
) -> None:
    clock = Clock()
    with Receiver(script=[500, 503]).running() as receiver:
        instance_id = await _webhook_request(clock, receiver.url)
        await relay_outbox(broker_sender(stub_broker), clock())
        await _drain(stub_broker)
        assert [r.status for r in receiver.received] == [500, 503, 200]
        assert [r.json()["attempt"] for r in receiver.received] == [0, 1, 2]
        assert len(receiver.accepted) == 1
    await open_task(instance_id, "e2001", "dept_head")
    assert await Incident.count() == 0


async def test_the_call_plugin_actor_opens_an_incident_when_retries_run_out(
    db: None, delivery: DeliverySettings, stub_broker: StubBroker
) -> None:
    clock = Clock()
    with Receiver(then=502).running() as receiver:
        await _webhook_request(clock, receiver.url, retries=1)
        await relay_outbox(broker_sender(stub_broker), clock())
        await _drain(stub_broker)
        assert len(receiver.received) == 2
    (incident,) = await plugin_incidents()
    assert incident.attempts == 2 and "answered 502" in incident.message
    assert (await OutboxMessage.select(OutboxMessage.status).first())["status"] == "sent"
