"""A worker killed in the middle of a job: the job is redelivered and the notification written once.

The test holds the notification table locked (EXCLUSIVE: reads go on, inserts wait), so the
worker's `notify` job is caught in flight, fetched from Redis but unacknowledged. The worker is
killed with SIGKILL; Redis hands the job to a new worker once the dead one's heartbeat is older
than the broker URL's `heartbeat_timeout`. The dead worker's insert may still land when the lock
goes (its connection outlives it); either way the person gets one notification, since delivery
is idempotent by key.
"""

from __future__ import annotations

import asyncpg
import redis

from tests.faults.processes import (
    ApiUser,
    Cluster,
    drained,
    eventually,
    marketing_data,
    notifications,
    person_id,
)

BLOCKED_BY = "SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))"
"""The sessions waiting for a lock held by the session $1: here, the notify jobs' inserts."""


def unacknowledged(redis_url: str) -> int:
    """Jobs fetched from the default queue by some worker and not yet acknowledged."""
    client = redis.Redis.from_url(redis_url)
    try:
        return sum(int(client.scard(key)) for key in client.scan_iter("dramatiq:__acks__.*.default"))
    finally:
        client.close()


async def test_a_worker_killed_mid_job_delivers_the_notification_exactly_once(cluster: Cluster) -> None:
    cluster.scheduler()
    first = cluster.worker("worker-1")
    db = await cluster.connect()
    applicant = await ApiUser.sign_in(cluster.base_url, "e1001")
    e2001 = await person_id(db, "e2001")
    locker = await asyncpg.connect(cluster.database)
    lock = locker.transaction()
    released = False
    try:
        await lock.start()
        await locker.execute("LOCK TABLE notification IN EXCLUSIVE MODE")
        instance = (await applicant.start_request(marketing_data()))["id"]

        async def waiting() -> set[int]:
            return {row["pid"] for row in await db.fetch(BLOCKED_BY, locker.get_server_pid())}

        in_flight = await eventually(waiting, "worker-1 is writing 王芳's notification")
        assert unacknowledged(cluster.redis.url) == 1, "the job is fetched and not acknowledged"

        first.kill()
        cluster.worker("worker-2")

        async def redelivered() -> set[int]:
            return await waiting() - in_flight

        await eventually(redelivered, "the dead worker's job reaches worker-2", timeout=30)
        await lock.rollback()
        released = True

        await eventually(lambda: drained(db, cluster.redis.url), "worker-2 finishes and acknowledges the job")
        assert len(await notifications(db, e2001, "task_assigned", instance)) == 1, "exactly once"
        assert await db.fetchval("SELECT count(*) FROM incident") == 0
    finally:
        if not released:
            await lock.rollback()
        await locker.close()
        await applicant.close()
