"""A due timer and a command writing the same request at once: neither fails, nothing deadlocks.

An approval writes the request row and then cancels the decided task's timers; the scheduler
claims a timer row and then writes the request. Were the scheduler to wait for the request row
while holding the timer, the two would wait on each other until PostgreSQL killed one: the
person's approval failing, or the timer turning into an incident (an escalation lost). The
command is played here in raw SQL on its own connection, so it can be held mid-transaction;
the scheduler is the real `fire_due_timers` (PostgreSQL pass only: SQLite serialises writers).
"""

from __future__ import annotations

import asyncio
import datetime as dt

import asyncpg
import pytest

from runtime.service import CreateRequest, create_instance, fire_due_timers
from storage.tables import Incident, Timer
from tests.conftest import ON_POSTGRES, TEST_DATABASE_URL
from tests.faults.processes import eventually
from tests.service.support import Clock, caller, marketing_data, open_task


async def waiting_for(pid: int) -> int:
    """How many sessions wait for a lock the session `pid` holds (seen from a fresh connection:
    pg_stat_activity is a snapshot per transaction)."""
    probe = await asyncpg.connect(TEST_DATABASE_URL)
    try:
        return int(
            await probe.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", pid
            )
        )
    finally:
        await probe.close()


@pytest.mark.postgres
async def test_a_due_timer_gives_way_to_a_command_writing_its_request(db: None) -> None:
    if not ON_POSTGRES:
        pytest.skip("runs in the PostgreSQL pass (FORMFLOW_TEST_DATABASE_URL)")
    request = CreateRequest(template="marketing-activity", data=marketing_data(), submit=True)
    instance = (await create_instance(await caller("e1001"), request, Clock()())).id
    task = await open_task(instance, "e2001")
    late = task["due_at"] + dt.timedelta(hours=1)
    timers = {row["kind"]: row["timer_key"] for row in await Timer.select(Timer.kind, Timer.timer_key)}

    command = await asyncpg.connect(TEST_DATABASE_URL)
    try:
        async with command.transaction():
            await command.execute("UPDATE instance SET updated_at = updated_at WHERE id = $1", instance)
            firing = asyncio.create_task(fire_due_timers(late))

            async def scheduler_done_or_waiting() -> bool:
                return firing.done() or bool(await waiting_for(command.get_server_pid()))

            await eventually(scheduler_done_or_waiting, "the scheduler reached the busy request", timeout=10)
            # The approval goes on to cancel the task's timers, one of which the scheduler claimed.
            await command.execute(
                "UPDATE timer SET status = 'cancelled' WHERE timer_key = $1 AND status = 'pending'",
                timers["reminder"],
            )
        assert await firing == 0, "the busy request's timers wait for the next round"
    finally:
        await command.close()

    assert await Incident.count() == 0
    assert await fire_due_timers(late) == 1, "the overdue timer fires once the request is free"
    statuses = {row["kind"]: row["status"] for row in await Timer.select(Timer.kind, Timer.status)}
    assert statuses == {"reminder": "cancelled", "overdue": "fired"}
