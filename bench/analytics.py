"""Insight at scale: monitoring, per-step analytics and a 100,000-row XLSX export over 1,000,000 steps.

    .venv/bin/python bench/analytics.py            # 100,000 requests, about 1,000,000 closed tasks
    .venv/bin/python bench/analytics.py --quick    # 5,000 requests: a smoke run of a minute or two

Makes a scratch PostgreSQL database `formflow_analytics` on the server at `FORMFLOW_BENCH_PG`
(default `postgresql://postgres@127.0.0.1:5432`), dropped at the end; migrates it, seeds the
demo organisation and publishes 20 templates (the 7 demo ones and copies of them). Then, with
SQL (`generate_series`, not the service layer), it writes `--requests` submitted requests over
a year: 95 % closed with 10 tasks each (archived, some rejected or withdrawn; about 5 % of the
tasks returned, half of them with a deadline), 5 % in flight with 1 to 9 closed tasks and one
open task; return, resubmit, reject and summary events as the commands write them.

Measured (median (min..max) of `--reps` runs after one warm-up; wall clock, this process and
the database on the same machine):

  rollup          `roll_up(CALENDAR)` from empty: every closed task and request, working
                  hours computed once (one run, timed once), then the completion estimates
  monitoring      `insight.monitor` first page (20 rows), as admin and as the marketing head
  analytics       `insight.analytics` (steps, templates, weeks, reports; the on-demand rollup
                  of what closed since included), as admin and as the marketing head
  export          the requests export as XLSX (`web.routes.insight._xlsx`, openpyxl
                  write-only) of ~10,000 and ~100,000 rows: wall time, and the peak of Python
                  allocations (tracemalloc, a separate run) to show memory stays flat

Targets (issue): monitoring and analytics under 300 ms each at 1,000,000 steps; the export
streams with flat memory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG_SERVER = os.environ.get("FORMFLOW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432").rstrip("/")
PG_DATABASE = "formflow_analytics"
TEMPLATES = 20
TASKS_PER_REQUEST = 10
START = dt.datetime(2025, 1, 6, 1, 0, tzinfo=dt.UTC)  # Monday 09:00 in Shanghai
DAYS = 360
TASK_KINDS = ("approval", "task", "plugin")


@contextlib.contextmanager
def scratch_postgres(*, reuse: bool = False, keep: bool = False) -> Iterator[str]:
    """The URL of a fresh `formflow_analytics` database, dropped afterwards (unless `keep`;
    `reuse` takes the one a `--keep` run left)."""
    import asyncpg

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(f"{PG_SERVER}/postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    if not reuse:
        asyncio.run(admin(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"))
        asyncio.run(admin(f"CREATE DATABASE {PG_DATABASE}"))
    try:
        yield f"{PG_SERVER}/{PG_DATABASE}"
    finally:
        if not keep:
            asyncio.run(admin(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"))


# -- data -------------------------------------------------------------------------------------


def _text(title: Any) -> str:
    return str(title.get("zh") or next(iter(title.values()))) if isinstance(title, dict) else str(title)


async def publish_templates() -> list[tuple[str, int, list[tuple[str, str]]]]:
    """The 7 demo templates and copies up to `TEMPLATES`: (key, version id, task steps)."""
    import msgspec

    from builder.demo_templates import DEMO_DIR, DEMO_TEMPLATES
    from storage.database import write_transaction
    from storage.tables import Person, TemplateVersion
    from storage.templates import publish_version

    published = []
    now = dt.datetime.now(dt.UTC)
    async with write_transaction(Person._meta.db):
        for n in range(TEMPLATES):
            demo = DEMO_TEMPLATES[n % len(DEMO_TEMPLATES)]
            key = demo.key if n < len(DEMO_TEMPLATES) else f"{demo.key}-{n // len(DEMO_TEMPLATES) + 1}"
            form = msgspec.json.decode((DEMO_DIR / f"{demo.key}.form.json").read_bytes())
            flow = msgspec.json.decode((DEMO_DIR / f"{demo.key}.flow.json").read_bytes())
            if n >= len(DEMO_TEMPLATES):
                form["title"] = {k: f"{v} {n // len(DEMO_TEMPLATES) + 1}" for k, v in form["title"].items()}
                flow["key"] = key
                await publish_version(
                    key=key,
                    category=demo.category,
                    name_zh=form["title"]["zh"],
                    name_en=form["title"].get("en", ""),
                    form=form,
                    flow=flow,
                    change_note="copy for the analytics benchmark",
                    effective_from=now,
                    now=now,
                    published_by=None,
                )
            row = await (
                TemplateVersion.select(TemplateVersion.id)
                .where(TemplateVersion.template.key == key)
                .order_by(TemplateVersion.version, ascending=False)
                .first()
            )
            assert row is not None, key
            steps = [
                (node["id"], _text(node["title"])) for node in flow["nodes"] if node["type"] in TASK_KINDS
            ]
            published.append((key, row["id"], steps))
    return published


async def generate(requests: int) -> dict[str, int]:
    """Requests, tasks and events over a year, written by SQL; returns the row counts."""
    from storage.tables import Instance

    templates = await publish_templates()
    sql = Instance.raw
    await sql("CREATE TABLE bench_template (tno int, key text, version_id int, steps int)")
    await sql("CREATE TABLE bench_step (tno int, pos int, node_id text, title text)")
    for tno, (key, version_id, steps) in enumerate(templates):
        await sql("INSERT INTO bench_template VALUES ({}, {}, {}, {})", tno, key, version_id, len(steps))
        for pos, (node_id, title) in enumerate(steps):
            await sql("INSERT INTO bench_step VALUES ({}, {}, {}, {})", tno, pos, node_id, title)
    await sql(
        "CREATE TABLE bench_person AS SELECT row_number() OVER (ORDER BY id) - 1 AS pno, id, department"
        " FROM person WHERE department IS NOT NULL"
    )
    # one row per request: template, initiator, submission, how many of its tasks closed
    await sql(
        """CREATE TABLE bench_req AS
        SELECT i, i % {} AS tno, p.id AS person, p.department AS department,
               {}::timestamptz + (floor(random() * {}) * interval '1 day')
                 + (floor(random() * 480) * interval '1 minute') AS sub,
               i % 20 = 7 AS flying,
               CASE WHEN i % 20 = 7 THEN (i / 20) % 9 + 1 ELSE {} END AS closed_tasks,
               CASE WHEN i % 20 = 7 THEN 'in_approval' WHEN i % 10 = 3 THEN 'rejected'
                    WHEN i % 50 = 11 THEN 'withdrawn' ELSE 'archived' END AS status
        FROM generate_series(1, {}) AS i
        JOIN bench_person p ON p.pno = i % (SELECT count(*) FROM bench_person)""",
        TEMPLATES,
        START,
        DAYS,
        TASKS_PER_REQUEST,
        requests,
    )
    await sql(
        """INSERT INTO instance (id, number, template_key, template_version, version, initiator,
               department_id, title, status, urgent, data, state, row_version, current_step,
               created_at, submitted_at, updated_at, closed_at)
        SELECT r.i, 'BN' || lpad(r.i::text, 9, '0'), t.key, t.version_id, 1, r.person, r.department,
               '申请 ' || r.i, r.status, false,
               json_build_object('budget', 1000 * (1 + r.i % 50)), json_build_object(), 0, '',
               r.sub, r.sub, r.sub + interval '265 hours',
               CASE WHEN r.flying THEN NULL ELSE r.sub + interval '265 hours' END
        FROM bench_req r JOIN bench_template t ON t.tno = r.tno"""
    )
    await sql("SELECT setval(pg_get_serial_sequence('instance', 'id'), {})", requests)
    # tasks: the k-th visits the template's steps in turn (a return sends it round again)
    await sql(
        f"""INSERT INTO task (task_key, instance, node_id, kind, title, assignee, status, outcome, reason,
               created_at, due_at, closed_at, closed_by)
        SELECT r.i || ':' || j, r.i, s.node_id, 'approval', s.title, r.person,
               CASE WHEN j <= r.closed_tasks THEN 'closed' ELSE 'open' END,
               CASE WHEN j > r.closed_tasks THEN NULL
                    WHEN j = {TASKS_PER_REQUEST} AND r.status = 'rejected' THEN 'rejected'
                    WHEN random() < 0.05 THEN 'returned' ELSE 'approved' END,
               json_build_object(),
               r.sub + (j - 1) * interval '26 hours',
               CASE WHEN j % 2 = 0 THEN r.sub + (j - 1) * interval '26 hours' + interval '24 hours' END,
               CASE WHEN j <= r.closed_tasks
                    THEN r.sub + (j - 1) * interval '26 hours' + random() * interval '30 hours' END,
               NULL
        FROM bench_req r
        CROSS JOIN generate_series(1, {TASKS_PER_REQUEST}) AS j
        JOIN bench_template t ON t.tno = r.tno
        JOIN bench_step s ON s.tno = r.tno AND s.pos = (j - 1) % t.steps
        WHERE j <= r.closed_tasks + CASE WHEN r.flying THEN 1 ELSE 0 END"""
    )
    # the event log entries analytics counts: returns (each followed by a resubmission), rejections
    for kind, outcome in (("return", "returned"), ("resubmit", "returned"), ("reject", "rejected")):
        await sql(
            """INSERT INTO instance_event (instance, seq, at, actor_id, kind, node_id, task_key, data)
            SELECT instance, id, closed_at, assignee, {}, node_id, task_key, json_build_object()
            FROM task WHERE outcome = {}""",
            kind,
            outcome,
        )
    await sql(
        """INSERT INTO instance_event (instance, seq, at, actor_id, kind, node_id, task_key, data)
        SELECT id, 0, closed_at, initiator, 'summary', 'summary', NULL,
               json_build_object('actual_spend', (1000 * (1 + id % 50) * (0.8 + random() * 0.4))::int)
        FROM instance WHERE status = 'archived' AND template_key LIKE 'marketing-activity%'"""
    )
    for table in ("bench_req", "bench_step", "bench_template", "bench_person"):
        await sql(f"DROP TABLE {table}")
    await sql("ANALYZE")
    counts = {}
    for table in ("instance", "task", "instance_event"):
        rows = await sql(f"SELECT count(*) AS n FROM {table}")
        counts[table] = rows[0]["n"]
    rows = await sql("SELECT count(*) AS n FROM task WHERE status = 'closed'")
    counts["closed tasks"] = rows[0]["n"]
    return counts


# -- measuring --------------------------------------------------------------------------------


async def timed(fn: Callable[[], Awaitable[Any]], reps: int) -> list[float]:
    await fn()  # warm-up: connections, caches of definitions and names
    values = []
    for _ in range(reps):
        started = time.perf_counter()
        await fn()
        values.append((time.perf_counter() - started) * 1000)
    return values


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):8.1f} ({min(values):.1f}..{max(values):.1f})"


async def export_xlsx(principal: Any, now: dt.datetime, filters: Any) -> tuple[int, int]:
    """The requests export written as XLSX: (rows, file bytes)."""
    from runtime.service import insight
    from runtime.service.pipeline import CALENDAR
    from web.routes.insight import _xlsx

    found = await insight.export("requests", principal, now, CALENDAR, filters, "zh-CN")
    counted = 0

    async def counting() -> Any:
        nonlocal counted
        async for row in found.rows:
            counted += 1
            yield row

    path = await _xlsx(insight.Export(header=found.header, rows=counting()), "requests")
    size = os.path.getsize(path)
    os.unlink(path)
    return counted, size


async def measure_export(principal: Any, now: dt.datetime, filters: Any) -> dict[str, float]:
    started = time.perf_counter()
    rows, size = await export_xlsx(principal, now, filters)
    wall = time.perf_counter() - started
    tracemalloc.start()
    await export_xlsx(principal, now, filters)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"rows": rows, "seconds": wall, "peak_mb": peak / 2**20, "file_mb": size / 2**20}


async def run(args: argparse.Namespace) -> None:
    from runtime.service import insight
    from runtime.service.insight_rollup import refresh_estimates, roll_up
    from runtime.service.pipeline import CALENDAR
    from storage.migrate import migrate
    from storage.org import load_principal
    from storage.tables import Person
    from web.demo import seed_demo

    if not args.reuse:
        await migrate()
        await seed_demo()
    # as `formflow serve` does on PostgreSQL (web.background.on_startup): queries share a pool
    await Person._meta.db.start_connection_pool(min_size=2, max_size=4)
    now = START + dt.timedelta(days=DAYS + 10)
    if not args.reuse:
        started = time.perf_counter()
        counts = await generate(args.requests)
        took = time.perf_counter() - started
        print(f"generated in {took:.1f} s: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()))
        started = time.perf_counter()
        rolled = await roll_up(CALENDAR)
        rollup_seconds = time.perf_counter() - started
        # what autovacuum does to a table that grew: statistics, and the visibility map that
        # lets analytics read the covering indexes alone (the rollup's, and those of the
        # requests in flight, read live)
        for table in ("task_stat", "request_stat", "task", "instance", "instance_event"):
            await Person.raw(f"VACUUM ANALYZE {table}")
        started = time.perf_counter()
        await refresh_estimates(now, CALENDAR, force=True)
        estimate_seconds = time.perf_counter() - started
        print(
            f"rollup: {rolled.requests:,} requests and {rolled.tasks:,} more tasks in {rollup_seconds:.1f} s"
            f" ({counts['closed tasks'] / rollup_seconds:,.0f} tasks/s); estimates in {estimate_seconds:.2f} s"
        )

    people = {}
    for employee_no in ("admin", "e2001"):
        row = await Person.select(Person.id).where(Person.employee_no == employee_no).first()
        assert row is not None
        principal = await load_principal(row["id"])
        assert principal is not None
        people[employee_no] = principal
    everything = insight.Filters()
    results: list[tuple[str, str, str]] = []
    for who, label in (("admin", "admin"), ("e2001", "marketing head")):
        principal = people[who]

        async def monitor(principal: Any = principal) -> Any:
            return await insight.monitor(principal, now, CALENDAR, everything)

        async def analytics(principal: Any = principal) -> Any:
            return await insight.analytics(principal, now, CALENDAR, everything)

        page = await monitor()
        found = await analytics()
        results.append(
            (f"monitoring, first page, {label}", summary(await timed(monitor, args.reps)), "< 300 ms")
        )
        results.append((f"analytics, {label}", summary(await timed(analytics, args.reps)), "< 300 ms"))
        print(
            f"{label}: {page.total:,} open tasks, {len(found.steps)} steps,"
            f" {sum(s.stats.decided for s in found.steps):,} decided tasks, {len(found.weeks)} weeks"
        )

    print()
    print(f"{'case':<44} {'median ms (min..max)':>28}  target")
    for case, figures, target in results:
        print(f"{case:<44} {figures:>28}  {target}")

    print()
    small = insight.Filters(until=(START + dt.timedelta(days=DAYS // 10)).date())
    print(f"{'XLSX export (requests, admin)':<44} {'rows':>9} {'seconds':>8} {'peak MB':>8} {'file MB':>8}")
    for filters in (small, everything):
        e = await measure_export(people["admin"], now, filters)
        print(f"{'':<44} {e['rows']:>9,} {e['seconds']:>8.1f} {e['peak_mb']:>8.1f} {e['file_mb']:>8.1f}")
    print("target: flat memory (the peak does not grow with the rows)")
    await Person._meta.db.close_connection_pool()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="5,000 requests, 3 repetitions")
    parser.add_argument("--keep", action="store_true", help="keep the database for a later --reuse")
    parser.add_argument("--reuse", action="store_true", help="time the database a --keep run left")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.reps = 5_000, 3
    with scratch_postgres(reuse=args.reuse, keep=args.keep) as url:
        # Must be set before anything imports storage: Piccolo builds the engine on first use.
        os.environ["FORMFLOW_DATABASE_URL"] = url
        os.environ.setdefault("FORMFLOW_LOG_LEVEL", "WARNING")
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
