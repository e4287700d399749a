"""Personal access tokens: issued for a password, sent as `Authorization: Bearer`, stored hashed,
audited; a bearer call needs no CSRF token, a cookie call does."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from storage.tables import ApiToken, AuditEntry, Department, Person
from tests.web.session import Client, sign_in

NEW_DEPARTMENT = {"code": "LAB", "name_zh": "实验室", "parent": "HQ"}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def issue_token(client: Client, username: str, password: str = "formflow") -> str:
    response = await client.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


async def audit_entries(action: str) -> list[dict[str, Any]]:
    return (
        await AuditEntry.select()
        .where(AuditEntry.action == action)
        .order_by(AuditEntry.id)
        .output(load_json=True)
    )


async def person_id(employee_no: str) -> int:
    row = await Person.select(Person.id).where(Person.employee_no == employee_no).first()
    return int(row["id"])


async def test_a_password_buys_a_token_that_works_as_bearer(client: Client, other_client: Client) -> None:
    response = await client.post("/api/v1/auth/token", json={"username": "e1001", "password": "formflow"})
    assert response.status_code == 201
    body = response.json()
    assert body["token"].startswith("ffp_") and len(body["token"]) > 40
    assert body["expires_in_days"] == 90

    me = await other_client.get("/api/v1/me", headers=bearer(body["token"]))
    assert me.status_code == 200
    assert me.json()["employee_no"] == "e1001"
    assert "formflow_session" not in other_client.cookies, "a bearer call opens no browser session"


async def test_token_creation_is_audited(client: Client) -> None:
    await issue_token(client, "e1001")
    token_row = await ApiToken.select().first()
    [entry] = await audit_entries("auth.token_created")
    assert entry["actor_id"] == await person_id("e1001")
    assert entry["target_type"] == "api_token"
    assert entry["target_id"] == str(token_row["id"])
    assert entry["after"]["name"] == "api" and entry["after"]["days"] == 90


async def test_only_the_sha256_of_the_token_is_stored(client: Client) -> None:
    token = await issue_token(client, "e1001")
    [row] = await ApiToken.select()
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert row["person"] == await person_id("e1001")
    assert not [column for column, value in row.items() if isinstance(value, str) and token in value]


async def test_a_wrong_password_gets_401_an_audit_entry_and_no_token(client: Client) -> None:
    response = await client.post("/api/v1/auth/token", json={"username": "e1001", "password": "wrong-one"})
    assert response.status_code == 401
    assert response.json()["detail"] == "工号或密码错误。"
    assert await ApiToken.count() == 0
    [entry] = await audit_entries("auth.login_failed")
    assert entry["actor_name"] == "e1001"
    assert entry["after"] == {"reason": "bad_credentials", "method": "token", "employee_no": "e1001"}
    assert await audit_entries("auth.token_created") == []


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer garbage",
        "Bearer ffp_" + "x" * 43,  # the right shape, but never issued
        "Bearer ",
        "Basic YWRtaW46Zm9ybWZsb3c=",  # admin:formflow, a scheme we do not accept
    ],
)
async def test_a_bad_authorization_header_gets_401(client: Client, authorization: str) -> None:
    response = await client.get("/api/v1/me", headers={"authorization": authorization})
    assert response.status_code == 401
    assert response.json() == {"status_code": 401, "detail": "sign in first"}


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("revoked_at", datetime.now(UTC) - timedelta(minutes=1)),
        ("expires_at", datetime.now(UTC) - timedelta(minutes=1)),
    ],
)
async def test_a_revoked_or_expired_token_gets_401(
    client: Client, other_client: Client, column: str, value: datetime
) -> None:
    token = await issue_token(client, "e1001")
    await ApiToken.update({getattr(ApiToken, column): value}, force=True)
    response = await other_client.get("/api/v1/me", headers=bearer(token))
    assert response.status_code == 401


async def test_a_bearer_write_needs_no_csrf_token(client: Client, other_client: Client) -> None:
    token = await issue_token(client, "admin")
    response = await other_client.post("/api/v1/departments", json=NEW_DEPARTMENT, headers=bearer(token))
    assert response.status_code == 201, response.text
    assert await Department.exists().where(Department.code == "LAB")
    [entry] = await audit_entries("org.department_saved")
    assert entry["actor_id"] == await person_id("admin")


async def test_a_garbage_bearer_write_is_refused_and_writes_nothing(client: Client) -> None:
    response = await client.post("/api/v1/departments", json=NEW_DEPARTMENT, headers=bearer("garbage"))
    assert response.status_code == 401
    assert not await Department.exists().where(Department.code == "LAB")


async def test_a_cookie_write_without_csrf_header_is_refused(client: Client) -> None:
    csrf = await sign_in(client, "admin")
    response = await client.post("/api/v1/departments", json=NEW_DEPARTMENT)
    assert response.status_code == 403
    assert not await Department.exists().where(Department.code == "LAB")

    response = await client.post("/api/v1/departments", json=NEW_DEPARTMENT, headers={"x-csrftoken": csrf})
    assert response.status_code == 201, "the same call with the CSRF header goes through"


async def test_a_bearer_header_does_not_excuse_a_session_cookie_from_csrf(client: Client) -> None:
    """A browser that holds a session cookie cannot skip CSRF by adding any bearer header."""
    await sign_in(client, "admin")
    token = await issue_token(client, "admin")
    response = await client.post("/api/v1/departments", json=NEW_DEPARTMENT, headers=bearer(token))
    assert response.status_code == 403
    assert not await Department.exists().where(Department.code == "LAB")


async def test_a_bearer_token_carries_its_owners_permissions_only(
    client: Client, other_client: Client
) -> None:
    token = await issue_token(client, "e1001")
    response = await other_client.post("/api/v1/departments", json=NEW_DEPARTMENT, headers=bearer(token))
    assert response.status_code == 403
    people = (await other_client.get("/api/v1/people", headers=bearer(token))).json()
    assert [p["employee_no"] for p in people["items"]] == ["e1001"]
