"""A timer fired: a task's reminder or overdue action, the end of a wait, or a plugin's timer
(the plugin is then asked again).

A timer that nothing waits on any more (its task was decided, its instance ended) is
ignored, so the scheduler may fire a timer twice or late without harm.
"""

from __future__ import annotations

import msgspec

from runtime.flow._decisions import approve, escalate, reject
from runtime.flow._navigation import enter_again, move_on
from runtime.flow._work import Work
from runtime.flow.effects import TaskKind
from runtime.flow.events import TimerFired, TimerKind
from runtime.flow.graph import OverdueAction, PluginNode, WaitNode
from runtime.flow.state import OpenTask


def fire(w: Work, event: TimerFired) -> bool:
    """Apply the timer; False when nothing waits on it (the step is then a no-op)."""
    for task in w.tasks.values():
        if event.timer_id in task.timers:
            remaining = tuple(t for t in task.timers if t != event.timer_id)
            task = msgspec.structs.replace(task, timers=remaining)
            w.tasks[task.id] = task
            if event.kind == TimerKind.REMINDER:
                w.notify((task.assignee,), "reminder", _about(task))
            else:
                _overdue(w, task)
            return True
    for token in w.tokens.values():
        if token.wait != event.timer_id:
            continue
        node = w.flow.nodes[token.node]
        if isinstance(node, WaitNode):
            w.record("wait_over", node_id=token.node)
            move_on(w, token)
            return True
        if isinstance(node, PluginNode) and token.timer:
            w.record("plugin_timer_fired", node_id=token.node, data={"plugin": node.plugin})
            enter_again(w, token)
            return True
    return False


def _overdue(w: Work, task: OpenTask) -> None:
    w.record("overdue", node_id=task.node, task_id=task.id, data={"assignee": task.assignee})
    node = w.approval_node(task.node)
    if task.kind is not TaskKind.APPROVAL or node is None:
        recipients = (
            (task.assignee,) if task.kind is TaskKind.CHANGE_REVIEW else _pair(task.assignee, w.initiator)
        )
        w.notify(recipients, "overdue", _about(task))
        return
    action = node.sla.overdue_action
    if action == OverdueAction.AUTO_APPROVE:
        w.record("auto_approved", node_id=task.node, task_id=task.id, data={"because": "overdue"})
        approve(w, task, None, "")
    elif action == OverdueAction.AUTO_REJECT:
        reject(w, task, None, "overdue")
    elif action == OverdueAction.ESCALATE_TO_MANAGER and (manager := _manager(w, task)) is not None:
        escalate(w, task, manager)
    else:
        w.notify((task.assignee,), "overdue", _about(task))


def _manager(w: Work, task: OpenTask) -> int | None:
    manager = w.env.org.manager_of(task.assignee)
    if manager is None or any(t.assignee == manager for t in w.open_tasks(task.node)):
        return None
    return manager


def _about(task: OpenTask) -> dict[str, object]:
    return {
        "task_id": task.id,
        "node_id": task.node,
        "due_at": task.due_at,
    }


def _pair(first: int, second: int) -> tuple[int, ...]:
    return (first,) if first == second else (first, second)
