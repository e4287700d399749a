"""A person sees their own profile and revokes their own API tokens, nobody else's."""

from __future__ import annotations

from typing import Any

from storage.tables import ApiToken, AuditEntry
from tests.web.session import Client


async def _new_token(client: Client, username: str) -> tuple[int, str]:
    response = await client.post("/api/v1/auth/token", json={"username": username, "password": "formflow"})
    body = response.json()
    return body["id"], body["token"]


async def test_profile_lists_roles_and_tokens(client: Client, login: Any) -> None:
    await _new_token(client, "e2001")
    await login("e2001")
    page = await client.get("/profile", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "部门负责人" in page.text and "ffp_" in page.text


async def test_a_revoked_token_stops_working_and_is_audited(client: Client) -> None:
    token_id, token = await _new_token(client, "e1001")
    bearer = {"authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/me", headers=bearer)).status_code == 200
    assert (await client.delete(f"/api/v1/auth/tokens/{token_id}", headers=bearer)).status_code == 204
    assert (await client.get("/api/v1/me", headers=bearer)).status_code == 401
    assert await AuditEntry.exists().where(AuditEntry.action == "auth.token_revoked")


async def test_nobody_revokes_someone_elses_token(client: Client) -> None:
    victim_id, victim = await _new_token(client, "e1001")
    _, attacker = await _new_token(client, "e1002")
    response = await client.delete(
        f"/api/v1/auth/tokens/{victim_id}", headers={"authorization": f"Bearer {attacker}"}
    )
    assert response.status_code == 404
    row = await ApiToken.select(ApiToken.revoked_at).where(ApiToken.id == victim_id).first()
    assert row["revoked_at"] is None
    assert (await client.get("/api/v1/me", headers={"authorization": f"Bearer {victim}"})).status_code == 200
