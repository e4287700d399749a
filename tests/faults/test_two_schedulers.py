"""Two `formflow scheduler` processes on one database: each due timer fires exactly once.

李强 (e3001) gets a manager first, through the people API, so that his overdue approvals
escalate. Six requests reach his approval step; the test makes their reminders and deadlines
due at once in the database (each reminder a minute before its deadline, as a scheduler that
was down would find them), and two schedulers started together race for them. A request's
timers fire in due order, so each reminder reaches 李强 before his task is escalated away.
"""

from __future__ import annotations

import asyncpg

from tests.faults.processes import (
    ApiUser,
    Cluster,
    drained,
    eventually,
    marketing_data,
    notifications,
    person_id,
)

REQUESTS = 6


async def due_now(db: asyncpg.Connection, instances: list[int]) -> list[str]:
    """Make the leader step's reminders and deadlines of these requests due; their keys."""
    rows = await db.fetch(
        "UPDATE timer SET due_at = now() - CASE kind WHEN 'reminder' THEN interval '1 minute' ELSE"
        " interval '0' END WHERE instance = ANY($1::int[]) AND node_id = 'leader' AND status = 'pending'"
        " RETURNING timer_key, kind",
        instances,
    )
    assert sorted(row["kind"] for row in rows) == ["overdue"] * REQUESTS + ["reminder"] * REQUESTS
    return [row["timer_key"] for row in rows]


async def fired_once(db: asyncpg.Connection, keys: list[str]) -> bool:
    """Every timer fired, each with exactly one `timer_fired` event (False while any is pending)."""
    statuses = await db.fetch("SELECT status FROM timer WHERE timer_key = ANY($1::text[])", keys)
    if any(row["status"] == "pending" for row in statuses):
        return False
    assert [row["status"] for row in statuses] == ["fired"] * len(keys), statuses
    events = await db.fetch(
        "SELECT data::jsonb->>'timer_id' AS timer, count(*) AS n FROM instance_event"
        " WHERE kind = 'timer_fired' AND data::jsonb->>'timer_id' = ANY($1::text[]) GROUP BY 1",
        keys,
    )
    assert {row["timer"]: row["n"] for row in events} == dict.fromkeys(keys, 1), events
    return True


async def test_reminders_and_escalations_fire_once_with_two_schedulers(cluster: Cluster) -> None:
    cluster.worker()
    db = await cluster.connect()
    admin = await ApiUser.sign_in(cluster.base_url, "admin")
    users = [admin]
    try:
        for person in (
            {
                "employee_no": "e5001",
                "name": "孙总",
                "department": "HQ",
                "position": "vice-president",
                "password": "formflow",
            },
            {
                "employee_no": "e3001",
                "name": "李强",
                "department": "HQ",
                "position": "vice-president",
                "manager": "e5001",
            },
        ):
            saved = await admin.request("POST", "/api/v1/people", person)
            assert saved.status_code == 201, saved.text
        applicant, head, boss = [
            await ApiUser.sign_in(cluster.base_url, no) for no in ("e1001", "e2001", "e5001")
        ]
        users += [applicant, head, boss]
        e3001, e5001 = await person_id(db, "e3001"), await person_id(db, "e5001")

        instances = []
        for n in range(REQUESTS):
            instance = (await applicant.start_request(marketing_data(f"新品推广会 第{n + 1}场")))["id"]
            approved = await head.approve((await head.open_task(instance))["id"])
            assert approved.status_code == 200, approved.text
            instances.append(instance)

        cluster.scheduler("scheduler-1")
        cluster.scheduler("scheduler-2")

        timers = await due_now(db, instances)
        await eventually(lambda: fired_once(db, timers), "every reminder and deadline fired", timeout=30)

        await eventually(lambda: drained(db, cluster.redis.url), "every notification delivered")
        for instance in instances:
            assert len(await notifications(db, e3001, "reminder", instance)) == 1, instance
            assert len(await notifications(db, e5001, "task_assigned", instance)) == 1, instance
            escalated = await db.fetchval(
                "SELECT count(*) FROM instance_event WHERE instance = $1 AND kind = 'escalated'", instance
            )
            assert escalated == 1, instance
            task = await boss.open_task(instance)
            assert (task["node_id"], task["reason"]) == ("leader", {"rule": "escalation", "from": e3001})
        assert await db.fetchval("SELECT count(*) FROM task WHERE outcome = 'escalated'") == REQUESTS
        assert await db.fetchval("SELECT count(*) FROM incident") == 0
    finally:
        for user in users:
            await user.close()
