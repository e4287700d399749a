"""The audit viewer: search by person, action, target and day; the export honours the search."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from storage import audit
from storage.database import write_transaction
from storage.tables import AuditEntry
from tests.web.session import Client

JAN = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
FEB = datetime(2026, 2, 5, 9, 0, tzinfo=UTC)


async def _entries() -> None:
    async with write_transaction(AuditEntry._meta.db):
        await audit.record(
            "task.approve", audit.Actor(id=2, name="王芳"), target_type="task", target_id="17", now=JAN
        )
        await audit.record(
            "task.reject", audit.Actor(id=3, name="李强"), target_type="task", target_id="18", now=FEB
        )
        await audit.record(
            "template.published",
            audit.Actor(id=1, name="=cmd|' /C calc'!A0"),
            target_type="template",
            target_id="marketing-activity",
            now=FEB,
        )


async def test_employees_cannot_read_the_trail(client: Client, login: Any) -> None:
    await login("e1001")
    for path in ("/admin/audit", "/admin/audit/export.csv", "/api/v1/audit"):
        assert (await client.get(path)).status_code == 403


async def test_filters_narrow_the_trail(client: Client, login: Any) -> None:
    await _entries()
    await login("admin")
    page = await client.get("/admin/audit", params={"action": "task."})
    assert page.status_code == 200
    assert (
        "task.approve" in page.text and "task.reject" in page.text and "template.published" not in page.text
    )
    page = await client.get("/admin/audit", params={"who": "王芳"})
    assert "task.approve" in page.text and "task.reject" not in page.text
    page = await client.get(
        "/admin/audit", params={"since": "2026-02-01", "until": "2026-02-28", "target": "marketing"}
    )
    assert "template.published" in page.text and "task.reject" not in page.text
    api = (await client.get("/api/v1/audit", params={"action": "task.reject"})).json()
    assert [item["target_id"] for item in api["items"]] == ["18"]
    empty = await client.get("/admin/audit", params={"who": "nobody-at-all"})
    assert "没有符合条件的记录" in empty.text


async def test_a_reversed_day_range_is_a_clear_400(client: Client, login: Any) -> None:
    await login("admin")
    response = await client.get("/api/v1/audit", params={"since": "2026-03-01", "until": "2026-02-01"})
    assert response.status_code == 400 and "since" in response.text
    assert (await client.get("/api/v1/audit", params={"since": "not-a-day"})).status_code == 400


async def test_the_export_is_the_search_as_csv_with_formulas_defused_and_is_audited(
    client: Client, login: Any
) -> None:
    await _entries()
    await login("admin")
    response = await client.get(
        "/admin/audit/export.csv", params={"since": "2026-02-01", "until": "2026-02-28"}
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert rows[0][:4] == ["id", "at (UTC)", "who", "action"]
    assert sorted(row[3] for row in rows[1:]) == ["task.reject", "template.published"]
    assert "'=cmd|' /C calc'!A0" in {row[2] for row in rows[1:]}
    exported = await AuditEntry.select(AuditEntry.action).where(AuditEntry.action == "audit.exported")
    assert len(exported) == 1
