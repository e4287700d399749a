"""The instance API: start requests, act on tasks, follow requests, preview routes.

Every action runs one service command (`runtime.service`): one transaction, and a 409 when
someone else acted first. Actions accept an `Idempotency-Key` header: the same key from the
same person replays the first response (with `Idempotent-Replayed: true`) without acting
again. Errors of the engine and the service become HTTP responses in `web.errors`.

"Now" is `web.errors.request_now`: the system clock, or the clock a test puts on the app.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

import msgspec
from litestar import Response, get, post, put
from litestar.exceptions import ValidationException
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from runtime import service
from runtime.flow import Status
from runtime.service import (
    Caller,
    ChangeRequestBody,
    CommandResult,
    CommentRequest,
    Counts,
    CreateRequest,
    DataUpdate,
    IdempotencyKey,
    InstanceDetail,
    InstancePage,
    NoteRequest,
    PreviewRequest,
    ProgressRequest,
    Replay,
    RoutePreview,
    SubmitRequest,
    SummaryRequest,
    TaskActionRequest,
    TaskPage,
)
from storage.access import Permission
from web.auth.guards import needs
from web.context import AnyRequest, RowId, actor_of, principal_of
from web.errors import request_now
from web.i18n import current_locale

PageNo = Annotated[int, QueryParameter(ge=1, le=100_000)]
IDEMPOTENCY_HEADER = "idempotency-key"
MAX_KEY_LENGTH = 200

Command = Callable[[IdempotencyKey | None], Awaitable[CommandResult]]


def caller_of(request: AnyRequest) -> Caller:
    actor = actor_of(request)
    return Caller(
        principal=principal_of(request), ip=actor.ip, request_id=actor.request_id, locale=current_locale()
    )


async def _answer(request: AnyRequest, status_code: int, command: Command) -> Response[CommandResult]:
    """Run an action once per Idempotency-Key; a repeated key gets the first answer again."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    idempotency = None
    if key is not None:
        if not 0 < len(key) <= MAX_KEY_LENGTH:
            raise ValidationException(
                f"the Idempotency-Key header must have 1 to {MAX_KEY_LENGTH} characters"
            )
        body = await request.body()
        fingerprint = hashlib.sha256(f"{request.method} {request.url.path}\n".encode() + body).hexdigest()
        idempotency = IdempotencyKey(key=key, fingerprint=fingerprint, status_code=status_code)
    outcome = await service.run_once(principal_of(request).id, idempotency, command)
    if isinstance(outcome, Replay):
        replayed = msgspec.convert(outcome.body, CommandResult)
        return Response(replayed, status_code=outcome.status_code, headers={"Idempotent-Replayed": "true"})
    return Response(outcome, status_code=status_code)


# -- requests ------------------------------------------------------------------------------


@post("/api/v1/instances", opt=needs(Permission.PROCESS_START), status_code=201)
async def create_instance(request: AnyRequest, data: JSONBody[CreateRequest]) -> Response[CommandResult]:
    """Start a request from a template: a draft, or submitted at once (`submit`); 422 lists
    every field error with its path."""
    caller, now = caller_of(request), request_now(request)
    return await _answer(
        request, 201, lambda key: service.create_instance(caller, data, now, idempotency=key)
    )


@get("/api/v1/instances/{instance_id:int}", opt=needs(Permission.PROCESS_VIEW))
async def get_instance(request: AnyRequest, instance_id: RowId) -> InstanceDetail:
    """The request as the caller may see it: data through their field mask, open tasks with
    why each approver was chosen, the timeline, and what the caller may do now."""
    return await service.instance_detail(
        principal_of(request), instance_id, request_now(request), current_locale()
    )


@get("/api/v1/instances", opt=needs(Permission.PROCESS_VIEW))
async def list_instances(
    request: AnyRequest,
    mine: FromQuery[bool] = True,
    status: FromQuery[Status | None] = None,
    page: PageNo = 1,
) -> InstancePage:
    """The caller's own requests (`mine=true`, the default) or every request they may see."""
    return await service.list_instances(
        principal_of(request), mine=mine, status=status, page=page, locale=current_locale()
    )


@put("/api/v1/instances/{instance_id:int}/data", opt=needs(Permission.PROCESS_START))
async def update_data(
    request: AnyRequest, instance_id: RowId, data: JSONBody[dict[str, Any]]
) -> Response[CommandResult]:
    """Replace the data of a draft or a returned request (checked as a draft)."""
    caller, now = caller_of(request), request_now(request)
    body = DataUpdate(data=data)
    return await _answer(
        request, 200, lambda key: service.update_data(caller, instance_id, body, now, idempotency=key)
    )


@post("/api/v1/instances/{instance_id:int}/submit", opt=needs(Permission.PROCESS_START), status_code=200)
async def submit(
    request: AnyRequest, instance_id: RowId, data: JSONBody[SubmitRequest | None] = None
) -> Response[CommandResult]:
    """Submit a draft or resubmit a returned request (`data`, if given, replaces the stored data)."""
    caller, now, body = caller_of(request), request_now(request), data or SubmitRequest()
    return await _answer(
        request, 200, lambda key: service.submit(caller, instance_id, body, now, idempotency=key)
    )


