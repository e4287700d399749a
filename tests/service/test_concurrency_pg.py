"""Two approvers at once: exactly one wins, the others get a conflict, one event is recorded.

On PostgreSQL 20 approvals race on separate connections (Piccolo opens one per transaction
without a pool): the row lock on the instance and its `row_version` check let one through.
On SQLite the IMMEDIATE write transactions queue, and the same check refuses the rest.
"""

from __future__ import annotations

import asyncio

import pytest

from runtime.flow.errors import TaskNotOpenError
from runtime.service import CreateRequest, TaskAction, TaskActionRequest, act_on_task, create_instance
from runtime.service.errors import ConflictError
from storage.tables import AuditEntry, InstanceEvent, Task
from tests.conftest import ON_POSTGRES
from tests.service.support import Clock, caller, marketing_data, open_task

LOSES = (ConflictError, TaskNotOpenError)
"""Both are 409: the row changed under the loser, or it loaded after the winner committed."""


async def race(racers: int) -> list[object]:
    clock = Clock()
    request = CreateRequest(template="marketing-activity", data=marketing_data(), submit=True)
    created = await create_instance(await caller("e1001"), request, clock())
    task = await open_task(created.id, "e2001")
    head = await caller("e2001")
    approve = TaskActionRequest(action=TaskAction.APPROVE, comment="同意")
    outcomes = await asyncio.gather(
        *(act_on_task(head, task["id"], approve, clock()) for _ in range(racers)), return_exceptions=True
    )
    unexpected = [o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, LOSES)]
    assert not unexpected, unexpected
    assert len([o for o in outcomes if not isinstance(o, BaseException)]) == 1
    assert await InstanceEvent.count().where(InstanceEvent.kind == "approve") == 1
    assert await AuditEntry.count().where(AuditEntry.action == "instance.approve") == 1
    assert await Task.count().where(Task.node_id == "leader") == 1
    return list(outcomes)


@pytest.mark.postgres
async def test_twenty_concurrent_approvals_on_postgresql(db: None) -> None:
    if not ON_POSTGRES:
        # Not a missing component: this run is the SQLite pass; `.ci/run` runs the suite again on PostgreSQL.
        pytest.skip("runs in the PostgreSQL pass (FORMFLOW_TEST_DATABASE_URL)")
    outcomes = await race(20)
    assert sum(isinstance(o, LOSES) for o in outcomes) == 19


async def test_concurrent_approvals_queue_on_either_engine(db: None) -> None:
    outcomes = await race(5)
    assert sum(isinstance(o, LOSES) for o in outcomes) == 4
