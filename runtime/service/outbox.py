"""Outbox messages: what leaves the database, written in the transaction of the change.

Each row names a dramatiq actor and carries a JSON payload; its `key` is unique, and rows are
inserted with "on conflict do nothing", so a message is queued once however often the same
effect is applied. The relay sends pending rows and the actors are idempotent by key.

    actor "notify"       {"template", "recipients": [person id], "instance_id", "number",
                          "title", "data": {...}}
                         templates: task_assigned (data: task_id (the task table's id),
                         task_key, node_id, task_title, due_at, reason), and the engine's own:
                         cc, reminder, overdue, urge, returned, rejected, withdrawn,
                         cancelled, change_approved, change_rejected
    actor "call_plugin"  {"call_id", "plugin", "node_id", "config", "instance_id", "number"}
"""

from __future__ import annotations

from typing import Any

import msgspec

from runtime.flow.effects import CallPlugin, CreateTask, Notify

NOTIFY = "notify"
CALL_PLUGIN = "call_plugin"


class InstanceRef(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    number: str
    title: str


def task_assigned(instance: InstanceRef, effect: CreateTask, task_row_id: int) -> tuple[str, str, Any]:
    """(key, actor, payload) of the notification that a new task implies."""
    data = {
        "task_id": task_row_id,
        "task_key": effect.task_id,
        "node_id": effect.node_id,
        "task_title": effect.title,
        "due_at": effect.due_at,
        "reason": effect.reason,
    }
    return (
        f"task_assigned:{effect.task_id}",
        NOTIFY,
        _notice(instance, "task_assigned", [effect.assignee], data),
    )


def notification(instance: InstanceRef, effect: Notify) -> tuple[str, str, Any]:
    return effect.key, NOTIFY, _notice(instance, effect.template, list(effect.recipients), effect.payload)


def plugin_call(instance: InstanceRef, effect: CallPlugin) -> tuple[str, str, Any]:
    payload = {
        "call_id": effect.call_id,
        "plugin": effect.plugin,
        "node_id": effect.node_id,
        "config": effect.config,
        "instance_id": instance.id,
        "number": instance.number,
    }
    return effect.key, CALL_PLUGIN, payload


def _notice(instance: InstanceRef, template: str, recipients: list[int], data: Any) -> dict[str, Any]:
    return {
        "template": template,
        "recipients": recipients,
        "instance_id": instance.id,
        "number": instance.number,
        "title": instance.title,
        "data": data,
    }
