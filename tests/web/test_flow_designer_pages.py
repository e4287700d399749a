"""The flow designer's pages: only process admins, every edit over htmx, refusals in place."""

from __future__ import annotations

import re
from typing import Any

import pytest

from builder import drafts
from tests.web.session import Client

KEY = "marketing-activity"
HTMX = {"hx-request": "true"}


async def _designer(client: Client, step: str = "") -> str:
    response = await client.get(f"/designer/{KEY}/flow" + (f"?step={step}" if step else ""), headers=HTMX)
    assert response.status_code == 200, response.text
    return response.text


def _row_version(html: str) -> str:
    match = re.search(r'data-row-version="(\d+)"', html)
    assert match
    return match.group(1)


async def _post(client: Client, token: str, path: str, data: dict[str, Any]) -> Any:
    return await client.post(path, data=data, headers={**HTMX, "x-csrftoken": token})


async def _flow() -> dict[str, Any]:
    draft = await drafts.open_draft(KEY, __import__("datetime").datetime.now(__import__("datetime").UTC))
    assert draft.flow is not None
    return draft.flow


@pytest.mark.parametrize("path", [f"/designer/{KEY}/flow", f"/designer/{KEY}/flow/graph"])
async def test_employees_cannot_open_the_designer(client: Client, login: Any, path: str) -> None:
    await login("e1001")
    response = await client.get(path, headers={"accept": "text/html"})
    assert response.status_code == 403


async def test_an_employee_cannot_change_a_flow(client: Client, login: Any) -> None:
    token = await login("e2001")
    response = await _post(
        client, token, f"/designer/{KEY}/flow/insert", {"row_version": "1", "kind": "cc", "on_edge": "0"}
    )
    assert response.status_code == 403


async def test_the_designer_shows_every_step_with_a_plus_between(client: Client, login: Any) -> None:
    await login("admin")
    html = await _designer(client)
    for title in ("部门负责人审批", "分管领导审批", "财务联审", "总结报告"):
        assert title in html
    assert html.count('aria-label="在此处添加步骤"') >= 9
    picture = await client.get(f"/designer/{KEY}/flow/graph")
    assert picture.status_code == 200 and "<svg" in picture.text and "分管领导审批" in picture.text


async def test_adding_configuring_and_removing_a_step(client: Client, login: Any) -> None:
    token = await login("admin")
    html = await _designer(client)
    flow = await _flow()
    into_leader = next(i for i, e in enumerate(flow["edges"]) if e["to"] == "leader")
    response = await _post(
        client,
        token,
        f"/designer/{KEY}/flow/insert",
        {"row_version": _row_version(html), "kind": "cc", "on_edge": str(into_leader)},
    )
    assert response.status_code == 200, response.text
    flow = await _flow()
    cc = next(n for n in flow["nodes"] if n["type"] == "cc" and n["id"].startswith("cc_"))
    assert {"from": cc["id"], "to": "leader"} in flow["edges"]
    assert "抄送人" in response.text and 'aria-current="true"' in response.text  # the new step is open

    response = await _post(
        client,
        token,
        f"/designer/{KEY}/flow/steps/{cc['id']}",
        {
            "row_version": _row_version(response.text),
            "title": "抄送财务",
            "recipients.kind": "role",
            "recipients.role": "finance_specialist",
        },
    )
    assert response.status_code == 200, response.text
    cc = next(n for n in (await _flow())["nodes"] if n["id"] == cc["id"])
    assert cc["title"] == "抄送财务" and cc["recipients"] == {"kind": "role", "role": "finance_specialist"}

    response = await _post(
        client,
        token,
        f"/designer/{KEY}/flow/steps/{cc['id']}/remove",
        {"row_version": _row_version(response.text)},
    )
    assert response.status_code == 200
    assert cc["id"] not in {n["id"] for n in (await _flow())["nodes"]}
    # and undo brings it back
    response = await _post(
        client, token, f"/designer/{KEY}/flow/undo", {"row_version": _row_version(response.text)}
    )
    assert response.status_code == 200 and "抄送财务" in response.text


