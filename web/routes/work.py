"""The work pages: my requests, the inbox, a request's own page, and the actions behind them.

Every page reads and acts through `runtime.service` (the same commands as the instance API),
so scoping, field masks and the one-transaction rule come from there; this module only turns
the service's views into what a person reads. The flow picture is drawn from the pinned
template version's graph and the request's timeline.

Actions are plain HTML forms that htmx enhances: a successful action sends the browser to the
request's page with a message (`?done=<action>`); a refused one answers the service's status
(403, 404, 409, 422, 429) with a message that `app.js` swaps in beside the form (an answer
without one, such as an expired page, shows the page shell's general alert, `base.html`).
Without JavaScript the same forms post and redirect, and a refusal re-renders the page with the
message. Lists read a page in a fixed number of queries (`runtime.service.lists`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple
from urllib.parse import urlencode, urlsplit

import msgspec
from litestar import Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.plugins.htmx import ClientRedirect
from litestar.response import Redirect, Template

from forms import FieldError, FormSchema
from forms import model as m
from runtime import service
from runtime.flow import FlowError, FlowGraph, Status, graph_from_dict
from runtime.flow.errors import (
    ActionNotAllowedError,
    InvalidCommandError,
    NoAssigneeError,
    NotAssigneeError,
    NotPermittedError,
    TaskNotOpenError,
    TransitionError,
    UrgeTooSoonError,
)
from runtime.flow.events import SignerPosition
from runtime.flow.graph import (
    ApprovalNode,
    BranchNode,
    EndNode,
    Node,
    PluginNode,
    StartNode,
    TaskNode,
    TaskPurpose,
    WaitNode,
)
from runtime.service import (
    ChangeRequestBody,
    CommandResult,
    CommentRequest,
    CreateRequest,
    DataUpdate,
    InstanceDetail,
    NoteRequest,
    ProgressRequest,
    SubmitRequest,
    SummaryRequest,
    TaskAction,
    TaskActionRequest,
)
from runtime.service.errors import (
    ConflictError,
    FormInvalid,
    NotEditable,
    NotFoundError,
    ServiceError,
    TemplateHasNoFlow,
)
from runtime.service.lists import inbox_facets, list_copies, request_progress
from runtime.service.views import (
    CopyRow,
    InstanceRow,
    RequestProgress,
    TaskRow,
    TaskView,
    TimelineEntry,
    status_label,
)
from storage.access import Permission
from storage.tables import Notification, Task
from storage.templates import PublishedVersion, list_templates, version_in_effect
from web.auth.guards import needs
from web.context import AnyRequest, RowId, principal_of
from web.errors import MESSAGE_HEADER, domain_status, request_now
from web.form_input import decode_form
from web.form_pages import (
    BUSINESS_TZ,
    compiled,
    directory,
    posted_data,
    published_version,
    shown_values,
    validation_context,
    visibility,
)
from web.i18n import _, current_locale
from web.routes.instances import PageNo, caller_of
from web.routes.templates import form_template

PAGE_SIZE = 20
BATCH_LIMIT = 100
"""Tasks one batch approval acts on."""
NOTIFICATION_LIMIT = 50

MY_TABS: dict[str, tuple[Status, ...]] = {
    "all": (),
    "drafts": (Status.DRAFT,),
    "in_approval": (Status.IN_APPROVAL,),
    "returned": (Status.RETURNED,),
    "executing": (Status.EXECUTING, Status.AWAITING_SUMMARY),
    "done": (Status.ARCHIVED, Status.REJECTED, Status.WITHDRAWN, Status.CANCELLED),
}
INBOX_TABS = ("todo", "done", "cc")
_DECISIONS = frozenset({"approve", "reject", "return", "transfer", "add_signer", "progress", "summary"})


# -- views ----------------------------------------------------------------------------------


class _View(msgspec.Struct, frozen=True, kw_only=True):
    pass


class StepView(_View, frozen=True, kw_only=True):
    """One step of the flow picture. `state`: done, current, returned, rejected, pending, skipped."""

    node_id: str
    title: str
    kind: str
    state: str
    people: list[str]
    why: str
    due: str = ""
    overdue: bool = False
    condition: str = ""


class FileLink(_View, frozen=True, kw_only=True):
    id: str
    name: str
    size: int | None = None
    image: bool = False

    @property
    def url(self) -> str:
        return f"/api/v1/attachments/{self.id}"


class TimelineItem(_View, frozen=True, kw_only=True):
    at: str
    actor: str
    label: str
    step: str
    lines: list[str]
    took: str
    system: bool
    tone: str
    files: list[FileLink] = []


class ReturnNote(_View, frozen=True, kw_only=True):
    actor: str
    at: str
    note: str
    fields: list[str] = []


class RequestRow(_View, frozen=True, kw_only=True):
    """A row of "my requests"."""

    row: InstanceRow
    holders: list[str]
    steps: list[StepView]
    actions: list[str]
    return_note: ReturnNote | None
    updated: str


class InboxRow(_View, frozen=True, kw_only=True):
    task: TaskRow
    template_name: str
    due: str
    created: str
    closed: str
    outcome: str
    kind_name: str
    batchable: bool


class NavCounts(_View, frozen=True, kw_only=True):
    open_tasks: int
    overdue_tasks: int
    returned: int
    drafts: int
    unread: int


class Problem(NamedTuple):
    """A refused action as the page shows it."""

    status: int
    message: str
    errors: dict[str, list[str]] = {}
    reload: bool = False


# -- formatting -----------------------------------------------------------------------------


def local_time(value: dt.datetime | str | None) -> str:
    """A UTC instant as Shanghai wall time, minutes precision (what people read and type)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(BUSINESS_TZ).strftime("%Y-%m-%d %H:%M")


