"""The instance lifecycle: statuses, the declared status changes, and which events each accepts.

    draft ──submit──> in_approval ──approved──> executing ──stages done──> awaiting_summary
                        │   ▲  │                                                  │
                 return │   │  └── reject ─> rejected             summary ────────┴─> archived
                        ▼   │ resubmit
                      returned        withdraw -> withdrawn       cancel (admin) -> cancelled

Statuses follow the token positions: an instance is in_approval while any token rests on an
approval or plugin node, executing while tokens rest only on work stages or waits, and
awaiting_summary while only the summary is left. A flow may alternate (an approval after a
stage), hence executing -> in_approval. `TRANSITIONS` and `ACCEPTS` are read by tests, the UI
and the docs; the engine refuses anything they do not list.
"""

from __future__ import annotations

import enum
from typing import Final


class Status(enum.StrEnum):
    DRAFT = "draft"  # 草稿
    IN_APPROVAL = "in_approval"  # 审批中
    RETURNED = "returned"  # 退回补充 (resubmittable)
    EXECUTING = "executing"  # 执行中
    AWAITING_SUMMARY = "awaiting_summary"  # 待总结
    ARCHIVED = "archived"  # 已归档
    REJECTED = "rejected"  # 已驳回 (terminated)
    WITHDRAWN = "withdrawn"  # 已撤回
    CANCELLED = "cancelled"  # 已取消 (by an admin)


LABELS_ZH: Final[dict[Status, str]] = {
    Status.DRAFT: "草稿",
    Status.IN_APPROVAL: "审批中",
    Status.RETURNED: "退回补充",
    Status.EXECUTING: "执行中",
    Status.AWAITING_SUMMARY: "待总结",
    Status.ARCHIVED: "已归档",
    Status.REJECTED: "已驳回",
    Status.WITHDRAWN: "已撤回",
    Status.CANCELLED: "已取消",
}

TERMINAL: Final = frozenset({Status.ARCHIVED, Status.REJECTED, Status.WITHDRAWN, Status.CANCELLED})

_RUNNING_TARGETS = frozenset({Status.IN_APPROVAL, Status.EXECUTING, Status.AWAITING_SUMMARY, Status.ARCHIVED})

TRANSITIONS: Final[dict[Status, frozenset[Status]]] = {
    Status.DRAFT: _RUNNING_TARGETS | {Status.CANCELLED},
    Status.IN_APPROVAL: (_RUNNING_TARGETS - {Status.IN_APPROVAL})
    | {Status.RETURNED, Status.REJECTED, Status.WITHDRAWN, Status.CANCELLED},
    Status.RETURNED: _RUNNING_TARGETS | {Status.WITHDRAWN, Status.CANCELLED},
    Status.EXECUTING: frozenset(
        {Status.IN_APPROVAL, Status.AWAITING_SUMMARY, Status.ARCHIVED, Status.CANCELLED}
    ),
    Status.AWAITING_SUMMARY: frozenset(
        {Status.IN_APPROVAL, Status.EXECUTING, Status.ARCHIVED, Status.CANCELLED}
    ),
    Status.ARCHIVED: frozenset(),
    Status.REJECTED: frozenset(),
    Status.WITHDRAWN: frozenset(),
    Status.CANCELLED: frozenset(),
}
"""Status -> the statuses it may change to. Terminal statuses change to nothing."""

_TASK_EVENTS = frozenset({"approve", "reject", "return", "transfer", "add_signer"})
_EXECUTION_EVENTS = frozenset(
    {"task_completed", "summary_submitted", "change_request_submit", "change_request_cancel", "archive"}
)
_ALWAYS = frozenset({"comment", "timer_fired"})

ACCEPTS: Final[dict[Status, frozenset[str]]] = {
    Status.DRAFT: frozenset({"submit", "cancel", "timer_fired"}),
    Status.IN_APPROVAL: _ALWAYS
    | _TASK_EVENTS
    | {"withdraw", "urge", "mark_urgent", "plugin_result", "task_completed", "summary_submitted", "cancel"},
    Status.RETURNED: _ALWAYS | {"submit", "withdraw", "cancel"},
    Status.EXECUTING: _ALWAYS
    | _TASK_EVENTS
    | _EXECUTION_EVENTS
    | {"urge", "mark_urgent", "plugin_result", "cancel"},
    Status.AWAITING_SUMMARY: _ALWAYS
    | _TASK_EVENTS
    | _EXECUTION_EVENTS
    | {"urge", "mark_urgent", "plugin_result", "cancel"},
    Status.ARCHIVED: _ALWAYS,
    Status.REJECTED: _ALWAYS,
    Status.WITHDRAWN: _ALWAYS,
    Status.CANCELLED: _ALWAYS,
}
"""Status -> the event types (the "type" tag of `Event`) it accepts."""

PHASE_RANK: Final[dict[Status, int]] = {
    Status.IN_APPROVAL: 0,
    Status.EXECUTING: 1,
    Status.AWAITING_SUMMARY: 2,
}
"""When tokens rest in several phases at once, the earliest phase names the status."""
