"""The engine through the service layer, on SQLite and PostgreSQL, against SpiffWorkflow persisted.

Runs N marketing-activity requests from submission to archive through `runtime.service` (the
commands the API calls): `create_instance(submit=True)` by the applicant, `act_on_task`
approvals by the department head, the supervising leader and (for the 200,000 budgets) the
finance specialist, three `record_progress` stages and `submit_summary`. Budgets alternate
30,000 and 200,000. One step is one command, i.e. one write transaction.

In the same run, interleaved in every repetition:

  ours / SQLite        the service on a scratch SQLite file (WAL, synchronous=NORMAL)
  ours / PostgreSQL    the service on a scratch database `formflow_bench` of the PostgreSQL
                       server at FORMFLOW_BENCH_PG (default postgresql://postgres@127.0.0.1:5432),
                       one client, then CLIENTS concurrent clients (a pool of as many connections)
  Spiff / SQLite, PG   SpiffWorkflow 3.2 on the peers' BPMN (../shared/peers), its state loaded
                       from and saved to the same kind of database at every user task, by the
                       peers' own harness (peer_spiff.persisted_run)
  commit ceiling       a one-row INSERT + COMMIT loop on one connection: sqlite3 on a scratch
                       file with our pragmas; asyncpg (our driver) on the scratch database

Each backend runs in its own process (the database is chosen when `storage` is imported);
Spiff runs in a virtual environment with the peers' pinned requirements, created under
var/bench/ on first use. Figures are medians (min..max) over repetitions; ratios (ours over
Spiff, ours over the ceiling) are taken within a repetition.

Steps/s of ours count every command, the submission included; Spiff's count user-task
completions only (its creation transaction is in the elapsed time, not in the count), so the
instances/s ratio is the like-for-like one: the same request, end to end.

Finally the instance state (the `instance.state` column) after 1 and after 50 returns to the
applicant, written through the service, against Spiff's after 1 and 50 send-backs
(peer_spiff.history_probe on rework_loop.bpmn).

    .venv/bin/python bench/engine.py [--quick] [--instances N] [--reps R] [--clients C] [--no-pg]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT.parent / "shared" / "peers"
WORK = ROOT / "var" / "bench"
PEERS_VENV = WORK / "peers-venv"
PG_SERVER = os.environ.get("FORMFLOW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
PG_DATABASE = "formflow_bench"
TEMPLATE = "marketing-activity"
BUDGETS = (30_000, 200_000)
RETURNS = (1, 50)
# ../shared/peers/RESULTS.md: this machine's recorded figures, printed next to the measured ones.
RECORDED = {"spiff_sqlite": 741, "spiff_pg": 335, "ceiling_sqlite": 58_000, "ceiling_pg": 1_850}


# -- the worker: one database, commands on stdin, one JSON answer per line --------------------


def serve(url: str) -> None:
    """Run as `engine.py --serve URL`: set the database up, then answer commands."""
    os.environ["FORMFLOW_DATABASE_URL"] = url
    os.environ.setdefault("FORMFLOW_LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    global _CHANNEL
    _CHANNEL = sys.stdout  # answers only: whatever else is printed (migrations) goes to stderr
    sys.stdout = sys.stderr
    asyncio.run(_serve(url))


_CHANNEL = sys.stdout


async def _serve(url: str) -> None:
    from storage.migrate import migrate
    from storage.tables import Person
    from web.demo import seed_demo

    await migrate()
    await seed_demo()
    engine = Person._meta.db
    postgres = url.startswith("postgres")
    people = await _people()
    counter = [0]
    _answer({"ready": True})
    for line in sys.stdin:
        ask = json.loads(line)
        if ask["do"] == "run":
            clients = ask.get("clients", 1)
            if postgres:
                await engine.start_connection_pool(min_size=clients, max_size=clients)
            try:
                answer = await _run(people, ask["instances"], clients, counter)
            finally:
                if postgres:
                    await engine.close_connection_pool()
        elif ask["do"] == "ceiling":
            answer = await _ceiling(url, ask["seconds"])
        elif ask["do"] == "sizes":
            answer = await _sizes(people, ask["returns"])
        elif ask["do"] == "profile":
            answer = await _profile(people, ask["instances"], ask["out"], counter)
        else:
            break
        _answer(answer)
    if not postgres:
        await engine.close_connection_pool()


def _answer(value: dict[str, Any]) -> None:
    _CHANNEL.write(json.dumps(value) + "\n")
    _CHANNEL.flush()


class People:
    """The demo people as callers, by role in the story."""

    def __init__(self, applicant: Any, head: Any, leader: Any, finance: Any) -> None:
        self.applicant, self.head, self.leader, self.finance = applicant, head, leader, finance


async def _people() -> People:
    from runtime.service import Caller
    from storage.org import load_principal, person_id_by_employee_no

    async def caller(employee_no: str) -> Any:
        person = await person_id_by_employee_no(employee_no)
        assert person is not None, employee_no
        principal = await load_principal(person)
        assert principal is not None
        return Caller(principal=principal)

    return People(*[await caller(no) for no in ("e1001", "e2001", "e3001", "e4001")])


def _data(budget: int) -> dict[str, Any]:
    venue, materials = budget * 4 // 10, budget * 35 // 100
    return {
        "activity_name": "2024年Q3新品推广会",
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


def _start() -> dt.datetime:
    """10:00 Shanghai on a working day after today (the demo templates are in effect from now)."""
    from runtime.service.pipeline import CALENDAR

    zone = CALENDAR.timezone
    day = dt.datetime.now(zone).date() + dt.timedelta(days=1)
    while not CALENDAR.is_working_day(day):
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(10), zone)


class Timing:
    """Seconds spent finding task ids (what a client reads from its inbox), left out of steps/s."""

    def __init__(self) -> None:
        self.lookup = 0.0


async def _open_task(instance_id: int, timing: Timing) -> int:
    from storage.tables import Task

    started = time.perf_counter()
    row = await Task.select(Task.id).where((Task.instance == instance_id) & (Task.status == "open")).first()
    timing.lookup += time.perf_counter() - started
    assert row is not None, instance_id
    return int(row["id"])


async def _one_request(people: People, number: int, now: dt.datetime, timing: Timing) -> int:
    """One request from submission to archive; returns the number of commands (steps)."""
    from runtime.service import (
        CreateRequest,
        ProgressRequest,
        SummaryRequest,
        TaskAction,
        TaskActionRequest,
        act_on_task,
        create_instance,
        record_progress,
        submit_summary,
    )

    budget = BUDGETS[number % 2]
    created = await create_instance(
        people.applicant, CreateRequest(template=TEMPLATE, data=_data(budget), submit=True), now
    )
    steps = 1
    approve = TaskActionRequest(action=TaskAction.APPROVE, comment="同意")
    for approver in (people.head, people.leader, people.finance)[: 3 if budget > 50_000 else 2]:
        now += dt.timedelta(minutes=30)
        await act_on_task(approver, await _open_task(created.id, timing), approve, now)
        steps += 1
    for result in ("场地已确认", "物料已采购", "活动顺利举办"):
        now += dt.timedelta(minutes=30)
        await record_progress(people.applicant, created.id, ProgressRequest(result=result), now)
        steps += 1
    summary = SummaryRequest(results="新增会员8200人", problems="物料供应商临时缺货")
    done = await submit_summary(people.applicant, created.id, summary, now + dt.timedelta(minutes=30))
    assert done.status == "archived", done.status
    return steps + 1


async def _run(people: People, instances: int, clients: int, counter: list[int]) -> dict[str, Any]:
    start = _start()
    timing = Timing()
    queue = list(range(counter[0], counter[0] + instances))
    counter[0] += instances
    steps = [0]

    async def client() -> None:
        while queue:
            number = queue.pop()
            done = await _one_request(people, number, start + dt.timedelta(seconds=number), timing)
            steps[0] += done

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"instances": instances, "steps": steps[0], "wall": wall, "cpu": cpu, "lookup": timing.lookup}


async def _sizes(people: People, returns: list[int]) -> dict[str, Any]:
    """The stored state after 1 and after N returns to the applicant and resubmissions."""
    from runtime.service import (
        CreateRequest,
        SubmitRequest,
        TaskAction,
        TaskActionRequest,
        act_on_task,
        create_instance,
        submit,
    )
    from storage.tables import Instance

    now = _start()
    timing = Timing()
    created = await create_instance(
        people.applicant, CreateRequest(template=TEMPLATE, data=_data(200_000), submit=True), now
    )

    async def stored() -> int:
        row = await Instance.select(Instance.state).where(Instance.id == created.id).first()
        assert row is not None
        state = row["state"]
        return len(state.encode() if isinstance(state, str) else json.dumps(state).encode())

    sizes = {"after submit": await stored()}
    back = TaskActionRequest(action=TaskAction.RETURN, note="需补充竞品分析数据")
    for cycle in range(1, max(returns) + 1):
        now += dt.timedelta(minutes=10)
        await act_on_task(people.head, await _open_task(created.id, timing), back, now)
        await submit(people.applicant, created.id, SubmitRequest(), now)
        if cycle in returns:
            sizes[f"after {cycle} return(s)"] = await stored()
    return sizes


async def _ceiling(url: str, seconds: float) -> dict[str, Any]:
    """One-row INSERT + COMMIT transactions per second on one connection."""
    if url.startswith("postgres"):
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            await conn.execute("DROP TABLE IF EXISTS bench_ceiling")
            await conn.execute("CREATE TABLE bench_ceiling (id BIGSERIAL PRIMARY KEY, n BIGINT NOT NULL)")
            count, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds or count < 50:
                async with conn.transaction():
                    await conn.execute("INSERT INTO bench_ceiling (n) VALUES ($1)", count)
                count += 1
            elapsed = time.perf_counter() - started
            await conn.execute("DROP TABLE bench_ceiling")
        finally:
            await conn.close()
        return {"tx_per_s": count / elapsed}
    import sqlite3

    with _scratch_dir("ceiling-") as folder:
        db = sqlite3.connect(folder / "ceiling.sqlite3", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds or count < 50:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO t (n) VALUES (?)", (count,))
            db.execute("COMMIT")
            count += 1
        elapsed = time.perf_counter() - started
        db.close()
    return {"tx_per_s": count / elapsed}


async def _profile(people: People, instances: int, out: str, counter: list[int]) -> dict[str, Any]:
    """cProfile of `instances` requests, written to `out` (for `--profile`)."""
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    result = await _run(people, instances, 1, counter)
    profiler.disable()
    profiler.dump_stats(out)
    return result


# -- SpiffWorkflow, in the peers' virtual environment ------------------------------------------

SPIFF_WORKER = """
import json, sys
import peer_spiff
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
spec, subs, _ = peer_spiff.load_spec("sequential")
serializer = BpmnWorkflowSerializer()
process = peer_spiff.VARIANTS["sequential"][1]
peer_spiff.run_memory(spec, subs, 10)
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    ask = json.loads(line)
    if ask["do"] == "run":
        mode = "sqlite-normal" if ask["backend"] == "sqlite" else "pg"
        result = peer_spiff.persisted_run(mode, spec, subs, process, ask["instances"], serializer, ask.get("dsn"))
        answer = {k: result[k] for k in ("instances", "steps", "elapsed_s", "instances_per_s", "steps_per_s")}
    elif ask["do"] == "sizes":
        probe = peer_spiff.history_probe(serializer, tuple(ask["returns"]))
        answer = {f"after {p['rework_cycles']} send-back(s)": p["state_bytes"] for p in probe}
    else:
        break
    print(json.dumps(answer), flush=True)
