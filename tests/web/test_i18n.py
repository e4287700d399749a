"""Every message shown to a user has its Simplified Chinese translation."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir

from web.i18n import catalog

ROOT = Path(__file__).resolve().parents[2]
METHOD_MAP = [("web/**.py", "python"), ("web/templates/**.html", "jinja2")]
OPTIONS = {"web/templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def _msgids() -> set[str]:
    found = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), METHOD_MAP, OPTIONS, keywords={"_": None, "gettext": None}
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_message_has_a_chinese_translation() -> None:
    messages = _msgids()
    assert len(messages) > 50, "the extraction found the messages"
    missing = sorted(m for m in messages if m not in catalog("zh-CN"))
    assert missing == [], f"add these to web/locale/zh_CN/LC_MESSAGES/messages.po (make messages): {missing}"


def test_placeholders_survive_translation() -> None:
    for msgid, text in catalog("zh-CN").items():
        for name in ("{n}", "{minutes}", "{name}", "{total}", "{id}", "{reason}", "{page}", "{q}"):
            assert (name in msgid) == (name in text), f"{msgid!r} -> {text!r} changes {name}"
