"""The attachments API: streamed upload, download after the access check, delete while unlinked.

`POST /api/v1/attachments` takes multipart/form-data with one `file` part. The body is parsed
as it arrives and the file goes to the object store chunk by chunk; nothing holds the whole
file. Parts before `file` are skipped (an optional `field` = "<template_key>.<field_key>" will
select that field's policy; today every upload gets `DEFAULT_POLICY`); parts after it are not
read.

CSRF: a cookie session must send its token in the `x-csrftoken` header, as htmx does. Litestar's
CSRF middleware would otherwise read the whole form looking for a `_csrf_token` field, so an
upload without the header is refused even when that field is present. Bearer-token calls need
no token.

Errors raised below are mapped to HTTP here, in `ERROR_HANDLERS`, with messages in the reader's
language.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Any, TypeAlias
from urllib.parse import quote

import msgspec
from litestar import Response, delete, get, post
from litestar.exceptions import ClientException, HTTPException, PermissionDeniedException
from litestar.params import FromPath
from litestar.response import Redirect, Stream
from litestar.types import ExceptionHandlersMap
from multipart import MultipartError, MultipartSegment, PushMultipartParser  # type: ignore[import-untyped]

from storage import attachments
from storage.access import Permission
from storage.attachments import (
    DEFAULT_POLICY,
    MB,
    AttachmentError,
    AttachmentLinked,
    AttachmentNotFound,
    FileTooLarge,
    NameDoesNotMatchType,
    NotAllowed,
    UnsupportedFileType,
)
from storage.objects import ObjectMissing, ObjectStore, ObjectStoreError
from web.auth.guards import needs
from web.auth.middleware import SESSION_COOKIE, bearer_token, cookie_value
from web.context import AnyRequest, actor_of, principal_of
from web.errors import http_exception_handler
from web.i18n import _

log = logging.getLogger("formflow.attachments")

CSRF_HEADER = "x-csrftoken"  # web.app.CSRF_HEADER (importing web.app here would be circular)
MULTIPART_OVERHEAD = 64 * 1024
"""Bytes allowed on top of the file for boundaries, part headers and small fields."""
BODY_LIMIT = DEFAULT_POLICY.max_size + 2 * MB
"""Litestar's own request-body limit for uploads: above ours, so our 413 and message come first."""
MAX_PARTS = 8
URL_LIFETIME = timedelta(minutes=5)
SENSITIVE_URL_LIFETIME = timedelta(seconds=60)

_STATUS: dict[type[AttachmentError], int] = {
    FileTooLarge: 413,
    UnsupportedFileType: 415,
    NameDoesNotMatchType: 415,
    AttachmentNotFound: 404,
    NotAllowed: 403,
    AttachmentLinked: 409,
}
_RFC5987_SAFE = "!#$&+^`|"

Event: TypeAlias = "MultipartSegment | bytes | None"


class AttachmentOut(msgspec.Struct, kw_only=True):
    id: str
    name: str
    size: int
    content_type: str
    sha256: str


def store_of(request: AnyRequest) -> ObjectStore:
    store: ObjectStore = request.app.state.object_store
    return store


def _attachment_error(request: AnyRequest, exc: AttachmentError) -> Response[Any]:
    status = next(code for cls, code in _STATUS.items() if isinstance(exc, cls))
    detail = _(exc.template).format(**exc.params)
    return http_exception_handler(request, HTTPException(status_code=status, detail=detail))


def _store_error(request: AnyRequest, exc: ObjectStoreError) -> Response[Any]:
    if isinstance(exc, ObjectMissing):
        log.error("attachment content is missing from the object store: %s", exc)
        error = HTTPException(status_code=404, detail=_("The stored file of this attachment is missing."))
    else:
        log.warning("object store failed: %s", exc)
        error = HTTPException(status_code=503, detail=_("File storage is unavailable; try again later."))
    return http_exception_handler(request, error)


def _malformed_form(request: AnyRequest, exc: MultipartError) -> Response[Any]:
    detail = _("The upload is not valid multipart/form-data: {reason}").format(reason=exc)
    return http_exception_handler(request, HTTPException(status_code=400, detail=detail))


ERROR_HANDLERS: ExceptionHandlersMap = {
    AttachmentError: _attachment_error,
    ObjectStoreError: _store_error,
    MultipartError: _malformed_form,
}


