"""In-app notifications: what each outbox "notify" message says, delivered once per person.

A notification's key is the outbox message key plus the recipient, unique in the table, so
delivering the same message twice (a retried or redelivered job) adds nothing. Titles are
written in the recipient's language. E-mail and SMS are further channels behind the same
message; the in-app inbox is always written.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from storage.tables import Notification, Person

# template -> (Chinese title, English title); {title} is the request's title, {number} its number.
TITLES: dict[str, tuple[str, str]] = {
    "task_assigned": ("待您处理：{title}（{number}）", "Waiting for you: {title} ({number})"),
    "cc": ("抄送给您：{title}（{number}）", "For your information: {title} ({number})"),
    "reminder": ("提醒：{title}（{number}）即将到期", "Reminder: {title} ({number}) is due soon"),
    "overdue": ("已超时：{title}（{number}）", "Overdue: {title} ({number})"),
    "urge": ("催办：{title}（{number}）", "Please act on {title} ({number})"),
    "returned": ("已退回补充：{title}（{number}）", "Returned for more: {title} ({number})"),
    "rejected": ("已驳回：{title}（{number}）", "Rejected: {title} ({number})"),
    "approved": ("已通过：{title}（{number}）", "Approved: {title} ({number})"),
    "withdrawn": ("已撤回：{title}（{number}）", "Withdrawn: {title} ({number})"),
    "cancelled": ("已取消：{title}（{number}）", "Cancelled: {title} ({number})"),
    "change_approved": ("变更已通过：{title}（{number}）", "Change approved: {title} ({number})"),
    "change_rejected": ("变更未通过：{title}（{number}）", "Change rejected: {title} ({number})"),
    # a step plugin's notice (runtime.flow.plugins.NOTICE_TEMPLATE); the body is the plugin's text
    "plugin_notice": ("流程通知：{title}（{number}）", "Notice about {title} ({number})"),
}
FALLBACK = ("流程动态：{title}（{number}）", "Update on {title} ({number})")


def title_for(template: str, locale: str, title: str, number: str) -> str:
    zh, en = TITLES.get(template, FALLBACK)
    return (zh if locale.startswith("zh") else en).format(title=title or number, number=number)


def body_for(template: str, data: dict[str, Any]) -> str:
    """The detail line: the note, comment or task title that came with the event, if any."""
    for name in ("note", "comment", "reason", "task_title"):
        value = data.get(name)
        if isinstance(value, str) and value:
            return value[:500]
    return ""


async def deliver(key: str, payload: dict[str, Any], now: dt.datetime) -> int:
    """Write the in-app notifications of one outbox message; returns how many were new."""
    recipients = sorted({int(r) for r in payload.get("recipients", [])})
    if not recipients:
        return 0
    people = await Person.select(Person.id, Person.locale).where(Person.id.is_in(recipients))
    template = str(payload.get("template", ""))
    data = payload.get("data") or {}
    link = f"/instances/{payload['instance_id']}" if payload.get("instance_id") else ""
    rows = [
        Notification(
            key=f"{key}:{person['id']}"[:200],
            person=person["id"],
            kind=template[:48],
            title=title_for(
                template,
                person["locale"] or "zh-CN",
                str(payload.get("title", "")),
                str(payload.get("number", "")),
            )[:200],
            body=body_for(template, data),
            link=link,
            created_at=now,
        )
        for person in people
    ]
    before = await Notification.count().where(Notification.key.is_in([r.key for r in rows]))
    await Notification.insert(*rows).on_conflict(target=Notification.key, action="DO NOTHING")
    return len(rows) - before
