"""The outbox relay and the notify actor: nothing lost when the broker is down, nothing twice."""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from runtime.actors import NOTIFY, broker_sender, register_actors
from runtime.relay import MAX_ATTEMPTS, relay_outbox
from storage.tables import Incident, Notification, OutboxMessage, Person
from tests.conftest import require

NOW = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)


async def _queue(key: str, recipients: list[int], template: str = "task_assigned") -> None:
    await OutboxMessage.insert(
        OutboxMessage(
            key=key,
            actor=NOTIFY,
            payload={
                "template": template,
                "recipients": recipients,
                "instance_id": 1,
                "number": "FL202611001",
                "title": "2024年Q3新品推广会",
                "data": {"task_title": "部门负责人审批"},
            },
            status="pending",
            attempts=0,
            next_attempt_at=NOW,
            created_at=NOW,
        )
    )


async def _person(employee_no: str) -> int:
    row = await Person.select(Person.id).where(Person.employee_no == employee_no).first()
    return int(row["id"])


def _down(actor: str, key: str, payload: dict[str, Any]) -> None:
    raise ConnectionError("broker unreachable")


async def test_a_down_broker_defers_the_message_and_it_goes_out_later(db: None) -> None:
    e2001 = await _person("e2001")
    await _queue("task_assigned:t1", [e2001])
    report = await relay_outbox(_down, NOW)
    assert (report.sent, report.deferred) == (0, 1)
    row = await OutboxMessage.select().where(OutboxMessage.key == "task_assigned:t1").first()
    assert row["status"] == "pending" and row["attempts"] == 1 and "unreachable" in row["last_error"]
    assert row["next_attempt_at"] > NOW, "backs off instead of hammering a down broker"

    sent: list[tuple[str, str]] = []
    not_yet = await relay_outbox(lambda a, k, p: sent.append((a, k)), NOW)
    assert not_yet.sent == 0 and sent == [], "not before its back-off has passed"
    later = await relay_outbox(lambda a, k, p: sent.append((a, k)), NOW + dt.timedelta(minutes=1))
    assert later.sent == 1 and sent == [(NOTIFY, "task_assigned:t1")]
    assert (await OutboxMessage.select(OutboxMessage.status).first())["status"] == "sent"


async def test_a_message_that_never_goes_out_becomes_an_incident(db: None) -> None:
    await _queue("task_assigned:t2", [await _person("e2001")])
    await OutboxMessage.update({OutboxMessage.attempts: MAX_ATTEMPTS - 1}, force=True)
    report = await relay_outbox(_down, NOW)
    assert report.failed == 1
    incident = await Incident.select().first()
    assert incident["source"] == "outbox" and incident["key"] == "task_assigned:t2"


@pytest.fixture()
def stub_broker() -> Iterator[StubBroker]:
    broker = StubBroker()
    broker.emit_after("process_boot")
    broker.add_middleware(dramatiq.middleware.AsyncIO())
    register_actors(broker)
    yield broker
    broker.close()


async def test_the_notify_actor_writes_each_notification_once_even_when_delivered_twice(
    db: None, stub_broker: StubBroker
) -> None:
    e2001, e3001 = await _person("e2001"), await _person("e3001")
    await Person.update({Person.locale: "en"}).where(Person.id == e3001)
    await _queue("task_assigned:t3", [e2001, e3001])
    send = broker_sender(stub_broker)
    await relay_outbox(send, NOW)
    send(NOTIFY, "task_assigned:t3", (await OutboxMessage.select().first().output(load_json=True))["payload"])
    worker = dramatiq.Worker(stub_broker, worker_timeout=50)
    worker.start()
    try:
        await _join(stub_broker)
    finally:
        worker.stop()
    rows = await Notification.select().order_by(Notification.person)
    assert len(rows) == 2, "two recipients, one notification each, though the message came twice"
    titles = {r["person"]: r["title"] for r in rows}
    assert titles[e2001] == "待您处理：2024年Q3新品推广会（FL202611001）"
    assert titles[e3001] == "Waiting for you: 2024年Q3新品推广会 (FL202611001)"
    assert rows[0]["link"] == "/instances/1"


async def _join(broker: StubBroker) -> None:
    import anyio

    await anyio.to_thread.run_sync(lambda: broker.join("default", fail_fast=True))


# --- a real Redis that stops and comes back ---------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_redis(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start")


async def test_notifications_survive_a_redis_outage(db: None) -> None:
    require(
        "redis-server", shutil.which("redis-server") is not None, "the redis-server binary is not installed"
    )
    port = _free_port()
    redis = _start_redis(port)
    broker = RedisBroker(url=f"redis://127.0.0.1:{port}/0")
    broker.add_middleware(dramatiq.middleware.AsyncIO())
    register_actors(broker)
    send = broker_sender(broker)
    try:
        redis.terminate()
        redis.wait(10)
        await _queue("task_assigned:t4", [await _person("e2001")])
        down = await relay_outbox(send, NOW)
        assert down.deferred == 1, "the action that queued it has long committed; the message waits"

        redis = _start_redis(port)
        up = await relay_outbox(send, NOW + dt.timedelta(minutes=1))
        assert up.sent == 1
        worker = dramatiq.Worker(broker, worker_timeout=50)
        worker.start()
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not await Notification.count():
                await _sleep_briefly()
        finally:
            worker.stop()
        assert await Notification.count() == 1
    finally:
        broker.close()
        redis.terminate()
        redis.wait(10)


async def _sleep_briefly() -> None:
    import asyncio

    await asyncio.sleep(0.1)
