"""Passkeys: register from the profile, sign in without a password, and every refused answer.

A small software authenticator (P-256, "none" attestation, CBOR via cbor2) answers the
server's real WebAuthn options, so py_webauthn verifies genuine signatures. Bad cases:
a replayed assertion (its challenge already used), a counter that did not go up, a revoked
passkey, no user verification, a foreign origin, a stale session trying to register.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import cbor2
import msgspec
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from litestar.testing import AsyncTestClient

from storage.tables import AuditEntry, PasskeyCredential, UserSession
from tests.web.session import Client, csrf_from, sign_in
from web.app import create_app
from web.settings import load_settings

ORIGIN = "http://testserver.local"
RP_ID = "testserver.local"
UP, UV, AT = 0x01, 0x04, 0x40


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftAuthenticator:
    """One discoverable P-256 credential, as a platform authenticator makes it."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.counter = 0
        self.user_handle = b""

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
        )

    def create(self, options: dict[str, Any], origin: str = ORIGIN) -> dict[str, Any]:
        self.user_handle = unb64(options["user"]["id"])
        client_data = json.dumps(
            {
                "type": "webauthn.create",
                "challenge": options["challenge"],
                "origin": origin,
                "crossOrigin": False,
            }
        ).encode()
        attested = (
            bytes(16) + len(self.credential_id).to_bytes(2, "big") + self.credential_id + self._cose_key()
        )
        auth_data = hashlib.sha256(options["rp"]["id"].encode()).digest() + bytes([UP | UV | AT])
        auth_data += self.counter.to_bytes(4, "big") + attested
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": b64(self.credential_id),
            "rawId": b64(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(client_data),
                "attestationObject": b64(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        }

    def get(
        self, options: dict[str, Any], *, origin: str = ORIGIN, flags: int = UP | UV, bump: bool = True
    ) -> dict[str, Any]:
        if bump:
            self.counter += 1
        client_data = json.dumps(
            {
                "type": "webauthn.get",
                "challenge": options["challenge"],
                "origin": origin,
                "crossOrigin": False,
            }
        ).encode()
        auth_data = hashlib.sha256(options["rpId"].encode()).digest() + bytes([flags])
        auth_data += self.counter.to_bytes(4, "big")
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return {
            "id": b64(self.credential_id),
            "rawId": b64(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(client_data),
                "authenticatorData": b64(auth_data),
                "signature": b64(signature),
                "userHandle": b64(self.user_handle),
            },
            "clientExtensionResults": {},
        }


async def register(client: Client, csrf: str, device: SoftAuthenticator, name: str = "笔记本") -> int:
    headers = {"x-csrftoken": csrf}
    options = await client.post("/profile/passkeys/options", headers=headers)
    assert options.status_code == 200, options.text
    answer = await client.post(
        "/profile/passkeys", json={"credential": device.create(options.json()), "name": name}, headers=headers
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


async def sign_in_options(client: Client) -> tuple[str, dict[str, Any]]:
    page = await client.get("/login", headers={"accept": "text/html"})
    csrf = csrf_from(page.text)
    options = await client.post("/auth/passkey/options", headers={"x-csrftoken": csrf})
    assert options.status_code == 200, options.text
    body: dict[str, Any] = options.json()
    assert body["userVerification"] == "required"
    return csrf, body


async def answer(client: Client, csrf: str, credential: dict[str, Any], next_path: str = "/") -> Any:
    return await client.post(
        "/auth/passkey/sign-in",
        json={"credential": credential, "next": next_path},
        headers={"x-csrftoken": csrf},
    )


async def last_failure() -> dict[str, Any]:
    entry = (
        await AuditEntry.select()
        .where(AuditEntry.action == "auth.login_failed")
        .order_by(AuditEntry.id, ascending=False)
        .first()
        .output(load_json=True)
    )
    assert entry is not None, "the refusal was not audited"
    return entry


async def test_admin_registers_a_passkey_and_signs_in_with_it(client: Client, other_client: Client) -> None:
    csrf = await sign_in(client, "admin")
    device = SoftAuthenticator()
    await register(client, csrf, device, "管理员的笔记本")
    profile = await client.get("/profile", headers={"accept": "text/html"})
    assert "管理员的笔记本" in profile.text
    stored = await PasskeyCredential.select(
        PasskeyCredential.public_key, PasskeyCredential.sign_count
    ).first()
    assert stored["public_key"] and stored["sign_count"] == 0
    assert await AuditEntry.exists().where(AuditEntry.action == "auth.passkey_registered")

    csrf, options = await sign_in_options(other_client)
    assert options["rpId"] == RP_ID
    response = await answer(other_client, csrf, device.get(options), "/admin")
    assert response.status_code == 200, response.text
    assert response.json() == {"redirect": "/admin"}
    page = await other_client.get("/admin", headers={"accept": "text/html"})
    assert page.status_code == 200 and "组织架构" in page.text
    entry = (
        await AuditEntry.select()
        .where(AuditEntry.action == "auth.login")
        .order_by(AuditEntry.id, ascending=False)
        .first()
        .output(load_json=True)
    )
    assert entry["after"]["method"] == "passkey" and entry["actor_name"] == "系统管理员"
    assert (await PasskeyCredential.select(PasskeyCredential.sign_count).first())["sign_count"] == 1


async def test_a_replayed_assertion_is_refused(client: Client, other_client: Client) -> None:
    csrf = await sign_in(client, "e1001")
    device = SoftAuthenticator()
    await register(client, csrf, device)
    csrf, options = await sign_in_options(other_client)
    assertion = device.get(options)
    assert (await answer(other_client, csrf, assertion)).status_code == 200
    other_client.cookies.delete("formflow_session")
    replay = await answer(other_client, csrf, assertion)
    assert replay.status_code == 401
    assert replay.json()["detail"] == "该通行密钥应答已被使用或已过期，请重试。"
    failure = await last_failure()
    assert failure["after"] == {
        "reason": "challenge_used_or_expired",
        "method": "passkey",
        "employee_no": "e1001",
    }


async def test_an_assertion_whose_counter_did_not_go_up_is_refused(
    client: Client, other_client: Client
) -> None:
    csrf = await sign_in(client, "e1001")
    device = SoftAuthenticator()
    await register(client, csrf, device)
    csrf, options = await sign_in_options(other_client)
    assert (await answer(other_client, csrf, device.get(options))).status_code == 200
    other_client.cookies.delete("formflow_session")
    csrf, options = await sign_in_options(other_client)
    cloned = await answer(other_client, csrf, device.get(options, bump=False))
    assert cloned.status_code == 401 and "签名计数器未增加" in cloned.json()["detail"]
    assert (await last_failure())["after"]["reason"] == "sign_count_not_increased"


async def test_a_revoked_passkey_is_refused_and_stays_listed(client: Client, other_client: Client) -> None:
    csrf = await sign_in(client, "e1001")
    device = SoftAuthenticator()
    passkey_id = await register(client, csrf, device)
    fragment = await client.post(f"/profile/passkeys/{passkey_id}/revoke", headers={"x-csrftoken": csrf})
    assert fragment.status_code == 200 and "已吊销" in fragment.text
    assert await AuditEntry.exists().where(AuditEntry.action == "auth.passkey_revoked")
    csrf2, options = await sign_in_options(other_client)
    refused = await answer(other_client, csrf2, device.get(options))
    assert refused.status_code == 401
    assert refused.json()["detail"] == "该通行密钥已被吊销，请用其他方式登录。"
    failure = await last_failure()
    assert failure["after"]["reason"] == "revoked_passkey" and failure["actor_name"] == "e1001"
    assert "formflow_session" not in other_client.cookies


async def test_user_verification_and_the_origin_are_checked(client: Client, other_client: Client) -> None:
    csrf = await sign_in(client, "e1001")
    device = SoftAuthenticator()
    await register(client, csrf, device)
    for kwargs in ({"flags": UP}, {"origin": "http://evil.example"}):
        csrf2, options = await sign_in_options(other_client)
        refused = await answer(other_client, csrf2, device.get(options, **kwargs))
        assert refused.status_code == 401, kwargs
        assert refused.json()["detail"] == "无法验证该通行密钥，请重试。"
        assert (await last_failure())["after"]["reason"] == "invalid_response"


async def test_an_unknown_passkey_and_garbage_are_refused(other_client: Client) -> None:
    csrf, options = await sign_in_options(other_client)
    stranger = SoftAuthenticator()
    stranger.user_handle = b"x"
    refused = await answer(other_client, csrf, stranger.get(options))
    assert refused.status_code == 401 and refused.json()["reason"] == "unknown_passkey"
    garbage = await answer(other_client, csrf, {"id": "x"})
    assert garbage.status_code == 400 and garbage.json()["reason"] == "malformed"


async def test_registering_needs_a_fresh_sign_in(client: Client) -> None:
    csrf = await sign_in(client, "e1001")
    await UserSession.update({UserSession.created_at: datetime.now(UTC) - timedelta(hours=1)}).where(
        UserSession.id > 0
    )
    refused = await client.post("/profile/passkeys/options", headers={"x-csrftoken": csrf})
    assert refused.status_code == 403 and "请先退出并重新登录" in refused.json()["detail"]
    page = await client.get("/profile", headers={"accept": "text/html"})
    assert 'id="passkey-register"' not in page.text and "请先退出并重新登录" in page.text


async def test_a_registration_answer_for_another_challenge_is_refused(client: Client) -> None:
    csrf = await sign_in(client, "e1001")
    options = (await client.post("/profile/passkeys/options", headers={"x-csrftoken": csrf})).json()
    device = SoftAuthenticator()
    forged = {**options, "challenge": b64(os.urandom(32))}
    response = await client.post(
        "/profile/passkeys",
        json={"credential": device.create(forged), "name": "x"},
        headers={"x-csrftoken": csrf},
    )
    assert response.status_code == 400 and "已被使用或已过期" in response.json()["detail"]
    assert await PasskeyCredential.count() == 0


async def test_passkeys_are_renamed_and_nobody_touches_someone_elses(
    client: Client, other_client: Client
) -> None:
    csrf = await sign_in(client, "e1001")
    passkey_id = await register(client, csrf, SoftAuthenticator())
    renamed = await client.post(
        f"/profile/passkeys/{passkey_id}/rename", data={"name": "手机"}, headers={"x-csrftoken": csrf}
    )
    assert renamed.status_code == 200 and 'value="手机"' in renamed.text
    empty = await client.post(
        f"/profile/passkeys/{passkey_id}/rename", data={"name": " "}, headers={"x-csrftoken": csrf}
    )
    assert empty.status_code == 422 and "请为通行密钥命名" in empty.text
    other_csrf = await sign_in(other_client, "e1002")
    for action in ("rename", "revoke"):
        response = await other_client.post(
            f"/profile/passkeys/{passkey_id}/{action}",
            data={"name": "x"},
            headers={"x-csrftoken": other_csrf},
        )
        assert response.status_code == 404
    assert (await PasskeyCredential.select(PasskeyCredential.name).first())["name"] == "手机"


async def test_admins_must_use_their_passkey_once_required(db: None) -> None:
    settings = msgspec.structs.replace(load_settings(), passkeys_required_for_admins=True)
    app = create_app(settings)
    async with (
        AsyncTestClient(app=app, base_url=ORIGIN) as client,
        AsyncTestClient(app=app, base_url=ORIGIN) as later,
    ):
        page = await client.get("/login", headers={"accept": "text/html"})
        first = await client.post(
            "/login",
            data={"username": "admin", "password": "formflow", "_csrf_token": csrf_from(page.text)},
            follow_redirects=False,
        )
        assert first.headers["location"] == "/profile#passkeys", "an admin without a passkey enrols first"
        assert (await client.get("/admin", headers={"accept": "text/html"})).status_code == 403
        profile = await client.get("/profile", headers={"accept": "text/html"})
        assert "您的角色要求使用通行密钥" in profile.text
        device = SoftAuthenticator()
        await register(client, csrf_from(profile.text), device)
        assert (await client.get("/admin", headers={"accept": "text/html"})).status_code == 200

        page = await later.get("/login", headers={"accept": "text/html"})
        refused = await later.post(
            "/login",
            data={"username": "admin", "password": "formflow", "_csrf_token": csrf_from(page.text)},
            follow_redirects=False,
        )
        assert refused.status_code == 403 and "您的角色须使用通行密钥登录" in refused.text
        assert (await last_failure())["after"]["reason"] == "passkey_required"
        csrf, options = await sign_in_options(later)
        assert (await answer(later, csrf, device.get(options), "/admin")).status_code == 200
        assert (await later.get("/admin", headers={"accept": "text/html"})).status_code == 200
        # Employees keep their password.
        await sign_in(later, "e1001")
