"""Exact money: parsing submitted amounts, display, and Chinese capital amounts (大写).

Amounts are `Decimal` with at most 2 decimal places and a magnitude below 10^13 (ten
trillion yuan), so that every accepted amount is also exactly representable as the
shortest decimal form of a double, the form JavaScript clients send. No float arithmetic
happens here.
"""

from __future__ import annotations

import re
from decimal import Decimal

from babel.numbers import format_currency

from forms.i18n import N_, catalog_locale

CENT = Decimal("0.01")
MONEY_LIMIT = Decimal(10) ** 13
"""Exclusive bound on the magnitude of an amount."""
MONEY_STRING_PATTERN = r"^-?(0|[1-9][0-9]{0,12})(\.[0-9]{1,2})?$"
"""An amount sent as a string: plain digits, optional minus, at most 2 decimals."""
_MONEY_STRING = re.compile(MONEY_STRING_PATTERN)

EXPECTED_AMOUNT = N_("Expected an amount, e.g. 1234.50.")
TOO_MANY_DECIMALS = N_("At most 2 decimal places.")
AMOUNT_OUT_OF_RANGE = N_("The amount is out of range.")


def parse_money(value: object) -> Decimal | str:
    """`value` as an amount quantized to cents, or the msgid of what is wrong with it.

    Accepts a JSON number (an int, or the Decimal an exact JSON decoder makes of a
    fraction), a string matching `MONEY_STRING_PATTERN`, or a float (by its shortest repr).
    """
    if isinstance(value, bool):
        return EXPECTED_AMOUNT
    if isinstance(value, Decimal):
        if not value.is_finite():
            return EXPECTED_AMOUNT
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str):
        if not _MONEY_STRING.fullmatch(value):
            return EXPECTED_AMOUNT
        amount = Decimal(value)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return EXPECTED_AMOUNT
        amount = Decimal(repr(value))
    else:
        return EXPECTED_AMOUNT
    if abs(amount) >= MONEY_LIMIT:
        return AMOUNT_OUT_OF_RANGE
    cents = amount.quantize(CENT)
    if cents != amount:
        return TOO_MANY_DECIMALS
    return cents


def to_decimal(bound: int | float) -> Decimal:
    """A schema bound (JSON number) as the Decimal its author wrote, e.g. 0.01 -> 0.01."""
    return Decimal(bound) if isinstance(bound, int) else Decimal(repr(bound))


def format_money(amount: Decimal, currency: str, locale: str) -> str:
    """`amount` for display in messages, e.g. "¥200,000.00" (zh) or "CN¥200,000.00" (en)."""
    return format_currency(amount, currency, locale=catalog_locale(locale))


_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_SMALL_UNITS = ("", "拾", "佰", "仟")
_GROUP_UNITS = ("", "万", "亿", "万亿")
_WORDS_LIMIT = Decimal(10) ** 16


def amount_in_words(amount: Decimal | int | str) -> str:
    """The amount in Chinese capitals (大写金额), as written on cheques and vouchers.

    Follows the People's Bank of China rules for 大写: 元 then 整 when there are no cents;
    no 整 after 角 or 分; one 零 for a run of zeros inside the number; 零 after 元 when the
    yuan digit is zero and cents follow, or when 角 is zero and 分 is not. Negative
    amounts start with 负. Raises ValueError for more than 2 decimal places or 10^16 or more.

        0.05 -> 伍分;  1000000.10 -> 壹佰万元零壹角;  100000000 -> 壹亿元整
    """
    value = Decimal(amount) if not isinstance(amount, Decimal) else amount
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {amount!r}")
    if abs(value) >= _WORDS_LIMIT:
        raise ValueError(f"amount too large for capitals: {amount!r}")
    scaled = value * 100
    if scaled != scaled.to_integral_value():
        raise ValueError(f"more than 2 decimal places: {amount!r}")
    total_cents = int(scaled)
    sign = "负" if total_cents < 0 else ""
    yuan, cents = divmod(abs(total_cents), 100)
    jiao, fen = divmod(cents, 10)

    words = _integer_words(yuan)
    if cents == 0:
        return sign + (words or "零") + "元整"
    text = words + "元" if yuan else ""
    if jiao:
        if yuan and yuan % 10 == 0:
            text += "零"
        text += _DIGITS[jiao] + "角"
    elif yuan:
        text += "零"
    if fen:
        text += _DIGITS[fen] + "分"
    return sign + text


def _integer_words(number: int) -> str:
    """Capitals of a non-negative integer without the 元, "" for zero."""
    groups: list[int] = []
    while number:
        number, group = divmod(number, 10_000)
        groups.append(group)
    text = ""
    pending_zero = False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            pending_zero = bool(text)
            continue
        if text and (pending_zero or group < 1000):
            text += "零"
        text += _group_words(group) + _GROUP_UNITS[index]
        pending_zero = False
    return text


def _group_words(group: int) -> str:
    """Capitals of 1..9999, with 零 for inner zeros and none for trailing ones."""
    digits = [group // 1000, group // 100 % 10, group // 10 % 10, group % 10]
    text = ""
    zero = False
    for position, digit in enumerate(digits):
        if digit == 0:
            zero = bool(text)
            continue
        if zero:
            text += "零"
            zero = False
        text += _DIGITS[digit] + _SMALL_UNITS[3 - position]
    return text
