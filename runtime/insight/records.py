"""The rows analytics reads and the figures it returns (all frozen msgspec Structs).

Instants are timezone-aware (the database stores UTC). Durations are working hours of the
business calendar (`runtime.calendar`): a task created on Friday 17:00 and decided on Monday
10:00 took 2 working hours on an ordinary week. Rates are fractions between 0 and 1; a rate
or a duration that has nothing to count is None, never 0.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import msgspec

DECIDED = frozenset({"approved", "rejected", "returned", "completed"})
"""Task outcomes that end a task by its holder's decision; only these have a duration."""


class _Row(msgspec.Struct, frozen=True, kw_only=True):
    pass


class TaskRecord(_Row, frozen=True, kw_only=True):
    """One task of a request at one step (`node_id`) of its template's flow."""

    instance_id: int
    template: str
    node_id: str
    step: str
    """The step's title as the task carries it."""
    department_id: int | None = None
    created_at: dt.datetime
    closed_at: dt.datetime | None = None
    due_at: dt.datetime | None = None
    outcome: str | None = None

    @property
    def decided(self) -> bool:
        return self.closed_at is not None and self.outcome in DECIDED


class RequestRecord(_Row, frozen=True, kw_only=True):
    """One submitted request, with counts read from its event log."""

    instance_id: int
    number: str
    title: str = ""
    template: str
    department_id: int | None = None
    status: str
    submitted_at: dt.datetime
    closed_at: dt.datetime | None = None
    returns: int = 0
    rejections: int = 0
    resubmissions: int = 0
    budget: Decimal | None = None
    actual_spend: Decimal | None = None


class StepStats(_Row, frozen=True, kw_only=True):
    """Decided tasks of one step: how long they took and how they ended."""

    template: str
    node_id: str
    step: str
    decided: int
    median_hours: float | None
    p90_hours: float | None
    return_rate: float | None
    rejection_rate: float | None
    overdue_rate: float | None
    """Decided tasks that had a deadline and were decided after it, over decided tasks with one."""


class TemplateStats(_Row, frozen=True, kw_only=True):
    """Requests of one template: from submission to closing, in working hours."""

    template: str
    requests: int
    finished: int
    median_hours: float | None
    p90_hours: float | None
    return_rate: float | None
    """Requests returned at least once, over all requests."""
    rejection_rate: float | None
    """Requests that ended rejected, over finished requests."""
    overdue_rate: float | None
    """Requests with at least one task decided (or still open) after its deadline, over all requests."""
    resubmissions: int


class WeekStats(_Row, frozen=True, kw_only=True):
    """One calendar week (Monday first, in the calendar's timezone)."""

    week: dt.date
    """The Monday that starts the week."""
    submitted: int
    finished: int
    median_task_hours: float | None
    """The median duration of the tasks decided that week."""


class RepeatedRejection(_Row, frozen=True, kw_only=True):
    """A request that was sent back (returned or rejected) at least the threshold's number of times."""

    instance_id: int
    number: str
    title: str
    template: str
    department_id: int | None
    returns: int
    rejections: int
    status: str


class CostDeviation(_Row, frozen=True, kw_only=True):
    """Budget against the actual spend of its summary; positive deviation means overspent."""

    instance_id: int
    number: str
    title: str
    template: str
    department_id: int | None
    budget: Decimal
    actual: Decimal
    deviation: Decimal
    ratio: float | None
    """deviation / budget; None for a zero budget."""


class Estimate(_Row, frozen=True, kw_only=True):
    """How long requests usually still take from entering a step to closing (working hours)."""

    template: str
    node_id: str
    median_hours: float
    samples: int
