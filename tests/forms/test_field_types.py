"""Every field type with good and bad values: the exact error path and message, en and zh."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, NamedTuple

import pytest

from tests.forms.conftest import context, errors, field, form, options, text

MIB = 1024 * 1024
REQUIRED = ("This field is required.", "此项为必填项。")


class Case(NamedTuple):
    name: str
    field: dict[str, Any]
    value: Any
    expected: list[tuple[str, str, str]]  # (path, English message, Chinese message)


def ok(name: str, field_: dict[str, Any], value: Any) -> Case:
    return Case(name, field_, value, [])


def bad(name: str, field_: dict[str, Any], value: Any, path: str, en: str, zh: str) -> Case:
    return Case(name, field_, value, [(path, en, zh)])


TEXT = field("text", "f")
PHONE = field(
    "text",
    "f",
    validation={
        "pattern": r"^1[3-9][0-9]{9}$",
        "pattern_message": text("请输入手机号码", "Enter a mobile number"),
    },
)
NUMBER = field("number", "f", validation={"min": 1, "max": 10})
INTEGER = field("number", "f", integer=True)
MONEY = field("money", "f", validation={"min": 0.01})
CHOICE = options("a", "b")
FILES = field("attachment", "f", max_count=2)
FILE = {"id": "obj-1", "name": "plan.pdf", "size": 1000}

CASES = [
    # text and textarea
    ok("text", TEXT, "abc"),
    ok("text empty", TEXT, ""),
    ok("text null", TEXT, None),
    bad("text number", TEXT, 5, "f", "Expected text.", "应为文本。"),
    bad("text default cap", TEXT, "x" * 2001, "f", "At most 2000 characters.", "最多 2000 个字符。"),
    ok("text at cap", TEXT, "字" * 2000),
    bad(
        "text max_length",
        field("text", "f", validation={"max_length": 5}),
        "abcdef",
        "f",
        "At most 5 characters.",
        "最多 5 个字符。",
    ),
    bad(
        "text min_length",
        field("text", "f", validation={"min_length": 3}),
        "ab",
        "f",
        "At least 3 characters.",
        "至少 3 个字符。",
    ),
    ok("text min_length empty", field("text", "f", validation={"min_length": 3}), ""),
    bad(
        "text pattern",
        field("text", "f", validation={"pattern": "^[0-9]+$"}),
        "12a",
        "f",
        "The value does not have the expected format.",
        "格式不正确。",
    ),
    bad("text pattern message", PHONE, "12345", "f", "Enter a mobile number", "请输入手机号码"),
    ok("text pattern", PHONE, "13800138000"),
    bad(
        "textarea default cap",
        field("textarea", "f"),
        "x" * 20_001,
        "f",
        "At most 20000 characters.",
        "最多 20000 个字符。",
    ),
    ok("textarea", field("textarea", "f"), "第一行\n第二行"),
    # number
    ok("number int", NUMBER, 5),
    ok("number float", NUMBER, 5.5),
    bad("number string", NUMBER, "5", "f", "Expected a number.", "应为数字。"),
    bad("number bool", NUMBER, True, "f", "Expected a number.", "应为数字。"),
    bad("number below", NUMBER, 0, "f", "Must be at least 1.", "不能小于 1。"),
    bad("number above", NUMBER, 10.5, "f", "Must be at most 10.", "不能大于 10。"),
    bad(
        "number implicit cap",
        INTEGER,
        10**16,
        "f",
        "Must be at most 1000000000000000.",
        "不能大于 1000000000000000。",
    ),
    bad("integer fraction", INTEGER, 2.5, "f", "Expected a whole number.", "应为整数。"),
    ok("integer", INTEGER, -3),
    # money
    ok("money number", MONEY, 1234.5),
    ok("money string", MONEY, "1234.50"),
    ok("money integer", MONEY, 10),
    bad("money 3 decimals", MONEY, 1.234, "f", "At most 2 decimal places.", "最多 2 位小数。"),
    bad(
        "money 3 decimals string",
        MONEY,
        "1.234",
        "f",
        "Expected an amount, e.g. 1234.50.",
        "应为金额，例如 1234.50。",
    ),
    bad(
        "money grouping", MONEY, "1,000", "f", "Expected an amount, e.g. 1234.50.", "应为金额，例如 1234.50。"
    ),
    bad("money NaN", MONEY, "NaN", "f", "Expected an amount, e.g. 1234.50.", "应为金额，例如 1234.50。"),
    bad("money bool", MONEY, True, "f", "Expected an amount, e.g. 1234.50.", "应为金额，例如 1234.50。"),
    bad("money list", MONEY, [1], "f", "Expected an amount, e.g. 1234.50.", "应为金额，例如 1234.50。"),
    bad("money too large", MONEY, 1e13, "f", "The amount is out of range.", "金额超出范围。"),
    bad("money below min", MONEY, "0.00", "f", "Must be at least 0.01.", "不能小于 0.01。"),
    # date, datetime, date range
    ok("date", field("date", "f"), "2024-02-29"),
    bad(
        "date invalid day",
        field("date", "f"),
        "2024-02-30",
        "f",
        "Expected a date as YYYY-MM-DD.",
        "应为日期，格式为 YYYY-MM-DD。",
    ),
    bad(
        "date compact",
        field("date", "f"),
        "20240101",
        "f",
        "Expected a date as YYYY-MM-DD.",
        "应为日期，格式为 YYYY-MM-DD。",
    ),
    bad(
        "date number",
        field("date", "f"),
        20240101,
        "f",
        "Expected a date as YYYY-MM-DD.",
        "应为日期，格式为 YYYY-MM-DD。",
    ),
    ok("datetime", field("datetime", "f"), "2024-07-01T09:30:00+08:00"),
    bad(
        "datetime without offset",
        field("datetime", "f"),
        "2024-07-01T09:30:00",
        "f",
        "Expected a date and time with a UTC offset, e.g. 2024-07-01T09:30:00+08:00.",
        "应为带时区的日期时间，例如 2024-07-01T09:30:00+08:00。",
    ),
    ok("date range", field("date_range", "f"), {"start": "2024-07-01", "end": "2024-07-01"}),
    bad(
        "date range reversed",
        field("date_range", "f"),
        {"start": "2024-07-03", "end": "2024-07-01"},
        "f.end",
        "The end date must not be before the start date.",
        "结束日期不能早于开始日期。",
    ),
    bad("date range missing end", field("date_range", "f"), {"start": "2024-07-03"}, "f.end", *REQUIRED),
    bad(
        "date range extra key",
        field("date_range", "f"),
        {"start": "2024-07-01", "end": "2024-07-02", "days": 2},
        "f.days",
        "Unknown field.",
        "未知字段。",
    ),
    bad(
        "date range not object",
        field("date_range", "f"),
        "2024-07-01",
        "f",
        "Expected an object.",
        "应为对象。",
    ),
    # choices
    ok("select", field("select", "f", options=CHOICE), "a"),
    bad(
        "select unknown",
        field("select", "f", options=CHOICE),
        "z",
        "f",
        "Not one of the allowed options.",
        "不是可选的选项。",
    ),
    bad(
        "radio number",
        field("radio", "f", options=CHOICE),
        1,
        "f",
        "Not one of the allowed options.",
        "不是可选的选项。",
    ),
    ok("multi_select", field("multi_select", "f", options=CHOICE), ["b", "a"]),
    ok("multi_select empty", field("multi_select", "f", options=CHOICE, validation={"min_length": 2}), []),
    bad(
        "multi_select unknown",
        field("multi_select", "f", options=CHOICE),
        ["a", "z"],
        "f[1]",
        "Not one of the allowed options.",
        "不是可选的选项。",
    ),
    bad(
        "multi_select twice",
        field("multi_select", "f", options=CHOICE),
        ["a", "a"],
        "f",
        "Each option may be chosen only once.",
        "每个选项只能选择一次。",
    ),
    bad(
        "multi_select not list",
        field("multi_select", "f", options=CHOICE),
        "a",
        "f",
        "Expected a list.",
        "应为列表。",
    ),
    bad(
        "checkbox too many",
        field("checkbox", "f", options=CHOICE),
        ["a", "b", "a"],
        "f",
        "Choose at most 2 options.",
        "最多选择 2 项。",
    ),
    bad(
        "checkbox too few",
        field("checkbox", "f", options=options("a", "b", "c"), validation={"min_length": 2}),
        ["a"],
        "f",
        "Choose at least 2 options.",
        "至少选择 2 项。",
    ),
    # switch
    ok("switch", field("switch", "f"), False),
    bad("switch string", field("switch", "f"), "true", "f", "Expected true or false.", "应为是或否。"),
    bad("switch number", field("switch", "f"), 1, "f", "Expected true or false.", "应为是或否。"),
    # ids
    ok("person", field("person", "f"), "u-1001"),
    bad(
        "person number",
        field("person", "f"),
        1001,
        "f",
        "Expected an id of at most 64 characters.",
        "应为不超过 64 个字符的标识。",
    ),
    bad(
        "department too long",
        field("department", "f"),
        "d" * 65,
        "f",
        "Expected an id of at most 64 characters.",
        "应为不超过 64 个字符的标识。",
    ),
    ok("department multiple", field("department", "f", multiple=True), ["d-1", "d-2"]),
    bad(
        "person multiple not list",
        field("person", "f", multiple=True),
        "u-1",
        "f",
        "Expected a list.",
        "应为列表。",
    ),
    ok(
        "related instance",
        field("related_instance", "f", template_keys=["marketing-activity"]),
        "FL202406001",
    ),
    # attachments
    ok("attachment", FILES, [FILE]),
    bad(
        "attachment too big",
        FILES,
        [{**FILE, "size": 11 * MIB}],
        "f[0].size",
        "The file is too large: at most 10 MB.",
        "文件过大：不能超过 10 MB。",
    ),
    bad(
        "attachment type",
        FILES,
        [{**FILE, "name": "setup.exe"}],
        "f[0].name",
        "This file type is not allowed; allowed types: pdf, doc, docx, xls, xlsx, jpg, png.",
        "不允许的文件类型；允许的类型：pdf, doc, docx, xls, xlsx, jpg, png。",
    ),
    ok("attachment type any case", FILES, [{**FILE, "name": "SCAN.JPG"}]),
    bad("attachment no id", FILES, [{"name": "a.pdf", "size": 1}], "f[0].id", *REQUIRED),
    bad(
        "attachment extra key",
        FILES,
        [{**FILE, "url": "http://x"}],
        "f[0].url",
        "Unknown field.",
        "未知字段。",
    ),
    bad("attachment too many", FILES, [FILE, FILE, FILE], "f", "At most 2 files.", "最多 2 个文件。"),
    bad("attachment not list", FILES, FILE, "f", "Expected a list.", "应为列表。"),
    bad(
        "attachment name refused",
        field("attachment", "f", name_pattern=r"_\d{8}\.", name_pattern_policy="refuse"),
        [FILE],
        "f[0].name",
        "The file name does not follow the naming convention.",
        "文件名不符合命名规范。",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_value(case: Case, locale: str) -> None:
    compiled = form(case.field)
    expected = [(path, en if locale == "en" else zh) for path, en, zh in case.expected]
    assert errors(compiled, {"f": case.value}, locale) == expected


REQUIRED_CASES = [
    ("text", {}, [None, ""]),
    ("textarea", {}, [None, ""]),
    ("number", {}, [None]),
    ("money", {}, [None]),
    ("date", {}, [None]),
    ("datetime", {}, [None]),
    ("date_range", {}, [None]),
    ("select", {"options": CHOICE}, [None]),
    ("radio", {"options": CHOICE}, [None]),
    ("multi_select", {"options": CHOICE}, [None, []]),
    ("checkbox", {"options": CHOICE}, [None, []]),
    ("switch", {}, [None]),
    ("person", {}, [None, ""]),
    ("department", {"multiple": True}, [None, []]),
    ("related_instance", {}, [None, ""]),
    ("attachment", {}, [None, []]),
    ("detail_table", {"columns": [field("text", "c")]}, [None, []]),
]


@pytest.mark.parametrize(("type_", "settings", "empties"), REQUIRED_CASES, ids=[c[0] for c in REQUIRED_CASES])
def test_required_when_missing_or_empty(type_: str, settings: dict[str, Any], empties: list[Any]) -> None:
    compiled = form(field(type_, "f", required=True, **settings))
    assert errors(compiled, {}) == [("f", "This field is required.")]
    assert errors(compiled, {}, "zh-CN") == [("f", "此项为必填项。")]
    for empty in empties:
        assert errors(compiled, {"f": empty}) == [("f", "This field is required.")], empty
    assert errors(compiled, {}, mode="draft") == []


def test_cleaned_values_are_typed() -> None:
    compiled = form(
        field("money", "amount"),
        field("date", "day"),
        field("datetime", "at"),
        field("date_range", "period"),
        field("number", "count", integer=True),
    )
    result = compiled.validate(
        b'{"amount": 12.5, "day": "2024-07-01", "at": "2024-07-01T09:30:00+08:00",'
        b' "period": {"start": "2024-07-01", "end": "2024-07-02"}, "count": 3}',
        context(),
    )
    assert result.ok
    assert result.data["amount"] == Decimal("12.50")
    assert str(result.data["amount"]) == "12.50"
    assert result.data["day"] == dt.date(2024, 7, 1)
    assert result.data["at"] == dt.datetime(2024, 7, 1, 1, 30, tzinfo=dt.UTC)
    assert result.data["period"] == {"start": dt.date(2024, 7, 1), "end": dt.date(2024, 7, 2)}
    assert result.data["count"] == 3


def test_money_is_exact_from_json_numbers() -> None:
    compiled = form(field("money", "a"), field("money", "b"))
    result = compiled.validate(b'{"a": 0.1, "b": 73647.12}', context())
    assert result.data == {"a": Decimal("0.10"), "b": Decimal("73647.12")}


def test_computed_value_submitted_is_ignored() -> None:
    compiled = form(field("number", "a"), field("computed", "double_a", formula="a * 2"))
    result = compiled.validate(b'{"a": 4, "double_a": 1000}', context())
    assert result.ok
    assert result.data["double_a"] == 8


def test_layout_fields_carry_no_value() -> None:
    compiled = form({"type": "section", "key": "head", "label": text("标题")}, field("text", "f"))
    assert errors(compiled, {"head": "x"}) == [("head", "Unknown field.")]
    assert "head" not in compiled.validate(b"{}", context()).data


def test_file_name_convention_warns() -> None:
    compiled = form(
        field(
            "attachment",
            "f",
            name_pattern=r"_\d{8}\.",
            name_pattern_message=text("文件名应含8位日期", "Put the date in the file name"),
        )
    )
    result = compiled.validate(b'{"f": [{"id": "o", "name": "plan.pdf", "size": 1}]}', context("en"))
    assert result.ok
    assert [(w.path, w.message) for w in result.warnings] == [("f[0].name", "Put the date in the file name")]
    assert result.data["f"] == [{"id": "o", "name": "plan.pdf", "size": 1, "content_type": None}]
