"""The service layer: applies the engine's decisions to the database, one transaction per command.

    caller = Caller(principal=principal, ip=..., request_id=..., locale="zh-CN")
    created = await create_instance(caller, CreateRequest(template="marketing-activity",
                                                          data={...}, submit=True), now)
    await act_on_task(approver, task_id, TaskActionRequest(action=TaskAction.APPROVE), now)
    detail = await instance_detail(principal, created.id, now)
    await fire_due_timers(now)                       # the scheduler's periodic job

Commands load the instance (as the caller may see it), let `runtime.flow.advance` decide, then
write the state (`UPDATE ... WHERE row_version = ?`), the event log, tasks, timers, outbox
messages, the audit entry and the idempotency record in one write transaction. Queries scope
rows in SQL (`visibility`). Time comes in as `now`; nothing here reads the clock.

Errors: `runtime.service.errors` (not found, invalid form data, conflicts) and the engine's
`runtime.flow.errors` (not the assignee, not allowed, wrong status, urged too soon) pass out
unchanged for the web layer to map to HTTP.
"""

from runtime.service.caller import Caller
from runtime.service.commands import (
    comment,
    mark_urgent,
    record_progress,
    report_plugin_result,
    request_change,
    submit,
    submit_summary,
    update_data,
    urge,
    withdraw,
)
from runtime.service.creation import create_instance
from runtime.service.detail import instance_detail
from runtime.service.idempotency import IdempotencyKey, Replay, purge_idempotency_records, run_once
from runtime.service.lists import list_instances, list_tasks, navigation_counts
from runtime.service.org_directory import load_org_directory
from runtime.service.requests import (
    ChangeRequestBody,
    CommentRequest,
    CreateRequest,
    DataUpdate,
    NoteRequest,
    PreviewRequest,
    ProgressRequest,
    SubmitRequest,
    SummaryRequest,
    TaskAction,
    TaskActionRequest,
)
from runtime.service.route_preview import preview
from runtime.service.task_actions import act_on_task
from runtime.service.timers import fire_due_timers
from runtime.service.views import (
    CommandResult,
    Counts,
    InstanceDetail,
    InstancePage,
    RoutePreview,
    TaskPage,
)

__all__ = [
    "Caller",
    "ChangeRequestBody",
    "CommandResult",
    "CommentRequest",
    "Counts",
    "CreateRequest",
    "DataUpdate",
    "IdempotencyKey",
    "InstanceDetail",
    "InstancePage",
    "NoteRequest",
    "PreviewRequest",
    "ProgressRequest",
    "Replay",
    "RoutePreview",
    "SubmitRequest",
    "SummaryRequest",
    "TaskAction",
    "TaskActionRequest",
    "TaskPage",
    "act_on_task",
    "comment",
    "create_instance",
    "fire_due_timers",
    "instance_detail",
    "list_instances",
    "list_tasks",
    "load_org_directory",
    "mark_urgent",
    "navigation_counts",
    "preview",
    "purge_idempotency_records",
    "record_progress",
    "report_plugin_result",
    "request_change",
    "run_once",
    "submit",
    "submit_summary",
    "update_data",
    "urge",
    "withdraw",
]
