"""Chinese capital amounts (大写) and exact amount parsing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from forms import amount_in_words
from forms.money import parse_money

WORDS = [
    ("0.05", "伍分"),
    ("0.5", "伍角"),
    ("0.10", "壹角"),
    ("0", "零元整"),
    ("1.01", "壹元零壹分"),
    ("10.00", "壹拾元整"),
    ("20.5", "贰拾元零伍角"),
    ("325.04", "叁佰贰拾伍元零肆分"),
    ("1010", "壹仟零壹拾元整"),
    ("1680.32", "壹仟陆佰捌拾元零叁角贰分"),
    ("10001", "壹万零壹元整"),
    ("16409.02", "壹万陆仟肆佰零玖元零贰分"),
    ("100100", "壹拾万零壹佰元整"),
    ("107000.53", "壹拾万柒仟元零伍角叁分"),
    ("200000", "贰拾万元整"),
    ("1000000.10", "壹佰万元零壹角"),
    ("100000000", "壹亿元整"),
    ("100000000.01", "壹亿元零壹分"),
    ("100010000", "壹亿零壹万元整"),
    ("100001000", "壹亿零壹仟元整"),
    ("1000000000000", "壹万亿元整"),
    ("-12.30", "负壹拾贰元叁角"),
    ("9999999999999999.99", "玖仟玖佰玖拾玖万亿玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),
]


@pytest.mark.parametrize(("amount", "words"), WORDS)
def test_amount_in_words(amount: str, words: str) -> None:
    assert amount_in_words(Decimal(amount)) == words


def test_amount_in_words_accepts_int_and_str() -> None:
    assert amount_in_words(1010) == "壹仟零壹拾元整"
    assert amount_in_words("0.05") == "伍分"


@pytest.mark.parametrize("amount", ["0.001", "10000000000000000", "NaN", "Infinity"])
def test_amount_in_words_refuses_inexact(amount: str) -> None:
    with pytest.raises(ValueError):
        amount_in_words(Decimal(amount))


PARSED = [
    (Decimal("1.5"), Decimal("1.50")),
    (Decimal("1E+3"), Decimal("1000.00")),
    (7, Decimal("7.00")),
    ("0.07", Decimal("0.07")),
    ("-0.5", Decimal("-0.50")),
    (73647.12, Decimal("73647.12")),
    ("9999999999999.99", Decimal("9999999999999.99")),
]
REFUSED = [
    (Decimal("1.005"), "At most 2 decimal places."),
    (1.005, "At most 2 decimal places."),
    ("1.005", "Expected an amount, e.g. 1234.50."),
    ("1_000", "Expected an amount, e.g. 1234.50."),
    (" 1", "Expected an amount, e.g. 1234.50."),
    ("+1", "Expected an amount, e.g. 1234.50."),
    ("007", "Expected an amount, e.g. 1234.50."),
    (True, "Expected an amount, e.g. 1234.50."),
    (None, "Expected an amount, e.g. 1234.50."),
    (Decimal("NaN"), "Expected an amount, e.g. 1234.50."),
    (float("inf"), "Expected an amount, e.g. 1234.50."),
    (10**13, "The amount is out of range."),
    (Decimal("-1E+13"), "The amount is out of range."),
]


@pytest.mark.parametrize(("value", "amount"), PARSED)
def test_parse_money(value: object, amount: Decimal) -> None:
    parsed = parse_money(value)
    assert parsed == amount and str(parsed) == str(amount)


@pytest.mark.parametrize(("value", "message"), REFUSED)
def test_parse_money_refuses(value: object, message: str) -> None:
    assert parse_money(value) == message


def test_json_number_literals_are_exact() -> None:
    from tests.forms.conftest import context, field, form

    compiled = form(field("money", "a"), field("money", "b"), field("money", "c"), field("money", "d"))
    result = compiled.validate(b'{"a": 1e3, "b": 1.5, "c": -0.05, "d": 2.50e1}', context())
    assert result.ok, result.errors
    assert {key: str(value) for key, value in result.data.items()} == {
        "a": "1000.00",
        "b": "1.50",
        "c": "-0.05",
        "d": "25.00",
    }
    refused = compiled.validate(b'{"a": 12.345, "b": 1e13, "c": 0.10000000000000001}', context("en"))
    assert [(e.path, e.message) for e in refused.errors] == [
        ("a", "At most 2 decimal places."),
        ("b", "The amount is out of range."),
        ("c", "At most 2 decimal places."),
    ]