"""


def peers_python() -> Path:
    """The peers' interpreter (SpiffWorkflow 3.2, psycopg), created on first use."""
    python = PEERS_VENV / "bin" / "python"
    requirements = PEERS / "requirements.txt"
    stamp = PEERS_VENV / ".installed"
    if stamp.exists() and stamp.read_text() == requirements.read_text():
        return python
    print(f"creating {PEERS_VENV} with {requirements} (once)", flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(requirements)],
        check=True,
    )
    stamp.write_text(requirements.read_text())
    return python


# -- the driver --------------------------------------------------------------------------------


class Worker:
    """A process answering one JSON line per command."""

    def __init__(
        self, command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
        self.ask_raw(None)

    def ask_raw(self, question: dict[str, Any] | None) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        if question is not None:
            self.process.stdin.write(json.dumps(question) + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.process.args!r} ended (exit {self.process.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, **question: Any) -> dict[str, Any]:
        return self.ask_raw(question)

    def close(self) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.write(json.dumps({"do": "stop"}) + "\n")
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


@contextlib.contextmanager
def _scratch_dir(prefix: str) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def scratch_postgres() -> Iterator[str]:
    """The URL of a fresh `formflow_bench` database, dropped afterwards."""
    import asyncpg

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(f"{PG_SERVER}/postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"))
    asyncio.run(admin(f"CREATE DATABASE {PG_DATABASE}"))
    try:
        yield f"{PG_SERVER}/{PG_DATABASE}"
    finally:
        asyncio.run(admin(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"))


def _libpq_dsn(url: str) -> str:
    from urllib.parse import urlparse

    parts = urlparse(url)
    dsn = f"host={parts.hostname} port={parts.port or 5432} user={parts.username or 'postgres'}"
    if parts.password:
        dsn += f" password={parts.password}"
    return f"{dsn} dbname={parts.path.lstrip('/')}"


def ours(url: str) -> Worker:
    return Worker([sys.executable, str(Path(__file__).resolve()), "--serve", url])


def spiff(python: Path) -> Worker:
    env = {"PEERS_WORKDIR": str(WORK / "peers"), "PYTHONPATH": str(PEERS)}
    return Worker([str(python), "-c", SPIFF_WORKER], env=env, cwd=PEERS)


def summary(values: list[float], digits: int = 0) -> str:
    median = statistics.median(values)
    return f"{median:,.{digits}f} ({min(values):,.{digits}f}..{max(values):,.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of about a minute")
    parser.add_argument("--instances", type=int, help="requests per run (default 200, quick 10)")
    parser.add_argument("--reps", type=int, help="repetitions (default 5, quick 1)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients on PostgreSQL")
    parser.add_argument("--seconds", type=float, help="time box of the commit ceiling per repetition")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument("--no-spiff", action="store_true", help="leave SpiffWorkflow out")
    parser.add_argument(
        "--profile", metavar="FILE", help="cProfile one SQLite run of ours into FILE, then stop"
    )
    parser.add_argument("--serve", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    instances = args.instances or (10 if args.quick else 200)
    reps = args.reps or (1 if args.quick else 5)
    seconds = args.seconds or (0.3 if args.quick else 1.5)
    WORK.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(_scratch_dir("formflow-bench-"))
        sqlite_url = f"sqlite:///{folder / 'bench.sqlite3'}"
        if args.profile:
            worker = ours(sqlite_url)
            stack.callback(worker.close)
            worker.ask(do="run", instances=10, clients=1)
            print(worker.ask(do="profile", instances=instances, out=str(Path(args.profile).resolve())))
            return
        pg_url = None if args.no_pg else stack.enter_context(scratch_postgres())
        backends = {"sqlite": sqlite_url} | ({} if pg_url is None else {"pg": pg_url})
        workers = {name: ours(url) for name, url in backends.items()}
        for worker in workers.values():
            stack.callback(worker.close)
        peer = None if args.no_spiff else spiff(peers_python())
        if peer is not None:
            stack.callback(peer.close)
        for worker in workers.values():  # warm caches and connections
            worker.ask(do="run", instances=4, clients=1)
        runs: list[dict[str, Any]] = []
        for rep in range(reps):
            figures: dict[str, Any] = {}
            for name, worker in workers.items():
                figures[f"ours {name}"] = worker.ask(do="run", instances=instances, clients=1)
                figures[f"ceiling {name}"] = worker.ask(do="ceiling", seconds=seconds)["tx_per_s"]
                if name == "pg":
                    figures[f"ours {name} x{args.clients}"] = worker.ask(
                        do="run", instances=instances, clients=args.clients
                    )
                if peer is not None:
                    dsn = _libpq_dsn(backends[name]) if name == "pg" else None
                    figures[f"spiff {name}"] = peer.ask(do="run", backend=name, instances=instances, dsn=dsn)
            runs.append(figures)
            print(f"rep {rep + 1}/{reps} done, load average {os.getloadavg()[0]:.1f}", flush=True)
        sizes = workers["sqlite"].ask(do="sizes", returns=list(RETURNS))
        spiff_sizes = peer.ask(do="sizes", returns=list(RETURNS)) if peer is not None else {}
    report(runs, list(backends), instances, reps, args.clients, sizes, spiff_sizes)


def report(
    runs: list[dict[str, Any]],
    backends: list[str],
    instances: int,
    reps: int,
    clients: int,
    sizes: dict[str, int],
    spiff_sizes: dict[str, int],
) -> None:
    names = {"sqlite": "SQLite (WAL, synchronous=NORMAL)", "pg": "PostgreSQL (fsync on, loopback)"}
    print()
    print(f"marketing activity, submission to archive: {instances} requests x {reps} reps, budgets alternate")
    print(f"machine: {os.cpu_count()} CPUs, load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("figures: median (min..max) over repetitions; ratios within each repetition")
    for backend in backends:
        print(f"\n{names[backend]}")
        ceiling = [run[f"ceiling {backend}"] for run in runs]
        recorded = RECORDED[f"ceiling_{backend}"]
        print(
            f"  commit ceiling (1 connection, INSERT+COMMIT)  {summary(ceiling)} tx/s  (recorded {recorded:,})"
        )
        cases = {
            f"ours {backend}": "ours, 1 client",
            f"ours {backend} x{clients}": f"ours, {clients} clients",
        }
        for case, label in cases.items():
            if case not in runs[0]:
                continue
            rows = [run[case] for run in runs]
            # single client: steps/s over the service's time (task-id lookups of the client excluded)
            busy = [r["wall"] - (r["lookup"] if "clients" not in label else 0.0) for r in rows]
            steps = [r["steps"] / b for r, b in zip(rows, busy, strict=True)]
            per_instance = [r["instances"] / b for r, b in zip(rows, busy, strict=True)]
            share = [s / run[f"ceiling {backend}"] for s, run in zip(steps, runs, strict=True)]
            print(f"  {label:<16} instances/s {summary(per_instance, 1):<28} steps/s {summary(steps)}")
            print(
                f"  {'':<16} {rows[0]['steps'] / rows[0]['instances']:.1f} steps/request; "
                f"steps/s as a share of the ceiling {summary([100 * s for s in share], 1)} %; "
                f"CPU {summary([1e3 * r['cpu'] / r['steps'] for r in rows], 2)} ms/step"
            )
            if f"spiff {backend}" in runs[0]:
                spiff_rows = [run[f"spiff {backend}"] for run in runs]
                steps_ratio = [s / r["steps_per_s"] for s, r in zip(steps, spiff_rows, strict=True)]
                inst_ratio = [i / r["instances_per_s"] for i, r in zip(per_instance, spiff_rows, strict=True)]
                print(
                    f"  {'':<16} x{summary(steps_ratio, 1)} Spiff in steps/s, "
                    f"x{summary(inst_ratio, 1)} in instances/s"
                )
        if f"spiff {backend}" in runs[0]:
            spiff_rows = [run[f"spiff {backend}"] for run in runs]
            recorded_spiff = RECORDED[f"spiff_{backend}"]
            print(
                f"  {'Spiff persisted':<16} instances/s {summary([r['instances_per_s'] for r in spiff_rows], 1):<28} "
                f"steps/s {summary([r['steps_per_s'] for r in spiff_rows])}  (recorded {recorded_spiff:,})"
            )
            spiff_share = [
                100 * r["steps_per_s"] / run[f"ceiling {backend}"]
                for r, run in zip(spiff_rows, runs, strict=True)
            ]
            print(
                f"  {'':<16} {spiff_rows[0]['steps'] / spiff_rows[0]['instances']:.1f} user tasks/request; "
                f"share of the ceiling {summary(spiff_share, 1)} %"
            )
    print("\ninstance state (bytes as stored)")
    for label, size in sizes.items():
        print(f"  ours   {label:<28} {size:>8,}")
    for label, size in spiff_sizes.items():
        print(f"  Spiff  {label:<28} {size:>8,}")


if __name__ == "__main__":
    main()
