"""通知 (notify): tell people about the request, in-app, by e-mail, or in a group robot chat.

The message is `template` with `{name}` placeholders filled from the request: any field the
step may see (`{budget}`, amounts written 200,000.00), and `{number}`, `{title}` (the step's
title), `{initiator}` (the initiator's name), `{department}` (theirs). Unknown placeholders
are left empty.

Channels:
- "in_app": to `recipients`, through the engine's notification outbox (sent with the step);
- "email": to `recipients` who have an address, when the host configured SMTP (skipped, with a
  note in the timeline, when it did not);
- "robot": to a DingTalk, Feishu or WeCom group robot; its webhook address is a secret (it
  carries the robot's token), and DingTalk and Feishu robots may sign with another secret.

With only "in_app" the step passes at once; otherwise it waits until the actor has sent the
e-mails and the robot message (retried with back-off; an incident when retries run out).
"""

from __future__ import annotations

import asyncio
import base64
import enum
import hashlib
import hmac
import re
import smtplib
import ssl
import urllib.parse
from collections.abc import Iterable, Mapping
from decimal import Decimal
from email.message import EmailMessage
from typing import Annotated, Any

import httpx
import msgspec
from msgspec import Meta

from plugins.config import SecretName, StepConfig
from plugins.decisions import CallResult, Complete, Decision, Fail, Notice, Perform
from plugins.inputs import CallInput, StepInput
from plugins.settings import SmtpSettings
from plugins.step import NodeSite, Step, Text
from runtime.flow.rules import AssigneeRule

PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
BUILT_IN_NAMES = frozenset({"number", "title", "initiator", "department"})


class Channel(enum.StrEnum):
    IN_APP = "in_app"
    EMAIL = "email"
    ROBOT = "robot"


class RobotKind(enum.StrEnum):
    DINGTALK = "dingtalk"
    FEISHU = "feishu"
    WECOM = "wecom"


