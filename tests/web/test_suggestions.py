"""Optimization suggestions: anyone files, admins decide with reasons and versions, the monthly stars."""

from __future__ import annotations

import datetime as dt
from typing import Any

from storage.tables import AuditEntry, Suggestion
from tests.web.session import Client, sign_in

HTMX = {"hx-request": "true"}
GOOD = {
    "template": "marketing-activity",
    "step": "leader",
    "problem": "分管领导审批经常超过两天",
    "suggestion": "预算低于一万时改为部门负责人审批即可",
    "expected_effect": "审批时长缩短一半",
}


async def test_an_employee_files_a_suggestion_against_a_step(client: Client, login: Any) -> None:
    token = await login("e1001")
    steps = await client.get("/suggestions/steps", params={"template": "marketing-activity"})
    assert "分管领导审批" in steps.text
    response = await client.post("/suggestions", data={**GOOD, "_csrf_token": token}, headers=HTMX)
    assert response.status_code == 200 and response.headers["hx-redirect"] == "/suggestions?done=filed"
    page = await client.get("/suggestions?done=filed")
    assert (
        "分管领导审批经常超过两天" in page.text
        and "Accept" not in page.text
        and "通过" not in page.text.split("建议")[0]
    )
    row = await Suggestion.select().where(Suggestion.template_key == "marketing-activity").first()
    assert row["status"] == "open" and row["node_id"] == "leader"


async def test_bad_suggestions_are_refused_with_the_field(client: Client, login: Any) -> None:
    token = await login("e1001")
    for bad, field in (
        ({"problem": ""}, "problem"),
        ({"template": "nope"}, "template"),
        ({"step": "nowhere"}, "step"),
    ):
        response = await client.post("/suggestions", data={**GOOD, **bad, "_csrf_token": token}, headers=HTMX)
        assert response.status_code == 422 and field in response.text, (bad, response.text)
    api = await client.post(
        "/api/v1/suggestions", json={**GOOD, "template": "nope"}, headers={"x-csrftoken": token}
    )
    assert api.status_code == 400 and "template" in api.text
    assert await Suggestion.count() == 0


async def test_admins_accept_reject_and_mark_done_and_the_month_has_its_star(
    client: Client, login: Any, other_client: Client
) -> None:
    employee = await sign_in(other_client, "e1001")
    ids = []
    for _ in range(3):
        created = await other_client.post("/api/v1/suggestions", json=GOOD, headers={"x-csrftoken": employee})
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    refused = await other_client.post(
        f"/api/v1/suggestions/{ids[0]}/decision",
        json={"status": "accepted"},
        headers={"x-csrftoken": employee},
    )
    assert refused.status_code == 403

    token = await login("admin")
    assert (
        await client.post(
            f"/suggestions/{ids[0]}/decision", data={"status": "accepted", "_csrf_token": token}, headers=HTMX
        )
    ).status_code == 200
    no_reason = await client.post(
        f"/suggestions/{ids[1]}/decision", data={"status": "rejected", "_csrf_token": token}, headers=HTMX
    )
    assert no_reason.status_code == 422 and "note" in no_reason.text
    rejected = await client.post(
        f"/suggestions/{ids[1]}/decision",
        data={"status": "rejected", "note": "与财务制度冲突", "_csrf_token": token},
        headers=HTMX,
    )
    assert rejected.status_code == 200
    too_early = await client.post(
        f"/suggestions/{ids[2]}/decision",
        data={"status": "done", "version": "1", "_csrf_token": token},
        headers=HTMX,
    )
    assert too_early.status_code == 409
    missing_version = await client.post(
        f"/api/v1/suggestions/{ids[0]}/decision",
        json={"status": "done", "version": 99},
        headers={"x-csrftoken": token},
    )
    assert missing_version.status_code == 400 and "version" in missing_version.text
    done = await client.post(
        f"/api/v1/suggestions/{ids[0]}/decision",
        json={"status": "done", "version": 1},
        headers={"x-csrftoken": token},
    )
    assert done.status_code == 200
    rows = {row["id"]: row for row in await Suggestion.select()}
    assert (rows[ids[0]]["status"], rows[ids[0]]["implemented_version"]) == ("done", 1)
    assert (rows[ids[1]]["status"], rows[ids[1]]["decision_note"]) == ("rejected", "与财务制度冲突")
    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    page = await client.get("/suggestions", params={"month": month})
    stars = page.text.split('id="stars"')[1]
    assert "张伟" in stars and "1" in stars
    listed = (await client.get("/api/v1/suggestions", params={"status": "done"})).json()
    assert [item["id"] for item in listed["items"]] == [ids[0]]
    actions = [
        r["action"]
        for r in await AuditEntry.select(AuditEntry.action).where(AuditEntry.action.like("suggestion.%"))
    ]
    assert (
        actions.count("suggestion.filed") == 3
        and "suggestion.done" in actions
        and "suggestion.rejected" in actions
    )
    assert (await client.get("/suggestions", params={"month": "2026-13"})).status_code == 400
