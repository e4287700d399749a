"""The scheduler goes on after the database dropped a job's connection mid-transaction.

Piccolo keeps the open transaction in a context variable and resets it only after a successful
rollback; when the connection is gone the rollback fails and the dead transaction stays in the
context. The scheduler runs each job in a task of its own, so the next run starts clean.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt

import asyncpg
import pytest

from runtime.scheduler import PeriodicJob, Scheduler
from storage.database import write_transaction
from storage.tables import Person
from tests.conftest import ON_POSTGRES, TEST_DATABASE_URL

LEAKED: contextvars.ContextVar[str | None] = contextvars.ContextVar("leaked", default=None)


async def test_what_a_failed_job_leaves_in_its_context_does_not_reach_the_next_run() -> None:
    seen: list[str | None] = []

    async def job(now: dt.datetime) -> None:
        seen.append(LEAKED.get())
        LEAKED.set("a dead transaction")
        raise ConnectionError("the database went away")

    scheduler = Scheduler([PeriodicJob(name="leaky", every_seconds=0, run=job)])
    await scheduler.tick()
    await scheduler.tick()
    assert seen == [None, None]


@pytest.mark.postgres
async def test_a_job_runs_again_after_postgresql_killed_its_connection(db: None) -> None:
    if not ON_POSTGRES:
        pytest.skip("runs in the PostgreSQL pass (FORMFLOW_TEST_DATABASE_URL)")
    engine = Person._meta.db
    outcomes: list[object] = []

    async def job(now: dt.datetime) -> None:
        async with write_transaction(engine):
            pid = (await Person.raw("SELECT pg_backend_pid() AS pid"))[0]["pid"]
            admin = await asyncpg.connect(TEST_DATABASE_URL)
            try:
                await admin.execute("SELECT pg_terminate_backend($1)", pid)
            finally:
                await admin.close()
            await asyncio.sleep(0.2)
            await Person.count()  # the connection is gone: this raises, then so does the rollback

    async def healthy(now: dt.datetime) -> None:
        outcomes.append(await Person.count())

    scheduler = Scheduler([PeriodicJob(name="killed", every_seconds=3600, run=job)])
    await scheduler.tick()  # logged, not raised
    scheduler.jobs.append(PeriodicJob(name="next", every_seconds=0, run=healthy))
    await scheduler.tick()
    assert outcomes and isinstance(outcomes[0], int) and outcomes[0] > 0
