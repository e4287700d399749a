"""The inbox, page by page: overdue tasks and tasks of urgent requests first, then by deadline,
each row with its request and applicant; every open task on exactly one page."""

from __future__ import annotations

import datetime as dt

from runtime.service import CreateRequest, create_instance, list_tasks
from storage.tables import Instance, Task
from tests.service.support import caller, marketing_data, principal

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(
    days=1
)  # after the demo versions take effect


async def test_pages_put_overdue_and_urgent_first_then_the_nearest_deadline(db: None) -> None:
    applicant = await caller("e1001")
    numbers = []
    for n in range(7):
        request = CreateRequest(template="marketing-activity", data=marketing_data(30_000), submit=True)
        numbers.append((await create_instance(applicant, request, NOW + dt.timedelta(minutes=n))).number)
    # deadlines: hours from now, one past (overdue); the request of the 5th is urgent
    hours = [30, 5, -2, 50, 70, 10, 20]
    for number, offset in zip(numbers, hours, strict=True):
        row = await Instance.select(Instance.id).where(Instance.number == number).first()
        await Task.update({Task.due_at: NOW + dt.timedelta(hours=offset)}).where(Task.instance == row["id"])
    await Instance.update({Instance.urgent: True}).where(Instance.number == numbers[4])
    head = await principal("e2001")

    pages = [await list_tasks(head, NOW, page=page, page_size=3) for page in (1, 2, 3)]

    listed = [item.number for page in pages for item in page.items]
    by_deadline = [numbers[i] for i in (1, 5, 6, 0, 3)]  # 5, 10, 20, 30, 50 hours
    assert listed == [numbers[2], numbers[4], *by_deadline]  # overdue (-2 h), urgent (70 h), the rest
    assert [len(page.items) for page in pages] == [3, 3, 1] and {page.total for page in pages} == {7}
    first = pages[0].items[0]
    assert first.initiator.name == "张伟" and first.instance_title and first.template == "marketing-activity"
