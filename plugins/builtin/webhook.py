"""Webhook: POST the request's data as signed JSON to a URL; go on when it answers, or when
it calls back.

The body (see `payload`) carries the call id, the request number, the step, the data the step
may see (all of it, or the `fields` listed) and the initiator. Headers: `X-Formflow-Signature`
(HMAC-SHA256 of the body with the secret named `secret`), `Idempotency-Key` (the same on every
retry of the call: the receiver drops repeats) and `X-Formflow-Call` (the call id).

A 2xx answer completes the step; a JSON answer {"outcome": "reject", "note": "..."} rejects the
request. A timeout, a connection error, a 5xx, 408 or 429 is retried `retries` times with
back-off from `backoff_seconds` (doubling); a redirect or any other 4xx fails at once. Both end in an incident
an admin can retry or skip. With `wait_for_callback`, a 2xx answer only says "received": the
step waits until the receiver calls back (`plugins.callbacks.accept_callback`) with a body
signed the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import msgspec
from msgspec import Meta

from plugins.config import FieldKey, SecretName, StepConfig
from plugins.decisions import CallResult, Complete, Decision, Fail, Outcome, Perform, WaitForCallback
from plugins.inputs import CallInput, StepInput
from plugins.signing import CALL_HEADER, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, sign
from plugins.step import NodeSite, RetryPolicy, Step, Text

CALLBACK_PATH = "/api/plugin-calls/{call_id}/callback"
"""Where, under the app's public URL, an outside system answers a call (the web route)."""

_RETRYABLE_4XX = frozenset({408, 425, 429})
_ANSWER_LIMIT = 2_000


class WebhookConfig(StepConfig, frozen=True, kw_only=True):
    """`secret`: the name of the signing secret the host holds. `timeout_seconds`: per
    request. `retries`: further attempts after the first; `backoff_seconds`: the first wait."""

    url: Annotated[str, Meta(pattern=r"^https?://[^\s/?#]+[^\s]*$", max_length=2_000)]
    secret: SecretName
    timeout_seconds: Annotated[float, Meta(gt=0, le=120)] = 10.0
    retries: Annotated[int, Meta(ge=0, le=20)] = 5
    backoff_seconds: Annotated[float, Meta(ge=0, le=3_600)] = 2.0
    wait_for_callback: bool = False
    fields: tuple[FieldKey, ...] = ()


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    """What a receiver may answer (all optional)."""

    outcome: Outcome = Outcome.CONTINUE
    note: Annotated[str, Meta(max_length=2_000)] = ""


class WebhookRefused(Exception):
    """The receiver answered with an error status; retried unless it is a client error."""


class Webhook(Step[WebhookConfig]):
    name = "webhook"
    title = Text(zh="Webhook 调用", en="Webhook")
    description = Text(
        zh="将申请数据以 HMAC-SHA256 签名的 JSON POST 到外部系统，可等待其回调后继续。",
        en="POSTs the request's data as HMAC-SHA256-signed JSON to another system, optionally "
        "waiting for its signed callback.",
    )
    config_type = WebhookConfig

    def decide(self, step: StepInput[WebhookConfig]) -> Decision:
        return Perform(note=f"POST {urlsplit(step.config.url).netloc}")

    def perform(self, call: CallInput[WebhookConfig]) -> CallResult:
        config = call.config
        secret = call.secret(config.secret)
        if secret is None:
            return Fail(reason=f"the secret {config.secret!r} is not configured", retry=False)
        body = msgspec.json.encode(payload(call))
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret, body),
            IDEMPOTENCY_HEADER: call.idempotency_key,
            CALL_HEADER: call.call_id,
        }
        with httpx.Client(timeout=config.timeout_seconds, follow_redirects=False) as client:
            response = client.post(config.url, content=body, headers=headers)
        status = response.status_code
        if not 200 <= status < 300:
            reason = f"POST {config.url} answered {status}: {response.text[:200]}"
            if 300 <= status < 500 and status not in _RETRYABLE_4XX:  # redirects are not followed
                return Fail(reason=reason, retry=False)
            raise WebhookRefused(reason)
        if config.wait_for_callback:
            return WaitForCallback(note=f"{status}; waiting for the callback")
        answer = _answer(response.content)
        return Complete(outcome=answer.outcome, note=answer.note, output={"status": status})

    def check(self, config: WebhookConfig, site: NodeSite) -> Iterable[str]:
        if site.fields is not None:
            for field in config.fields:
                if field not in site.fields:
                    yield f"config.fields: unknown field {field!r}"

    def retry_policy(self, config: WebhookConfig) -> RetryPolicy:
        return RetryPolicy(attempts=config.retries + 1, backoff_seconds=config.backoff_seconds)

    def callback_secret(self, config: WebhookConfig) -> str | None:
        return config.secret


def payload(call: CallInput[WebhookConfig]) -> dict[str, Any]:
    """The JSON body of the POST."""
    step = call.step
    data = dict(step.data)
    if call.config.fields:
        data = {key: data[key] for key in call.config.fields if key in data}
    callback: dict[str, Any] = {"expected": call.config.wait_for_callback, "call_id": call.call_id}
    if call.config.wait_for_callback and call.public_url:
        callback["url"] = call.public_url.rstrip("/") + CALLBACK_PATH.format(call_id=call.call_id)
    initiator = step.initiator
    return {
        "event": "formflow.step",
        "call_id": call.call_id,
        "idempotency_key": call.idempotency_key,
        "attempt": call.attempt,
        "instance": step.instance,
        "node_id": step.node_id,
        "step": step.title,
        "data": data,
        "initiator": {"id": initiator.id, "name": initiator.name, "department": initiator.department},
        "callback": callback,
        "sent_at": step.now,
    }


def _answer(content: bytes) -> Answer:
    if not content.strip() or len(content) > _ANSWER_LIMIT * 4:
        return Answer()
    try:
        return msgspec.json.decode(content, type=Answer)
    except msgspec.DecodeError:
        return Answer()  # a receiver that answers something else simply accepted the call
