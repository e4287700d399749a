"""Real processes for the fault tests: a private redis-server, a scratch PostgreSQL database and
`formflow serve|worker|scheduler` subprocesses configured by `FORMFLOW_*` variables.

Nothing here touches the suite's own database or Redis: every run gets its own database on the
PostgreSQL server the suite uses and its own redis-server on a free loopback port, so stopping
Redis or killing a worker hurts nobody else. Each process writes its output to a log file that
a failing test prints.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import redis

FORMFLOW = str(Path(sys.executable).with_name("formflow"))
ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT_TIMEOUT_MS = 3_000
"""A worker silent this long counts as dead and its unfinished jobs are queued again."""

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class RedisServer:
    """A redis-server of our own on a loopback port; `stop` and `start` keep the port."""

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--logfile", str(self.log)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not _listening(self.port):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


class Process:
    """One `formflow` subprocess with its own log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                [FORMFLOW, *args], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is requeued or acknowledged."""
        if self.running():
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def terminate(self) -> None:
        if self.running():
            self.popen.terminate()

    def stop(self) -> None:
        self.terminate()
        try:
            self.popen.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4_000:] if self.log.exists() else ""


def database_url(server_url: str, name: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}", query=""))


async def admin_execute(server_url: str, sql: str) -> None:
    """Run one statement on the server's maintenance database (CREATE/DROP DATABASE)."""
    connection = await asyncpg.connect(database_url(server_url, "postgres"))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


class Cluster:
    """A scratch database, a private Redis and the formflow processes that use them."""

    def __init__(self, database: str, redis: RedisServer, workdir: Path) -> None:
        self.database = database
        self.redis = redis
        self.workdir = workdir
        self.processes: list[Process] = []
        self.web_port = free_port()
        self.db: asyncpg.Connection | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORMFLOW_") and k != "PICCOLO_CONF"}
        broker = f"{self.redis.url}?heartbeat_timeout={HEARTBEAT_TIMEOUT_MS}&maintenance_chance=1000000"
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "FORMFLOW_DATABASE_URL": self.database,
                "FORMFLOW_BROKER_URL": broker,
                "FORMFLOW_IN_PROCESS_WORKER": "false",
                "FORMFLOW_DATABASE_POOL_SIZE": "2",
                "FORMFLOW_VAR_DIR": str(self.workdir / "var"),
                "FORMFLOW_STORAGE_PATH": str(self.workdir / "attachments"),
                "FORMFLOW_SECRET_KEY": "fault-tests-" + "k" * 40,
                "FORMFLOW_LOG_LEVEL": "INFO",
                "FORMFLOW_PASSWORD_HASH_TIME_COST": "1",
                "FORMFLOW_PASSWORD_HASH_MEMORY_KIB": "1024",
            }
        )
        return env

    def spawn(self, name: str, *args: str) -> Process:
        process = Process(name, list(args), self.env(), self.workdir / f"{name}.log")
        self.processes.append(process)
        return process

    def command(self, *args: str) -> str:
        """Run a one-off `formflow` command to completion; its output, or AssertionError."""
        done = subprocess.run(
            [FORMFLOW, *args], env=self.env(), cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"formflow {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    async def serve(self) -> Process:
        process = self.spawn("serve", "serve", "--port", str(self.web_port))

        async def live() -> bool:
            assert process.running(), f"formflow serve exited:\n{process.output()}"
            try:
                async with httpx.AsyncClient() as client:
                    response = await client.get(f"{self.base_url}/health/live", timeout=2)
            except httpx.TransportError:
                return False
            return response.status_code == 200

        await eventually(live, "formflow serve answers /health/live", timeout=30)
        return process

    def worker(self, name: str = "worker") -> Process:
        return self.spawn(name, "worker", "--threads", "2")

    def scheduler(self, name: str = "scheduler") -> Process:
        return self.spawn(name, "scheduler")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    async def connect(self) -> asyncpg.Connection:
        if self.db is None:
            self.db = await asyncpg.connect(self.database)
        return self.db

    async def close(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.stop()
        if self.db is not None:
            await self.db.close()
            self.db = None

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} (pid {p.pid}) ---\n{p.output()}" for p in self.processes)


async def eventually(probe: Callable[[], Awaitable[T]], what: str, timeout: float = 30) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what} (last seen: {value!r})")
        await asyncio.sleep(0.2)


