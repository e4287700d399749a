"""Templates through the API and the process center: listing, the form, checks and live values."""

from __future__ import annotations

import re
from typing import Any

from tests.web.session import Client, csrf_from

SUBMISSION: dict[str, Any] = {
    "activity_name": "2024年Q3新品推广会",
    "department": "2",
    "applicant": "4",
    "contact_phone": "13800000000",
    "start_date": "2024-07-10",
    "end_date": "2024-07-12",
    "budget": "200000.00",
    "goal": "新品认知度提升30%",
    "audience": "渠道伙伴与媒体",
    "execution_plan": "发布会 + 媒体专访",
    "budget_lines": [
        {"item": "场地", "category": "venue", "amount": "80000"},
        {"item": "物料", "category": "materials", "amount": "70000"},
        {"item": "宣传", "category": "publicity", "amount": "50000"},
    ],
}


async def _token(client: Client, username: str = "e1001") -> dict[str, str]:
    response = await client.post("/api/v1/auth/token", json={"username": username, "password": "formflow"})
    assert response.status_code == 201, response.text
    return {"authorization": f"Bearer {response.json()['token']}"}


async def test_api_lists_the_demo_templates(client: Client) -> None:
    headers = await _token(client)
    response = await client.get("/api/v1/templates", headers=headers)
    assert response.status_code == 200
    keys = {t["key"] for t in response.json()}
    assert keys == {
        "marketing-activity",
        "expense-reimbursement",
        "new-employee-onboarding",
        "fixed-asset-request",
        "supplier-onboarding",
        "cross-department-project",
        "optimization-suggestion",
    }
    marketing = next(t for t in response.json() if t["key"] == "marketing-activity")
    assert marketing["name"] == "市场活动审批" and marketing["version"] == 1


async def test_api_template_detail_json_schema_and_meta_schema(client: Client) -> None:
    headers = await _token(client)
    detail = (await client.get("/api/v1/templates/marketing-activity", headers=headers)).json()
    assert detail["version"] == 1 and detail["form"]["key"] == "marketing-activity"
    schema = await client.get("/api/v1/templates/marketing-activity/json-schema", headers=headers)
    assert schema.status_code == 200
    assert schema.json()["$schema"].endswith("2020-12/schema")
    assert "budget_lines" in schema.json()["properties"]
    meta = await client.get("/api/v1/form-schema")
    assert (meta.status_code == 200 and "$defs" in meta.json()) or "properties" in meta.json()
    missing = await client.get("/api/v1/templates/no-such-template", headers=headers)
    assert missing.status_code == 404


async def test_api_validate_returns_every_error_with_its_path(client: Client) -> None:
    headers = await _token(client)
    good = await client.post(
        "/api/v1/templates/marketing-activity/validate", json=SUBMISSION, headers=headers
    )
    assert good.status_code == 200 and good.json()["errors"] == []
    bad = dict(SUBMISSION, budget="150000", contact_phone="", end_date="2024-07-01")
    bad["budget_lines"] = [
        *SUBMISSION["budget_lines"][:2],
        {"item": "宣传", "category": "publicity", "amount": "x"},
    ]
    response = await client.post("/api/v1/templates/marketing-activity/validate", json=bad, headers=headers)
    assert response.status_code == 200
    paths = {e["path"] for e in response.json()["errors"]}
    assert {"contact_phone", "end_date", "budget_lines[2].amount"} <= paths


async def test_api_validate_survives_hostile_bodies(client: Client) -> None:
    headers = await _token(client)
    for body in (b"{not json", b"[]", b'{"activity_name": ' + b'"x' * 10, b'{"unknown_key": 1}'):
        response = await client.post(
            "/api/v1/templates/marketing-activity/validate",
            content=body,
            headers={**headers, "content-type": "application/json"},
        )
        assert response.status_code == 200, body
        assert response.json()["errors"], body


async def test_process_center_lists_templates_and_searches(client: Client, login: Any) -> None:
    await login("e1001")
    page = await client.get("/process-center", headers={"accept": "text/html"})
    assert page.status_code == 200 and "市场活动审批" in page.text and "费用报销" in page.text
    found = await client.get("/process-center?q=报销", headers={"accept": "text/html", "hx-request": "true"})
    assert "费用报销" in found.text and "市场活动审批" not in found.text
    none = await client.get("/process-center?q=zzzz", headers={"accept": "text/html", "hx-request": "true"})
    assert "zzzz" in none.text and "市场活动审批" not in none.text


