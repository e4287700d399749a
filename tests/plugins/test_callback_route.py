"""A webhook step that waits for a callback, answered over HTTP at
`POST /api/plugin-calls/{call_id}/callback`; and the delivery settings the app starts with."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from plugins import DeliverySettings, SmtpSettings, sign
from plugins.calls import CallStatus, run_call
from plugins.registry import discover
from plugins.settings import configure_delivery, delivery_settings
from plugins.signing import SIGNATURE_HEADER
from storage.tables import Instance, InstanceEvent, Task
from tests.plugins.support import SECRET, Receiver, hook_flow, plugin_calls, publish, start_request
from tests.service.support import Clock, open_task
from tests.web.session import sign_in
from web.app import create_app
from web.settings import SettingsError, load_settings

REGISTRY = discover(found=[])
BASE_URL = "http://testserver.local"
JSON = {"content-type": "application/json"}


@pytest.fixture(autouse=True)
def _restore_delivery() -> Iterator[None]:
    before = delivery_settings()
    yield
    configure_delivery(before)


def app_with(**variables: str) -> Litestar:
    return create_app(load_settings({**os.environ, **variables}))


async def waiting_request(clock: Clock, receiver: Receiver) -> tuple[int, str]:
    """A request whose webhook step posted to `receiver` and now waits; (its id, callback path)."""
    node = {
        "type": "plugin",
        "id": "crm",
        "title": "同步到 CRM",
        "plugin": "webhook",
        "config": {"url": receiver.url, "secret": "crm", "retries": 0, "wait_for_callback": True},
    }
    await publish("crm-callback", hook_flow("crm-callback", node), clock())
    instance_id = await start_request("crm-callback", clock)
    (call,) = await plugin_calls()
    report = await run_call(call["key"], call["payload"], attempt=0, now=clock(), registry=REGISTRY)
    assert report.status is CallStatus.WAITING
    callback = receiver.received[0].json()["callback"]
    assert callback["expected"] is True
    return instance_id, urlsplit(callback["url"]).path


async def snapshot(instance_id: int) -> tuple[dict[str, object], int, int]:
    row = await (
        Instance.select(Instance.status, Instance.current_step, Instance.row_version)
        .where(Instance.id == instance_id)
        .first()
    )
    events = await InstanceEvent.count().where(InstanceEvent.instance == instance_id)
    tasks = await Task.count().where(Task.instance == instance_id)
    return row, events, tasks


async def test_a_signed_callback_over_http_moves_the_request_on_once(db: None) -> None:
    clock = Clock()
    app = app_with(
        FORMFLOW_PLUGIN_SECRETS=msgspec.json.encode({"crm": SECRET}).decode(), FORMFLOW_BASE_URL=BASE_URL
    )
    app.state.clock = clock
    with Receiver().running() as receiver:
        instance_id, path = await waiting_request(clock, receiver)
    assert path.startswith("/api/plugin-calls/") and path.endswith("/callback")
    waiting = await snapshot(instance_id)
    assert waiting[0]["current_step"] == "同步到 CRM" and waiting[2] == 0

    body = msgspec.json.encode({"outcome": "continue", "note": "CRM 已建档", "output": {"crm_id": "C-1"}})
    async with AsyncTestClient(app=app, base_url=BASE_URL) as client:
        # no session, no CSRF token: the signature is the credential, and a forged one changes nothing
        forged = await client.post(
            path, content=body, headers={**JSON, SIGNATURE_HEADER: sign("guess", body)}
        )
        assert forged.status_code == 401 and "signature" in forged.json()["detail"]
        unsigned = await client.post(path, content=body, headers=JSON)
        assert unsigned.status_code == 401
        tampered = body.replace(b"C-1", b"C-2")
        assert (
            await client.post(path, content=tampered, headers={**JSON, SIGNATURE_HEADER: sign(SECRET, body)})
        ).status_code == 401
        not_a_callback = b'{"outcome": "maybe"}'
        refused = await client.post(
            path, content=not_a_callback, headers={**JSON, SIGNATURE_HEADER: sign(SECRET, not_a_callback)}
        )
        assert refused.status_code == 422 and "outcome" in refused.json()["detail"]
        unknown = await client.post(
            "/api/plugin-calls/FL209901001-7/callback",
            content=body,
            headers={**JSON, SIGNATURE_HEADER: sign(SECRET, body)},
        )
        assert unknown.status_code == 404
        assert await snapshot(instance_id) == waiting, "refused callbacks change nothing"

        signed = {**JSON, SIGNATURE_HEADER: sign(SECRET, body)}
        accepted = await client.post(path, content=body, headers=signed)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json() == {"call_id": path.split("/")[3], "status": "in_approval"}
        await open_task(instance_id, "e2001", "dept_head")
        after = await snapshot(instance_id)
        assert after[0]["current_step"] == "部门负责人审批"

        again = await client.post(path, content=body, headers=signed)
        assert again.status_code == 200 and again.json() == accepted.json(), (
            "a signed repeat gets the same answer"
        )
        assert await snapshot(instance_id) == after, "and changes nothing"

        await sign_in(client, "e1001")
        page = (await client.get(f"/instances/{instance_id}", headers={"accept": "text/html"})).text
        steps = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page[page.index('id="flow-title"') :]))
        assert "同步到 CRM 已完成" in steps, "the answered webhook step shows as done"
        timeline = page[page.index("等待外部系统回调") :]
        assert timeline.count("步骤已完成") == 1 and "CRM 已建档" in timeline, (
            "the wait, then the answer, once"
        )
    timeline = await (
        InstanceEvent.select(InstanceEvent.kind, InstanceEvent.data)
        .where((InstanceEvent.instance == instance_id) & (InstanceEvent.node_id == "crm"))
        .order_by(InstanceEvent.seq)
        .output(load_json=True)
    )
    assert [event["kind"] for event in timeline] == ["node_entered", "plugin_waiting", "plugin_result"]
    assert timeline[2]["data"]["note"] == "CRM 已建档" and timeline[2]["data"]["output"] == {"crm_id": "C-1"}


async def test_callbacks_for_no_waiting_step_bad_ids_and_huge_bodies_are_refused(db: None) -> None:
    clock = Clock()
    app = app_with()
    app.state.clock = clock
    async with AsyncTestClient(app=app, base_url=BASE_URL) as client:
        body = b"{}"
        response = await client.post(
            "/api/plugin-calls/not-a-call/callback",
            content=body,
            headers={SIGNATURE_HEADER: sign(SECRET, body)},
        )
        assert response.status_code == 404
        bad_id = await client.post("/api/plugin-calls/%20%3Cx%3E/callback", content=body)
        assert bad_id.status_code == 400
        huge = b'{"note": "' + b"x" * (64 * 1024) + b'"}'
        too_big = await client.post(
            "/api/plugin-calls/FL202611001-1/callback",
            content=huge,
            headers={SIGNATURE_HEADER: sign(SECRET, huge)},
        )
        assert too_big.status_code == 413


def test_the_app_hands_plugins_its_secrets_mail_server_and_address() -> None:
    app_with(
        FORMFLOW_PLUGIN_SECRETS='{"crm": "k1", "mkt-robot": "https://oapi.dingtalk.com/robot/send?access_token=t"}',
        FORMFLOW_SMTP_HOST="smtp.example.com",
        FORMFLOW_SMTP_PORT="465",
        FORMFLOW_SMTP_USER="formflow",
        FORMFLOW_SMTP_PASSWORD="pw",
        FORMFLOW_SMTP_SENDER="formflow@example.com",
        FORMFLOW_SMTP_SECURITY="ssl",
        FORMFLOW_BASE_URL="https://flow.example.com",
    )
    assert delivery_settings() == DeliverySettings(
        secrets={"crm": "k1", "mkt-robot": "https://oapi.dingtalk.com/robot/send?access_token=t"},
        smtp=SmtpSettings(
            host="smtp.example.com",
            port=465,
            sender="formflow@example.com",
            username="formflow",
            password="pw",
            ssl=True,
        ),
        public_url="https://flow.example.com",
    )
    app_with()
    assert delivery_settings() == DeliverySettings(), "without settings: no secrets, no e-mail"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"FORMFLOW_PLUGIN_SECRETS": '["crm"]'}, "FORMFLOW_PLUGIN_SECRETS: expected a JSON object"),
        (
            {"FORMFLOW_PLUGIN_SECRETS": '{"CRM key": "hunter2"}'},
            "FORMFLOW_PLUGIN_SECRETS: expected a JSON object",
        ),
        ({"FORMFLOW_SMTP_HOST": "smtp.example.com"}, "FORMFLOW_SMTP_SENDER: an e-mail address is required"),
        ({"FORMFLOW_SMTP_SECURITY": "tls"}, "FORMFLOW_SMTP_SECURITY"),
    ],
)
def test_bad_delivery_settings_stop_start_up_naming_the_variable(
    variables: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message) as refused:
        load_settings({**os.environ, **variables})
    assert "hunter2" not in str(refused.value), "a secret's value is never echoed"