def duration(seconds: float) -> str:
    """Elapsed time in the largest two units: "1天3小时", "2 h 5 min"."""
    minutes = max(0, round(seconds / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = []
    if days:
        parts.append(_("{n} d").format(n=days))
    if hours:
        parts.append(_("{n} h").format(n=hours))
    if minutes and not days:
        parts.append(_("{n} min").format(n=minutes))
    return " ".join(parts) if parts else _("under a minute")


def _as_datetime(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _done_message(key: str) -> str:
    return {
        "saved": _("Draft saved."),
        "submitted": _("Submitted for approval."),
        "approve": _("Approved."),
        "reject": _("Rejected."),
        "return": _("Returned to the applicant with your note."),
        "transfer": _("Transferred."),
        "add_signer": _("Signers added."),
        "withdraw": _("Withdrawn."),
        "urge": _("The approvers have been reminded."),
        "mark_urgent": _("Marked urgent."),
        "comment": _("Comment added."),
        "progress": _("Progress recorded."),
        "change_request": _("Change request submitted; it takes effect once approved."),
        "summary": _("Summary submitted; the request is archived."),
    }.get(key, "")


def _outcome_label(outcome: str | None) -> str:
    return {
        "approved": _("Approved"),
        "rejected": _("Rejected"),
        "returned": _("Returned"),
        "transferred": _("Transferred"),
        "escalated": _("Escalated"),
        "suspended": _("Waiting for added signers"),
        "decided_by_other": _("Decided by another approver"),
        "completed": _("Completed"),
        "cancelled": _("Closed"),
    }.get(outcome or "", outcome or "")


def _kind_label(kind: str) -> str:
    return {
        "approval": _("Approval"),
        "stage": _("Work stage"),
        "summary": _("Summary report"),
        "change_review": _("Change review"),
    }.get(kind, kind)


# -- errors ---------------------------------------------------------------------------------


def problem_of(exc: Exception) -> Problem | None:
    """A refused command in words for the page, with the status `web.errors` gives it; None when
    the error is not a refusal but a fault, which the app's handler reports."""
    status = domain_status(exc)
    if status is None:
        return None
    if isinstance(exc, FormInvalid):
        return Problem(status, _("Please correct the marked fields."), _grouped(exc.errors))
    if isinstance(exc, InvalidCommandError):
        message = _command_message(exc)
        return Problem(status, message, {exc.field: [message]})
    if isinstance(exc, ConflictError | TaskNotOpenError | TransitionError):
        return Problem(
            status,
            _("Someone else acted on this request first. Reload the page to see where it is now."),
            reload=True,
        )
    if isinstance(exc, NotEditable):
        return Problem(status, _("This request can no longer be changed."), reload=True)
    if isinstance(exc, UrgeTooSoonError):
        return Problem(
            status,
            _("You urged this request less than an hour ago; you can urge again after {time}.").format(
                time=local_time(exc.retry_after)
            ),
        )
    if isinstance(exc, NotAssigneeError | NotPermittedError | ActionNotAllowedError):
        return Problem(status, _("You may not do this on this request."))
    if isinstance(exc, NotFoundError):
        return Problem(status, _("This request does not exist, or you may not see it."))
    if isinstance(exc, NoAssigneeError):
        return Problem(status, _("No approver was found for a step of this flow; ask a process admin."))
    if isinstance(exc, TemplateHasNoFlow):
        return Problem(status, _("This template has no flow yet, so it cannot be submitted."))
    return Problem(status, str(exc))


def _command_message(exc: InvalidCommandError) -> str:
    return {
        "note": _("A return needs a note saying what to add or fix."),
        "to": _("Choose whom to transfer the task to."),
        "people": _("Choose the people to add."),
        "position": _("Choose where the added signers go."),
        "task_id": _("Choose the stage you are reporting on."),
    }.get(exc.field, str(exc))


def _grouped(errors: Iterable[FieldError]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for error in errors:
        grouped.setdefault(error.path, []).append(error.message)
    return grouped


def _problem_response(request: AnyRequest, problem: Problem) -> Template:
    """The refusal as a fragment htmx swaps in beside the form it came from."""
    current = urlsplit(request.headers.get("hx-current-url", ""))
    reload_url = current.path + (f"?{current.query}" if current.query else "") if current.path else ""
    return Template(
        "work/_problem.html",
        context={"problem": problem, "reload_url": reload_url},
        status_code=problem.status,
        headers={MESSAGE_HEADER: "1"},
    )


# -- reading --------------------------------------------------------------------------------


class _Versions:
    """Pinned template versions read once per request (immutable once published)."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self._seen: dict[tuple[str, int], PublishedVersion] = {}

    async def get(self, key: str, version: int) -> PublishedVersion:
        found = self._seen.get((key, version))
        if found is None:
            found = await version_in_effect(key, self.now, version=version)
            if found is None:
                raise NotFoundException(f"template {key!r} v{version} is missing")
            self._seen[(key, version)] = found
        return found

    async def graph(self, key: str, version: int) -> FlowGraph | None:
        found = await self.get(key, version)
        return graph_from_dict(found.flow) if found.flow else None


async def _detail(request: AnyRequest, instance_id: int) -> InstanceDetail:
    return await service.instance_detail(
        principal_of(request), instance_id, request_now(request), current_locale()
    )


async def nav_counts_for(request: AnyRequest) -> NavCounts:
    principal = principal_of(request)
    unread = await Notification.count().where(
        (Notification.person == principal.id) & Notification.read_at.is_null()
    )
    counts = await service.navigation_counts(principal, request_now(request))
    return NavCounts(
        open_tasks=counts.open_tasks,
        overdue_tasks=counts.overdue_tasks,
        returned=counts.returned,
        drafts=counts.drafts,
        unread=unread,
    )


# -- the flow picture -----------------------------------------------------------------------


def _walk(graph: FlowGraph) -> list[tuple[Node, str, str]]:
    """The graph's nodes breadth-first from the start, each with the branch and the condition
    that lead to it ("", "" when it is reached unconditionally)."""
    nodes = {node.id: node for node in graph.nodes}
    outgoing: dict[str, list[Any]] = defaultdict(list)
    for edge in graph.edges:
        outgoing[edge.source].append(edge)
    start = next((node for node in graph.nodes if isinstance(node, StartNode)), None)
    if start is None:
        return []
    seen, order = {start.id}, []
    conditions: dict[str, tuple[str, str]] = {}
    queue = deque([start.id])
    while queue:
        node_id = queue.popleft()
        order.append(node_id)
        for edge in outgoing[node_id]:
            if edge.target in seen or edge.target not in nodes:
                continue
            seen.add(edge.target)
            if isinstance(nodes[node_id], BranchNode) and edge.condition and not edge.is_default:
                conditions[edge.target] = (node_id, edge.condition)
            queue.append(edge.target)
    return [(nodes[node_id], *conditions.get(node_id, ("", ""))) for node_id in order]


def _rule_text(rule: Any) -> str:
    """Who a step goes to, in words, before anyone is chosen."""
    spec = msgspec.to_builtins(rule)
    kind = spec.get("kind", "")
    return {
        "department_head": _("Head of the applicant's department"),
        "supervising_leader": _("Supervising leader of the applicant's department"),
        "role": _("Holders of the role {role}").format(role=_role_name(str(spec.get("role", "")))),
        "people": _("People named in the flow"),
        "head_above": _("Head of a department above the applicant's"),
        "department_head_of": _("Head of {department}").format(department=spec.get("department", "")),
        "person_field": _("The person chosen in the form"),
        "department_field_head": _("Head of the department chosen in the form"),
        "initiator_choice": _("Chosen by the applicant"),
        "initiator": _("The applicant"),
    }.get(kind, kind)


def _role_name(role: str) -> str:
    return {
        "finance_specialist": _("Finance specialist"),
        "department_head": _("Department head"),
        "supervising_leader": _("Supervising leader"),
        "process_admin": _("Process admin"),
        "system_admin": _("System admin"),
        "employee": _("Employee"),
    }.get(role, role)


def _readable(condition: str, labels: Mapping[str, str]) -> str:
    """A branch condition with form fields named by their labels: "预算金额 > 50000"."""
    return re.sub(
        r"\bform\.([a-z_][a-z0-9_]*)", lambda found: labels.get(found.group(1), found.group(1)), condition
    )


def flow_steps(
    graph: FlowGraph | None, detail: InstanceDetail, labels: Mapping[str, str] | None = None
) -> list[StepView]:
    """The flow as steps with done / current / pending states, who holds each and why."""
    return _steps(
        graph,
        Status(detail.status),
        detail.submitted_at is not None,
        detail.initiator.name,
        detail.timeline,
        detail.tasks,
        labels,
    )


def _steps(
    graph: FlowGraph | None,
    status: Status,
    submitted: bool,
    initiator: str,
    events: Iterable[TimelineEntry],
    open_tasks_: Iterable[TaskView],
    labels: Mapping[str, str] | None = None,
) -> list[StepView]:
    if graph is None:
        return []
    last: dict[str, str] = {}
    deciders: dict[str, list[str]] = defaultdict(list)
    whys: dict[str, list[str]] = defaultdict(list)
    tasked: set[str] = set()
    branch_to: dict[str, str] = {}
    for entry in events:
        node_id = entry.node_id
        if node_id is None:
            continue
        kind = entry.kind
        if kind == "task_created":
            tasked.add(node_id)
            if last.get(node_id) in ("done", "returned", "rejected"):
                deciders[node_id].clear()
                whys[node_id].clear()
            last[node_id] = "current"
            why = entry.data.get("why")
            if isinstance(why, str) and why and why not in whys[node_id]:
                whys[node_id].append(why)
        elif kind in ("node_completed", "stage_completed", "summary_submitted", "auto_approved"):
            last[node_id] = "done"
        elif kind == "node_skipped":
            last[node_id] = "skipped"
        elif kind == "plugin_continued":  # a plugin step that asked nobody was not needed
            last[node_id] = "done" if node_id in tasked else "skipped"
        elif kind == "plugin_result":  # an outside system answered the step (a webhook's callback)
            outcome = str(entry.data.get("outcome", ""))
            if outcome == "continue":
                last[node_id] = "done"
            elif outcome == "reject":
                last[node_id] = "rejected"
        elif kind in ("return", "reject"):
            last[node_id] = "returned" if kind == "return" else "rejected"
        elif kind == "node_entered":
            last[node_id] = "current"
        elif kind == "branch_taken":
            branch_to[node_id] = str(entry.data.get("to", ""))
        if kind in _DECISIONS and entry.actor is not None and entry.actor.name not in deciders[node_id]:
            deciders[node_id].append(entry.actor.name)
    open_tasks: dict[str, list[Any]] = defaultdict(list)
    for task in open_tasks_:
        open_tasks[task.node_id].append(task)
    steps: list[StepView] = []
    for node, branch, condition in _walk(graph):
        if isinstance(node, StartNode):
            state = "done" if submitted else "current"
            steps.append(
                StepView(
                    node_id=node.id,
                    title=node.title or _("Submit"),
                    kind="start",
                    state=state,
                    people=[initiator],
                    why=_("The applicant"),
                )
            )
            continue
        if not isinstance(node, ApprovalNode | TaskNode | WaitNode | PluginNode | EndNode):
            continue
        tasks = open_tasks.get(node.id, [])
        state = last.get(node.id, "pending")
        if tasks:
            state = "current"
        elif state == "current":
            state = "pending"  # the request left this step another way (withdrawn, returned)
        if isinstance(node, EndNode):
            state = "done" if status is Status.ARCHIVED else "pending"
        if branch and state == "pending" and branch_to.get(branch) not in (None, node.id):
            state = "skipped"
        if tasks:
            people = [task.assignee.name for task in tasks]
            why = "；".join(dict.fromkeys(task.why for task in tasks if task.why))
            due_times = [task.due_at for task in tasks if task.due_at is not None]
            due = local_time(min(due_times)) if due_times else ""
            overdue = any(task.overdue for task in tasks)
        else:
            people = list(deciders.get(node.id, []))
            why = "；".join(whys.get(node.id, []))
            due, overdue = "", False
        if not why:
            if isinstance(node, ApprovalNode):
                why = _rule_text(node.assignees)
            elif isinstance(node, TaskNode):
                why = _rule_text(node.owner)
        kind = (
            "approval" if isinstance(node, ApprovalNode) else "end" if isinstance(node, EndNode) else "stage"
        )
        if isinstance(node, TaskNode) and node.purpose == TaskPurpose.SUMMARY:
            kind = "summary"
        steps.append(
            StepView(
                node_id=node.id,
                title=node.title or node.id,
                kind=kind,
                state=state,
                people=people,
                why=why,
                due=due,
                overdue=overdue,
                condition=_readable(condition, labels or {}),
            )
        )
    return steps


# -- the execution record -------------------------------------------------------------------


class RecordRow(_View, frozen=True, kw_only=True):
    """One row of the execution record (流程执行记录表)."""

    stage: str
    owner: str
    planned: str
    actual: str
    result: str
    late: str
    note: str
    done: bool


def execution_record(detail: InstanceDetail) -> list[RecordRow]:
    """Finished stages (planned and actual completion, result, exception note), then open ones."""
    rows = []
    for entry in detail.timeline:
        if entry.kind not in ("stage_completed", "summary_submitted"):
            continue
        late = float(entry.data.get("late_hours") or 0)
        rows.append(
            RecordRow(
                stage=entry.node_title or entry.node_id or "",
                owner=entry.actor.name if entry.actor else "",
                planned=local_time(entry.data.get("planned")),
                actual=local_time(entry.at),
                result=str(
                    entry.data.get("result")
                    or ("" if entry.kind == "stage_completed" else _("Report submitted"))
                ),
                late=_("{n} working hours late").format(n=late) if late > 0 else _("On time"),
                note=str(entry.data.get("note") or ""),
                done=True,
            )
        )
    for task in detail.tasks:
        if task.kind in ("stage", "summary"):
            rows.append(
                RecordRow(
                    stage=task.title,
                    owner=task.assignee.name,
                    planned=local_time(task.due_at),
                    actual="",
                    result=_("In progress"),
                    late=_("Overdue") if task.overdue else "",
                    note="",
                    done=False,
                )
            )
    return rows


# -- the timeline ---------------------------------------------------------------------------


def _timeline_label(kind: str, data: Mapping[str, Any]) -> tuple[str, str, bool]:
    """(label, tone, system) for an event kind; "" hides the event."""
    people = {
        "created": (_("Created the request"), ""),
        "submit": (_("Submitted for approval"), ""),
        "resubmit": (_("Resubmitted"), ""),
        "data_updated": (_("Changed the form"), ""),
        "approve": (_("Approved"), "ok"),
        "reject": (_("Rejected"), "err"),
        "return": (_("Returned for more information"), "warn"),
        "transfer": (_("Transferred the task"), ""),
        "add_signer": (_("Added signers"), ""),
        "withdraw": (_("Withdrew the request"), "warn"),
        "urge": (_("Urged the approvers"), ""),
        "mark_urgent": (_("Marked the request urgent"), "warn"),
        "comment": (_("Commented"), ""),
        "progress": (_("Recorded progress"), "ok"),
        "change_request": (_("Requested a change"), "warn"),
        "change_applied": (_("The change was approved and applied"), "ok"),
        "change_rejected": (_("The change was not approved"), "err"),
        "summary": (_("Submitted the summary report"), "ok"),
        "plugin_retried": (_("Retried the failed step"), "warn"),
    }
    if kind in people:
        label, tone = people[kind]
        return label, tone, False
    system = {
        "task_created": _("Waiting for {name}").format(name=data.get("assignee_name", "")),
        "node_skipped": _("Step skipped"),
        "auto_approved": _("Approved automatically"),
        "cc_sent": _("Copied to {n} people").format(n=len(data.get("recipients") or [])),
        "escalated": _("Escalated: the deadline passed"),
        "overdue": _("The deadline passed"),
        "status_changed": _status_change(data),
        "plugin_continued": _("Step completed"),
        "plugin_tasks": _("The step asked for approval"),
        "plugin_timer": _("The step waits until a set time"),
        "plugin_timer_fired": _("The wait is over"),
        "plugin_waiting": _("Waiting for the other system to call back"),
        "wait_over": _("The wait is over"),
    }
    if kind == "stage_completed" and float(data.get("late_hours") or 0) > 0:
        return _("Stage finished {n} working hours late").format(n=data["late_hours"]), "warn", True
    if kind == "plugin_result":  # the service's own row of the same result carries no output: hidden
        output = data.get("output")
        if not isinstance(output, Mapping):
            return "", "", True
        if "skipped_by" in output:
            return _("An admin skipped the failed step"), "warn", True
        return {
            "reject": (_("The step rejected the request"), "err", True),
            "retry": (_("The step was decided again"), "", True),
        }.get(str(data.get("outcome")), (_("Step completed"), "ok", True))
    failures = {
        "plugin_rejected": _("The step rejected the request"),
        "plugin_failed": _("The step failed; it is tried again"),
        "plugin_incident": _("The step failed for good: an admin has to retry or skip it"),
    }
    if kind in failures:
        return failures[kind], "err", True
    label = system.get(kind, "")
    tone = "err" if kind in ("escalated", "overdue") else "ok" if kind == "plugin_continued" else ""
    return label, tone, True


def _status_change(data: Mapping[str, Any]) -> str:
    try:
        before = status_label(str(data.get("from")), current_locale())
        after = status_label(str(data.get("to")), current_locale())
    except ValueError:
        return ""
    return _("Status: {before} → {after}").format(before=before, after=after)


def _entry_lines(entry: TimelineEntry, labels: Mapping[str, str]) -> list[str]:
    data = entry.data
    lines = []
    for key in ("comment", "note", "text", "reason"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            lines.append(value.strip())
    if entry.kind == "task_created":
        why, due = data.get("why"), local_time(data.get("due_at"))
        if why:
            lines.append(_("Why: {why}").format(why=why))
        if due:
            lines.append(_("Due {time}").format(time=due))
    if entry.kind == "progress" and data.get("result"):
        lines.insert(0, _("Result: {result}").format(result=data["result"]))
    if entry.kind == "summary":
        if data.get("actual_spend") not in (None, ""):
            lines.append(_("Actual spend: {amount} yuan").format(amount=_money(data["actual_spend"])))
        if data.get("results"):
            lines.append(_("Results: {text}").format(text=data["results"]))
        if data.get("problems"):
            lines.append(_("Problems: {text}").format(text=data["problems"]))
    diff = data.get("diff") if entry.kind in ("change_request", "change_applied", "data_updated") else None
    if entry.kind == "change_request" and isinstance(data.get("changes"), dict):
        diff = {key: {"after": value} for key, value in data["changes"].items()}
    if isinstance(diff, dict):
        for key, change in diff.items():
            if not isinstance(change, dict):
                continue
            name = labels.get(key, key)
            if "before" in change:
                before, after = _short(change.get("before")), _short(change.get("after"))
                lines.append(_("{field}: {before} → {after}").format(field=name, before=before, after=after))
            else:
                lines.append(_("{field} → {after}").format(field=name, after=_short(change.get("after"))))
    return lines


def _short(value: Any) -> str:
    if value is None or value == "":
        return "—"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:79] + "…"


def _money(value: Any) -> str:
    try:
        return f"{Decimal(str(value)):,.2f}"
    except (InvalidOperation, ValueError):
        return str(value)


def timeline(detail: InstanceDetail, labels: Mapping[str, str]) -> list[TimelineItem]:
    """Every event worth reading, oldest first; a decision says how long its step waited."""
    opened: dict[str, dt.datetime] = {}
    items = []
    for entry in detail.timeline:
        if entry.kind == "task_created" and entry.node_id:
            opened.setdefault(entry.node_id, entry.at)
        label, tone, system = _timeline_label(entry.kind, entry.data)
        if not label:
            continue
        took = ""
        if entry.kind in _DECISIONS and entry.node_id in opened:
            took = duration((entry.at - opened[entry.node_id]).total_seconds())
            if entry.kind != "transfer":
                opened.pop(entry.node_id, None)
        uids = entry.data.get("attachments") if entry.kind in ("progress", "summary") else None
        files = [
            FileLink(id=uid, name=_("Photo {n}").format(n=index), image=True)
            for index, uid in enumerate(uids or [], start=1)
            if isinstance(uid, str)
        ]
        items.append(
            TimelineItem(
                at=local_time(entry.at),
                actor=entry.actor.name if entry.actor else "",
                label=label,
                step=entry.node_title or "",
                lines=_entry_lines(entry, labels),
                took=took,
                system=system,
                tone=tone,
                files=files,
            )
        )
    return items


def return_note(detail: InstanceDetail, labels: Mapping[str, str]) -> ReturnNote | None:
    """The approver's note of the latest return, while the request waits for the applicant."""
    return _return_note(detail.status, detail.timeline, labels)


def _return_note(
    status: str, events: Sequence[TimelineEntry], labels: Mapping[str, str]
) -> ReturnNote | None:
    if status != Status.RETURNED:
        return None
    entry = next((e for e in reversed(events) if e.kind == "return"), None)
    if entry is None:
        return None
    note = str(entry.data.get("note", ""))
    fields = [key for key, label in labels.items() if label and label in note]
    return ReturnNote(
        actor=entry.actor.name if entry.actor else "", at=local_time(entry.at), note=note, fields=fields
    )


# -- form data for reading ------------------------------------------------------------------


def field_labels(schema: FormSchema) -> dict[str, str]:
    """Top-level input field key -> label in the reader's language."""
    locale = current_locale()
    return {
        field.key: field.label.get(locale)
        for field in m.value_fields(schema)
        if not isinstance(field, m.ComputedField)
    }


def display_values(
    schema: FormSchema, data: Mapping[str, Any], people: Mapping[str, str], departments: Mapping[str, str]
) -> dict[str, Any]:
    """Stored data with person and department ids replaced by names, for read-only display."""

    def shown(field: Any, value: Any) -> Any:
        names = people if isinstance(field, m.PersonField) else departments
        if not isinstance(field, m.PersonField | m.DepartmentField) or value is None:
            return value
        if isinstance(value, list):
            return [names.get(str(v), str(v)) for v in value]
        return names.get(str(value), str(value))

    values = dict(data)
    for field in m.value_fields(schema):
        value = values.get(field.key)
        if isinstance(field, m.DetailTableField) and isinstance(value, list):
            columns = {column.key: column for column in field.columns}
            values[field.key] = [
                {key: shown(columns.get(key), cell) for key, cell in row.items()}
                if isinstance(row, dict)
                else row
                for row in value
            ]
        elif field.key in values:
            values[field.key] = shown(field, value)
    return values


def attachments_of(schema: FormSchema, data: Mapping[str, Any]) -> list[FileLink]:
    """Every uploaded file the (masked) data names, in form order."""
    files: list[FileLink] = []

    def collect(value: Any) -> None:
        for item in value if isinstance(value, list) else []:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                name = str(item.get("name", ""))
                kind = str(item.get("content_type", ""))
                image = kind.startswith("image/") or name.lower().endswith((".jpg", ".jpeg", ".png", ".gif"))
                size = item.get("size") if isinstance(item.get("size"), int) else None
                files.append(FileLink(id=item["id"], name=name, size=size, image=image))

    for field in m.value_fields(schema):
        value = data.get(field.key)
        if isinstance(field, m.AttachmentField):
            collect(value)
        elif isinstance(field, m.DetailTableField) and isinstance(value, list):
            for row in value:
                for column in field.columns:
                    if isinstance(column, m.AttachmentField) and isinstance(row, dict):
                        collect(row.get(column.key))
    return files


# -- pages ----------------------------------------------------------------------------------


@get("/my-requests", opt=needs(Permission.PROCESS_START))
async def my_requests(request: AnyRequest, tab: FromQuery[str] = "all", page: PageNo = 1) -> Template:
    """我的申请: the caller's requests by status, with where each one is and who holds it."""
    principal, now, locale = principal_of(request), request_now(request), current_locale()
    tab = tab if tab in MY_TABS else "all"
    listed = await service.list_instances(
        principal, statuses=MY_TABS[tab], page=page, page_size=PAGE_SIZE, locale=locale
    )
    rows, total = listed.items, listed.total
    progress = await request_progress(
        principal, [row.id for row in rows if row.status != Status.DRAFT], now, locale
    )
    versions = _Versions(now)
    shown = [await _request_row(row, progress.get(row.id), versions) for row in rows]
    return Template(
        "work/my_requests.html",
        context={
            "section": "my-requests",
            "tab": tab,
            "rows": shown,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // PAGE_SIZE)),
            "nav_counts": await nav_counts_for(request),
            "flash": _done_message(request.query_params.get("done", "")),
        },
    )


async def _request_row(row: InstanceRow, progress: RequestProgress | None, versions: _Versions) -> RequestRow:
    """A row of "my requests": where it is, who holds it, what the applicant may do from the list
    (the same actions as on the request's page: `runtime.service.detail`)."""
    status = Status(row.status)
    if status is Status.DRAFT:
        return RequestRow(
            row=row,
            holders=[],
            steps=[],
            actions=["edit"],
            return_note=None,
            updated=local_time(row.updated_at),
        )
    tasks = progress.tasks if progress else []
    events = progress.steps if progress else []
    graph = await versions.graph(row.template, row.template_version)
    actions: list[str] = []
    if status is Status.RETURNED:
        actions.append("edit")
    if status in (Status.IN_APPROVAL, Status.RETURNED):
        actions.append("withdraw")
    if status is Status.IN_APPROVAL and tasks:
        actions.append("urge")
    return RequestRow(
        row=row,
        holders=list(dict.fromkeys(task.assignee.name for task in tasks)),
        steps=_steps(graph, status, row.submitted_at is not None, row.initiator.name, events, tasks),
        actions=actions,
        return_note=_return_note(row.status, events, {}),
        updated=local_time(row.updated_at),
    )


@get("/inbox", opt=needs(Permission.TASK_ACT))
async def inbox(
    request: AnyRequest,
    tab: FromQuery[str] = "todo",
    template: FromQuery[str] = "",
    applicant: FromQuery[str] = "",
    overdue: FromQuery[str] = "",
    page: PageNo = 1,
) -> Template:
    """待办 / 已办 / 抄送: urgent and overdue first, with filters and batch approval."""
    return await _inbox_page(request, tab, template, applicant, overdue == "true", page)


async def _inbox_page(
    request: AnyRequest,
    tab: str,
    template: str,
    applicant: str,
    overdue: bool,
    page: int,
    results: list[tuple[str, str, bool]] | None = None,
) -> Template:
    principal, now, locale = principal_of(request), request_now(request), current_locale()
    tab = tab if tab in INBOX_TABS else "todo"
    names = {
        t.key: (t.name_en if locale == "en" and t.name_en else t.name_zh) for t in await list_templates(now)
    }
    rows: list[InboxRow] = []
    copies: list[CopyRow] = []
    templates: dict[str, str] = {}
    applicants: dict[str, str] = {}
    if tab == "cc":
        copied = await list_copies(principal, page=page, page_size=PAGE_SIZE, locale=locale)
        copies, total = copied.items, copied.total
    else:
        done = tab == "done"
        facets = await inbox_facets(principal, now, done=done)
        templates = {key: names.get(key, key) for key in facets.templates}
        applicants = {str(person.id): person.name for person in facets.applicants}
        listed = await service.list_tasks(
            principal,
            now,
            done=done,
            template=template,
            applicant=int(applicant) if applicant.isdigit() else (-1 if applicant else None),
            overdue=overdue and not done,
            page=page,
            page_size=PAGE_SIZE,
            locale=locale,
        )
        total = listed.total
        rows = [
            InboxRow(
                task=task,
                template_name=names.get(task.template, task.template),
                due=local_time(task.due_at),
                created=local_time(task.created_at),
                closed=local_time(task.closed_at),
                outcome=_outcome_label(task.outcome),
                kind_name=_kind_label(task.kind),
                batchable=task.kind == "approval" and task.status == "open",
            )
            for task in listed.items
        ]
    filters = {"tab": tab, "template": template, "applicant": applicant, "overdue": "true" if overdue else ""}
    return Template(
        "work/inbox.html",
        context={
            "section": "inbox",
            "tab": tab,
            "rows": rows,
            "copies": copies,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // PAGE_SIZE)),
            "templates": templates,
            "applicants": applicants,
            "filters": filters,
            "query": lambda **changes: urlencode({k: v for k, v in {**filters, **changes}.items() if v}),
            "results": results,
            "local_time": local_time,
            "nav_counts": await nav_counts_for(request),
        },
    )


@get("/instances/{instance_id:int}", opt=needs(Permission.PROCESS_VIEW))
async def instance_page(request: AnyRequest, instance_id: RowId, done: FromQuery[str] = "") -> Template:
    """A request: its form through the viewer's mask, the flow, the timeline, what they may do."""
    return await _instance_page(request, instance_id, flash=_done_message(done))


async def _instance_page(
    request: AnyRequest, instance_id: int, *, flash: str = "", problem: Problem | None = None
) -> Template:
    context = await _instance_context(request, await _detail(request, instance_id))
    return Template(
        "work/instance.html",
        context={**context, "flash": flash, "problem": problem, "nav_counts": await nav_counts_for(request)},
        status_code=problem.status if problem else 200,
    )


async def _instance_context(request: AnyRequest, detail: InstanceDetail) -> dict[str, Any]:
    """What the request's page and its print view show, as this viewer may see it."""
    principal = principal_of(request)
    versions = _Versions(request_now(request))
    version = await versions.get(detail.template, detail.template_version)
    schema, form = compiled(version)
    found = await directory()
    people = {p["id"]: p["label"] for p in found["people"]}
    departments = {d["id"]: d["label"] for d in found["departments"]}
    checked = form.validate(detail.data, validation_context(principal), mode="draft")
    labels = field_labels(schema)
    mine = [task for task in detail.tasks if task.assignee.id == principal.id]
    graph = await versions.graph(detail.template, detail.template_version)
    return {
        "section": "my-requests" if detail.initiator.id == principal.id else "inbox",
        "detail": detail,
        "schema": schema,
        "values": display_values(schema, detail.data, people, departments),
        "errors": {},
        "state": visibility(checked),
        "access": detail.field_access,
        "readonly": True,
        "directory": found,
        "steps": flow_steps(graph, detail, labels),
        "record": execution_record(detail),
        "timeline": timeline(detail, labels),
        "files": attachments_of(schema, detail.data),
        "decisions": [task for task in mine if task.kind in ("approval", "change_review")],
        "stages": [task for task in mine if task.kind == "stage"],
        "summary_task": next((task for task in mine if task.kind == "summary"), None),
        "returned_note": return_note(detail, labels),
        "labels": labels,
        "people": found["people"],
        "me": str(principal.id),
        "submitted": local_time(detail.submitted_at),
        "local_time": local_time,
    }


@get("/instances/{instance_id:int}/print", opt=needs(Permission.PROCESS_VIEW))
async def print_page(request: AnyRequest, instance_id: RowId) -> Template:
    """The approval record on paper: the form, every opinion with name and time, the files."""
    context = await _instance_context(request, await _detail(request, instance_id))
    return Template("work/print.html", context={**context, "printed": local_time(request_now(request))})


@get("/instances/{instance_id:int}/edit", opt=needs(Permission.PROCESS_START))
async def edit_page(request: AnyRequest, instance_id: RowId, done: FromQuery[str] = "") -> Response[Any]:
    """A draft or a returned request in its form again, the approver's note on top."""
    detail = await _detail(request, instance_id)
    if "update_data" not in detail.actions:
        return Redirect(f"/instances/{instance_id}", status_code=303)
    return await _edit_form(request, detail, detail.data, notice=_done_message(done))


async def _edit_form(
    request: AnyRequest,
    detail: InstanceDetail,
    values: dict[str, Any],
    *,
    notice: str = "",
    problem: Problem | None = None,
) -> Template:
    version = await _Versions(request_now(request)).get(detail.template, detail.template_version)
    schema, _form = compiled(version)
    labels = field_labels(schema)
    note = return_note(detail, labels)
    errors = problem.errors if problem else None
    if errors is None and note is not None:
        errors = {key: [_("The approver asked for this field to be fixed.")] for key in note.fields}
    return await form_template(
        request,
        version,
        values,
        errors=errors or {},
        extra={
            "section": "my-requests",
            "instance": detail,
            "returned_note": note,
            "notice": notice,
            "highlight_only": problem is None,
            "problem": problem.message if problem and not problem.errors else "",
        },
        status_code=problem.status if problem else 200,
    )


# -- the form's commands --------------------------------------------------------------------


async def _published_now(request: AnyRequest, key: str) -> PublishedVersion:
    return await published_version(key, request_now(request))


async def _new_request(request: AnyRequest, key: str, submit: bool) -> Response[Any]:
    version = await _published_now(request, key)
    data = await posted_data(request, version)
    body = CreateRequest(template=key, data=data, submit=submit)
    try:
        result = await service.create_instance(caller_of(request), body, request_now(request))
    except (ServiceError, FlowError) as exc:
        problem = problem_of(exc)
        if problem is None:
            raise
        return await form_template(
            request,
            version,
            data,
            errors=problem.errors,
            extra={"problem": "" if problem.errors else problem.message},
            status_code=problem.status,
        )
    target = f"/instances/{result.id}?done=submitted" if submit else f"/instances/{result.id}/edit?done=saved"
    return Redirect(target, status_code=303)


@post("/process-center/{key:str}/draft", opt=needs(Permission.PROCESS_START), status_code=200)
async def new_draft(request: AnyRequest, key: FromPath[str]) -> Response[Any]:
    """保存草稿: a new draft (checked as a draft: types and formats), then its own edit page."""
    return await _new_request(request, key, submit=False)


@post("/process-center/{key:str}/submit", opt=needs(Permission.PROCESS_START), status_code=200)
async def new_submission(request: AnyRequest, key: FromPath[str]) -> Response[Any]:
    """提交审批: a new request, fully checked and submitted; errors come back beside the fields."""
    return await _new_request(request, key, submit=True)


def _not_yours_or_not_now(request: AnyRequest, detail: InstanceDetail) -> Problem:
    """Why the applicant's command is refused before it is sent: not the applicant (403), or the
    request has moved on since the page was loaded (409)."""
    if detail.initiator.id != principal_of(request).id:
        return Problem(403, _("You may not do this on this request."))
    return Problem(409, _("This request can no longer be changed."), reload=True)


async def _edit_command(
    request: AnyRequest,
    instance_id: int,
    command: Callable[[dict[str, Any]], Awaitable[CommandResult]],
    target: str,
) -> Response[Any]:
    detail = await _detail(request, instance_id)
    if "update_data" not in detail.actions:
        return await _instance_page(request, instance_id, problem=_not_yours_or_not_now(request, detail))
    version = await _Versions(request_now(request)).get(detail.template, detail.template_version)
    data = await posted_data(request, version)
    try:
        await command(data)
    except (ServiceError, FlowError) as exc:
        problem = problem_of(exc)
        if problem is None:
            raise
        return await _edit_form(request, detail, data, problem=problem)
    return Redirect(target, status_code=303)


@post("/instances/{instance_id:int}/draft", opt=needs(Permission.PROCESS_START), status_code=200)
async def save_draft(request: AnyRequest, instance_id: RowId) -> Response[Any]:
    """Save the data of a draft or a returned request (checked as a draft)."""
    caller, now = caller_of(request), request_now(request)
    return await _edit_command(
        request,
        instance_id,
        lambda data: service.update_data(caller, instance_id, DataUpdate(data=data), now),
        f"/instances/{instance_id}/edit?done=saved",
    )


@post("/instances/{instance_id:int}/submit", opt=needs(Permission.PROCESS_START), status_code=200)
async def submit_edited(request: AnyRequest, instance_id: RowId) -> Response[Any]:
    """Submit a draft, or resubmit a returned request, with the posted data."""
    caller, now = caller_of(request), request_now(request)
    return await _edit_command(
        request,
        instance_id,
        lambda data: service.submit(caller, instance_id, SubmitRequest(data=data), now),
        f"/instances/{instance_id}?done=submitted",
    )


# -- actions on a request -------------------------------------------------------------------


async def _act(
    request: AnyRequest,
    instance_id: int,
    done: str,
    command: Callable[[], Awaitable[CommandResult]],
) -> Response[Any]:
    """Run one command; on success go to the request's page, else say why in place."""
    try:
        result = await command()
    except (ServiceError, FlowError) as exc:
        problem = problem_of(exc)
        if problem is None:
            raise
        if request.headers.get("hx-request"):
            return _problem_response(request, problem)
        if problem.status == 404:
            raise
        return await _instance_page(request, instance_id, problem=problem)
    target = f"/instances/{result.id}?done={done}"
    if request.headers.get("hx-request"):
        return ClientRedirect(target)
    return Redirect(target, status_code=303)


def _text(form: FormMultiDict, name: str, limit: int = 2_000) -> str:
    value = form.get(name)
    return str(value).strip()[:limit] if isinstance(value, str) else ""


def _uids(form: FormMultiDict, name: str = "attachments") -> list[str]:
    """Upload ids from the upload widget's hidden JSON list."""
    try:
        items = json.loads(_text(form, name, 100_000) or "[]")
    except ValueError:
        return []
    uids = [item.get("id") if isinstance(item, dict) else item for item in items if item]
    return [uid for uid in uids if isinstance(uid, str) and re.fullmatch(r"[0-9a-f]{32}", uid)]


@post("/instances/{instance_id:int}/withdraw", opt=needs(Permission.PROCESS_START), status_code=200)
async def withdraw(request: AnyRequest, instance_id: RowId) -> Response[Any]:
    form, caller, now = await request.form(), caller_of(request), request_now(request)
    body = NoteRequest(note=_text(form, "note"))
    return await _act(
        request, instance_id, "withdraw", lambda: service.withdraw(caller, instance_id, body, now)
    )


@post("/instances/{instance_id:int}/urge", opt=needs(Permission.PROCESS_START), status_code=200)
async def urge(request: AnyRequest, instance_id: RowId) -> Response[Any]:
    form, caller, now = await request.form(), caller_of(request), request_now(request)
    body = NoteRequest(note=_text(form, "note"))
    return await _act(request, instance_id, "urge", lambda: service.urge(caller, instance_id, body, now))


@post("/instances/{instance_id:int}/mark-urgent", opt=needs(Permission.PROCESS_START), status_code=200)
async def mark_urgent(request: AnyRequest, instance_id: RowId) -> Response[Any]:
    caller, now = caller_of(request), request_now(request)
    return await _act(
        request, instance_id, "mark_urgent", lambda: service.mark_urgent(caller, instance_id, now)
    )


@post("/instances/{instance_id:int}/comment", opt=needs(Permission.PROCESS_VIEW), status_code=200)
async def comment(request: AnyRequest, instance_id: RowId) -> Response[Any]:
    form, caller, now = await request.form(), caller_of(request), request_now(request)
    text = _text(form, "text")
    if not text:
        problem = Problem(422, _("Write a comment first."), {"text": [_("Write a comment first.")]})
        if request.headers.get("hx-request"):
            return _problem_response(request, problem)
        return await _instance_page(request, instance_id, problem=problem)
    body = CommentRequest(text=text)
    return await _act(
        request, instance_id, "comment", lambda: service.comment(caller, instance_id, body, now)
    )


@post("/instances/{instance_id:int}/progress", opt=needs(Permission.PROCESS_START), status_code=200)
async def progress(request: AnyRequest, instance_id: RowId) -> Response[Any]:
    """A work stage done: its result, exception note and photos (the execution record)."""
    form, caller, now = await request.form(), caller_of(request), request_now(request)
    task = _text(form, "task_id")
    body = ProgressRequest(
        task_id=int(task) if task.isdigit() else None,
        result=_text(form, "result", 200) or "done",
        note=_text(form, "note"),
        attachments=_uids(form)[:50],
    )
    return await _act(
        request,
        instance_id,
        "progress",
        lambda: service.record_progress(caller, instance_id, body, now),
    )


@post("/instances/{instance_id:int}/summary", opt=needs(Permission.PROCESS_START), status_code=200)
async def summary(request: AnyRequest, instance_id: RowId) -> Response[Any]:
    """The summary report (actual spend, results, problems, files); the request is archived."""
    form, caller, now = await request.form(), caller_of(request), request_now(request)
    spend_text = _text(form, "actual_spend").replace(",", "")
    spend: Decimal | None = None
    if spend_text:
        try:
            spend = Decimal(spend_text)
        except InvalidOperation:
            spend = None
        if spend is None or not _is_amount(spend):
            message = _("Enter the actual spend as an amount in yuan, e.g. 186000.00.")
            problem = Problem(422, message, {"actual_spend": [message]})
            if request.headers.get("hx-request"):
                return _problem_response(request, problem)
            return await _instance_page(request, instance_id, problem=problem)
    body = SummaryRequest(
        actual_spend=spend,
        results=_text(form, "results"),
        problems=_text(form, "problems"),
        note=_text(form, "note"),
        attachments=_uids(form)[:50],
    )
    return await _act(
        request,
        instance_id,
        "summary",
        lambda: service.submit_summary(caller, instance_id, body, now),
    )


MAX_AMOUNT = Decimal("1e12")
"""Yuan: an amount at or above this is a typing mistake, not a spend."""


def _is_amount(value: Decimal) -> bool:
    """At least 0, below `MAX_AMOUNT`, at most two decimals (fen)."""
    exponent = value.as_tuple().exponent
    return value.is_finite() and isinstance(exponent, int) and exponent >= -2 and 0 <= value < MAX_AMOUNT


@get("/instances/{instance_id:int}/change", opt=needs(Permission.PROCESS_START))
async def change_page(request: AnyRequest, instance_id: RowId) -> Response[Any]:
    """流程变更申请: the form with today's values; what is changed goes for approval again."""
    detail = await _detail(request, instance_id)
    if "change_request" not in detail.actions:
        return Redirect(f"/instances/{instance_id}", status_code=303)
    return await _change_form(request, detail, detail.data, "")


async def _change_form(
    request: AnyRequest,
    detail: InstanceDetail,
    values: dict[str, Any],
    reason: str,
    problem: Problem | None = None,
    diff: list[tuple[str, str, str]] | None = None,
) -> Template:
    version = await _Versions(request_now(request)).get(detail.template, detail.template_version)
    schema, form = compiled(version)
    checked = form.validate(values, validation_context(principal_of(request)), mode="draft")
    values = shown_values(schema, values, checked)  # computed fields and totals as they stand
    return Template(
        "work/change.html",
        context={
            "section": "my-requests",
            "detail": detail,
            "version": version,
            "schema": schema,
            "values": values,
            "errors": problem.errors if problem else {},
            "state": visibility(checked),
            "access": {key: value for key, value in detail.field_access.items() if value == "hidden"},
            "readonly": False,
            "directory": await directory(),
            "reason": reason,
            "problem": problem,
            "diff": diff or [],
        },
        status_code=problem.status if problem else 200,
    )


def changed_fields(schema: FormSchema, before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Input fields whose cleaned value differs (computed fields follow by themselves)."""
    changes = {}
    for field in m.value_fields(schema):
        if isinstance(field, m.ComputedField) or field.key not in after:
            continue
        if _comparable(after.get(field.key)) != _comparable(before.get(field.key)):
            changes[field.key] = after.get(field.key)
    return changes


def _comparable(value: Any) -> Any:
    return json.loads(json.dumps(msgspec.to_builtins(value), sort_keys=True, default=str)) if value else None


@post("/instances/{instance_id:int}/change", opt=needs(Permission.PROCESS_START), status_code=200)
async def change_request(request: AnyRequest, instance_id: RowId) -> Response[Any]:
    """Send the changed fields and the reason for approval; "preview" shows the diff first."""
    detail = await _detail(request, instance_id)
    if "change_request" not in detail.actions:
        return await _instance_page(request, instance_id, problem=_not_yours_or_not_now(request, detail))
    version = await _Versions(request_now(request)).get(detail.template, detail.template_version)
    schema, form_ = compiled(version)
    form = await request.form()
    posted = decode_form(schema, form.multi_items())
    reason = _text(form, "reason")
    cleaned = form_.validate(posted, validation_context(principal_of(request)), mode="draft")
    changes = changed_fields(schema, detail.data, msgspec.to_builtins(cleaned.data))
    labels = field_labels(schema)
    diff = [
        (labels.get(key, key), _short(detail.data.get(key)), _short(value)) for key, value in changes.items()
    ]
    if not changes:
        return await _change_form(request, detail, posted, reason, Problem(422, _("Nothing was changed.")))
    if not reason:
        message = _("Say why the change is needed.")
        return await _change_form(
            request, detail, posted, reason, Problem(422, message, {"reason": [message]}), diff
        )
    if form.get("preview"):
        return await _change_form(request, detail, posted, reason, None, diff)
    caller, now = caller_of(request), request_now(request)
    body = ChangeRequestBody(changes={key: posted.get(key) for key in changes}, reason=reason)
    try:
        await service.request_change(caller, instance_id, body, now)
    except (ServiceError, FlowError) as exc:
        problem = problem_of(exc)
        if problem is None:
            raise
        return await _change_form(request, detail, posted, reason, problem, diff)
    return Redirect(f"/instances/{instance_id}?done=change_request", status_code=303)


# -- actions on tasks -----------------------------------------------------------------------


def _task_request(form: FormMultiDict, labels: Mapping[str, str]) -> TaskActionRequest | Problem:
    action_text = _text(form, "action")
    try:
        action = TaskAction(action_text)
    except ValueError:
        return Problem(422, _("Choose what to do."))
    words = _text(form, "note")
    if action is TaskAction.RETURN:
        fix = [labels[key] for key in form.getall("fix", []) if key in labels]
        if fix and words:
            words = (words + "\n" + _("Fields to fix: {fields}").format(fields="、".join(fix)))[:2_000]
        return TaskActionRequest(action=action, note=words)
    if action is TaskAction.TRANSFER:
        to = _text(form, "to")
        return TaskActionRequest(action=action, note=words, to=int(to) if to.isdigit() else None)
    if action is TaskAction.ADD_SIGNER:
        people = [int(p) for p in form.getall("people", []) if isinstance(p, str) and p.isdigit()][:50]
        position_text = _text(form, "position")
        position = SignerPosition(position_text) if position_text in set(SignerPosition) else None
        return TaskActionRequest(action=action, note=words, people=people, position=position)
    return TaskActionRequest(action=action, comment=words)


@post("/tasks/{task_id:int}/act", opt=needs(Permission.TASK_ACT), status_code=200)
async def act_on_task(request: AnyRequest, task_id: RowId) -> Response[Any]:
    """approve / reject / return (a note is required) / transfer / add signers, on one task."""
    form = await request.form()
    instance_text = _text(form, "instance")
    instance_id = int(instance_text) if instance_text.isdigit() else 0
    labels: dict[str, str] = {}
    if form.getall("fix", []) and instance_id:
        detail = await _detail(request, instance_id)
        version = await _Versions(request_now(request)).get(detail.template, detail.template_version)
        labels = field_labels(compiled(version)[0])
    parsed = _task_request(form, labels)
    if isinstance(parsed, Problem):
        if request.headers.get("hx-request") or not instance_id:
            return _problem_response(request, parsed)
        return await _instance_page(request, instance_id, problem=parsed)
    caller, now = caller_of(request), request_now(request)
    return await _act(
        request,
        instance_id,
        str(parsed.action),
        lambda: service.act_on_task(caller, task_id, parsed, now),
    )


@post("/inbox/approve", opt=needs(Permission.TASK_ACT), status_code=200)
async def batch_approve(request: AnyRequest) -> Template:
    """批量同意: each chosen task is approved on its own; the results are listed."""
    form = await request.form()
    ids = [int(value) for value in form.getall("task", []) if isinstance(value, str) and value.isdigit()][
        :BATCH_LIMIT
    ]
    caller, now = caller_of(request), request_now(request)
    comment_text = _text(form, "comment")
    known = await _task_names(caller.id, ids)
    results: list[tuple[str, str, bool]] = []
    for task_id in ids:
        name = known.get(task_id, f"#{task_id}")
        try:
            await service.act_on_task(
                caller, task_id, TaskActionRequest(action=TaskAction.APPROVE, comment=comment_text), now
            )
        except (ServiceError, FlowError) as exc:
            problem = problem_of(exc)
            if problem is None:
                raise
            results.append((name, problem.message, False))
        else:
            results.append((name, _("Approved."), True))
    if not ids:
        results.append(("", _("Tick the requests to approve first."), False))
    return await _inbox_page(request, "todo", "", "", False, 1, results=results)


async def _task_names(person_id: int, ids: Sequence[int]) -> dict[int, str]:
    """ "<number> <title>" of the requests of these tasks, to name them in the batch's results
    (the caller's own tasks only: another's task is named by its id)."""
    if not ids:
        return {}
    rows = await Task.select(
        Task.id, Task.instance.number.as_alias("number"), Task.instance.title.as_alias("title")
    ).where(Task.id.is_in(list(ids)) & (Task.assignee == person_id))
    return {row["id"]: f"{row['number']} {row['title']}" for row in rows}


# -- navigation counts and notifications ----------------------------------------------------


@get("/nav-counts", opt=needs(Permission.SIGNED_IN))
async def nav_counts(request: AnyRequest) -> Template:
    """The navigation badges, swapped in out of band by the poller in the page shell."""
    return Template("work/_nav_counts.html", context={"counts": await nav_counts_for(request), "oob": True})


@get("/notifications", opt=needs(Permission.SIGNED_IN))
async def notifications(request: AnyRequest) -> Template:
    """In-app messages, newest first; unread ones stand out."""
    principal = principal_of(request)
    items = await (
        Notification.select()
        .where(Notification.person == principal.id)
        .order_by(Notification.id, ascending=False)
        .limit(NOTIFICATION_LIMIT)
    )
    for item in items:
        item["at"] = local_time(item["created_at"])
    return Template(
        "work/notifications.html",
        context={"section": "notifications", "messages": items, "nav_counts": await nav_counts_for(request)},
    )


@get("/notifications/{notification_id:int}", opt=needs(Permission.SIGNED_IN))
async def open_notification(request: AnyRequest, notification_id: RowId) -> Redirect:
    """Mark one message read and follow its link (only links within this site)."""
    principal = principal_of(request)
    mine = (Notification.id == notification_id) & (Notification.person == principal.id)
    row = await Notification.select(Notification.link).where(mine).first()
    if row is None:
        raise NotFoundException("no such message")
    await Notification.update({Notification.read_at: request_now(request)}).where(
        mine & Notification.read_at.is_null()
    )
    link = str(row["link"] or "")
    return Redirect(link if link.startswith("/") and not link.startswith("//") else "/notifications")


@post("/notifications/read", opt=needs(Permission.SIGNED_IN), status_code=200)
async def read_all(request: AnyRequest) -> Response[Any]:
    principal = principal_of(request)
    await Notification.update({Notification.read_at: request_now(request)}).where(
        (Notification.person == principal.id) & Notification.read_at.is_null()
    )
    if request.headers.get("hx-request"):
        return ClientRedirect("/notifications")
    return Redirect("/notifications", status_code=303)


ROUTES = [
    my_requests,
    inbox,
    instance_page,
    print_page,
    edit_page,
    new_draft,
    new_submission,
    save_draft,
    submit_edited,
    withdraw,
    urge,
    mark_urgent,
    comment,
    progress,
    summary,
    change_page,
    change_request,
    act_on_task,
    batch_approve,
    nav_counts,
    notifications,
    open_notification,
    read_all,
]
