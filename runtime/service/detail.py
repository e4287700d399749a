"""One request as a viewer may see it: data through their field mask, open tasks, the timeline.

Four queries whatever the history's length: the instance (with the visibility clause, so a
request the viewer may not see is simply not found), its open tasks, its event log, and the
names of everyone mentioned. The field mask is the one of the approval step the viewer acts
at, or, once they have acted, of the latest approval step they were given: a field hidden from a
step stays hidden from its approvers, in the form, in the timeline's changes and in its files
(`storage.attachments.may_read` keeps the same rule). Anyone else reads every field read-only;
the initiator edits a draft or a returned request. Sensitive values are masked for everyone but
the initiator and the holders of the field's roles.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import msgspec

from forms import model as m
from forms.permissions import FieldAccess, PermissionMask, hide_derived, mask_for_read
from forms.sensitive import mask_sensitive
from runtime.flow import InstanceState, Status, decode_state
from runtime.flow.graph import ApprovalNode, Node, PluginNode
from runtime.flow.plugins import plugin_approval
from runtime.service import reasons
from runtime.service.definitions import Definition, definition
from runtime.service.effects import TASK_OPEN
from runtime.service.errors import InstanceNotFound
from runtime.service.org_directory import person_names
from runtime.service.pipeline import CHANGE_STEP_TITLE
from runtime.service.views import InstanceDetail, PersonRef, TaskView, TimelineEntry, status_label
from runtime.service.visibility import visible_instances
from storage.access import Principal
from storage.tables import Instance, InstanceEvent, Task

TASK_ACTIONS = ("approve", "reject", "return", "transfer", "add_signer")
STEP_EVENTS = frozenset(
    {
        "task_created",
        "node_entered",
        "node_completed",
        "node_skipped",
        "branch_taken",
        "auto_approved",
        "stage_completed",
        "summary_submitted",
        "plugin_continued",
        "approve",
        "reject",
        "return",
        "transfer",
        "add_signer",
        "progress",
        "summary",
    }
)
"""The events that move a request's steps: what a list row needs to draw its progress."""
_CHANGE_REVIEW_ACTIONS = ["approve", "reject", "transfer"]
_STAGE_ACTIONS = ["transfer"]
_RUNNING = frozenset({Status.IN_APPROVAL, Status.EXECUTING, Status.AWAITING_SUMMARY})


async def instance_detail(
    principal: Principal, instance_id: int, now: dt.datetime, locale: str = "zh-CN"
) -> InstanceDetail:
    row = await (
        Instance.select(
            *Instance.all_columns(exclude=[Instance.template_version]),
            Instance.template_version,
            Instance.template_version.published_at.as_alias("published_at"),
        )
        .where((Instance.id == instance_id) & visible_instances(principal))
        .first()
    )
    if row is None:
        raise InstanceNotFound(instance_id)
    found = await definition(row["template_version"], row["published_at"])
    state = decode_state(row["state"])
    data = msgspec.json.decode(row["data"]) if isinstance(row["data"], str | bytes) else dict(row["data"])
    tasks = await (
        Task.select(
            Task.id,
            Task.node_id,
            Task.title,
            Task.kind,
            Task.assignee,
            Task.created_at,
            Task.due_at,
            Task.reason,
        )
        .where((Task.instance == instance_id) & (Task.status == TASK_OPEN))
        .order_by(Task.id)
        .output(load_json=True)
    )
    events = await (
        InstanceEvent.select(
            InstanceEvent.seq,
            InstanceEvent.at,
            InstanceEvent.kind,
            InstanceEvent.actor_id,
            InstanceEvent.node_id,
            InstanceEvent.data,
        )
        .where(InstanceEvent.instance == instance_id)
        .order_by(InstanceEvent.seq)
        .output(load_json=True)
    )
    names = await person_names(_mentioned(row["initiator"], tasks, events))
    viewer = principal.id
    is_initiator = viewer == row["initiator"]
    nodes = {node.id: node for node in found.flow.nodes} if found.flow else {}
    mine = [task for task in tasks if task["assignee"] == viewer]
    mask = hide_derived(found.schema, _mask(row["status"], is_initiator, mine, _given(viewer, events), nodes))
    shown = mask_for_read(data, mask)
    if not is_initiator:
        shown = mask_sensitive(shown, found.schema, [str(role) for role in principal.roles])
    return InstanceDetail(
        id=row["id"],
        number=row["number"],
        title=row["title"],
        template=found.key,
        template_name=found.name(locale),
        template_version=found.version,
        status=row["status"],
        status_label=status_label(row["status"], locale),
        urgent=row["urgent"],
        current_step=row["current_step"],
        initiator=PersonRef(id=row["initiator"], name=names.get(row["initiator"], "")),
        department_id=row["department_id"],
        created_at=row["created_at"],
        submitted_at=row["submitted_at"],
        updated_at=row["updated_at"],
        closed_at=row["closed_at"],
        row_version=row["row_version"],
        data=shown,
        field_access=_field_access(found, mask),
        change_pending=state.change is not None,
        tasks=[task_view(task, viewer, _deciding(nodes, state), names, now, locale) for task in tasks],
        timeline=[entry_view(event, nodes, names, locale, mask) for event in events],
        actions=_actions(row, state, is_initiator, principal.is_admin(), mine),
    )


