"""Who runs a command: the signed-in person, where the request came from, their language."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import msgspec

from forms import CurrentUser, ValidationContext
from storage.access import Principal
from storage.audit import Actor

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")
"""Instance numbers, form dates ("today") and the calendar count days in this zone."""


class Caller(msgspec.Struct, frozen=True, kw_only=True):
    """The person acting, plus what the audit trail and the messages need about the request."""

    principal: Principal
    ip: str = ""
    request_id: str = ""
    locale: str = "zh-CN"

    @property
    def id(self) -> int:
        return self.principal.id

    def audit_actor(self) -> Actor:
        return Actor(id=self.principal.id, name=self.principal.name, ip=self.ip, request_id=self.request_id)

    def validation_context(self, now: dt.datetime) -> ValidationContext:
        """What form validation needs: the caller as `$current_user`, today in Shanghai."""
        principal = self.principal
        department = str(principal.department_id) if principal.department_id is not None else None
        return ValidationContext(
            today=now.astimezone(BUSINESS_TZ).date(),
            user=CurrentUser(id=str(principal.id), name=principal.name, department_id=department),
            locale=self.locale,
        )


SYSTEM_ACTOR = Actor(name="formflow scheduler")
"""The audit actor of what the scheduler does (timers firing)."""
