"""What must hold in the database whatever crashed: the checker the fault runs end with.

    report = await check_invariants(now)      # report.problems: every violation found, named
    assert report.ok, report.problems

- every instance's stored state decodes, its status column agrees with the state, and the open
  task rows are exactly the state's open tasks;
- no task was decided twice (one approve / reject / return event per task at most), and every
  closed task row has exactly one closing event;
- no deadline, reminder or wait is overdue and still pending (past `settle` ago);
- every outbox message went out, or failed into an incident, and none is left pending (past
  `settle` ago); every sent notification reached each of its recipients exactly once;
- the audit chain verifies.
Reading only.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import msgspec

from runtime.flow import decode_state
from runtime.flow.errors import StateDecodeError
from storage import audit
from storage.tables import Incident, Instance, InstanceEvent, Notification, OutboxMessage, Task, Timer

DECISIONS = ("approve", "reject", "return")
BATCH = 500


class InvariantReport(msgspec.Struct, kw_only=True):
    instances: int = 0
    tasks: int = 0
    timers: int = 0
    messages: int = 0
    problems: list[str] = []

    @property
    def ok(self) -> bool:
        return not self.problems


async def check_invariants(now: datetime, *, settle: timedelta = timedelta(seconds=60)) -> InvariantReport:
    report = InvariantReport()
    await _instances(report)
    await _decisions(report)
    await _timers(report, now - settle)
    await _outbox(report, now - settle)
    chain = await audit.verify_chain()
    if not chain.ok and chain.broken is not None:
        report.problems.append(f"audit chain broken at entry {chain.broken.id}: {chain.broken.reason}")
    return report


async def _instances(report: InvariantReport) -> None:
    last = 0
    while True:
        rows = await (
            Instance.select(Instance.id, Instance.number, Instance.status, Instance.state)
            .where(Instance.id > last)
            .order_by(Instance.id)
            .limit(BATCH)
            .output(load_json=True)
        )
        if not rows:
            return
        last = rows[-1]["id"]
        ids = [row["id"] for row in rows]
        open_rows: dict[int, set[str]] = {}
        for task in await Task.select(Task.instance, Task.task_key).where(
            Task.instance.is_in(ids) & (Task.status == "open")
        ):
            open_rows.setdefault(task["instance"], set()).add(task["task_key"])
        for row in rows:
            report.instances += 1
            try:
                state = decode_state(msgspec.json.encode(row["state"]))
            except StateDecodeError as exc:
                report.problems.append(f"{row['number']}: state does not decode ({exc})")
                continue
            if state.status.value != row["status"]:
                report.problems.append(
                    f"{row['number']}: status column {row['status']} but state {state.status}"
                )
            expected = {task.id for task in state.tasks}
            found = open_rows.get(row["id"], set())
            if expected != found:
                report.problems.append(
                    f"{row['number']}: open tasks in state {sorted(expected)} but task rows {sorted(found)}"
                )


async def _decisions(report: InvariantReport) -> None:
    decided: Counter[str] = Counter()
    last = 0
    while True:
        rows = await (
            InstanceEvent.select(InstanceEvent.id, InstanceEvent.task_key)
            .where((InstanceEvent.id > last) & InstanceEvent.kind.is_in(list(DECISIONS)))
            .order_by(InstanceEvent.id)
            .limit(BATCH * 4)
        )
        if not rows:
            break
        last = rows[-1]["id"]
        decided.update(row["task_key"] for row in rows if row["task_key"])
    for task_key, count in decided.items():
        if count > 1:
            report.problems.append(f"task {task_key} was decided {count} times")
    report.tasks = await Task.count()


async def _timers(report: InvariantReport, settled_before: datetime) -> None:
    report.timers = await Timer.count()
    stuck = await Timer.select(Timer.timer_key, Timer.due_at).where(
        (Timer.status == "pending") & (Timer.due_at < settled_before)
    )
    for timer in stuck[:20]:
        report.problems.append(
            f"timer {timer['timer_key']} was due {timer['due_at'].isoformat()} and never fired"
        )
    if len(stuck) > 20:
        report.problems.append(f"... and {len(stuck) - 20} more overdue timers")


async def _outbox(report: InvariantReport, settled_before: datetime) -> None:
    report.messages = await OutboxMessage.count()
    pending = await OutboxMessage.select(OutboxMessage.key).where(
        (OutboxMessage.status != "sent") & (OutboxMessage.created_at < settled_before)
    )
    incidents = {row["key"] for row in await Incident.select(Incident.key)}
    for message in pending:
        if message["key"] not in incidents:
            report.problems.append(f"outbox message {message['key']} neither went out nor became an incident")
    await _notifications(report, settled_before)


async def _notifications(report: InvariantReport, settled_before: datetime) -> None:
    """Each sent "notify" message reached every recipient once (keys are message key + person)."""
    last = 0
    while True:
        rows = await (
            OutboxMessage.select(OutboxMessage.id, OutboxMessage.key, OutboxMessage.payload)
            .where(
                (OutboxMessage.id > last)
                & (OutboxMessage.actor == "notify")
                & (OutboxMessage.status == "sent")
                & (OutboxMessage.created_at < settled_before)
            )
            .order_by(OutboxMessage.id)
            .limit(BATCH)
            .output(load_json=True)
        )
        if not rows:
            return
        last = rows[-1]["id"]
        expected: dict[str, set[int]] = {}
        for row in rows:
            payload: dict[str, Any] = row["payload"] or {}
            expected[row["key"]] = {int(person) for person in payload.get("recipients", [])}
        keys = [f"{key}:{person}"[:200] for key, people in expected.items() for person in people]
        found = (
            Counter(
                row["key"]
                for row in await Notification.select(Notification.key).where(Notification.key.is_in(keys))
            )
            if keys
            else Counter()
        )
        for key in keys:
            if found[key] != 1:
                report.problems.append(f"notification {key} delivered {found[key]} times")
