"""What a validation needs to know about the world: who is submitting, what day it is, in
which language to answer. Passed in by the caller; `forms` never reads a clock or a global.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import msgspec

from forms.i18n import DEFAULT_LOCALE, translator


class CurrentUser(msgspec.Struct, frozen=True, kw_only=True):
    """The submitting user, as `$current_user` / `$current_department` defaults and CEL `user`."""

    id: str
    name: str = ""
    department_id: str | None = None


class ValidationContext(msgspec.Struct, frozen=True, kw_only=True):
    """Inputs of a validation besides the data.

    `today` is the submitter's calendar date (the `$today` default and CEL `today`).
    `locale` picks the message language ("zh-CN" or "en"); `gettext` overrides the
    translator for it (a callable from English msgid to translated text).
    """

    today: dt.date
    user: CurrentUser | None = None
    locale: str = DEFAULT_LOCALE
    gettext: Callable[[str], str] | None = None

    def translate(self, msgid: str, **params: object) -> str:
        """`msgid` in this context's language, with `{placeholders}` filled from `params`."""
        text = (self.gettext or translator(self.locale))(msgid)
        return text.format(**params) if params else text