@post("/api/v1/instances/{instance_id:int}/withdraw", opt=needs(Permission.PROCESS_START), status_code=200)
async def withdraw(
    request: AnyRequest, instance_id: RowId, data: JSONBody[NoteRequest | None] = None
) -> Response[CommandResult]:
    caller, now, body = caller_of(request), request_now(request), data or NoteRequest()
    return await _answer(
        request, 200, lambda key: service.withdraw(caller, instance_id, body, now, idempotency=key)
    )


@post("/api/v1/instances/{instance_id:int}/urge", opt=needs(Permission.PROCESS_START), status_code=200)
async def urge(
    request: AnyRequest, instance_id: RowId, data: JSONBody[NoteRequest | None] = None
) -> Response[CommandResult]:
    """催办: remind the current approvers; once an hour at most (429 with Retry-After)."""
    caller, now, body = caller_of(request), request_now(request), data or NoteRequest()
    return await _answer(
        request, 200, lambda key: service.urge(caller, instance_id, body, now, idempotency=key)
    )


@post("/api/v1/instances/{instance_id:int}/mark-urgent", opt=needs(Permission.PROCESS_START), status_code=200)
async def mark_urgent(request: AnyRequest, instance_id: RowId) -> Response[CommandResult]:
    """加急: open approvals become due within 24 hours."""
    caller, now = caller_of(request), request_now(request)
    return await _answer(
        request, 200, lambda key: service.mark_urgent(caller, instance_id, now, idempotency=key)
    )


@post("/api/v1/instances/{instance_id:int}/comment", opt=needs(Permission.PROCESS_VIEW), status_code=200)
async def comment(
    request: AnyRequest, instance_id: RowId, data: JSONBody[CommentRequest]
) -> Response[CommandResult]:
    caller, now = caller_of(request), request_now(request)
    return await _answer(
        request, 200, lambda key: service.comment(caller, instance_id, data, now, idempotency=key)
    )


@post("/api/v1/instances/{instance_id:int}/progress", opt=needs(Permission.PROCESS_START), status_code=200)
async def progress(
    request: AnyRequest, instance_id: RowId, data: JSONBody[ProgressRequest]
) -> Response[CommandResult]:
    """A work stage done: result, exception note, photos (the execution record)."""
    caller, now = caller_of(request), request_now(request)
    return await _answer(
        request, 200, lambda key: service.record_progress(caller, instance_id, data, now, idempotency=key)
    )


@post(
    "/api/v1/instances/{instance_id:int}/change-requests",
    opt=needs(Permission.PROCESS_START),
    status_code=200,
)
async def change_request(
    request: AnyRequest, instance_id: RowId, data: JSONBody[ChangeRequestBody]
) -> Response[CommandResult]:
    """流程变更申请: changed field values (checked against the form) and the reason."""
    caller, now = caller_of(request), request_now(request)
    return await _answer(
        request, 200, lambda key: service.request_change(caller, instance_id, data, now, idempotency=key)
    )


@post("/api/v1/instances/{instance_id:int}/summary", opt=needs(Permission.PROCESS_START), status_code=200)
async def summary(
    request: AnyRequest, instance_id: RowId, data: JSONBody[SummaryRequest]
) -> Response[CommandResult]:
    """The summary report: actual spend, results, problems, files; the request is archived."""
    caller, now = caller_of(request), request_now(request)
    return await _answer(
        request, 200, lambda key: service.submit_summary(caller, instance_id, data, now, idempotency=key)
    )


# -- tasks ---------------------------------------------------------------------------------


@get("/api/v1/tasks", opt=needs(Permission.TASK_ACT))
async def list_tasks(
    request: AnyRequest,
    task_state: Annotated[Literal["open", "done"], QueryParameter(name="state")] = "open",
    page: PageNo = 1,
) -> TaskPage:
    """The caller's tasks: open ones urgent and overdue first, or done ones newest first."""
    return await service.list_tasks(
        principal_of(request),
        request_now(request),
        done=task_state == "done",
        page=page,
        locale=current_locale(),
    )


@post("/api/v1/tasks/{task_id:int}/actions", opt=needs(Permission.TASK_ACT), status_code=200)
async def act_on_task(
    request: AnyRequest, task_id: RowId, data: JSONBody[TaskActionRequest]
) -> Response[CommandResult]:
    """approve | reject | return (with a note) | transfer (to) | add_signer (people, position)."""
    caller, now = caller_of(request), request_now(request)
    return await _answer(
        request, 200, lambda key: service.act_on_task(caller, task_id, data, now, idempotency=key)
    )


@get("/api/v1/me/counts", opt=needs(Permission.SIGNED_IN))
async def counts(request: AnyRequest) -> Counts:
    """The navigation badges: open and overdue tasks, own drafts, own returned requests."""
    return await service.navigation_counts(principal_of(request), request_now(request))


# -- templates -----------------------------------------------------------------------------


@post("/api/v1/templates/{key:str}/preview-route", opt=needs(Permission.PROCESS_START), status_code=200)
async def preview_route(
    request: AnyRequest, key: FromPath[str], data: JSONBody[PreviewRequest]
) -> RoutePreview:
    """Who would approve this draft, why, and by when."""
    return await service.preview(caller_of(request), key, data, request_now(request))


ROUTES = [
    create_instance,
    get_instance,
    list_instances,
    update_data,
    submit,
    withdraw,
    urge,
    mark_urgent,
    comment,
    progress,
    change_request,
    summary,
    list_tasks,
    act_on_task,
    counts,
    preview_route,
]
