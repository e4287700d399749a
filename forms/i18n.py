"""Message translation for validation and design-time messages.

Messages are written in code in English, wrapped in `N_()` so that `pybabel extract -k N_`
finds them; the Chinese translations live in the Babel catalog
`forms/locale/zh_CN/LC_MESSAGES/forms.po`, read at run time with
`babel.messages.pofile.read_po` (no compile step). Placeholders use `str.format` braces
(`{max}`) and are filled after translation.

Locales: "zh-CN" (the default of the product) and "en". Any locale starting with "zh"
uses the Chinese catalog; anything else gets the English message ids unchanged.
"""

from __future__ import annotations

import functools
from pathlib import Path

from babel.messages.pofile import read_po

DEFAULT_LOCALE = "zh-CN"
_LOCALE_DIR = Path(__file__).resolve().parent / "locale"
_DOMAIN = "forms"


def N_(msgid: str) -> str:
    """Mark `msgid` for extraction; it is translated later, when the locale is known."""
    return msgid


def catalog_locale(locale: str) -> str:
    """The catalog a locale tag uses: "zh_CN" for any Chinese tag, otherwise "en"."""
    return "zh_CN" if locale.replace("_", "-").lower().startswith("zh") else "en"


def is_chinese(locale: str) -> bool:
    """True when `locale` reads Chinese (and so picks the `zh` side of bilingual texts)."""
    return catalog_locale(locale) == "zh_CN"


class Translator:
    """A gettext-style callable: `translator(msgid) -> translated text` (the msgid if missing)."""

    __slots__ = ("_messages", "locale")

    def __init__(self, locale: str, messages: dict[str, str]) -> None:
        self.locale = locale
        self._messages = messages

    def __call__(self, msgid: str) -> str:
        return self._messages.get(msgid) or msgid

    def format(self, msgid: str, **params: object) -> str:
        """Translate `msgid` and fill its `{placeholders}` from `params`."""
        text = self(msgid)
        return text.format(**params) if params else text


@functools.cache
def translator(locale: str = DEFAULT_LOCALE) -> Translator:
    """The translator for `locale` ("zh-CN", "en", ...), read once and cached."""
    name = catalog_locale(locale)
    return Translator(name, _read_catalog(name))


def _read_catalog(name: str) -> dict[str, str]:
    path = _LOCALE_DIR / name / "LC_MESSAGES" / f"{_DOMAIN}.po"
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=name)
    return {
        str(message.id): str(message.string)
        for message in catalog
        if message.id and isinstance(message.id, str) and message.string and not message.fuzzy
    }