class Robot(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A group robot: `webhook` names the secret holding its address; `signing_secret` names
    the secret DingTalk ("加签") or Feishu ("签名校验") robots sign with, if set up."""

    kind: RobotKind
    webhook: SecretName
    signing_secret: SecretName | None = None


class NotifyConfig(StepConfig, frozen=True, kw_only=True):
    """`recipients`: who gets in-app messages and e-mails. `subject`: the e-mail subject
    (a template too; the step's title when empty)."""

    template: Annotated[str, Meta(min_length=1, max_length=2_000)]
    channels: Annotated[tuple[Channel, ...], Meta(min_length=1)] = (Channel.IN_APP,)
    recipients: AssigneeRule | None = None
    subject: Annotated[str, Meta(max_length=200)] = ""
    robot: Robot | None = None
    timeout_seconds: Annotated[float, Meta(gt=0, le=60)] = 10.0


class RobotRefused(Exception):
    """The robot's webhook refused the message (retried)."""


class Notify(Step[NotifyConfig]):
    name = "notify"
    title = Text(zh="消息通知", en="Notify")
    description = Text(
        zh="按模板发送站内信、邮件，或钉钉 / 飞书 / 企业微信群机器人消息。",
        en="Sends a templated message in-app, by e-mail, or to a DingTalk / Feishu / WeCom group robot.",
    )
    config_type = NotifyConfig

    def decide(self, step: StepInput[NotifyConfig]) -> Decision:
        config = step.config
        people = _recipients(step)
        notices: tuple[Notice, ...] = ()
        if Channel.IN_APP in config.channels and people:
            notices = (Notice(recipients=people, text=render(config.template, values(step))),)
        if set(config.channels) <= {Channel.IN_APP}:
            return Complete(note=f"站内信 {len(people)} 人", notify=notices)
        return Perform(note="发送通知", notify=notices)

    async def perform(self, call: CallInput[NotifyConfig]) -> CallResult:
        config = call.config
        sent: list[str] = []
        text = render(config.template, values(call.step))
        if Channel.EMAIL in config.channels:
            people = _recipients(call.step)
            if call.smtp is None:
                sent.append("e-mail skipped: SMTP is not configured")
            else:
                addresses = sorted(set((await call.contacts.emails(people)).values()))
                if addresses:
                    subject = render(config.subject, values(call.step)) if config.subject else call.step.title
                    message = _email(call.smtp.sender, addresses, subject, text, call.idempotency_key)
                    await asyncio.to_thread(_send_email, call.smtp, message)
                sent.append(f"e-mail to {len(addresses)}")
        if Channel.ROBOT in config.channels and config.robot is not None:
            robot = config.robot
            url = call.secret(robot.webhook)
            if url is None:
                return Fail(
                    reason=f"the secret {robot.webhook!r} (robot webhook) is not configured", retry=False
                )
            signing = call.secret(robot.signing_secret) if robot.signing_secret else None
            if robot.signing_secret and signing is None:
                return Fail(reason=f"the secret {robot.signing_secret!r} is not configured", retry=False)
            target, body = robot_request(robot.kind, url, signing, text, call.step.now.timestamp())
            await asyncio.to_thread(_post_robot, robot.kind, target, body, config.timeout_seconds)
            sent.append(f"{robot.kind} robot")
        return Complete(note="; ".join(sent))

    def check(self, config: NotifyConfig, site: NodeSite) -> Iterable[str]:
        if Channel.ROBOT in config.channels and config.robot is None:
            yield "config.robot: the robot channel needs a robot"
        if {Channel.IN_APP, Channel.EMAIL} & set(config.channels) and config.recipients is None:
            yield "config.recipients: in-app messages and e-mails need recipients"
        if site.fields is not None:
            for template in (config.template, config.subject):
                for name in PLACEHOLDER.findall(template):
                    if name not in site.fields and name not in BUILT_IN_NAMES:
                        yield f"config.template: unknown placeholder {{{name}}}"
                for stray in re.findall(r"\{[^}]*\}", PLACEHOLDER.sub("", template)):
                    yield f"config.template: {stray} is not a placeholder ({{field_key}})"


def render(template: str, values: Mapping[str, str]) -> str:
    """`template` with each `{name}` replaced by `values[name]` (empty when unknown)."""
    return PLACEHOLDER.sub(lambda match: values.get(match.group(1), ""), template)


def values(step: StepInput[Any]) -> dict[str, str]:
    """What placeholders may name: the visible fields, and the request's own names."""
    found = {key: _text(value) for key, value in step.data.items()}
    found.update(
        number=step.instance,
        title=step.title,
        initiator=step.initiator.name,
        department=step.initiator.department,
    )
    return found


def _text(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    if isinstance(value, list | tuple):
        return "、".join(_text(item) for item in value if not isinstance(item, dict))
    return "" if value is None else str(value)


def _recipients(step: StepInput[NotifyConfig]) -> tuple[int, ...]:
    rule = step.config.recipients
    return step.directory.resolve(rule, step.data)[0] if rule is not None else ()


def _email(sender: str, to: list[str], subject: str, text: str, key: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Message-ID"] = f"<{key.replace(':', '.')}@formflow>"  # the same on a retry: repeats are dropped
    message.set_content(text)
    return message


def _send_email(smtp: SmtpSettings, message: EmailMessage) -> None:
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if smtp.ssl:
        client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout_seconds, context=context)
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds)
    with client:
        if smtp.starttls and not smtp.ssl:
            client.starttls(context=context)
        if smtp.username:
            client.login(smtp.username, smtp.password)
        client.send_message(message)


def robot_request(
    kind: RobotKind, url: str, signing: str | None, text: str, now: float
) -> tuple[str, dict[str, Any]]:
    """The (url, JSON body) of a robot message; `now` is the signing time (seconds)."""
    if kind == RobotKind.DINGTALK:
        body: dict[str, Any] = {"msgtype": "text", "text": {"content": text}}
        if signing:
            stamp = str(int(now * 1000))
            digest = hmac.new(signing.encode(), f"{stamp}\n{signing}".encode(), hashlib.sha256).digest()
            sign = urllib.parse.quote_plus(base64.b64encode(digest))
            url = f"{url}{'&' if '?' in url else '?'}timestamp={stamp}&sign={sign}"
        return url, body
    if kind == RobotKind.FEISHU:
        body = {"msg_type": "text", "content": {"text": text}}
        if signing:
            stamp = str(int(now))
            digest = hmac.new(f"{stamp}\n{signing}".encode(), b"", hashlib.sha256).digest()
            body.update(timestamp=stamp, sign=base64.b64encode(digest).decode())
        return url, body
    return url, {"msgtype": "text", "text": {"content": text}}


def _post_robot(kind: RobotKind, url: str, body: dict[str, Any], timeout: float) -> None:
    response = httpx.post(url, json=body, timeout=timeout)
    if response.status_code != 200:
        raise RobotRefused(f"{kind} robot answered {response.status_code}")
    try:
        answer = response.json()
    except ValueError as exc:
        raise RobotRefused(f"{kind} robot answered something other than JSON") from exc
    code = answer.get("errcode", answer.get("code", answer.get("StatusCode", 0)))
    if code not in (0, None):
        raise RobotRefused(
            f"{kind} robot refused the message: {code} {answer.get('errmsg') or answer.get('msg')}"
        )
