"""Process insight as people use it: scoped monitoring, analytics and exports, and safe files.

The history is written as rows with known times around China's 2025 National Day (the app's
clock is set to Thursday 2025-10-16 10:00 Shanghai): a marketing request waiting at its first
step since Tuesday 09:00 (17 working hours, past its deadline), a finished marketing request
whose step took 4 working hours across the holiday, and the same for the product department.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

import pytest
from litestar import Litestar
from openpyxl import load_workbook

from runtime.service.pipeline import CALENDAR
from storage.tables import Department, Instance, InstanceEvent, Person, Task, TemplateVersion
from tests.web.session import Client, sign_in

SH = CALENDAR.timezone
HTML = {"accept": "text/html"}
FORMULA_TITLE = '=HYPERLINK("http://evil.example","点我")'
BANK_ACCOUNT = "6222020202020202"


def at(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2025, month, day, hour, minute, tzinfo=SH)


NOW = at(10, 16, 10)


async def _id(table: Any, column: Any, value: str) -> int:
    row = await table.select(table.id).where(column == value).first()
    assert row is not None, value
    return int(row["id"])


async def _version(key: str) -> int:
    row = await (
        TemplateVersion.select(TemplateVersion.id)
        .where(TemplateVersion.template.key == key)
        .order_by(TemplateVersion.version, ascending=False)
        .first()
    )
    assert row is not None, key
    return int(row["id"])


async def _request(
    number: str,
    title: str,
    who: str,
    department: str,
    *,
    status: str,
    submitted: dt.datetime,
    closed: dt.datetime | None = None,
    template: str = "marketing-activity",
    data: dict[str, Any] | None = None,
) -> int:
    rows = await Instance.insert(
        Instance(
            number=number,
            template_key=template,
            template_version=await _version(template),
            version=1,
            initiator=await _id(Person, Person.employee_no, who),
            department_id=await _id(Department, Department.code, department),
            title=title,
            status=status,
            data=json.dumps(data or {"budget": 10000}),
            state="{}",
            current_step="部门负责人审批" if status == "in_approval" else "",
            created_at=submitted,
            submitted_at=submitted,
            updated_at=closed or submitted,
            closed_at=closed,
        )
    ).returning(Instance.id)
    return int(rows[0]["id"])


async def _task(
    instance: int,
    who: str,
    created: dt.datetime,
    *,
    closed: dt.datetime | None = None,
    outcome: str | None = None,
    due: dt.datetime | None = None,
) -> None:
    await Task.insert(
        Task(
            task_key=f"{instance}:dept:{created.isoformat()}",
            instance=instance,
            node_id="dept_head",
            kind="approval",
            title="部门负责人审批",
            assignee=await _id(Person, Person.employee_no, who),
            status="closed" if closed else "open",
            outcome=outcome,
            created_at=created,
            due_at=due,
            closed_at=closed,
        )
    )


async def _event(instance: int, seq: int, kind: str, when: dt.datetime, data: dict[str, Any]) -> None:
    await InstanceEvent.insert(
        InstanceEvent(instance=instance, seq=seq, at=when, kind=kind, data=json.dumps(data))
    )


@pytest.fixture()
async def history(app: Litestar) -> dict[str, int]:
    app.state.clock = lambda: NOW
    m_open = await _request(
        "FL202510001", FORMULA_TITLE, "e1001", "MKT", status="in_approval", submitted=at(10, 14, 9)
    )
    await _task(m_open, "e2001", at(10, 14, 9), due=at(10, 15, 9))
    m_done = await _request(
        "FL202510002",
        "市场部已归档",
        "e1001",
        "MKT",
        status="archived",
        submitted=at(9, 30, 16),
        closed=at(10, 13, 12),
    )
    await _task(
        m_done, "e2001", at(9, 30, 16), closed=at(10, 9, 11), outcome="approved"
    )  # 2 h + holiday + 2 h
    await _event(m_done, 1, "return", at(10, 9, 11), {})
    await _event(m_done, 2, "summary", at(10, 13, 12), {"actual_spend": "12000"})
    p_open = await _request(
        "FL202510003", "产品部进行中", "e1002", "PRD", status="in_approval", submitted=at(10, 14, 9)
    )
    await _task(p_open, "e2002", at(10, 14, 9), due=at(10, 20, 9))
    p_done = await _request(
        "FL202510004",
        "产品部已归档",
        "e1002",
        "PRD",
        status="archived",
        submitted=at(10, 9, 9),
        closed=at(10, 10, 9),
    )
    await _task(p_done, "e2002", at(10, 9, 9), closed=at(10, 9, 17), outcome="rejected")  # 7 h
    await _event(p_done, 1, "summary", at(10, 10, 9), {"actual_spend": "999"})
    expense = await _request(
        "FL202510005",
        "差旅报销",
        "e1001",
        "MKT",
        status="in_approval",
        submitted=at(10, 15, 9),
        template="expense-reimbursement",
        data={"payment_method": "bank_transfer", "bank_account": BANK_ACCOUNT, "remarks": "@SUM(A1:A9)"},
    )
    await _task(expense, "e2001", at(10, 15, 9))
    return {"m_open": m_open, "m_done": m_done, "p_open": p_open, "p_done": p_done, "expense": expense}


async def test_a_marketing_head_monitors_only_marketing(client: Client, history: dict[str, int]) -> None:
    await sign_in(client, "e2001")
    page = await client.get("/insight", headers=HTML)
    assert page.status_code == 200
    assert "FL202510001" in page.text and "FL202510005" in page.text
    assert "FL202510003" not in page.text and "产品部" not in page.text
    assert 'hx-trigger="every 30s"' in page.text

    found = (await client.get("/api/v1/insight/monitor")).json()
    assert [row["number"] for row in found["items"]] == ["FL202510001", "FL202510005"]
    waiting = found["items"][0]
    assert waiting["waited_hours"] == 17.0  # Tuesday 09:00 to Thursday 10:00 in working hours
    assert waiting["overdue"] is True
    assert found["overdue"] == 1
    assert {g["label"]: g["count"] for g in found["by_department"]} == {"市场部": 2}

    overdue_only = (await client.get("/api/v1/insight/monitor", params={"overdue": "true"})).json()
    assert [row["number"] for row in overdue_only["items"]] == ["FL202510001"]

    product = await _id(Department, Department.code, "PRD")
    widened = (await client.get("/api/v1/insight/monitor", params={"department": str(product)})).json()
    assert widened["items"] == [] and widened["total"] == 0  # a filter never widens the scope


async def test_the_supervising_leader_sees_the_departments_they_supervise(
    client: Client, history: dict[str, int]
) -> None:
    await sign_in(client, "e3001")
    found = (await client.get("/api/v1/insight/monitor")).json()
    assert sorted(row["number"] for row in found["items"]) == ["FL202510001", "FL202510003", "FL202510005"]


async def test_an_admin_monitors_every_department(client: Client, history: dict[str, int]) -> None:
    await sign_in(client, "admin")
    found = (await client.get("/api/v1/insight/monitor")).json()
    assert sorted(row["number"] for row in found["items"]) == ["FL202510001", "FL202510003", "FL202510005"]
    product = await _id(Department, Department.code, "PRD")
    narrowed = (await client.get("/api/v1/insight/monitor", params={"department": str(product)})).json()
    assert [row["number"] for row in narrowed["items"]] == ["FL202510003"]


async def test_a_marketing_head_analyses_only_marketing(client: Client, history: dict[str, int]) -> None:
    await sign_in(client, "e2001")
    found = (await client.get("/api/v1/insight/analytics")).json()
    steps = [
        (s["stats"]["template"], s["stats"]["decided"], s["stats"]["median_hours"]) for s in found["steps"]
    ]
    assert steps == [("marketing-activity", 1, 4.0)]  # the product step (7 h, rejected) is not theirs
    marketing = {t["template"]: t for t in found["templates"]}["marketing-activity"]
    assert (marketing["requests"], marketing["finished"], marketing["return_rate"]) == (2, 1, 0.5)
    assert [c["number"] for c in found["costs"]] == ["FL202510002"]
    assert found["costs"][0]["deviation"] == "2000"

    october = (await client.get("/api/v1/insight/analytics", params={"since": "2025-10-01"})).json()
    assert {t["template"]: t["requests"] for t in october["templates"]} == {
        "marketing-activity": 1,  # the one submitted on 30 September falls out
        "expense-reimbursement": 1,
    }

    page = await client.get("/insight/analytics", headers=HTML)
    assert page.status_code == 200
    assert "<svg" in page.text and "FL202510002" in page.text
    assert "FL202510004" not in page.text and "产品部" not in page.text


async def test_marketing_csv_export_is_scoped_and_neutralised(
    client: Client, history: dict[str, int]
) -> None:
    await sign_in(client, "e2001")
    response = await client.get("/insight/exports/requests", params={"format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    numbers = [row[0] for row in rows[1:]]
    assert sorted(numbers) == ["FL202510001", "FL202510002", "FL202510005"]
    titles = {row[0]: row[1] for row in rows[1:]}
    assert titles["FL202510001"] == "'" + FORMULA_TITLE
    assert not any(cell.startswith(("=", "+", "@")) for row in rows for cell in row)

    tasks = await client.get("/insight/exports/tasks", params={"format": "csv"})
    assert "FL202510003" not in tasks.text and "FL202510001" in tasks.text


async def test_sensitive_fields_are_masked_in_exports(client: Client, history: dict[str, int]) -> None:
    await sign_in(client, "e2001")
    response = await client.get(
        "/insight/exports/requests", params={"format": "csv", "template": "expense-reimbursement"}
    )
    text = response.content.decode("utf-8-sig")
    assert BANK_ACCOUNT not in text
    header, row = list(csv.reader(io.StringIO(text)))
    assert row[header.index("收款账号")] == "****"
    assert row[header.index("备注")] == "'@SUM(A1:A9)"


async def test_marketing_xlsx_export_opens_and_is_scoped(client: Client, history: dict[str, int]) -> None:
    await sign_in(client, "e2001")
    response = await client.get("/insight/exports/requests", params={"format": "xlsx"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(response.content), read_only=True)
    rows = list(book.active.iter_rows(values_only=True))
    assert sorted(row[0] for row in rows[1:]) == ["FL202510001", "FL202510002", "FL202510005"]
    title = {row[0]: row[1] for row in rows[1:]}["FL202510001"]
    assert title == "'" + FORMULA_TITLE  # text, not a formula
    durations = await client.get("/insight/exports/durations", params={"format": "xlsx"})
    sheet = load_workbook(io.BytesIO(durations.content), read_only=True).active
    assert [row[2:4] for row in sheet.iter_rows(min_row=2, values_only=True)] == [(1, 4)]


@pytest.mark.parametrize(
    "path",
    [
        "/insight",
        "/insight/analytics",
        "/api/v1/insight/monitor",
        "/api/v1/insight/analytics",
        "/insight/exports/requests?format=csv",
        "/insight/exports/tasks?format=xlsx",
    ],
)
async def test_a_product_employee_may_not_look(client: Client, history: dict[str, int], path: str) -> None:
    await sign_in(client, "e1002")
    response = await client.get(path)
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"department": "marketing"}, "department"),
        ({"since": "2025-13-01"}, "since"),
        ({"since": "2025-10-10", "until": "2025-10-01"}, "until"),
        ({"format": "pdf"}, "format"),
        ({"overdue": "maybe"}, "overdue"),
    ],
)
async def test_bad_filters_are_a_clear_400(
    client: Client, history: dict[str, int], params: dict[str, str], field: str
) -> None:
    await sign_in(client, "e2001")
    response = await client.get("/insight/exports/requests", params=params)
    assert response.status_code == 400
    assert field in response.json()["detail"]


async def test_an_unknown_export_is_404(client: Client, history: dict[str, int]) -> None:
    await sign_in(client, "admin")
    assert (await client.get("/insight/exports/salaries")).status_code == 404


async def test_the_navigation_links_insight_for_those_who_may_see_it(client: Client) -> None:
    await sign_in(client, "e2001")
    assert 'href="/insight"' in (await client.get("/", headers=HTML)).text
    await client.post("/logout", headers={"x-csrftoken": client.cookies.get("csrftoken", "")})
    other = await sign_in(client, "e1001")
    assert other
    assert 'href="/insight"' not in (await client.get("/", headers=HTML)).text


async def test_without_history_the_pages_say_so(client: Client) -> None:
    await sign_in(client, "e3001")
    monitor = await client.get("/insight", headers=HTML)
    assert monitor.status_code == 200 and "这里没有等待处理的申请" in monitor.text
    analytics = await client.get("/insight/analytics", headers=HTML)
    assert analytics.status_code == 200 and "暂无符合筛选条件的已提交申请" in analytics.text


async def test_the_live_refresh_answers_the_table_alone(client: Client, history: dict[str, int]) -> None:
    await sign_in(client, "e2001")
    part = await client.get("/insight", params={"overdue": "true"}, headers={**HTML, "hx-request": "true"})
    assert part.status_code == 200
    assert part.text.lstrip().startswith('<div id="monitor"')
    assert "FL202510001" in part.text and "FL202510005" not in part.text
    assert "overdue=true" in part.text  # the next refresh keeps the filter


async def test_exports_read_in_batches_without_losing_or_repeating_rows(
    client: Client, history: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime.service import insight

    monkeypatch.setattr(insight, "EXPORT_BATCH", 2)
    await sign_in(client, "admin")
    tasks = await client.get("/insight/exports/tasks", params={"format": "csv"})
    numbers = [row[0] for row in list(csv.reader(io.StringIO(tasks.content.decode("utf-8-sig"))))[1:]]
    assert sorted(numbers) == ["FL202510001", "FL202510002", "FL202510003", "FL202510004", "FL202510005"]


async def test_execution_records_and_cost_exports_are_scoped(client: Client, history: dict[str, int]) -> None:
    await sign_in(client, "e2001")
    records = await client.get("/insight/exports/records", params={"format": "csv"})
    rows = list(csv.reader(io.StringIO(records.content.decode("utf-8-sig"))))
    assert [(row[0], row[4], row[8]) for row in rows[1:]] == [("FL202510002", "summary", "12000")]
    costs = await client.get("/insight/exports/costs", params={"format": "xlsx"})
    sheet = load_workbook(io.BytesIO(costs.content), read_only=True).active
    assert [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)] == ["FL202510002"]
