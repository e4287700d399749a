"""The quarterly permission review: findings from real accounts, decisions that take effect, audit."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from storage.tables import AuditEntry, Department, PermissionReviewItem, Person
from tests.service.support import person_id
from tests.web.session import Client, csrf_from, sign_in

HTMX = {"hx-request": "true"}


async def _start(client: Client, token: str) -> int:
    response = await client.post(
        "/admin/permission-reviews", data={"_csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[-1])


async def _items(review_id: int) -> list[dict[str, Any]]:
    return await PermissionReviewItem.select(
        PermissionReviewItem.id,
        PermissionReviewItem.kind,
        PermissionReviewItem.person.employee_no.as_alias("employee_no"),
    ).where(PermissionReviewItem.review == review_id)


async def test_only_system_admins_review_permissions(client: Client, login: Any) -> None:
    await login("e2001")
    assert (await client.get("/admin/permission-reviews")).status_code == 403


async def test_a_review_finds_dormant_accounts_and_revoking_switches_one_off(
    client: Client, login: Any, other_client: Client
) -> None:
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=120)
    other_token = await sign_in(other_client, "e2005")
    await Person.update({Person.last_login_at: long_ago}).where(Person.employee_no == "e2005")
    await Person.update({Person.created_at: long_ago}).where(Person.employee_no == "e2004")
    token = await login("admin")
    review_id = await _start(client, token)
    items = await _items(review_id)
    dormant = {item["employee_no"]: item["id"] for item in items if item["kind"] == "dormant"}
    assert {"e2005", "e2004"} <= set(dormant) and "admin" not in dormant
    page = await client.get(f"/admin/permission-reviews/{review_id}")
    assert "90" in page.text and "e2005" in page.text

    again = await client.post("/admin/permission-reviews", data={"_csrf_token": token}, headers=HTMX)
    assert again.status_code == 409

    early = await client.post(
        f"/admin/permission-reviews/{review_id}/complete", data={"_csrf_token": token}, headers=HTMX
    )
    assert early.status_code == 409

    revoked = await client.post(
        f"/admin/permission-reviews/items/{dormant['e2005']}",
        data={"_csrf_token": token, "decision": "revoked"},
        headers=HTMX,
    )
    assert revoked.status_code == 200 and "e2005" in revoked.text
    assert (await Person.select(Person.active).where(Person.employee_no == "e2005").first())[
        "active"
    ] is False
    assert (await other_client.get("/api/v1/me")).status_code == 401  # their session ended
    del other_token

    bad = await client.post(
        f"/admin/permission-reviews/items/{dormant['e2004']}",
        data={"_csrf_token": token, "decision": "maybe"},
        headers=HTMX,
    )
    assert bad.status_code == 422
    for item in items:
        if item["id"] != dormant["e2005"]:
            await client.post(
                f"/admin/permission-reviews/items/{item['id']}",
                data={"_csrf_token": token, "decision": "kept"},
                headers=HTMX,
            )
    done = await client.post(
        f"/admin/permission-reviews/{review_id}/complete", data={"_csrf_token": token}, follow_redirects=False
    )
    assert done.status_code == 303
    actions = [
        row["action"]
        for row in await AuditEntry.select(AuditEntry.action).where(
            AuditEntry.action.like("permission_review.%")
        )
    ]
    assert actions.count("permission_review.started") == 1 and "permission_review.revoked" in actions
    assert "permission_review.completed" in actions


async def test_the_next_review_lists_moves_role_changes_and_leftover_access(
    client: Client, login: Any
) -> None:
    token = await login("admin")
    first = await _start(client, token)
    for item in await _items(first):
        await client.post(
            f"/admin/permission-reviews/items/{item['id']}",
            data={"_csrf_token": token, "decision": "kept"},
            headers=HTMX,
        )
    await client.post(f"/admin/permission-reviews/{first}/complete", data={"_csrf_token": token})
    marketing = await Department.select(Department.id).where(Department.code == "MKT").first()
    await Person.update({Person.department: marketing["id"]}).where(Person.employee_no == "e1002")
    await Person.update({Person.active: False}).where(
        Person.employee_no == "e2001"
    )  # still head of marketing
    e2002 = await person_id("e2002")
    await Department.update({Department.head_id: e2002}).where(
        Department.code == "HR"
    )  # a second department to head
    page = await client.get("/admin/permission-reviews")
    token = csrf_from(page.text)
    second = await _start(client, token)
    kinds = {(item["employee_no"], item["kind"]) for item in await _items(second)}
    assert ("e1002", "department_move") in kinds
    assert ("e2001", "outlived_position") in kinds
    assert ("e2002", "outlived_position") in kinds
    assert not any(kind == "role_change" and who == "e1002" for who, kind in kinds)
    report = await client.get(f"/admin/permission-reviews/{second}")
    assert re.search(r"e2001", report.text)
