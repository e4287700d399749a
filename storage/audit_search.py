"""Finding entries in the audit trail: filters for the viewer, the API and the export.

    entries, total = await search(AuditFilter(who="王芳", action="task."), page=1, page_size=50)
    async for batch in stream(AuditFilter(since=date(2026, 1, 1))): ...   # newest first, by id

`action` matches a whole action or, ending in ".", every action under it ("task." finds
task.approve, task.reject...). Days are UTC days, as the viewer shows UTC times; `until` is
inclusive. Reading only: nothing here writes to the trail.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import msgspec

from storage.database import icontains
from storage.tables import AuditEntry

EXPORT_BATCH = 1_000


class AuditFilter(msgspec.Struct, frozen=True, kw_only=True):
    who: str = ""
    action: str = ""
    target: str = ""
    since: date | None = None
    until: date | None = None

    @property
    def empty(self) -> bool:
        return not (self.who or self.action or self.target or self.since or self.until)


def _where(selected: AuditFilter) -> Any:
    clauses: list[Any] = []
    if selected.who:
        clauses.append(icontains(AuditEntry.actor_name, selected.who))
    if selected.action:
        if selected.action.endswith("."):
            clauses.append(AuditEntry.action.like(f"{selected.action}%"))
        else:
            clauses.append(AuditEntry.action == selected.action)
    if selected.target:
        clauses.append(
            icontains(AuditEntry.target_type, selected.target)
            | icontains(AuditEntry.target_id, selected.target)
        )
    if selected.since:
        clauses.append(AuditEntry.at >= datetime.combine(selected.since, time.min, UTC))
    if selected.until:
        clauses.append(AuditEntry.at < datetime.combine(selected.until + timedelta(days=1), time.min, UTC))
    where = None
    for clause in clauses:
        where = clause if where is None else where & clause
    return where


async def search(selected: AuditFilter, *, page: int, page_size: int) -> tuple[list[dict[str, Any]], int]:
    """One page of matching entries, newest first, and how many match in all."""
    query = AuditEntry.select().order_by(AuditEntry.id, ascending=False)
    count = AuditEntry.count()
    where = _where(selected)
    if where is not None:
        query = query.where(where)
        count = count.where(where)
    rows = await query.limit(page_size).offset((page - 1) * page_size).output(load_json=True)
    return rows, await count


async def stream(selected: AuditFilter, batch: int = EXPORT_BATCH) -> AsyncIterator[list[dict[str, Any]]]:
    """Every matching entry, newest first, in batches read by id (flat memory for any size)."""
    where = _where(selected)
    below: int | None = None
    while True:
        query = (
            AuditEntry.select().order_by(AuditEntry.id, ascending=False).limit(batch).output(load_json=True)
        )
        if where is not None:
            query = query.where(where)
        if below is not None:
            query = query.where(AuditEntry.id < below)
        rows = await query
        if not rows:
            return
        yield rows
        below = rows[-1]["id"]
