"""One place that maps errors to HTTP responses.

API paths (`/api/`) get a JSON problem body `{"status_code", "detail", "extra"?}`; pages get a
rendered error page, except 401, which sends the browser to the login page and back. Anything
unexpected is logged with the request id and shown as a 500 that names that id, never a
stack trace.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from asyncpg.exceptions import CharacterNotInRepertoireError
from litestar import MediaType, Request, Response
from litestar.exceptions import ClientException, HTTPException
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

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


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    rid = request_id_var.get()
    log.exception("unhandled error", exc_info=exc)
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


EXCEPTION_HANDLERS: dict[Any, Any] = {
    HTTPException: http_exception_handler,
    UnicodeDecodeError: undecodable_body_handler,
    RecursionError: undecodable_body_handler,
    CharacterNotInRepertoireError: unstorable_text_handler,
    HTTP_500_INTERNAL_SERVER_ERROR: internal_error_handler,
}