@post(
    "/api/v1/attachments",
    opt=needs(Permission.PROCESS_START),
    status_code=201,
    request_max_body_size=BODY_LIMIT,
    exception_handlers=ERROR_HANDLERS,
)
async def upload_attachment(request: AnyRequest) -> AttachmentOut:
    """Upload one file (multipart `file` part): at most 10 MB of PDF, Word, Excel, JPEG or PNG."""
    _require_csrf_header(request)
    boundary = _boundary(request)
    policy = DEFAULT_POLICY
    if (request.content_length or 0) > policy.max_size + MULTIPART_OVERHEAD:
        raise FileTooLarge(policy.max_size)
    events = _events(request, boundary)
    try:
        filename = await _find_file_part(events)
        info = await attachments.upload(
            store_of(request), _part_body(events), filename=filename, actor=actor_of(request), policy=policy
        )
    finally:
        await events.aclose()
    return AttachmentOut(
        id=info.uid, name=info.name, size=info.size, content_type=info.content_type, sha256=info.sha256
    )


@get("/api/v1/attachments/{uid:str}", opt=needs(Permission.PROCESS_VIEW), exception_handlers=ERROR_HANDLERS)
async def download_attachment(request: AnyRequest, uid: FromPath[str]) -> Response[Any]:
    """The file: a redirect to a short-lived URL (S3) or the content itself (local folder)."""
    attachment = await attachments.readable(principal_of(request), uid)
    store = store_of(request)
    disposition = content_disposition(attachment.name, inline=attachment.is_image)
    headers = {"x-content-type-options": "nosniff", "cache-control": "private, no-store"}
    url = await store.download_url(
        attachment.object_key,
        expires=SENSITIVE_URL_LIFETIME if attachment.sensitive else URL_LIFETIME,
        content_type=attachment.content_type,
        disposition=disposition,
    )
    if url is not None:
        await attachments.record_download(attachment, actor_of(request), via="redirect")
        return Redirect(url, status_code=307, headers=headers)
    chunks = await store.open(attachment.object_key)
    await attachments.record_download(attachment, actor_of(request), via="stream")
    return Stream(
        chunks,
        media_type=attachment.content_type,
        headers={**headers, "content-disposition": disposition, "content-length": str(attachment.size)},
    )


@delete(
    "/api/v1/attachments/{uid:str}", opt=needs(Permission.PROCESS_START), exception_handlers=ERROR_HANDLERS
)
async def delete_attachment(request: AnyRequest, uid: FromPath[str]) -> None:
    """Delete an upload of yours that no request references yet."""
    await attachments.delete(store_of(request), uid, actor=actor_of(request))


def content_disposition(name: str, *, inline: bool) -> str:
    """RFC 6266: an ASCII `filename` for old clients, the exact name as RFC 5987 `filename*`."""
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{_ascii_fallback(name)}\"; filename*=UTF-8''{quote(name, safe=_RFC5987_SAFE)}"


def _ascii_fallback(name: str) -> str:
    path = PurePosixPath(name)
    stem = unicodedata.normalize("NFKD", path.stem).encode("ascii", "ignore").decode()
    stem = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9.()+ -]", "_", stem)).strip(" _")
    suffix = re.sub(r"[^A-Za-z0-9.]", "", path.suffix)
    return (stem or "attachment") + suffix


def _require_csrf_header(request: AnyRequest) -> None:
    """Refuse a cookie-session upload that sent its CSRF token in the form instead of the header."""
    bearer_only = bearer_token(request.scope) and not cookie_value(request.scope, SESSION_COOKIE)
    if not bearer_only and not request.headers.get(CSRF_HEADER):
        raise PermissionDeniedException(
            _("Uploads need the CSRF token in the {header} header (or a bearer token).").format(
                header=CSRF_HEADER
            )
        )


def _boundary(request: AnyRequest) -> str:
    media_type, options = request.content_type
    if media_type != "multipart/form-data" or not options.get("boundary"):
        raise ClientException(_("Send the file as multipart/form-data with a `file` part."), status_code=415)
    return options["boundary"]


async def _events(request: AnyRequest, boundary: str) -> AsyncGenerator[Event, None]:
    """Multipart events as the body arrives: a part's headers, its body chunks, then None."""
    with PushMultipartParser(boundary, max_segment_count=MAX_PARTS) as parser:
        async for chunk in request.stream():
            for event in parser.parse(chunk):
                yield event
            if parser.closed:
                return


async def _find_file_part(events: AsyncIterator[Event]) -> str:
    """Skip the parts before `file`; return the file name it carries."""
    async for event in events:
        if not isinstance(event, MultipartSegment):
            continue
        if event.name == "file":
            if event.filename is None:
                raise ClientException(_("The `file` part carries no file name."), status_code=400)
            return str(event.filename)
        async for _chunk in _part_body(events):
            pass
    raise ClientException(_("The form has no `file` part."), status_code=400)


async def _part_body(events: AsyncIterator[Event]) -> AsyncIterator[bytes]:
    """The body chunks of the current part, up to its end."""
    async for event in events:
        if event is None:
            return
        if isinstance(event, bytes | bytearray):
            yield bytes(event)


ROUTES = [upload_attachment, download_attachment, delete_attachment]
