"""Operations: liveness, readiness (database, broker, storage), Prometheus metrics, request ids."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import dramatiq
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from tests.web.session import Client
from web.app import create_app
from web.settings import Settings, load_settings

SANE_GENERATED_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


async def _ready_with(settings: Settings) -> tuple[int, dict[str, object]]:
    """GET /health/ready on an app built from `settings`; the global broker is restored afterwards."""
    broker = dramatiq.get_broker()
    try:
        async with AsyncTestClient(app=create_app(settings), base_url="http://testserver.local") as c:
            response = await c.get("/health/ready")
    finally:
        dramatiq.set_broker(broker)
    return response.status_code, response.json()


async def test_liveness_answers_ok(client: Client) -> None:
    response = await client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readiness_checks_database_broker_and_storage(client: Client) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "storage": "ok"},
    }


async def test_readiness_fails_naming_storage_when_the_folder_cannot_be_written(
    db: None, tmp_path: Path
) -> None:
    not_a_folder = tmp_path / "attachments"
    not_a_folder.write_text("a file where the attachments folder should be")
    status, body = await _ready_with(msgspec.structs.replace(load_settings(), storage_path=str(not_a_folder)))
    assert status == 503
    assert body["status"] == "unavailable"
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert checks["storage"].startswith("error:")
    assert checks["database"] == "ok" and checks["broker"] == "ok"


async def test_readiness_fails_naming_the_broker_when_it_is_unreachable(db: None) -> None:
    unreachable = msgspec.structs.replace(load_settings(), broker_url="redis://127.0.0.1:1/0")
    status, body = await _ready_with(unreachable)
    assert status == 503
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert checks["broker"].startswith("error:")
    assert checks["database"] == "ok" and checks["storage"] == "ok"


async def test_health_endpoints_need_no_login_and_no_csrf_token(client: Client) -> None:
    for path in ("/health/live", "/health/ready", "/metrics"):
        response = await client.get(path, follow_redirects=False)
        assert response.status_code == 200, path


async def test_metrics_expose_request_counts_and_latency_in_prometheus_format(client: Client) -> None:
    await client.get("/login", headers={"accept": "text/html"})
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert re.search(r'^formflow_requests_total\{[^}]*path="/login"[^}]*\} [1-9]', text, re.M), text[:2000]
    assert re.search(r"^formflow_request_duration_seconds_bucket\{", text, re.M)


async def test_every_response_carries_a_request_id(client: Client) -> None:
    seen = set()
    for path in ("/health/live", "/login", "/metrics", "/admin", "/static/no-such-file.js"):
        response = await client.get(path, headers={"accept": "text/html"}, follow_redirects=False)
        rid = response.headers.get("x-request-id", "")
        assert SANE_GENERATED_ID.match(rid), (path, response.status_code, rid)
        seen.add(rid)
    assert len(seen) == 5, "each request gets its own id"


@pytest.mark.parametrize(("method", "path"), [("GET", "/no-such-page"), ("POST", "/health/live")])
async def test_unrouted_requests_carry_a_request_id_too(client: Client, method: str, path: str) -> None:
    response = await client.request(method, path, headers={"accept": "text/html"})
    assert response.status_code in (404, 405)
    assert SANE_GENERATED_ID.match(response.headers.get("x-request-id", ""))


async def test_a_sane_incoming_request_id_is_echoed(client: Client) -> None:
    response = await client.get("/health/live", headers={"x-request-id": "lb-7f3a.42_XY"})
    assert response.headers["x-request-id"] == "lb-7f3a.42_XY"


@pytest.mark.parametrize(
    "incoming",
    ["two words", "a" * 200, "a" * 65, "<script>alert(1)</script>", "id;rm -rf /", "ünïcode"],
)
async def test_a_malicious_incoming_request_id_is_replaced(client: Client, incoming: str) -> None:
    response = await client.get("/health/live", headers={"x-request-id": incoming.encode()})
    rid = response.headers["x-request-id"]
    assert rid != incoming
    assert SANE_GENERATED_ID.match(rid)


async def test_json_request_log_carries_the_request_id(db: None, capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    settings = msgspec.structs.replace(load_settings(), log_json=True, log_level="INFO")
    broker = dramatiq.get_broker()
    try:
        app = create_app(settings)
        async with AsyncTestClient(app=app, base_url="http://testserver.local") as c:
            response = await c.get("/login", headers={"accept": "text/html", "x-request-id": "trace-123"})
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        dramatiq.set_broker(broker)
    assert response.status_code == 200
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    request_lines = [entry for entry in lines if entry.get("logger") == "formflow.http"]
    assert request_lines, "one JSON line per request"
    entry = request_lines[-1]
    assert entry["request_id"] == "trace-123"
    assert entry["msg"] == "GET /login 200"
    assert entry["status"] == 200 and entry["level"] == "INFO" and isinstance(entry["ms"], float | int)


async def test_a_database_away_for_a_moment_is_a_503_to_retry_not_a_500(
    client: Any, login: Any, monkeypatch: Any
) -> None:
    from asyncpg.exceptions import AdminShutdownError

    from runtime import service

    await login("e2001")

    async def restarting(*args: Any, **kwargs: Any) -> Any:
        raise AdminShutdownError("terminating connection due to administrator command")

    monkeypatch.setattr(service, "list_tasks", restarting)
    api = await client.get("/api/v1/tasks?state=open")
    assert api.status_code == 503 and api.headers["retry-after"] == "5"
    assert api.json()["code"] == "unavailable"

    async def refused(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(service, "list_tasks", refused)
    page = await client.get("/inbox", headers={"accept": "text/html"})
    assert page.status_code == 503 and "请过几秒再试" in page.text