def _mentioned(initiator: int, tasks: list[dict[str, Any]], events: list[dict[str, Any]]) -> set[int]:
    ids = {initiator}
    for task in tasks:
        ids.add(task["assignee"])
        ids.update(reasons.people_in(task["reason"] or {}))
    for event in events:
        if event["actor_id"] is not None:
            ids.add(event["actor_id"])
        data = event["data"] or {}
        if isinstance(data.get("assignee"), int):
            ids.add(data["assignee"])
        if isinstance(data.get("reason"), dict):
            ids.update(reasons.people_in(data["reason"]))
    return ids


def _given(viewer: int, events: list[dict[str, Any]]) -> list[str]:
    """The nodes where `viewer` was given a task, latest first (from the `task_created` events)."""
    return [
        event["node_id"]
        for event in reversed(events)
        if event["kind"] == "task_created" and (event["data"] or {}).get("assignee") == viewer
    ]


def _mask(
    status: str,
    is_initiator: bool,
    mine: list[dict[str, Any]],
    given: list[str],
    nodes: Mapping[str, Node],
) -> PermissionMask:
    """The initiator edits a draft or a returned request; an approver reads through the mask
    of the step they act at now, else (not the initiator) of the latest approval step they were
    given; anyone else reads every field."""
    if is_initiator and status in (Status.DRAFT, Status.RETURNED):
        return PermissionMask(default=FieldAccess.EDITABLE)
    for node_id in [task["node_id"] for task in mine] + ([] if is_initiator else given):
        permissions = step_field_permissions(nodes.get(node_id))
        if permissions is not None:
            return PermissionMask(fields=permissions)
    return PermissionMask()


def step_field_permissions(node: Node | None) -> dict[str, FieldAccess] | None:
    """The field permissions a step's approvers read through: an approval step's own, or those in
    a plugin step's config (the finance co-review's `field_permissions`); None for other steps."""
    if isinstance(node, ApprovalNode):
        return {key: FieldAccess(str(access)) for key, access in node.field_permissions.items()}
    if isinstance(node, PluginNode):
        raw = node.config.get("field_permissions")
        if isinstance(raw, dict):
            return {
                str(key): FieldAccess(str(access))
                for key, access in raw.items()
                if str(access) in FieldAccess._value2member_map_
            }
    return None


def _field_access(found: Definition, mask: PermissionMask) -> dict[str, str]:
    access: dict[str, str] = {}
    for field in m.value_fields(found.schema):
        access[field.key] = str(mask.access(field.key))
        if isinstance(field, m.DetailTableField):
            for column in field.columns:
                access[f"{field.key}.{column.key}"] = str(mask.column_access(field.key, column.key))
    return access


