"""The scheduler loop: runs periodic jobs (due deadlines, outbox relay, housekeeping).

The loop owns no business rules: the composition root hands it named jobs, each an async
callable taking the current time. A job that raises is logged and retried on the next tick;
it never stops the loop, and it runs in a task of its own so that what it leaves behind in its
context (a transaction whose connection died) does not reach the next run. Several scheduler processes may run at once: jobs claim their rows
(`FOR UPDATE SKIP LOCKED` on PostgreSQL) so each row is handled once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import msgspec

log = logging.getLogger("formflow.scheduler")

JobFn = Callable[[datetime], Awaitable[object]]


class PeriodicJob(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    every_seconds: float
    run: JobFn


class Scheduler:
    def __init__(self, jobs: Sequence[PeriodicJob], clock: Callable[[], datetime] | None = None) -> None:
        self.jobs = list(jobs)
        self.clock = clock or (lambda: datetime.now(UTC))
        self._last_run: dict[str, float] = {}
        self._stopping = asyncio.Event()

    async def tick(self) -> None:
        """Run every job whose interval has passed."""
        loop_now = asyncio.get_running_loop().time()
        for job in self.jobs:
            if loop_now - self._last_run.get(job.name, float("-inf")) < job.every_seconds:
                continue
            self._last_run[job.name] = loop_now
            try:
                # Each run in a task of its own, so in a context of its own: a job that dies with
                # a transaction open (the database restarted under it) cannot leave that dead
                # transaction in the loop's context, where every later run would use it.
                await asyncio.ensure_future(job.run(self.clock()))
            except Exception:
                log.exception("scheduled job %s failed; it runs again next tick", job.name)

    async def run_forever(self, tick_seconds: float = 1.0) -> None:
        log.info("scheduler started with jobs: %s", ", ".join(j.name for j in self.jobs) or "none")
        while not self._stopping.is_set():
            await self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=tick_seconds)

    def stop(self) -> None:
        self._stopping.set()
