"""Fault injection under load, then proof that nothing was lost or done twice.

    .venv/bin/python bench/faults.py                 # about 3 minutes
    .venv/bin/python bench/faults.py --quick         # shorter pauses, fewer requests

Starts the production topology (`bench/production.py`), runs the mixed load of `bench/load.py`,
and while it runs: kill -9 one server worker, kill -9 the dramatiq worker (restarted 5 s later),
kill -9 the scheduler (restarted 5 s later), restart PostgreSQL, stop the broker for 30 s. Some
requests fail while that happens; that is expected. Deadlines are made due during the run (their
rows moved to "now"), so the scheduler has work when it is killed. After the load the system
settles, and `runtime.service.invariants.check_invariants` proves, over the whole database:
every request is in a consistent state, no task was decided twice, every due deadline fired,
every outbox message was delivered (or is an incident) and reached each recipient once, and the
audit chain verifies. Restarting PostgreSQL affects everything else on this machine's server:
run it alone.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.append(str(Path(__file__).resolve().parent))  # after the project, so bench/forms.py shadows nothing

from load import Run, fill_inbox, report, tokens_for
from production import Deployment


def pull_deadlines_in(deployment: Deployment, seconds: float) -> int:
    """Make the pending timers of the run due `seconds` from now (time passing, compressed)."""
    due = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)).isoformat()
    out = deployment.sql(f"UPDATE timer SET due_at = '{due}' WHERE status = 'pending' RETURNING id")
    return len(out.split()) if out else 0


async def faults(deployment: Deployment, quick: bool, log: list[str]) -> None:
    pause = 3 if quick else 8

    def note(text: str) -> None:
        log.append(f"{time.strftime('%H:%M:%S')} {text}")
        print(log[-1], flush=True)

    await asyncio.sleep(pause)
    note(f"kill -9 server worker {deployment.kill_one_server_worker()}")
    await asyncio.sleep(pause)
    moved = pull_deadlines_in(deployment, 2)
    note(f"{moved} deadlines and reminders made due now")
    deployment.kill("worker")
    note("kill -9 the dramatiq worker")
    await asyncio.sleep(5)
    deployment.start_process("worker")
    note("worker restarted")
    await asyncio.sleep(pause)
    deployment.kill("scheduler")
    note("kill -9 the scheduler")
    await asyncio.sleep(5)
    deployment.start_process("scheduler")
    note("scheduler restarted")
    await asyncio.sleep(pause)
    note("restarting PostgreSQL")
    await asyncio.to_thread(deployment.restart_postgres)
    note("PostgreSQL is back")
    await asyncio.sleep(pause)
    deployment.stop_redis()
    note("broker (Redis) stopped")
    await asyncio.sleep(10 if quick else 30)
    deployment.start_redis()
    note("broker (Redis) started again")
    moved = pull_deadlines_in(deployment, 1)
    note(f"{moved} more deadlines made due now")


async def main_async(args: argparse.Namespace, deployment: Deployment) -> int:
    base = deployment.base
    tokens = await tokens_for(base)
    made = await fill_inbox(base, tokens, 100 if args.quick else 300)
    print(f"setup: {len(made)} submitted requests", flush=True)
    run = Run(base, tokens)
    run.instances.extend(made)
    log: list[str] = []
    length = 40 if args.quick else 100
    async with httpx.AsyncClient(timeout=30) as client:
        begin = time.monotonic()
        users = [run.user(client, begin + length) for _ in range(args.users)]
        await asyncio.gather(faults(deployment, args.quick, log), *users)
        seconds = time.monotonic() - begin
    print("\n".join(report(run, seconds, None, None)), flush=True)
    print(f"settling (up to {args.settle} s) ...", flush=True)
    return await asyncio.to_thread(settle_and_check, deployment, args.settle)


def settle_and_check(deployment: Deployment, settle: int) -> int:
    """Wait until the relay, the worker and the scheduler have caught up (or stopped making
    progress for a minute, or `settle` seconds passed), then run the checker in a child process."""
    deadline = time.monotonic() + settle
    best, progress_at = None, time.monotonic()
    while time.monotonic() < deadline:
        pending = int(
            deployment.sql(
                "SELECT (SELECT count(*) FROM outbox_message WHERE status <> 'sent') + "
                "(SELECT count(*) FROM timer WHERE status = 'pending' AND due_at < now())"
            )
        )
        if pending == 0:
            break
        if best is None or pending < best:
            best, progress_at = pending, time.monotonic()
        elif time.monotonic() - progress_at > 60:
            print(f"no progress for a minute with {pending} outstanding", flush=True)
            break
        time.sleep(2)
    print(f"settled after {settle - (deadline - time.monotonic()):.0f} s", flush=True)
    check = (
        "import asyncio, datetime as dt\n"
        "from runtime.service.invariants import check_invariants\n"
        "r = asyncio.run(check_invariants(dt.datetime.now(dt.UTC), settle=dt.timedelta(seconds=0)))\n"
        "print(f'checked {r.instances} requests, {r.tasks} tasks, {r.timers} timers, {r.messages} messages')\n"
        "print('\\n'.join(r.problems) or 'invariants hold: nothing lost, nothing done twice, audit chain intact')\n"
        "raise SystemExit(1 if r.problems else 0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], env=deployment.env, cwd=Path(__file__).resolve().parents[1]
    )
    incidents = deployment.sql("SELECT count(*) FROM incident")
    print(f"incidents: {incidents}")
    return done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--settle", type=int, default=900, help="at most this many seconds to settle")
    args = parser.parse_args()
    with Deployment(web_workers=2, database="formflow_faults") as deployment:
        print(f"deployment up on {deployment.base} (logs in {deployment.home})", flush=True)
        os.environ["FORMFLOW_DATABASE_URL"] = deployment.database_url
        return asyncio.run(main_async(args, deployment))


if __name__ == "__main__":
    raise SystemExit(main())
