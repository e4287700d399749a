"""Load test: employees, approvers and admins at once against the production topology, on loopback.

    .venv/bin/python bench/load.py                       # 60 s of mixed load, 16 virtual users
    .venv/bin/python bench/load.py --duration 20 --users 8 --inbox 500     # a shorter run
    .venv/bin/python bench/load.py --base http://127.0.0.1:8000            # against a running server

Unless `--base` is given it starts `bench/production.py`'s deployment (PostgreSQL, Redis, an S3
endpoint; `formflow serve` with several workers, `formflow worker`, `formflow scheduler`). Setup
(not measured): API tokens for the demo people, then `--inbox` submitted requests so that the
marketing head (e2001) has that many open tasks. Then `--users` virtual users loop for
`--duration` seconds, each picking an action by weight:

| action | who | request |
|---|---|---|
| create | 张伟 e1001 | POST /api/v1/instances (a marketing request, submitted) |
| upload | 张伟 e1001 | POST /api/v1/attachments (a small PDF) |
| inbox | 王芳 e2001 | GET /api/v1/tasks?state=open (her inbox of `--inbox` open tasks) |
| approve | 王芳 e2001 | POST /api/v1/tasks/{id}/actions approve |
| view | 张伟 e1001 | GET /api/v1/instances/{id} |
| mine | 张伟 e1001 | GET /api/v1/instances?mine=true |
| monitor | admin | GET /insight (monitoring) |

Printed: requests/s, errors, p50/p95/p99 per action, and the database's commits and rows per
second and the broker's commands per second over the run. Targets (issue 10): 200 mixed
requests/s with p95 under 100 ms and no errors; the 5,000-task inbox under 50 ms p95.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

sys.path.append(str(Path(__file__).resolve().parent))  # after the project, so bench/forms.py shadows nothing

from production import Deployment

WEIGHTS = {"create": 3, "upload": 1, "inbox": 3, "approve": 3, "view": 3, "mine": 1, "monitor": 1}
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n" + b" " * 2000
PEOPLE = ("e1001", "e2001", "admin")


def marketing(budget: int = 30_000) -> dict[str, Any]:
    venue, materials = budget * 4 // 10, budget * 35 // 100
    return {
        "activity_name": "区域新品推广会",
        "contact_phone": "13800138000",
        "start_date": "2027-03-01",
        "end_date": "2027-03-03",
        "budget": budget,
        "goal": "新品认知度提升",
        "audience": "华东区域客户",
        "execution_plan": "场地确认、物料采购、活动执行、总结复盘",
        "venue": "上海国际会议中心",
        "budget_lines": [
            {"item": "场地租赁", "category": "venue", "amount": str(venue)},
            {"item": "物料制作", "category": "materials", "amount": str(materials)},
            {"item": "媒体宣传", "category": "publicity", "amount": str(budget - venue - materials)},
        ],
        "supplier": "上海会展服务有限公司",
    }


class Run:
    def __init__(self, base: str, tokens: dict[str, str]) -> None:
        self.base = base
        self.tokens = tokens
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)
        self.tasks: list[int] = []
        self.instances: list[int] = []

    def headers(self, who: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tokens[who]}"}

    async def call(
        self, client: httpx.AsyncClient, action: str, method: str, path: str, who: str, **kw: Any
    ) -> Any:
        start = time.perf_counter()
        try:
            headers = {**self.headers(who), **kw.pop("headers", {})}
            response = await client.request(method, self.base + path, headers=headers, **kw)
        except httpx.HTTPError as exc:
            self.errors[action].append(type(exc).__name__)
            return None
        self.latencies[action].append((time.perf_counter() - start) * 1000)
        if response.status_code >= 400 and not (action == "approve" and response.status_code == 409):
            self.errors[action].append(f"{response.status_code} {response.text[:120]}")
            return None
        return response

    async def act(self, client: httpx.AsyncClient, action: str) -> None:
        if action == "create":
            answer = await self.call(
                client, action, "POST", "/api/v1/instances", "e1001",
                json={"template": "marketing-activity", "data": marketing(), "submit": True},
            )  # fmt: skip
            if answer is not None:
                self.instances.append(answer.json()["id"])
        elif action == "upload":
            files = {"file": ("方案_市场部_20240701.pdf", PDF, "application/pdf")}
            await self.call(client, action, "POST", "/api/v1/attachments", "e1001", files=files)
        elif action == "inbox":
            answer = await self.call(client, action, "GET", "/api/v1/tasks?state=open", "e2001")
            if answer is not None:
                self.tasks.extend(item["id"] for item in answer.json()["items"])
        elif action == "approve":
            if not self.tasks:
                return
            task = self.tasks.pop(random.randrange(len(self.tasks)))
            await self.call(
                client, action, "POST", f"/api/v1/tasks/{task}/actions", "e2001",
                json={"action": "approve", "comment": "同意"},
            )  # fmt: skip
        elif action == "view":
            if self.instances:
                instance = random.choice(self.instances)
                await self.call(client, action, "GET", f"/api/v1/instances/{instance}", "e1001")
        elif action == "mine":
            await self.call(client, action, "GET", "/api/v1/instances?mine=true", "e1001")
        elif action == "monitor":
            await self.call(client, action, "GET", "/insight", "admin", headers={"accept": "text/html"})

    async def user(self, client: httpx.AsyncClient, until: float) -> None:
        actions, weights = list(WEIGHTS), list(WEIGHTS.values())
        while time.monotonic() < until:
            await self.act(client, random.choices(actions, weights)[0])


async def tokens_for(base: str) -> dict[str, str]:
    async with httpx.AsyncClient(timeout=30) as client:
        found = {}
        for who in PEOPLE:
            answer = await client.post(
                f"{base}/api/v1/auth/token",
                json={"username": who, "password": "formflow", "name": "load test"},
            )
            answer.raise_for_status()
            found[who] = answer.json()["token"]
        return found


async def fill_inbox(base: str, tokens: dict[str, str], count: int, concurrency: int = 8) -> list[int]:
    """`count` submitted requests by e1001: each opens a task for the marketing head."""
    made: list[int] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(count):
        queue.put_nowait(number)

    async def worker(client: httpx.AsyncClient) -> None:
        while True:
            try:
                queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            answer = await client.post(
                f"{base}/api/v1/instances",
                json={"template": "marketing-activity", "data": marketing(), "submit": True},
                headers={"authorization": f"Bearer {tokens['e1001']}"},
            )
            answer.raise_for_status()
            made.append(answer.json()["id"])

    async with httpx.AsyncClient(timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return made


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def report(run: Run, seconds: float, db: dict[str, int] | None, broker: int | None) -> Iterator[str]:
    total = sum(len(v) for v in run.latencies.values())
    errors = sum(len(v) for v in run.errors.values())
    everything = [ms for values in run.latencies.values() for ms in values]
    yield f"duration {seconds:.1f} s, {total} requests, {total / seconds:.1f} requests/s, {errors} errors"
    if everything:
        yield (
            f"all requests: p50 {percentile(everything, 0.5):.1f} ms, p95 {percentile(everything, 0.95):.1f} ms, "
            f"p99 {percentile(everything, 0.99):.1f} ms"
        )
    yield ""
    yield "| action | requests | errors | p50 ms | p95 ms | p99 ms | mean ms |"
    yield "|---|---:|---:|---:|---:|---:|---:|"
    for action in WEIGHTS:
        values = run.latencies.get(action, [])
        if not values:
            continue
        yield (
            f"| {action} | {len(values)} | {len(run.errors.get(action, []))} | {percentile(values, 0.5):.1f} | "
            f"{percentile(values, 0.95):.1f} | {percentile(values, 0.99):.1f} | {statistics.fmean(values):.1f} |"
        )
    if db:
        yield ""
        yield (
            f"PostgreSQL: {db['xact_commit'] / seconds:.0f} commits/s, {db['tup_inserted'] / seconds:.0f} rows "
            f"inserted/s, {db['tup_updated'] / seconds:.0f} rows updated/s, cache hits "
            f"{db['blks_hit'] / max(1, db['blks_hit'] + db['blks_read']):.1%}"
        )
    if broker is not None:
        yield f"Redis (broker): {broker / seconds:.0f} commands/s"
    for action, messages in run.errors.items():
        for message in sorted(set(messages))[:3]:
            yield f"error in {action}: {message}"


async def main_async(args: argparse.Namespace, deployment: Deployment | None) -> int:
    base = args.base or (deployment.base if deployment else "")
    tokens = await tokens_for(base)
    started = time.monotonic()
    made = await fill_inbox(base, tokens, args.inbox)
    print(f"setup: {len(made)} submitted requests in {time.monotonic() - started:.0f} s", flush=True)
    run = Run(base, tokens)
    run.instances.extend(made)
    limits = httpx.Limits(max_connections=args.users, max_keepalive_connections=args.users)
    db_before = deployment.database_stats() if deployment else None
    broker_before = int(deployment.redis_info().get("total_commands_processed", 0)) if deployment else None
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        inbox = await client.get(
            f"{base}/api/v1/tasks?state=open", headers={"authorization": f"Bearer {tokens['e2001']}"}
        )
        print(f"e2001's inbox: {inbox.json().get('total')} open tasks", flush=True)
        begin = time.monotonic()
        await asyncio.gather(*(run.user(client, begin + args.duration) for _ in range(args.users)))
        seconds = time.monotonic() - begin
    db = None
    if deployment and db_before is not None:
        after = deployment.database_stats()
        db = {key: after[key] - db_before[key] for key in after}
    broker = None
    if deployment and broker_before is not None:
        broker = int(deployment.redis_info().get("total_commands_processed", 0)) - broker_before
    for line in report(run, seconds, db, broker):
        print(line)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of mixed load")
    parser.add_argument("--users", type=int, default=16, help="concurrent virtual users")
    parser.add_argument("--inbox", type=int, default=5_000, help="open tasks in the approver's inbox")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--base", default="", help="an already running server (no deployment started)")
    args = parser.parse_args()
    if args.base:
        return asyncio.run(main_async(args, None))
    with Deployment(web_workers=args.web_workers) as deployment:
        print(f"deployment up on {deployment.base} (logs in {deployment.home})", flush=True)
        return asyncio.run(main_async(args, deployment))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
