"""Messages: every msgid marked in forms/ has a Chinese translation in the Babel catalog."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir

from forms.i18n import N_, catalog_locale, translator

FORMS = Path(__file__).resolve().parents[2] / "forms"


def marked_msgids() -> set[str]:
    return {
        str(message[2]) for message in extract_from_dir(str(FORMS), keywords={"N_": None}, comment_tags=())
    }


def test_every_msgid_is_translated() -> None:
    chinese = translator("zh-CN")
    msgids = marked_msgids()
    assert len(msgids) > 50
    missing = sorted(msgid for msgid in msgids if chinese(msgid) == msgid)
    assert missing == []


def test_placeholders_survive_translation() -> None:
    chinese = translator("zh-CN")
    for msgid in marked_msgids():
        names = {part.split("}")[0] for part in msgid.split("{")[1:]}
        assert {part.split("}")[0] for part in chinese(msgid).split("{")[1:]} == names, msgid


def test_locales() -> None:
    assert catalog_locale("zh-CN") == catalog_locale("zh_Hans") == catalog_locale("ZH") == "zh_CN"
    assert catalog_locale("en-US") == catalog_locale("fr") == "en"
    assert translator("en")(N_("This field is required.")) == "This field is required."
    assert translator("zh-CN").format("At most {max} characters.", max=3) == "最多 3 个字符。"
    assert translator("zh-CN")("a message nobody wrote") == "a message nobody wrote"
