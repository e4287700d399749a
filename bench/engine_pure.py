"""The pure engine alone: `advance` over the marketing-activity flow, no database.

Runs N instances from submit to archive (budgets alternate 30,000 and 200,000, so the
finance co-review is added for half of them) and prints steps/s: one step is one `advance`
call; "task steps" leave out the submit, as SpiffWorkflow's figures leave out instance
creation. Each figure is the median over repetitions, by the wall clock and by this
process's CPU time (the machine is shared; CPU time leaves out waiting for a core).

SpiffWorkflow's in-memory figure from ../shared/peers/results/spiff.md is the reference.
With `--spiff PYTHON` (an interpreter that has SpiffWorkflow 3.2, e.g. the peers' venv) the
peers' in-memory Spiff run is repeated in each repetition, interleaved, so that the ratio
compares figures taken under the same machine load.

Finally the encoded state after 1 and 50 returns (to the applicant and resubmitted; to an
earlier node) shows that the state does not grow with history.

    .venv/bin/python bench/engine_pure.py [--quick] [--spiff ../peers-venv/bin/python]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plugins.registry import engine_plugins
from runtime.calendar import BusinessCalendar
from runtime.flow import (
    Department,
    Environment,
    InstanceState,
    OrgDirectory,
    Person,
    advance,
    decode_graph,
    encode,
    new_instance,
)
from runtime.flow import events as ev

SPIFF_MEMORY_STEPS = 4_958  # user-task steps/s, sequential variant, ../shared/peers/results/spiff.md
TARGET = 50_000
ROOT = Path(__file__).resolve().parents[1]
FLOW = ROOT / "builder" / "demo" / "marketing-activity.flow.json"
PEERS = ROOT.parent / "shared" / "peers"
SPIFF_RUN = """
import json, sys, time
import peer_spiff
spec, subs, _ = peer_spiff.load_spec("sequential")
peer_spiff.run_memory(spec, subs, 10)
cpu = time.process_time()
result = peer_spiff.run_memory(spec, subs, int(sys.argv[1]))
result["cpu_s"] = time.process_time() - cpu
print(json.dumps(result))
"""
VP, HEAD, STAFF, FINANCE, ADMIN = 1, 2, 3, 4, 5

ORG = OrgDirectory.build(
    [
        Department(id=10, name="总公司", code="HQ"),
        Department(id=11, name="市场部", code="MKT", parent_id=10, head_id=HEAD, leader_id=VP),
    ],
    [
        Person(id=VP, name="李强", department_id=10),
        Person(id=HEAD, name="王芳", department_id=11, manager_id=VP),
        Person(id=STAFF, name="张伟", department_id=11, manager_id=HEAD),
        Person(id=FINANCE, name="刘洋", department_id=10, roles=("finance_specialist",)),
        Person(id=ADMIN, name="管理员", department_id=10, roles=("process_admin",)),
    ],
    process_admins=[ADMIN],
)
START = dt.datetime(2025, 9, 22, 2, 0, tzinfo=dt.UTC)


def environment(budget: int) -> Environment:
    form = {
        "budget": Decimal(budget),
        "start_date": dt.date(2025, 11, 3),
        "end_date": dt.date(2025, 11, 5),
        "department": 11,
        "applicant": STAFF,
    }
    return Environment(org=ORG, calendar=CALENDAR, initiator=STAFF, form=form, plugins=PLUGINS)


CALENDAR = BusinessCalendar()
PLUGINS = engine_plugins()  # the finance co-review is a step plugin
GRAPH = decode_graph(FLOW.read_bytes())
ENVS = (environment(30_000), environment(200_000))


def task_of(state: InstanceState, person: int) -> str:
    return next(t.id for t in state.tasks if t.assignee == person)


HOUR = dt.timedelta(hours=1)
SUBMIT = ev.Submit(actor=STAFF)
SUMMARY = ev.SummarySubmitted(actor=STAFF)


def run_instance(number: int) -> int:
    """One instance from submit to archive; returns the number of `advance` calls."""
    env = ENVS[number % 2]
    now = START + dt.timedelta(minutes=number)
    state = advance(GRAPH, new_instance(f"FL{number:09d}"), SUBMIT, now, env).state
    steps = 1
    for approver in (HEAD, VP, FINANCE) if number % 2 else (HEAD, VP):
        now += HOUR
        state = advance(GRAPH, state, ev.Approve(actor=approver, task_id=state.tasks[0].id), now, env).state
        steps += 1
    for _ in range(3):
        now += HOUR
        state = advance(
            GRAPH, state, ev.TaskCompleted(actor=STAFF, task_id=state.tasks[0].id), now, env
        ).state
        steps += 1
    state = advance(GRAPH, state, SUMMARY, now + HOUR, env).state
    assert state.status == "archived", state.status
    return steps + 1


class Figures:
    """One repetition: steps and seconds of our run, and optionally of Spiff's."""

    def __init__(self, steps: int, instances: int, wall: float, cpu: float) -> None:
        self.steps, self.instances, self.wall, self.cpu = steps, instances, wall, cpu
        self.spiff: dict[str, float] | None = None


