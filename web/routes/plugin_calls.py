"""Callbacks from outside systems: the answer to a plugin step that waits for one.

    POST /api/plugin-calls/{call_id}/callback
    X-Formflow-Signature: sha256=<hex HMAC-SHA256 of the raw body>
    {"outcome": "continue" | "reject", "note": "...", "output": {...}}

A webhook step with `wait_for_callback` sends the receiver this address (`callback.url`). The
route is public and CSRF-exempt: no session signs the caller in, the HMAC signature over the
exact body (with the secret the step names) authenticates it (`plugins.callbacks`). A valid
callback moves the request on in one transaction and is answered 200; the same signed callback
again (a sender retrying after losing our answer) gets 200 and changes nothing. Nothing changes
otherwise: 401 for a missing or wrong signature, 404 when no step waits or waited for the call
(never existed, or the request ended), 422 for a body that is not a callback, 413 for a body
over the limit.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import post
from litestar.exceptions import ClientException, NotAuthorizedException, NotFoundException
from litestar.params import PathParameter

from plugins.callbacks import BODY_LIMIT, accept_callback
from plugins.errors import BadCallbackBody, BadSignature, UnknownCall
from plugins.signing import SIGNATURE_HEADER
from storage.access import Permission
from web.auth.guards import needs
from web.context import AnyRequest
from web.errors import request_now

PATH = "/api/plugin-calls"
"""Where callbacks arrive; the CSRF check skips it (`web.app`)."""

CallId = Annotated[str, PathParameter(min_length=3, max_length=120, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]


class CallbackAccepted(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to a valid callback: the call and the request's status after it."""

    call_id: str
    status: str


@post(
    f"{PATH}/{{call_id:str}}/callback",
    opt=needs(Permission.PUBLIC),
    status_code=200,
    request_max_body_size=BODY_LIMIT,
    summary="Answer a plugin step that waits for a callback",
)
async def plugin_callback(request: AnyRequest, call_id: CallId) -> CallbackAccepted:
    """Apply an outside system's signed answer to the plugin call `call_id`."""
    body = await request.body()
    signature = request.headers.get(SIGNATURE_HEADER, "")
    try:
        result = await accept_callback(call_id, body, signature, now=request_now(request))
    except BadSignature as exc:
        raise NotAuthorizedException(f"{SIGNATURE_HEADER}: {exc}") from exc
    except UnknownCall as exc:
        raise NotFoundException(str(exc)) from exc
    except BadCallbackBody as exc:
        raise ClientException(str(exc), status_code=422) from exc
    return CallbackAccepted(call_id=call_id, status=result.status)


ROUTES = [plugin_callback]
