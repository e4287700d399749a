"""Helpers for service tests: demo people as callers, valid marketing data, a movable clock."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from runtime.service import Caller
from runtime.service.pipeline import CALENDAR
from storage.access import Principal
from storage.database import write_transaction
from storage.org import load_principal, person_id_by_employee_no
from storage.tables import Department, OutboxMessage, Task
from storage.templates import publish_version

SHANGHAI = CALENDAR.timezone


async def person_id(employee_no: str) -> int:
    found = await person_id_by_employee_no(employee_no)
    assert found is not None, employee_no
    return found


async def principal(employee_no: str) -> Principal:
    loaded = await load_principal(await person_id(employee_no))
    assert loaded is not None
    return loaded


async def caller(employee_no: str) -> Caller:
    return Caller(principal=await principal(employee_no))


async def department_id(code: str) -> int:
    row = await Department.select(Department.id).where(Department.code == code).first()
    return int(row["id"])


def marketing_data(budget: int = 200_000, **changes: Any) -> dict[str, Any]:
    """A complete marketing-activity submission whose budget lines add up to `budget`."""
    venue, materials = Decimal(budget) * Decimal("0.4"), Decimal(budget) * Decimal("0.35")
    publicity = Decimal(budget) - venue - materials
    data: dict[str, Any] = {
        "activity_name": "2024年Q3新品推广会",
        "contact_phone": "13800138000",
        "start_date": "2027-03-01",
        "end_date": "2027-03-03",
        "budget": budget,
        "goal": "新品认知度提升30%",
        "audience": "华东区域的潜在客户",
        "execution_plan": "场地确认、物料采购、活动执行、总结复盘",
        "venue": "上海国际会议中心",
        "budget_lines": [
            {"item": "场地租赁", "category": "venue", "amount": str(venue)},
            {"item": "物料制作", "category": "materials", "amount": str(materials)},
            {"item": "媒体宣传", "category": "publicity", "amount": str(publicity)},
        ],
    }
    data.update(changes)
    return data


class Clock:
    """A clock the test moves: starts at 10:00 Shanghai on the next working day after today
    (templates are in effect from the moment the demo was seeded, so tests cannot go back)."""

    def __init__(self) -> None:
        day = dt.datetime.now(SHANGHAI).date() + dt.timedelta(days=1)
        while not (CALENDAR.is_working_day(day) and CALENDAR.is_working_day(day + dt.timedelta(days=1))):
            day += dt.timedelta(days=1)
        self.now = dt.datetime.combine(day, dt.time(10), SHANGHAI)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


async def open_task(instance_id: int, employee_no: str, node_id: str | None = None) -> dict[str, Any]:
    """The one open task of a person on an instance (optionally at a node)."""
    where = (
        (Task.instance == instance_id)
        & (Task.assignee == await person_id(employee_no))
        & (Task.status == "open")
    )
    if node_id is not None:
        where = where & (Task.node_id == node_id)
    rows = await Task.select().where(where).output(load_json=True)
    assert len(rows) == 1, f"expected one open task of {employee_no}: {rows}"
    return rows[0]


DEMO_DIR = Path(__file__).resolve().parents[2] / "builder" / "demo"


def demo_flow(key: str = "marketing-activity") -> dict[str, Any]:
    flow: dict[str, Any] = json.loads((DEMO_DIR / f"{key}.flow.json").read_text())
    return flow


async def publish(key: str, flow: dict[str, Any], *, form_of: str = "marketing-activity") -> None:
    """Publish a template `key` (the demo form of `form_of`) with `flow`, in effect from now."""
    form = json.loads((DEMO_DIR / f"{form_of}.form.json").read_text())
    now = dt.datetime.now(dt.UTC)
    async with write_transaction(Department._meta.db):
        await publish_version(
            key=key,
            category="test",
            name_zh=key,
            name_en=key,
            form={**form, "key": key},
            flow={**flow, "key": key},
            change_note="test",
            effective_from=now,
            now=now,
            published_by=None,
        )


async def notices(template: str) -> list[dict[str, Any]]:
    """The payloads of the outbox "notify" messages of one template, in the order written."""
    rows = await (
        OutboxMessage.select(OutboxMessage.payload)
        .where(OutboxMessage.actor == "notify")
        .order_by(OutboxMessage.id)
        .output(load_json=True)
    )
    return [row["payload"] for row in rows if row["payload"]["template"] == template]