def measure(instances: int) -> Figures:
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    steps = sum(run_instance(number) for number in range(instances))
    return Figures(steps, instances, time.perf_counter() - wall, time.process_time() - cpu)


def measure_spiff(python: str, instances: int) -> dict[str, float]:
    """SpiffWorkflow in memory, run by the peers' harness in another interpreter."""
    out = subprocess.run(
        [os.path.abspath(python), "-c", SPIFF_RUN, str(instances)],
        cwd=PEERS,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def state_sizes(cycles: int) -> dict[str, int]:
    """Encoded state size after `cycles` returns (both kinds of return)."""
    env = ENVS[1]
    now = START
    sizes: dict[str, int] = {}
    state = advance(GRAPH, new_instance("FL000000001"), ev.Submit(actor=STAFF), now, env).state
    sizes["after submit"] = len(encode(state))
    for cycle in range(1, cycles + 1):
        now += dt.timedelta(hours=1)
        back = ev.Return(actor=HEAD, task_id=task_of(state, HEAD), note="需补充竞品分析数据")
        state = advance(GRAPH, state, back, now, env).state
        state = advance(GRAPH, state, ev.Submit(actor=STAFF), now, env).state
        if cycle in (1, cycles):
            sizes[f"after {cycle} return(s) to the applicant"] = len(encode(state))
    state = advance(GRAPH, state, ev.Approve(actor=HEAD, task_id=task_of(state, HEAD)), now, env).state
    for cycle in range(1, cycles + 1):
        now += dt.timedelta(hours=1)
        back = ev.Return(actor=VP, task_id=task_of(state, VP), note="请重新评估", to_node="dept_head")
        state = advance(GRAPH, state, back, now, env).state
        state = advance(GRAPH, state, ev.Approve(actor=HEAD, task_id=task_of(state, HEAD)), now, env).state
        if cycle in (1, cycles):
            sizes[f"after {cycle} return(s) to dept_head"] = len(encode(state))
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--instances", type=int, default=None, help="instances per repetition")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (median reported)")
    parser.add_argument(
        "--spiff", metavar="PYTHON", help="interpreter with SpiffWorkflow: compare in the same run"
    )
    args = parser.parse_args()
    instances = args.instances or (300 if args.quick else 3_000)
    reps = args.reps or (3 if args.quick else 7)
    run_instance(1)  # warm the compiled-flow cache and the calendar
    runs = []
    for _ in range(reps):
        figures = measure(instances)
        if args.spiff:
            figures.spiff = measure_spiff(args.spiff, max(instances // 10, 20))
        runs.append(figures)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"pure advance, marketing-activity flow: {instances:,} instances x {reps} reps, budgets alternate")
    print(f"machine: {os.cpu_count()} CPUs, load average {load}")
    steps = _median([r.steps / r.wall for r in runs])
    task_steps = _median([(r.steps - r.instances) / r.wall for r in runs])
    print(f"  steps/s           wall {steps:>9,.0f}   CPU {_median([r.steps / r.cpu for r in runs]):>9,.0f}")
    task_cpu = _median([(r.steps - r.instances) / r.cpu for r in runs])
    print(f"  task steps/s      wall {task_steps:>9,.0f}   CPU {task_cpu:>9,.0f}")
    print(f"  instances/s       wall {_median([r.instances / r.wall for r in runs]):>9,.0f}")
    print(f"  per step          wall {1e6 / steps:>9.1f} us")
    verdict = "above" if steps > TARGET else "BELOW"
    print(f"  {verdict} the {TARGET:,} steps/s target")
    recorded = f"{SPIFF_MEMORY_STEPS:,} task steps/s"
    print(
        f"  x{task_steps / SPIFF_MEMORY_STEPS:.1f} Spiff in memory as recorded in peers/results ({recorded})"
    )
    if args.spiff:
        spiff_wall = _median([r.spiff["steps_per_s"] for r in runs if r.spiff])
        spiff_cpu = _median([r.spiff["steps"] / r.spiff["cpu_s"] for r in runs if r.spiff])
        ratio = _median([(r.steps - r.instances) / r.wall / r.spiff["steps_per_s"] for r in runs if r.spiff])
        print(f"  Spiff this run    wall {spiff_wall:>9,.0f}   CPU {spiff_cpu:>9,.0f} task steps/s")
        print(f"  x{ratio:.1f} Spiff in memory in the same run (ratio per repetition, median)")
    print("state size (JSON bytes)")
    for label, size in state_sizes(50).items():
        print(f"  {label:<36} {size:>6,}")


def _median(values: list[float]) -> float:
    return statistics.median(values)


if __name__ == "__main__":
    main()
