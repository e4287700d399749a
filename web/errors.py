"""One place that maps errors to HTTP responses.

API paths (`/api/`) get a JSON problem body `{"status_code", "detail", "extra"?}` (refused
commands of the engine and the service: `{"status_code", "detail", "code", "errors"?}`, see
`domain_error_handler`); pages get a
rendered error page, except 401, which sends the browser to the login page and back. Anything
unexpected is logged with the request id and shown as a 500 that names that id, never a
stack trace.
"""

from __future__ import annotations

import logging
import math
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from asyncpg import exceptions as asyncpg_exceptions
from asyncpg.exceptions import CharacterNotInRepertoireError
from litestar import MediaType, Request, Response
from litestar.exceptions import ClientException, HTTPException
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from runtime.flow.errors import (
    ActionNotAllowedError,
    FlowError,
    InvalidCommandError,
    NoAssigneeError,
    NotAssigneeError,
    NotPermittedError,
    TaskNotOpenError,
    TransitionError,
    UrgeTooSoonError,
)
from runtime.service.errors import (
    ConflictError,
    FormInvalid,
    IdempotencyKeyReused,
    NotEditable,
    NotFoundError,
    ServiceError,
    TemplateHasNoFlow,
)
from web.i18n import _
from web.observability import request_id_var

log = logging.getLogger("formflow.errors")


def is_api(request: Request[Any, Any, Any]) -> bool:
    return request.url.path.startswith(("/api/", "/schema"))


def wants_html(request: Request[Any, Any, Any]) -> bool:
    return not is_api(request) and "text/html" in request.headers.get("accept", "text/html")


def http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if not wants_html(request):
        body: dict[str, Any] = {"status_code": status, "detail": exc.detail}
        if exc.extra:
            body["extra"] = exc.extra
        return Response(body, status_code=status, media_type=MediaType.JSON, headers=exc.headers)
    if status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        redirect = Redirect(f"/login?next={quote(target)}")
        if request.headers.get("hx-request"):
            return Response(b"", status_code=204, headers={"HX-Redirect": f"/login?next={quote(target)}"})
        return redirect
    return Template(
        template_name="error.html",
        context={"status": status, "detail": _public_detail(status, exc.detail)},
        status_code=status,
    )


MESSAGE_HEADER = "X-Formflow-Message"
"""Set on refusals rendered for htmx: app.js swaps these 4xx answers in instead of dropping them."""


def refusal(status: int, message: str, *, target: str | None = None) -> Template:
    """A refused page action as an alert fragment (with a reload link on a conflict) that htmx
    swaps in beside the form it came from, or into `target` (HX-Retarget)."""
    headers = {MESSAGE_HEADER: "1"}
    if target is not None:
        headers |= {"HX-Retarget": target, "HX-Reswap": "innerHTML"}
    return Template(
        "_alert.html",
        context={"message": message, "reload": status == 409},
        status_code=status,
        headers=headers,
    )


_DATABASE_AWAY: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused or reset while the server restarts
    TimeoutError,
    asyncpg_exceptions.PostgresConnectionError,  # connection lost, server cannot accept yet
    asyncpg_exceptions.AdminShutdownError,  # "terminating connection due to administrator command"
    asyncpg_exceptions.CrashShutdownError,
    asyncpg_exceptions.TooManyConnectionsError,
    asyncpg_exceptions.ConnectionDoesNotExistError,
    asyncpg_exceptions.InterfaceError,  # a pooled connection that the restart closed
)
RETRY_AFTER_SECONDS = 5


