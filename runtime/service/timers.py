"""Firing due timers (reminders, overdue actions, waits): the scheduler's job.

Each timer is fired in its own write transaction that claims it, feeds `TimerFired` to the
engine, writes the instance like any command and marks the timer fired, all or nothing.
Claiming is `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL, so several schedulers share
the due rows without waiting on each other; on SQLite the IMMEDIATE transaction serialises
them. Either way a timer fires once: a second claimer finds it fired (or locked and skips it).

On PostgreSQL the claim locks the timer's instance row too, and skips timers whose instance
another transaction is writing: that command may go on to cancel the very timer claimed here,
so waiting for it would deadlock (the person's action or the timer failing). Such a timer
stays pending for the next round. A timer whose instance changed meanwhile (`ConflictError`)
stays pending and is claimed again at once with the fresh state. A timer that fails otherwise
is marked failed and becomes an `Incident` an admin can see, so one broken instance never
blocks the others.

    register with the scheduler: PeriodicJob(name="fire-due-timers", every_seconds=15,
                                             run=fire_due_timers)
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from piccolo.engine.postgres import PostgresEngine

from runtime.flow import OrgDirectory
from runtime.flow.effects import CloseTask
from runtime.flow.events import TimerFired, TimerKind
from runtime.service.caller import SYSTEM_ACTOR
from runtime.service.effects import TIMER_FAILED, TIMER_FIRED, TIMER_PENDING, CommandRecord, json_text
from runtime.service.errors import ConflictError
from runtime.service.org_directory import load_org_directory
from runtime.service.pipeline import decide, load_instance, write_step
from storage import audit
from storage.database import write_transaction
from storage.raw_sql import fetch
from storage.tables import Incident, Timer

log = logging.getLogger("formflow.timers")


async def fire_due_timers(now: dt.datetime, limit: int = 100) -> int:
    """Fire up to `limit` timers due at `now` (timezone-aware); returns how many fired."""
    org: list[OrgDirectory] = []
    fired = 0
    for _ in range(limit):
        outcome = await _fire_next(now, org)
        if outcome is None:
            break
        fired += outcome
    return fired


async def _fire_next(now: dt.datetime, org: list[OrgDirectory]) -> int | None:
    """Fire the next due timer: 1 when fired, 0 when it must be retried, None when none is due."""
    timer: dict[str, Any] | None = None
    try:
        async with write_transaction(Timer._meta.db):
            timer = await _claim(now)
            if timer is None:
                return None
            if not org:
                org.append(await load_org_directory())
            await _fire(timer, now, org[0])
            await Timer.update({Timer.status: TIMER_FIRED, Timer.fired_at: now}).where(
                Timer.id == timer["id"]
            )
        return 1
    except ConflictError:
        return 0
    except Exception as exc:  # one broken instance must not block every later timer
        if timer is None:
            raise
        await _record_failure(timer, exc, now)
        return 0


_CLAIM_ON_POSTGRES = """
    SELECT timer.id, timer.timer_key, timer.kind, timer.instance, timer.task_key, timer.node_id
    FROM timer JOIN instance ON instance.id = timer.instance
    WHERE timer.status = {} AND timer.due_at <= {}
    ORDER BY timer.due_at, timer.id LIMIT 1
    FOR UPDATE OF timer, instance SKIP LOCKED
"""


async def _claim(now: dt.datetime) -> dict[str, Any] | None:
    if isinstance(Timer._meta.db, PostgresEngine):
        rows: list[dict[str, Any]] = await fetch(Timer, _CLAIM_ON_POSTGRES, TIMER_PENDING, now)
        return rows[0] if rows else None
    row: dict[str, Any] | None = await (
        Timer.select(Timer.id, Timer.timer_key, Timer.kind, Timer.instance, Timer.task_key, Timer.node_id)
        .where((Timer.status == TIMER_PENDING) & (Timer.due_at <= now))
        .order_by(Timer.due_at)
        .order_by(Timer.id)
        .limit(1)
        .first()
    )
    return row


async def _fire(timer: dict[str, Any], now: dt.datetime, org: OrgDirectory) -> None:
    loaded = await load_instance(timer["instance"])
    event = TimerFired(timer_id=timer["timer_key"], kind=TimerKind(timer["kind"]))
    step = decide(loaded, event, now, org)
    if step.state is loaded.state:
        return  # nothing waits on it any more
    record = CommandRecord(
        "timer_fired",
        None,
        timer["node_id"],
        timer["task_key"],
        {"timer_id": timer["timer_key"], "kind": timer["kind"]},
    )
    result = await write_step(loaded, step, [record], now)
    decided = [e for e in step.effects if isinstance(e, CloseTask)]
    if decided or result.status != loaded.status:
        await audit.record(
            "instance.timer_fired",
            SYSTEM_ACTOR,
            target_type="instance",
            target_id=loaded.number,
            before={"status": loaded.status},
            after={"status": result.status, "timer": timer["timer_key"], "kind": timer["kind"]},
            now=now,
        )


async def _record_failure(timer: dict[str, Any], exc: Exception, now: dt.datetime) -> None:
    log.exception("timer %s failed; it is now an incident", timer["timer_key"], exc_info=exc)
    async with write_transaction(Timer._meta.db):
        await Timer.update({Timer.status: TIMER_FAILED, Timer.fired_at: now}).where(Timer.id == timer["id"])
        await Incident.insert(
            Incident(
                created_at=now,
                source="timer",
                key=timer["timer_key"],
                message=f"{type(exc).__name__}: {exc}"[:2_000],
                payload=json_text({"timer_id": timer["id"], "instance_id": timer["instance"]}),
            )
        )
