"""Helpers for plugin tests: a local HTTP receiver, a template with a plugin step, a request."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec

from builder.demo_templates import DEMO_DIR
from forms import load_schema
from plugins.signing import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, verify_signature
from runtime.service import CreateRequest, create_instance
from storage.database import write_transaction
from storage.tables import OutboxMessage, TemplateVersion
from storage.templates import publish_version
from tests.service.support import Clock, caller, marketing_data

SECRET = "s3cret-key-for-tests"


class Received(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    body: bytes
    key: str
    verified: bool
    status: int

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


class Receiver:
    """A webhook receiver on 127.0.0.1 in a thread. It answers the statuses in `script` in
    turn (then `then`), checks each signature with `secret` (401 when wrong, unless not
    `signed`), and counts the deliveries it accepted (2xx) per idempotency key."""

    def __init__(
        self, secret: str = SECRET, script: list[int] | None = None, then: int = 200, *, signed: bool = True
    ) -> None:
        self.secret = secret
        self.signed = signed
        self.script = list(script or [])
        self.then = then
        self.answer: bytes = b'{"ok": true}'
        self.received: list[Received] = []
        self.accepted: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                verified = verify_signature(receiver.secret, body, self.headers.get(SIGNATURE_HEADER, ""))
                key = self.headers.get(IDEMPOTENCY_HEADER, "")
                with receiver._lock:
                    status = receiver.script.pop(0) if receiver.script else receiver.then
                    if receiver.signed and not verified:
                        status = 401
                    receiver.received.append(
                        Received(path=self.path, body=body, key=key, verified=verified, status=status)
                    )
                    if 200 <= status < 300:
                        receiver.accepted[key] += 1
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(receiver.answer if status < 300 else b'{"error": "unavailable"}')

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()


def hook_flow(key: str, plugin_node: dict[str, Any]) -> dict[str, Any]:
    """start -> the plugin step -> the department head's approval -> end."""
    return {
        "key": key,
        "version": 1,
        "schema_version": 1,
        "title": "插件测试流程",
        "nodes": [
            {"type": "start", "id": "start"},
            plugin_node,
            {
                "type": "approval",
                "id": "dept_head",
                "title": "部门负责人审批",
                "assignees": {"kind": "department_head"},
            },
            {"type": "end", "id": "end"},
        ],
        "edges": [
            {"from": "start", "to": plugin_node["id"]},
            {"from": plugin_node["id"], "to": "dept_head"},
            {"from": "dept_head", "to": "end"},
        ],
    }


_instants = itertools.count(1)


async def publish(key: str, flow: dict[str, Any], now: dt.datetime) -> None:
    """A template `key` with the marketing form and `flow`, in effect before `now`.

    Each publication gets its own instant: the service caches definitions by version id and
    publication instant, and every test starts from the same database and the same clock."""
    now -= dt.timedelta(milliseconds=next(_instants))
    schema = load_schema(DEMO_DIR / "marketing-activity.form.json")
    async with write_transaction(TemplateVersion._meta.db):
        await publish_version(
            key=key,
            category="tests",
            name_zh="插件测试",
            name_en="Plugin test",
            form=msgspec.to_builtins(schema),
            flow=flow,
            change_note="test",
            effective_from=now,
            now=now,
            published_by=None,
        )


async def start_request(key: str, clock: Clock, budget: int = 200_000) -> int:
    """A marketing request submitted by 张伟 (e1001) on template `key`; its id."""
    applicant = await caller("e1001")
    created = await create_instance(
        applicant, CreateRequest(template=key, data=marketing_data(budget), submit=True), clock()
    )
    return created.id


async def plugin_calls() -> list[dict[str, Any]]:
    """The pending "call_plugin" outbox messages: {"key", "payload"}."""
    rows = await (
        OutboxMessage.select(OutboxMessage.key, OutboxMessage.payload, OutboxMessage.status)
        .where(OutboxMessage.actor == "call_plugin")
        .order_by(OutboxMessage.id)
        .output(load_json=True)
    )
    return rows