def unavailable_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The database is away for a moment (a restart, a failover): 503 with Retry-After, nothing was
    written (the transaction did not commit), and the person is told to try again."""
    log.warning("database unavailable: %s", exc)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    message = _("The service is briefly unavailable; nothing was saved. Try again in a few seconds.")
    if not wants_html(request):
        return Response(
            {"status_code": 503, "detail": message, "code": "unavailable"},
            status_code=503,
            media_type=MediaType.JSON,
            headers=headers,
        )
    return Template(
        template_name="error.html",
        context={"status": 503, "detail": message},
        status_code=503,
        headers=headers,
    )


def database_away(exc: BaseException, depth: int = 0) -> bool:
    """True when `exc` (or what caused it, or one of a group's) says the database cannot be
    reached or dropped the connection: a connection error, or SQLSTATE class 08 or 57."""
    if isinstance(exc, _DATABASE_AWAY):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate[:2] in ("08", "57"):
        return True
    if depth >= 4:
        return False
    nested = [*getattr(exc, "exceptions", ()), exc.__cause__, exc.__context__]
    return any(isinstance(n, BaseException) and database_away(n, depth + 1) for n in nested)


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if database_away(exc):
        return unavailable_handler(request, exc)
    rid = request_id_var.get()
    log.exception("unhandled error: %s: %s", type(exc).__name__, exc, exc_info=exc)
    detail = f"internal error; quote request id {rid}"
    if not wants_html(request):
        return Response(
            {"status_code": 500, "detail": detail, "request_id": rid},
            status_code=HTTP_500_INTERNAL_SERVER_ERROR,
            media_type=MediaType.JSON,
        )
    return Template(
        template_name="error.html",
        context={"status": 500, "detail": _("Something went wrong. Quote this request id: ") + rid},
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
    )


def undecodable_body_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A body that is not UTF-8 or nests too deep for the decoder is the caller's mistake."""
    reason = "not UTF-8" if isinstance(exc, UnicodeDecodeError) else "nested too deeply"
    return http_exception_handler(request, ClientException(f"the request body cannot be decoded: {reason}"))


def unstorable_text_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """PostgreSQL text cannot hold a NUL character; the request fails before anything is written."""
    return http_exception_handler(
        request, ClientException("text fields may not contain the NUL character (\\u0000)")
    )


def _public_detail(status: int, detail: str) -> str:
    return {
        403: _("You do not have permission to open this page."),
        404: _("This page does not exist."),
        405: _("This action is not allowed here."),
    }.get(status, detail)


def request_now(request: Request[Any, Any, Any]) -> datetime:
    """The request's "now": the clock a test put on the app (`app.state.clock`), else the system's."""
    clock = request.app.state.get("clock")
    return clock() if clock is not None else datetime.now(UTC)


_DOMAIN_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (NotAssigneeError, 403),
    (NotPermittedError, 403),
    (ActionNotAllowedError, 403),
    (TaskNotOpenError, 409),
    (TransitionError, 409),
    (InvalidCommandError, 422),
    (UrgeTooSoonError, 429),
    (NoAssigneeError, 422),
    (NotFoundError, 404),
    (FormInvalid, 422),
    (TemplateHasNoFlow, 422),
    (NotEditable, 409),
    (ConflictError, 409),
    (IdempotencyKeyReused, 422),
)
"""Errors of the flow engine and the service layer, by HTTP status (first match wins)."""


def domain_status(exc: Exception) -> int | None:
    """The HTTP status of a refused command, or None when `exc` is a fault, not a refusal."""
    return next((code for kind, code in _DOMAIN_STATUS if isinstance(exc, kind)), None)


def domain_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A refused command as a problem body with a stable `code` (e.g. "task_not_open") and, for
    field problems, `errors: [{path, message}]`; anything unlisted is an internal error."""
    status = domain_status(exc)
    if status is None:
        return internal_error_handler(request, exc)
    headers: dict[str, str] = {}
    errors: list[dict[str, str]] = []
    if isinstance(exc, FormInvalid):
        errors = [{"path": error.path, "message": error.message} for error in exc.errors]
    elif isinstance(exc, InvalidCommandError):
        errors = [{"path": exc.field, "message": str(exc)}]
    elif isinstance(exc, UrgeTooSoonError):
        wait = (exc.retry_after - request_now(request)).total_seconds()
        headers["Retry-After"] = str(max(1, math.ceil(wait)))
    if wants_html(request):
        return http_exception_handler(
            request, HTTPException(status_code=status, detail=str(exc), headers=headers)
        )
    body: dict[str, Any] = {"status_code": status, "detail": str(exc), "code": _code(exc)}
    if errors:
        body["errors"] = errors
    return Response(body, status_code=status, media_type=MediaType.JSON, headers=headers)


def _code(exc: Exception) -> str:
    name = type(exc).__name__.removesuffix("Error")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


EXCEPTION_HANDLERS: dict[Any, Any] = {
    HTTPException: http_exception_handler,
    FlowError: domain_error_handler,
    ServiceError: domain_error_handler,
    UnicodeDecodeError: undecodable_body_handler,
    RecursionError: undecodable_body_handler,
    CharacterNotInRepertoireError: unstorable_text_handler,
    HTTP_500_INTERNAL_SERVER_ERROR: internal_error_handler,
}