async def test_an_approval_panel_sets_rule_mode_deadline_actions_and_field_access(
    client: Client, login: Any
) -> None:
    token = await login("admin")
    html = await _designer(client, "leader")
    assert "审批方式" in html or "Approval mode" in html
    response = await _post(
        client,
        token,
        f"/designer/{KEY}/flow/steps/leader",
        {
            "row_version": _row_version(html),
            "title": "分管领导审批",
            "assignees.kind": "people",
            "assignees.people": "e3001, e2001",
            "mode": "sequential",
            "empty_policy": "error",
            "sla.working_hours": "8",
            "sla.urgent_hours": "4",
            "sla.remind_before_hours": "",
            "sla.overdue_action": "escalate_to_manager",
            "sla.overdue_after_hours": "2",
            "actions": ["approve", "reject", "return"],
        },
    )
    assert response.status_code == 200, response.text
    assert "e3001, e2001" in response.text  # the picker shows who was chosen, in order
    leader = next(n for n in (await _flow())["nodes"] if n["id"] == "leader")
    assert (
        leader["mode"] == "sequential"
        and leader["assignees"]["kind"] == "people"
        and len(leader["assignees"]["ids"]) == 2
    )
    assert leader["sla"] == {
        "working_hours": 8,
        "urgent_hours": 4,
        "remind_before_hours": None,
        "overdue_action": "escalate_to_manager",
        "overdue_after_hours": 2,
    }
    assert leader["actions"] == ["approve", "reject", "return"]
    response = await _post(
        client,
        token,
        f"/designer/{KEY}/flow/steps/leader/permissions",
        {
            "row_version": _row_version(response.text),
            "access.budget": "editable",
            "access.supplier": "hidden",
            "access.venue": "read_only",
        },
    )
    assert response.status_code == 200
    leader = next(n for n in (await _flow())["nodes"] if n["id"] == "leader")
    assert leader["field_permissions"] == {"budget": "editable", "supplier": "hidden"}


async def test_a_branch_gets_a_visual_condition_and_the_problems_clear(client: Client, login: Any) -> None:
    token = await login("admin")
    html = await _designer(client)
    flow = await _flow()
    into_finance = next(i for i, e in enumerate(flow["edges"]) if e["to"] == "finance")
    response = await _post(
        client,
        token,
        f"/designer/{KEY}/flow/insert",
        {"row_version": _row_version(html), "kind": "branch", "on_edge": str(into_finance)},
    )
    assert response.status_code == 200
    flow = await _flow()
    branch = next(n["id"] for n in flow["nodes"] if n["type"] == "branch")
    arm = next(i for i, e in enumerate(flow["edges"]) if e["from"] == branch and not e.get("is_default"))
    response = await _post(
        client,
        token,
        f"/designer/{KEY}/flow/edges/{arm}",
        {"row_version": _row_version(response.text), "field": "budget", "operator": ">", "value": "50000"},
    )
    assert response.status_code == 200, response.text
    assert (await _flow())["edges"][arm]["condition"] == "form.budget > 50000"
    assert "form.budget &gt; 50000" in response.text


async def test_refusals_are_shown_in_place_and_change_nothing(
    client: Client, login: Any, other_client: Client
) -> None:
    token = await login("admin")
    html = await _designer(client)
    stale = _row_version(html)
    # a plugin step with a config that does not fit its type is refused with the setting named
    added = await _post(
        client,
        token,
        f"/designer/{KEY}/flow/insert",
        {"row_version": stale, "kind": "plugin", "before": "end"},
    )
    plugin = next(
        n["id"] for n in (await _flow())["nodes"] if n["type"] == "plugin" and n["id"].startswith("plugin_")
    )
    switched = await _post(
        client,
        token,
        f"/designer/{KEY}/flow/steps/{plugin}",
        {"row_version": _row_version(added.text), "title": "财务联审", "plugin": "finance-co-review"},
    )
    assert switched.status_code == 200
    stale = _row_version(switched.text)
    before = await _flow()
    response = await _post(
        client,
        token,
        f"/designer/{KEY}/flow/steps/{plugin}",
        {
            "row_version": stale,
            "title": "财务联审",
            "plugin": "finance-co-review",
            "config.threshold": "lots",
        },
    )
    assert response.status_code == 422
    assert (
        response.headers["x-formflow-message"] == "1" and response.headers["hx-retarget"] == "#flow-message"
    )
    assert "threshold" in response.text
    response = await _post(client, token, f"/designer/{KEY}/flow/steps/start/remove", {"row_version": stale})
    assert response.status_code == 422 and "cannot be removed" in response.text
    response = await _post(
        client,
        token,
        f"/designer/{KEY}/flow/steps/leader",
        {"row_version": stale, "title": "x", "assignees.kind": "people", "assignees.people": "e9999"},
    )
    assert response.status_code == 422 and "e9999" in response.text
    assert await _flow() == before
    # someone else saves first: the stale page gets a 409 with a way to reload
    ok = await _post(
        client, token, f"/designer/{KEY}/flow/insert", {"row_version": stale, "kind": "cc", "before": "end"}
    )
    assert ok.status_code == 200
    response = await _post(
        client, token, f"/designer/{KEY}/flow/insert", {"row_version": stale, "kind": "cc", "before": "end"}
    )
    assert response.status_code == 409
    assert "刷新设计器" in response.text
