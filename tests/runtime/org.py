"""The demo organisation of `web/demo.py` as an `OrgDirectory`, with readable person ids."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

from runtime.calendar import BusinessCalendar
from runtime.flow import Department, Environment, FlowGraph, OrgDirectory, Person, decode_graph

ADMIN, VP, MKT_HEAD, STAFF, PRD_HEAD, PRD_STAFF, FIN_HEAD, FINANCE, HR_HEAD, ADM_HEAD, PUR_HEAD = range(1, 12)
HQ, MKT, PRD, FIN, HR, ADM, PUR = range(100, 107)

DEPARTMENTS = [
    Department(id=HQ, name="总公司", code="HQ"),
    Department(id=MKT, name="市场部", code="MKT", parent_id=HQ, head_id=MKT_HEAD, leader_id=VP),
    Department(id=PRD, name="产品部", code="PRD", parent_id=HQ, head_id=PRD_HEAD, leader_id=VP),
    Department(id=FIN, name="财务部", code="FIN", parent_id=HQ, head_id=FIN_HEAD),
    Department(id=HR, name="人力资源部", code="HR", parent_id=HQ, head_id=HR_HEAD),
    Department(id=ADM, name="行政部", code="ADM", parent_id=HQ, head_id=ADM_HEAD),
    Department(id=PUR, name="采购部", code="PUR", parent_id=HQ, head_id=PUR_HEAD),
]

PEOPLE = [
    Person(id=ADMIN, name="系统管理员", department_id=HQ, roles=("system_admin", "process_admin")),
    Person(id=VP, name="李强", department_id=HQ, position="vice-president"),
    Person(id=MKT_HEAD, name="王芳", department_id=MKT, manager_id=VP, position="manager"),
    Person(id=STAFF, name="张伟", department_id=MKT, manager_id=MKT_HEAD, position="staff"),
    Person(id=PRD_HEAD, name="赵敏", department_id=PRD, manager_id=VP, position="manager"),
    Person(id=PRD_STAFF, name="杨磊", department_id=PRD, manager_id=PRD_HEAD, position="staff"),
    Person(id=FIN_HEAD, name="陈静", department_id=FIN, position="manager"),
    Person(id=FINANCE, name="刘洋", department_id=FIN, manager_id=FIN_HEAD, roles=("finance_specialist",)),
    Person(id=HR_HEAD, name="黄丽", department_id=HR, position="manager"),
    Person(id=ADM_HEAD, name="周杰", department_id=ADM, position="manager"),
    Person(id=PUR_HEAD, name="吴刚", department_id=PUR, position="manager"),
]

ORG = OrgDirectory.build(DEPARTMENTS, PEOPLE, process_admins=[ADMIN])
CALENDAR = BusinessCalendar()
DEMO_DIR = Path(__file__).resolve().parents[2] / "builder" / "demo"
SHANGHAI = CALENDAR.timezone

# Monday 2025-09-22 10:00 in Shanghai: a normal working week before the National Day holiday.
MONDAY = dt.datetime(2025, 9, 22, 10, 0, tzinfo=SHANGHAI)


def demo_flow(key: str) -> FlowGraph:
    return decode_graph((DEMO_DIR / f"{key}.flow.json").read_bytes())


def marketing_form(budget: int | str = 200_000, **extra: Any) -> dict[str, Any]:
    return {
        "activity_name": "2025年Q4新品推广会",
        "department": MKT,
        "applicant": STAFF,
        "start_date": dt.date(2025, 11, 3),
        "end_date": dt.date(2025, 11, 5),
        "budget": Decimal(budget),
        "urgent": False,
        **extra,
    }


def env(form: dict[str, Any] | None = None, initiator: int = STAFF, **options: Any) -> Environment:
    return Environment(
        org=options.pop("org", ORG), calendar=CALENDAR, initiator=initiator, form=form or {}, **options
    )