async def test_form_page_renders_labels_defaults_and_the_table(client: Client, login: Any) -> None:
    await login("e1001")
    page = await client.get("/process-center/marketing-activity", headers={"accept": "text/html"})
    assert page.status_code == 200
    html = page.text
    assert '<label for="f-activity_name">活动名称' in html
    assert 'data-table="budget_lines"' in html
    assert '<option value="4" selected>张伟 (e1001)</option>' in html, (
        "applicant defaults to the current user"
    )


async def test_check_shows_errors_beside_fields_and_keeps_what_was_typed(client: Client, login: Any) -> None:
    await login("e1001")
    page = await client.get("/process-center/marketing-activity", headers={"accept": "text/html"})
    response = await client.post(
        "/process-center/marketing-activity/check",
        data={
            "_csrf_token": csrf_from(page.text),
            "activity_name": "推广会",
            "budget": "12.345",
            "budget_lines[0].item": "场地",
            "budget_lines[0].amount": "abc",
        },
        headers={"accept": "text/html"},
    )
    assert response.status_code == 422
    html = response.text
    assert 'id="f-contact_phone-error"' in html
    assert 'id="f-budget_lines-0-amount-error"' in html
    assert 'value="推广会"' in html and 'value="abc"' in html, "nothing the user typed is lost"
    assert 'aria-describedby="f-budget-help f-budget-error"' in html


async def test_evaluate_recomputes_words_and_totals_on_the_server(client: Client, login: Any) -> None:
    await login("e1001")
    page = await client.get("/process-center/marketing-activity", headers={"accept": "text/html"})
    response = await client.post(
        "/process-center/marketing-activity/evaluate",
        data={
            "_csrf_token": csrf_from(page.text),
            "budget": "1000000.10",
            "urgent": "false",
            "budget_lines[0].amount": "80000",
            "budget_lines[1].amount": "70000.5",
        },
        headers={"hx-request": "true"},
    )
    assert response.status_code == 200
    assert "壹佰万元零壹角" in response.text
    assert "150,000.50" in response.text
    assert '"urgent_reason"' in response.text, "the urgent reason stays hidden while urgent is off"


async def test_a_change_in_one_row_answers_only_that_rows_cells_and_the_totals(
    client: Client, login: Any
) -> None:
    await login("e1001")
    page = await client.get("/process-center/fixed-asset-request", headers={"accept": "text/html"})
    data = {"_csrf_token": csrf_from(page.text)}
    for row in range(3):
        data |= {f"assets[{row}].asset_name": "笔记本", f"assets[{row}].quantity": "2"}
        data[f"assets[{row}].unit_price"] = "100"
    data["assets[1].unit_price"] = "250"

    async def evaluate(changed: str | None) -> str:
        headers = {"hx-request": "true"} | ({"x-formflow-changed": changed} if changed else {})
        response = await client.post(
            "/process-center/fixed-asset-request/evaluate", data=data, headers=headers
        )
        assert response.status_code == 200
        return response.text

    one_row = await evaluate("assets[1].unit_price")
    assert re.findall(r'id="(f-assets-\d-subtotal)"', one_row) == ["f-assets-1-subtotal"]
    assert ">500.00<" in one_row and "900.00" in one_row, "the row's subtotal and the total"
    every_row = await evaluate(None)  # after a row was added or removed nothing is assumed
    assert re.findall(r'id="(f-assets-\d-subtotal)"', every_row) == [
        "f-assets-0-subtotal",
        "f-assets-1-subtotal",
        "f-assets-2-subtotal",
    ]
    assert "900.00" in every_row


async def test_a_money_field_answers_its_own_amount_in_words(client: Client, login: Any) -> None:
    await login("e1001")
    page = await client.get("/process-center/marketing-activity", headers={"accept": "text/html"})
    data = {"_csrf_token": csrf_from(page.text), "budget": "1000000.10", "budget_lines[0].amount": "80000"}
    in_a_row = await client.post(
        "/process-center/marketing-activity/evaluate",
        data=data,
        headers={"hx-request": "true", "x-formflow-changed": "budget_lines[0].amount"},
    )
    assert "80,000.00" in in_a_row.text and "壹佰万元零壹角" not in in_a_row.text
    budget = await client.post(
        "/process-center/marketing-activity/evaluate",
        data=data,
        headers={"hx-request": "true", "x-formflow-changed": "budget"},
    )
    assert "壹佰万元零壹角" in budget.text