def task_view(
    task: dict[str, Any],
    viewer: int,
    nodes: Mapping[str, Node],
    names: Mapping[int, str],
    now: dt.datetime,
    locale: str,
) -> TaskView:
    reason = task["reason"] or {}
    return TaskView(
        id=task["id"],
        node_id=task["node_id"],
        title=task["title"],
        kind=task["kind"],
        assignee=PersonRef(id=task["assignee"], name=names.get(task["assignee"], "")),
        created_at=task["created_at"],
        due_at=task["due_at"],
        overdue=task["due_at"] is not None and task["due_at"] < now,
        reason=reason,
        why=reasons.why(reason, names, locale),
        actions=_task_actions(task, nodes) if task["assignee"] == viewer else [],
    )


def _deciding(nodes: Mapping[str, Node], state: InstanceState) -> Mapping[str, Node]:
    """The nodes as their tasks are decided: a plugin step with open tasks acts as the approval
    step its plugin asked for (its actions, not the plugin node's)."""
    steps = dict(nodes)
    for run in state.runs:
        node = nodes.get(run.node)
        if run.plugin is not None and isinstance(node, PluginNode):
            steps[run.node] = plugin_approval(node, run.plugin)
    return steps


def _task_actions(task: dict[str, Any], nodes: Mapping[str, Node]) -> list[str]:
    if task["kind"] == "change_review":
        return list(_CHANGE_REVIEW_ACTIONS)
    node = nodes.get(task["node_id"])
    if task["kind"] == "approval" and isinstance(node, ApprovalNode):
        allowed = {str(action) for action in node.actions}
        return [action for action in TASK_ACTIONS if action in allowed]
    return list(_STAGE_ACTIONS)


_CHANGED_VALUES = ("diff", "changes")
"""Event data keys holding form values by field key (data_updated, change_request, change_applied)."""


def entry_view(
    event: dict[str, Any],
    nodes: Mapping[str, Node],
    names: Mapping[int, str],
    locale: str,
    mask: PermissionMask | None = None,
) -> TimelineEntry:
    data = dict(event["data"] or {})
    if mask is not None:
        for key in _CHANGED_VALUES:
            if isinstance(data.get(key), dict):
                data[key] = mask_for_read(data[key], mask)
    if isinstance(data.get("assignee"), int):
        data["assignee_name"] = names.get(data["assignee"], "")
    if isinstance(data.get("reason"), dict):
        data["why"] = reasons.why(data["reason"], names, locale)
    actor = event["actor_id"]
    node_id = event["node_id"]
    return TimelineEntry(
        seq=event["seq"],
        at=event["at"],
        kind=event["kind"],
        actor=PersonRef(id=actor, name=names.get(actor, "")) if actor is not None else None,
        node_id=node_id,
        node_title=_node_title(node_id, nodes),
        data=data,
    )


def _node_title(node_id: str | None, nodes: Mapping[str, Node]) -> str | None:
    if node_id is None:
        return None
    node = nodes.get(node_id)
    if node is None:
        return CHANGE_STEP_TITLE if node_id.startswith("@") else node_id
    return node.title or node.id


def _actions(
    row: dict[str, Any], state: InstanceState, is_initiator: bool, is_admin: bool, mine: list[dict[str, Any]]
) -> list[str]:
    """The instance commands the viewer may send now (task actions are on each task)."""
    status = Status(row["status"])
    actions: list[str] = []
    if is_initiator and status in (Status.DRAFT, Status.RETURNED):
        actions += ["update_data", "submit"]
    if is_initiator and status in (Status.IN_APPROVAL, Status.RETURNED):
        actions.append("withdraw")
    if is_initiator and status is Status.IN_APPROVAL and state.tasks:
        actions.append("urge")
    if (is_initiator or is_admin) and status in _RUNNING and not row["urgent"]:
        actions.append("mark_urgent")
    if status is not Status.DRAFT:
        actions.append("comment")
    kinds = {task["kind"] for task in mine}
    if "stage" in kinds:
        actions.append("progress")
    if "summary" in kinds:
        actions.append("summary")
    if is_initiator and status in (Status.EXECUTING, Status.AWAITING_SUMMARY) and state.change is None:
        actions.append("change_request")
    return actions
