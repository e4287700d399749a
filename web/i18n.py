"""Translations: Babel message catalogs (`web/locale/<lang>/LC_MESSAGES/messages.po`).

Messages in code and templates are English msgids marked with `_()`; Simplified Chinese is the
default language. Catalogs are read with Babel at start-up (no compile step). The language of
the current request lives in a context variable set by `LocaleMiddleware`: the `lang` cookie
when present, else the default from settings.
"""

from __future__ import annotations

import contextvars
from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po
from litestar.types import ASGIApp, Receive, Scope, Send

from web.auth.middleware import cookie_value

LOCALES = ("zh-CN", "en")
LOCALE_COOKIE = "lang"
LOCALE_DIR = Path(__file__).parent / "locale"

_current: contextvars.ContextVar[str] = contextvars.ContextVar("formflow_locale", default="zh-CN")


@cache
def catalog(locale: str) -> dict[str, str]:
    """msgid -> translation for one language; English is the msgids themselves."""
    if locale == "en":
        return {}
    path = LOCALE_DIR / locale.replace("-", "_") / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        messages = read_po(handle)
    return {str(m.id): str(m.string) for m in messages if m.id and m.string and not m.fuzzy}


def current_locale() -> str:
    return _current.get()


def gettext(message: str) -> str:
    return catalog(_current.get()).get(message, message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return gettext(singular if n == 1 else plural)


_ = gettext


def pick_locale(cookie: str | None, default: str) -> str:
    return cookie if cookie in LOCALES else default


class LocaleMiddleware:
    def __init__(self, app: ASGIApp, default_locale: str = "zh-CN") -> None:
        self.app = app
        self.default_locale = default_locale

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _current.set(pick_locale(cookie_value(scope, LOCALE_COOKIE), self.default_locale))
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)