class ApiUser:
    """A demo person speaking to the instance API of the `serve` process with a bearer token."""

    def __init__(self, client: httpx.AsyncClient, employee_no: str, token: str) -> None:
        self.client = client
        self.employee_no = employee_no
        self.headers = {"authorization": f"Bearer {token}"}

    @classmethod
    async def sign_in(cls, base_url: str, employee_no: str, password: str = "formflow") -> ApiUser:
        # Idle connections are dropped before the server's keep-alive (5 s) can close one under
        # a request: a test that waits on the scheduler would otherwise race that close.
        client = httpx.AsyncClient(base_url=base_url, timeout=20, limits=httpx.Limits(keepalive_expiry=2))
        response = await client.post(
            "/api/v1/auth/token", json={"username": employee_no, "password": password}
        )
        assert response.status_code == 201, response.text
        return cls(client, employee_no, response.json()["token"])

    async def request(self, method: str, path: str, json: Any = None) -> httpx.Response:
        return await self.client.request(method, path, json=json, headers=self.headers)

    async def start_request(
        self, data: dict[str, Any], template: str = "marketing-activity"
    ) -> dict[str, Any]:
        response = await self.request(
            "POST", "/api/v1/instances", {"template": template, "data": data, "submit": True}
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def open_task(self, instance_id: int) -> dict[str, Any]:
        response = await self.request("GET", "/api/v1/tasks")
        assert response.status_code == 200, response.text
        tasks = [t for t in response.json()["items"] if t["instance_id"] == instance_id]
        assert len(tasks) == 1, f"{self.employee_no} has {len(tasks)} open tasks on {instance_id}: {tasks}"
        task: dict[str, Any] = tasks[0]
        return task

    async def approve(self, task_id: int, comment: str = "同意") -> httpx.Response:
        return await self.request(
            "POST", f"/api/v1/tasks/{task_id}/actions", {"action": "approve", "comment": comment}
        )

    async def close(self) -> None:
        await self.client.aclose()


def marketing_data(name: str = "2024年Q3新品推广会", budget: int = 20_000) -> dict[str, Any]:
    """A complete marketing-activity submission (40/35/25 budget split)."""
    venue, materials = budget * 40 // 100, budget * 35 // 100
    return {
        "activity_name": name,
        "contact_phone": "13800138000",
        "start_date": "2027-03-01",
        "end_date": "2027-03-03",
        "budget": budget,
        "goal": "新品认知度提升30%",
        "audience": "华东区域的潜在客户",
        "execution_plan": "场地确认、物料采购、活动执行、总结复盘",
        "venue": "上海国际会议中心",
        "budget_lines": [
            {"item": "场地租赁", "category": "venue", "amount": str(venue)},
            {"item": "物料制作", "category": "materials", "amount": str(materials)},
            {"item": "媒体宣传", "category": "publicity", "amount": str(budget - venue - materials)},
        ],
    }


# -- what the database says ------------------------------------------------------------------


async def person_id(db: asyncpg.Connection, employee_no: str) -> int:
    found = await db.fetchval("SELECT id FROM person WHERE employee_no = $1", employee_no)
    assert found is not None, employee_no
    return int(found)


async def notifications(db: asyncpg.Connection, person: int, kind: str, instance_id: int) -> list[str]:
    """The keys of a person's in-app notifications of one kind about one request."""
    rows = await db.fetch(
        "SELECT key FROM notification WHERE person = $1 AND kind = $2 AND link = $3 ORDER BY id",
        person,
        kind,
        f"/instances/{instance_id}",
    )
    return [row["key"] for row in rows]


async def outbox(db: asyncpg.Connection, template: str, instance_id: int) -> list[asyncpg.Record]:
    """The outbox rows of one notification template about one request."""
    return list(
        await db.fetch(
            "SELECT key, status, attempts, last_error FROM outbox_message"
            " WHERE payload::jsonb->>'template' = $1 AND payload::jsonb->>'instance_id' = $2 ORDER BY id",
            template,
            str(instance_id),
        )
    )


async def drained(db: asyncpg.Connection, redis_url: str) -> bool:
    """Every outbox message sent, and no job left in Redis (queued, delayed or unfinished)."""
    if await db.fetchval("SELECT count(*) FROM outbox_message WHERE status <> 'sent'"):
        return False
    client = redis.Redis.from_url(redis_url)
    try:
        return not any(client.hlen(f"dramatiq:{queue}.msgs") for queue in ("default", "default.DQ"))
    finally:
        client.close()
