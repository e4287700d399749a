"""What a plugin's hooks return: decisions as data (a tagged union on "decision").

`decide` returns any `Decision`; `perform` (the side-effect hook, run by the actor) returns a
`CallResult`. Nothing here does anything: the engine applies a decision in the transaction of
the event that reached the step, and the actor applies a call's result as a `PluginResult`.

    Complete(outcome=CONTINUE)   the step is done; the token moves on (REJECT: the request ends)
    OpenTasks(assignees=...)     approval tasks open on the step, decided like an approval node
    Perform()                    run the plugin's `perform` hook in the actor, wait for its result
    WaitForCallback()            wait until an outside system calls back (`accept_callback`)
    ScheduleTimer(at=...)        wait until `at`; the step is decided again then
    Fail(reason=...)             cannot decide now; the actor retries, then opens an incident
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from runtime.flow.effects import Reason
from runtime.flow.graph import DEFAULT_ACTIONS, Action, ApprovalMode, EmptyPolicy, Sla
from runtime.flow.plugins import RejectAction
from runtime.flow.rules import AssigneeRule

Note = Annotated[str, Meta(max_length=2_000)]


class Outcome(enum.StrEnum):
    CONTINUE = "continue"  # the step is done, the request goes on
    REJECT = "reject"  # the request is rejected (已驳回)


class Notice(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An in-app notification to `recipients` (person ids), sent with the decision."""

    recipients: tuple[int, ...]
    text: Annotated[str, Meta(min_length=1, max_length=2_000)]


class _Decision(msgspec.Struct, tag_field="decision", frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class Complete(_Decision, tag="complete", frozen=True, kw_only=True):
    """The step is done. `note` and `output` go into the timeline; `notify` is sent (from
    `decide` only: a result of `perform` carries no notices)."""

    outcome: Outcome = Outcome.CONTINUE
    note: Note = ""
    output: dict[str, Any] = {}
    notify: tuple[Notice, ...] = ()


class OpenTasks(_Decision, tag="open_tasks", frozen=True, kw_only=True):
    """Approval tasks for `assignees` (a role, named people, any assignee rule).

    `mode`: any (或签) or all (会签), or sequential (依次). `sla`: deadline, reminder and overdue
    action, as on an approval node. `on_reject`: a rejection rejects the request, or returns it
    to the applicant, who may resubmit (the step is then decided again). `why` is added to each
    task's reason ("why this approver"), e.g. {"because": "amount_over_threshold"}. `title`
    names the tasks (the node's title when empty). Once the tasks are approved, the step is done.
    """

    assignees: AssigneeRule
    mode: ApprovalMode = ApprovalMode.ANY
    sla: Sla = Sla()
    on_reject: RejectAction = RejectAction.REJECT
    why: Reason = {}
    title: Annotated[str, Meta(max_length=200)] = ""
    actions: tuple[Action, ...] = DEFAULT_ACTIONS
    empty_policy: EmptyPolicy = EmptyPolicy.TO_PROCESS_ADMIN
    note: Note = ""


class Perform(_Decision, tag="perform", frozen=True, kw_only=True):
    """Run the plugin's `perform` hook in the actor (retried, keyed); the step waits for it."""

    note: Note = ""
    notify: tuple[Notice, ...] = ()


class WaitForCallback(_Decision, tag="wait_for_callback", frozen=True, kw_only=True):
    """Wait for an outside system to answer through `accept_callback` with this call's id."""

    note: Note = ""
    notify: tuple[Notice, ...] = ()


class ScheduleTimer(_Decision, tag="schedule_timer", frozen=True, kw_only=True):
    """Wait until `at` (timezone-aware, later than the input's `now`); then `decide` runs again."""

    at: dt.datetime
    note: Note = ""


class Fail(_Decision, tag="fail", frozen=True, kw_only=True):
    """The step cannot go on: `reason` says why. With `retry` the actor tries again with
    back-off; without, or once the retries run out, the step becomes an incident."""

    reason: Annotated[str, Meta(min_length=1, max_length=2_000)]
    retry: bool = True


Decision = Complete | OpenTasks | Perform | WaitForCallback | ScheduleTimer | Fail
"""What `decide` returns."""

CallResult = Complete | WaitForCallback | Fail
"""What `perform` returns."""
