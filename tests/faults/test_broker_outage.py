"""Redis stops: an approval still succeeds, and its notification arrives once Redis is back.

Real processes: `formflow serve`, `formflow scheduler` (the outbox relay) and `formflow worker`
on a scratch PostgreSQL database and a redis-server of the test's own, which it stops and starts.
"""

from __future__ import annotations

from tests.faults.processes import (
    ApiUser,
    Cluster,
    drained,
    eventually,
    marketing_data,
    notifications,
    outbox,
    person_id,
)


async def test_an_approval_succeeds_with_the_broker_down_and_its_notification_arrives_later(
    cluster: Cluster,
) -> None:
    cluster.scheduler()
    cluster.worker()
    db = await cluster.connect()
    applicant, head, leader = [
        await ApiUser.sign_in(cluster.base_url, no) for no in ("e1001", "e2001", "e3001")
    ]
    e2001, e3001 = await person_id(db, "e2001"), await person_id(db, "e3001")
    try:
        created = await applicant.start_request(marketing_data())
        instance = created["id"]
        await eventually(
            lambda: notifications(db, e2001, "task_assigned", instance), "王芳 is told of her task"
        )
        # Redis keeps nothing across a restart here: let everything in flight arrive first.
        await eventually(lambda: drained(db, cluster.redis.url), "every message delivered before the outage")

        cluster.redis.stop()
        task = await head.open_task(instance)
        approved = await head.approve(task["id"])
        assert approved.status_code == 200, approved.text
        assert approved.json()["row_version"] > created["row_version"]
        assert (await leader.open_task(instance))["node_id"] == "leader", "the request moved on to 李强"

        async def deferred() -> list[object]:
            rows = await outbox(db, "task_assigned", instance)
            return [r for r in rows if r["status"] == "pending" and r["attempts"] >= 1 and r["last_error"]]

        waiting = await eventually(deferred, "the relay tried to send 李强's notification and deferred it")
        assert len(waiting) == 1, waiting
        assert await notifications(db, e3001, "task_assigned", instance) == [], "not delivered yet"

        cluster.redis.start()
        await eventually(
            lambda: notifications(db, e3001, "task_assigned", instance), "李强 is told once Redis is back"
        )
        await eventually(lambda: drained(db, cluster.redis.url), "the outbox and the queue are empty")
        assert len(await notifications(db, e3001, "task_assigned", instance)) == 1
        assert len(await notifications(db, e2001, "task_assigned", instance)) == 1
    finally:
        for user in (applicant, head, leader):
            await user.close()
