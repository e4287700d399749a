"""A request history with known working-hour durations around China's 2025 National Day.

Working time is 09:00-12:00 and 13:00-18:00 (8 hours a day). 2025-09-28 (Sunday) and
2025-10-11 (Saturday) are swapped working days; 2025-10-01 to 2025-10-08 are holidays.
Each task's duration is written beside it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from runtime.calendar import BusinessCalendar
from runtime.insight import RequestRecord, TaskRecord

CALENDAR = BusinessCalendar()
SH = CALENDAR.timezone
MARKETING, PRODUCT = 10, 20


def at(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2025, month, day, hour, minute, tzinfo=SH)


def task(
    instance_id: int,
    node_id: str,
    created: dt.datetime,
    closed: dt.datetime | None,
    outcome: str | None,
    *,
    due: dt.datetime | None = None,
    template: str = "purchase",
    department_id: int = MARKETING,
) -> TaskRecord:
    return TaskRecord(
        instance_id=instance_id,
        template=template,
        node_id=node_id,
        step={"dept": "部门审批", "finance": "财务审批", "head": "主管审批"}[node_id],
        department_id=department_id,
        created_at=created,
        closed_at=closed,
        due_at=due,
        outcome=outcome,
    )


TASKS = [
    # purchase / dept: 2, 4, 11, 4, 1.5 hours
    task(1, "dept", at(9, 26, 17), at(9, 28, 10), "approved", due=at(9, 29, 18)),  # Fri 1 h + swapped Sun 1 h
    task(2, "dept", at(9, 30, 16), at(10, 9, 11), "returned", due=at(10, 9, 10)),  # 2 h, holiday, 2 h; late
    task(
        2, "dept", at(10, 10, 9), at(10, 11, 12), "approved", due=at(10, 10, 18)
    ),  # 8 h + swapped Sat 3 h; late
    task(3, "dept", at(10, 13, 9), at(10, 13, 14), "rejected"),  # 3 h + lunch + 1 h
    task(4, "dept", at(10, 18, 10), at(10, 20, 10, 30), "approved"),  # created on a Saturday: 1.5 h
    task(4, "dept", at(10, 18, 10), at(10, 20, 10, 30), "decided_by_other"),  # not a decision: no duration
    task(5, "dept", at(10, 14, 9), None, None, due=at(10, 15, 9)),  # still open
    # purchase / finance: 16, 8, 6 hours
    task(1, "finance", at(9, 28, 10), at(9, 30, 10), "approved"),  # swapped Sun 7 h + Mon 8 h + Tue 1 h
    task(2, "finance", at(10, 11, 12), at(10, 13, 12), "approved"),  # swapped Sat 5 h + Sun off + Mon 3 h
    task(4, "finance", at(10, 20, 10, 30), at(10, 20, 17, 30), "rejected"),  # 1.5 h + 4.5 h
    # leave / head: 7 hours
    task(6, "head", at(10, 9, 9), at(10, 9, 17), "approved", template="leave", department_id=PRODUCT),
]


def request(
    instance_id: int,
    submitted: dt.datetime,
    closed: dt.datetime | None,
    status: str,
    *,
    template: str = "purchase",
    returns: int = 0,
    rejections: int = 0,
    resubmissions: int = 0,
    budget: str | None = None,
    actual: str | None = None,
    department_id: int = MARKETING,
) -> RequestRecord:
    return RequestRecord(
        instance_id=instance_id,
        number=f"FL2025100{instance_id:02d}",
        title=f"request {instance_id}",
        template=template,
        department_id=department_id,
        status=status,
        submitted_at=submitted,
        closed_at=closed,
        returns=returns,
        rejections=rejections,
        resubmissions=resubmissions,
        budget=Decimal(budget) if budget is not None else None,
        actual_spend=Decimal(actual) if actual is not None else None,
    )


REQUESTS = [
    request(1, at(9, 26, 17), at(9, 30, 10), "archived", budget="10000", actual="12000"),  # 18 h
    request(
        2, at(9, 30, 16), at(10, 13, 12), "archived", returns=1, resubmissions=1, budget="5000", actual="4000"
    ),  # 29 h
    request(3, at(10, 13, 9), at(10, 13, 14), "rejected", rejections=1, budget="800"),  # 4 h
    request(4, at(10, 18, 10), at(10, 20, 17, 30), "rejected", rejections=1),  # 7.5 h
    request(5, at(10, 14, 9), None, "in_approval"),
    request(
        6,
        at(10, 9, 9),
        at(10, 9, 17),
        "archived",
        template="leave",
        returns=2,
        resubmissions=2,
        department_id=PRODUCT,
    ),
]
