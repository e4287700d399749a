"""Per field type: the JSON shape of its value and the value checks msgspec cannot express.

`shape_of(field)` is the structural part (see `forms._shapes`): types, lengths, ranges,
options, file types; `required_shape(field)` the same for an always-required field.
`check_of(field)` returns a closure `check(value)` for what is left (money, text length
floor and pattern, distinct choices, date order, file-name convention), or None when
nothing is left: it returns the cleaned value, or a `Report` of issues (with the value to
keep, None when refused), so that the caller builds the error path only when needed.
`default_of(field)` resolves defaults per submission.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Sequence
from decimal import Context, Decimal, InvalidOperation
from itertools import repeat
from typing import Annotated, Any, Literal, NamedTuple

from msgspec import Meta

from forms import model as m
from forms._run import Run
from forms._shapes import INVALID, REQUIRED, ListOf, Node, Obj, Opaque, Problems, Scalar, walk
from forms.context import ValidationContext
from forms.i18n import N_
from forms.money import CENT, MONEY_LIMIT, TOO_MANY_DECIMALS, parse_money, to_decimal

Check = Callable[[Any], Any]

NUMBER_LIMIT = 10**15
"""Implicit bound on the magnitude of a `number` value."""
MULTIPLE_IDS_LIMIT = 100
FILE_ID_MAX_LENGTH = 200
FILE_NAME_MAX_LENGTH = 255

EXPECTED_TEXT = N_("Expected text.")
TOO_LONG = N_("At most {max} characters.")
TOO_SHORT = N_("At least {min} characters.")
PATTERN_MISMATCH = N_("The value does not have the expected format.")
EXPECTED_NUMBER = N_("Expected a number.")
EXPECTED_INTEGER = N_("Expected a whole number.")
BELOW_MIN = N_("Must be at least {min}.")
ABOVE_MAX = N_("Must be at most {max}.")
EXPECTED_DATE = N_("Expected a date as YYYY-MM-DD.")
EXPECTED_DATETIME = N_("Expected a date and time with a UTC offset, e.g. 2024-07-01T09:30:00+08:00.")
END_BEFORE_START = N_("The end date must not be before the start date.")
NOT_AN_OPTION = N_("Not one of the allowed options.")
TOO_MANY_OPTIONS = N_("Choose at most {max} options.")
TOO_FEW_OPTIONS = N_("Choose at least {min} options.")
DUPLICATE_OPTION = N_("Each option may be chosen only once.")
EXPECTED_BOOLEAN = N_("Expected true or false.")
EXPECTED_ID = N_("Expected an id of at most {max} characters.")
TOO_MANY_ENTRIES = N_("At most {max} entries.")
TOO_MANY_FILES = N_("At most {max} files.")
FILE_TOO_LARGE = N_("The file is too large: at most {max}.")
EXPECTED_SIZE = N_("Expected a file size in bytes.")
EXPECTED_FILE_NAME = N_("Expected a file name of 1 to 255 characters.")
EXPECTED_FILE_ID = N_("Expected a file id of 1 to 200 characters.")
FILE_TYPE_NOT_ALLOWED = N_("This file type is not allowed; allowed types: {types}.")
FILE_NAME_CONVENTION = N_("The file name does not follow the naming convention.")
TOO_MANY_ROWS = N_("At most {max} rows.")


# --------------------------------------------------------------------------- shapes


def shape_of(field: m.ValueField | m.ColumnField, *, submit: bool = False) -> Node:
    """The structural node of a field's value, as an optional attribute.

    `submit` selects the variant of detail-table rows whose always-required columns are
    structural (see `required_shape`).
    """
    if isinstance(field, m.TextField | m.TextareaField):
        limit = text_max_length(field)
        return Scalar(Annotated[str, Meta(max_length=limit)], _describe_text(limit))
    if isinstance(field, m.NumberField):
        return _number_shape(field)
    if isinstance(field, m.MoneyField | m.ComputedField):
        return Opaque()
    if isinstance(field, m.DateField):
        return Scalar(dt.date, lambda value: (EXPECTED_DATE, {}))
    if isinstance(field, m.DateTimeField):
        return Scalar(Annotated[dt.datetime, Meta(tz=True)], lambda value: (EXPECTED_DATETIME, {}))
    if isinstance(field, m.DateRangeField):
        date = Scalar(dt.date, lambda value: (EXPECTED_DATE, {}))
        return Obj(f"DateRange_{field.key}", {"start": (date, True), "end": (date, True)})
    if isinstance(field, m.SelectField | m.RadioField):
        return _choice_shape(field)
    if isinstance(field, m.MultiSelectField | m.CheckboxField):
        return ListOf(_choice_shape(field), len(field.options), TOO_MANY_OPTIONS)
    if isinstance(field, m.SwitchField):
        return Scalar(bool, lambda value: (EXPECTED_BOOLEAN, {}))
    if isinstance(field, m.PersonField | m.DepartmentField | m.RelatedInstanceField):
        ident = Scalar(
            Annotated[str, Meta(max_length=m.ID_MAX_LENGTH)],
            lambda value: (EXPECTED_ID, {"max": m.ID_MAX_LENGTH}),
        )
        return ListOf(ident, MULTIPLE_IDS_LIMIT, TOO_MANY_ENTRIES) if field.multiple else ident
    if isinstance(field, m.AttachmentField):
        return ListOf(_file_shape(field), field.max_count, TOO_MANY_FILES)
    if isinstance(field, m.DetailTableField):
        return ListOf(row_shape(field, submit=submit), field.max_rows, TOO_MANY_ROWS)
    raise TypeError(f"no value shape for {type(field).__name__}")


def row_shape(table: m.DetailTableField, *, submit: bool = False) -> Obj:
    """The shape of one row; on submit, columns that are always required must be filled."""
    return Obj(f"Row_{table.key}", attributes(table.columns, submit=submit))


def attributes(
    fields: Sequence[m.ValueField | m.ColumnField], *, submit: bool
) -> dict[str, tuple[Node, bool]]:
    """The `Obj` attributes of a form or row: required (and non-empty) where that is structural."""
    attrs: dict[str, tuple[Node, bool]] = {}
    for field in fields:
        node = required_shape(field) if submit else None
        attrs[field.key] = (node, True) if node is not None else (shape_of(field, submit=submit), False)
    return attrs


def required_shape(field: m.ValueField | m.ColumnField) -> Node | None:
    """The shape of an always-required field, filled: None, "" and [] refused by msgspec.

    None when "required" cannot be structural: the field is conditional or has a default
    (then the check runs after defaults and conditions), or its value is opaque (money).
    """
    if isinstance(field, m.ComputedField) or not field.required:
        return None
    if field.visible_when is not None or field.default is not None:
        return None
    node = shape_of(field, submit=True)
    if isinstance(node, Opaque):
        return None
    if isinstance(node, ListOf):
        return ListOf(node.item, node.max_items, node.too_many, min_items=1)
    if isinstance(node, Scalar) and holds_text_or_list(field):
        limit = (
            text_max_length(field) if isinstance(field, m.TextField | m.TextareaField) else m.ID_MAX_LENGTH
        )
        describe = node.describe
        return Scalar(
            Annotated[str, Meta(min_length=1, max_length=limit)],
            lambda value: (REQUIRED, {}) if value == "" else describe(value),
        )
    return node


def text_max_length(field: m.TextField | m.TextareaField) -> int:
    """The effective length cap: the schema's, or the default cap of the type."""
    if field.validation is not None and field.validation.max_length is not None:
        return field.validation.max_length
    return m.TEXT_MAX_LENGTH if isinstance(field, m.TextField) else m.TEXTAREA_MAX_LENGTH


def number_bounds(field: m.NumberField) -> tuple[int | float, int | float]:
    """Inclusive bounds of a number field: the schema's, within +-10^15."""
    low: int | float = -NUMBER_LIMIT
    high: int | float = NUMBER_LIMIT
    if field.validation is not None:
        if field.validation.min is not None:
            low = max(low, field.validation.min)
        if field.validation.max is not None:
            high = min(high, field.validation.max)
    if field.integer:
        low, high = math.ceil(low), math.floor(high)
    return low, high


def _number_shape(field: m.NumberField) -> Scalar:
    low, high = number_bounds(field)
    whole = Annotated[int, Meta(ge=math.ceil(low), le=math.floor(high))]
    type_: Any = whole if field.integer else Annotated[float, Meta(ge=low, le=high)] | whole

    def describe(value: Any) -> tuple[str, dict[str, object]]:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            return EXPECTED_NUMBER, {}
        if field.integer and not isinstance(value, int):
            return EXPECTED_INTEGER, {}
        if value < low:
            return BELOW_MIN, {"min": show_number(low)}
        return ABOVE_MAX, {"max": show_number(high)}

    return Scalar(type_, describe)


def _describe_text(limit: int) -> Callable[[Any], tuple[str, dict[str, object]]]:
    def describe(value: Any) -> tuple[str, dict[str, object]]:
        if type(value) is not str:
            return EXPECTED_TEXT, {}
        return TOO_LONG, {"max": limit}

    return describe


def _choice_shape(field: m.ChoiceField) -> Scalar:
    values = tuple(option.value for option in field.options)
    return Scalar(Literal.__getitem__(values), lambda value: (NOT_AN_OPTION, {}))


def file_types_pattern(allowed_types: Sequence[str], end: str = r"\Z") -> str:
    r"""A regex for names ending in one of the extensions, any letter case: `\.([pP][dD][fF])\Z`.

    Spelled without flags so that JSON Schema (ECMA 262) reads it too; there `end` is "$".
    """
    spelled = "|".join(
        "".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in ext) for ext in allowed_types
    )
    return rf"\.({spelled}){end}"


def _file_shape(field: m.AttachmentField) -> Obj:
    def describe_size(value: Any) -> tuple[str, dict[str, object]]:
        if type(value) is int and value > field.max_size:
            return FILE_TOO_LARGE, {"max": show_size(field.max_size)}
        return EXPECTED_SIZE, {}

    allowed_text = ", ".join(field.allowed_types)

    def describe_name(value: Any) -> tuple[str, dict[str, object]]:
        if type(value) is str and 0 < len(value) <= FILE_NAME_MAX_LENGTH:
            return FILE_TYPE_NOT_ALLOWED, {"types": allowed_text}
        return EXPECTED_FILE_NAME, {}

    name = Annotated[
        str,
        Meta(min_length=1, max_length=FILE_NAME_MAX_LENGTH, pattern=file_types_pattern(field.allowed_types)),
    ]

    return Obj(
        f"File_{field.key}",
        {
            "id": (
                Scalar(
                    Annotated[str, Meta(min_length=1, max_length=FILE_ID_MAX_LENGTH)],
                    lambda value: (EXPECTED_FILE_ID, {}),
                ),
                True,
            ),
            "name": (Scalar(name, describe_name), True),
            "size": (Scalar(Annotated[int, Meta(ge=0, le=field.max_size)], describe_size), True),
            "content_type": (
                Scalar(Annotated[str, Meta(max_length=255)], lambda value: (EXPECTED_TEXT, {})),
                False,
            ),
        },
    )


def show_number(value: int | float) -> str:
    """A bound as people write it: 100, 0.5, 1000000000000000 (no exponent)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return format(to_decimal(value), "f")


def show_size(size: int) -> str:
    """A byte count as "10 MB", "500 KB" or "900 bytes"."""
    for unit, name in ((1024**3, "GB"), (1024**2, "MB"), (1024, "KB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size} bytes"


# --------------------------------------------------------------------------- value checks


class Issue(NamedTuple):
    """A problem a value check found, at the value's path plus `suffix` (e.g. "[0].name").

    The message is `text` (the schema's own, both languages) when set, else `msgid`.
    """

    msgid: str
    params: dict[str, object]
    text: m.LocalizedText | None = None
    suffix: str = ""
    warning: bool = False


class Report(NamedTuple):
    """What a check returns when it has something to say: the value (None if refused) and why."""

    value: Any
    issues: list[Issue]


def report(result: Report, path: str, run: Run) -> Any:
    """Record a check's issues at `path` and return the value to keep."""
    for issue in result.issues:
        where = path + issue.suffix
        if issue.text is not None:
            (run.warn_text if issue.warning else run.error_text)(where, issue.text)
        else:
            (run.warn if issue.warning else run.error)(where, issue.msgid, **issue.params)
    return result.value


def refuse(msgid: str, **params: object) -> Report:
    """The report of a refused value."""
    return Report(None, [Issue(msgid, params)])


def check_of(field: m.ValueField | m.ColumnField) -> Check | None:
    """The value-level check of a field beyond its shape, or None if there is none.

    A check takes a non-empty value and returns the cleaned value, or a `Report`.
    """
    if isinstance(field, m.TextField | m.TextareaField):
        return _text_check(field)
    if isinstance(field, m.MoneyField):
        return _money_check(field)
    if isinstance(field, m.DateRangeField):
        return _date_range_check
    if isinstance(field, m.MultiSelectField | m.CheckboxField):
        return _multi_check(field)
    if isinstance(field, m.AttachmentField):
        return _file_check(field)
    return None


def _text_check(field: m.TextField | m.TextareaField) -> Check | None:
    rules = field.validation
    if rules is None or (not rules.min_length and rules.pattern is None):
        return None
    shortest = rules.min_length or 0
    pattern = re.compile(rules.pattern) if rules.pattern is not None else None
    mismatch = Report(None, [Issue(PATTERN_MISMATCH, {}, rules.pattern_message)])

    def check(value: str) -> str | Report:
        if len(value) < shortest:
            return refuse(TOO_SHORT, min=shortest)
        if pattern is not None and pattern.search(value) is None:
            return mismatch
        return value

    return check


def money_bounds(field: m.MoneyField) -> tuple[Decimal | None, Decimal | None]:
    """The schema's inclusive bounds of a money field, as the Decimals its author wrote."""
    rules = field.validation
    low = to_decimal(rules.min) if rules is not None and rules.min is not None else None
    high = to_decimal(rules.max) if rules is not None and rules.max is not None else None
    return low, high


_to_cents = Context(prec=15, traps=[InvalidOperation]).quantize


def bulk_money_check(field: m.MoneyField) -> Callable[[list[Any]], list[Decimal] | None]:
    """A check of a whole money column at once, for the common case where all is well.

    Returns the amounts as Decimals with 2 places when every cell is a JSON number (int,
    or Decimal from the exact decoder) within range with at most 2 decimals; None
    otherwise (then the cells are checked one by one, which finds and words the
    problems). The loops run in C; amounts already written with 2 decimals are kept as
    they are, without allocating.
    """
    low, high = money_bounds(field)
    decimal_only = {Decimal}
    numbers = {Decimal, int}
    two_places = CENT.same_quantum

    def check(cells: list[Any]) -> list[Decimal] | None:
        types = set(map(type, cells))
        if types == decimal_only and all(map(two_places, cells)):
            cents = cells
            if min(cents) <= -MONEY_LIMIT or max(cents) >= MONEY_LIMIT:
                return None
        elif types <= numbers:
            try:
                # With 15 digits of precision, quantizing to cents fails from 10^13 up.
                cents = list(map(_to_cents, cells, repeat(CENT)))
            except ArithmeticError:
                return None
            if cents != cells:
                return None
        else:
            return None
        if (low is not None and min(cents) < low) or (high is not None and max(cents) > high):
            return None
        return cents

    return check


def _money_check(field: m.MoneyField) -> Check:
    low, high = money_bounds(field)

    def check(value: Any) -> Decimal | Report:
        # The common case inline: a JSON number decoded exactly, in range, at most 2 decimals.
        if type(value) is Decimal and value.is_finite() and -MONEY_LIMIT < value < MONEY_LIMIT:
            amount = value.quantize(CENT)
            if amount != value:
                return refuse(TOO_MANY_DECIMALS)
        else:
            parsed = parse_money(value)
            if type(parsed) is str:
                return refuse(parsed)
            amount = parsed  # type: ignore[assignment]
        if low is not None and amount < low:
            return refuse(BELOW_MIN, min=low)
        if high is not None and amount > high:
            return refuse(ABOVE_MAX, max=high)
        return amount

    return check


def _date_range_check(value: dict[str, Any]) -> dict[str, Any] | Report:
    start, end = value["start"], value["end"]
    if start is not None and end is not None and end < start:
        return Report(None, [Issue(END_BEFORE_START, {}, suffix=".end")])
    return value


def _multi_check(field: m.MultiSelectField | m.CheckboxField) -> Check:
    rules = field.validation
    fewest = rules.min_length if rules is not None and rules.min_length else 0
    most = rules.max_length if rules is not None and rules.max_length is not None else None

    def check(value: list[str]) -> list[str] | Report:
        if len(set(value)) != len(value):
            return refuse(DUPLICATE_OPTION)
        if len(value) < fewest:
            return refuse(TOO_FEW_OPTIONS, min=fewest)
        if most is not None and len(value) > most:
            return refuse(TOO_MANY_OPTIONS, max=most)
        return value

    return check


def _file_check(field: m.AttachmentField) -> Check | None:
    """The file-name convention; the file type is part of the shape (`file_types_pattern`)."""
    if field.name_pattern is None:
        return None
    pattern = re.compile(field.name_pattern)
    warning = field.name_pattern_policy == "warn"
    message = field.name_pattern_message

    def check(value: list[dict[str, Any] | None]) -> list[dict[str, Any] | None] | Report:
        issues = [
            Issue(FILE_NAME_CONVENTION, {}, message, f"[{index}].name", warning)
            for index, item in enumerate(value)
            if item is not None and item["name"] is not None and pattern.search(item["name"]) is None
        ]
        if not issues:
            return value
        return Report(value if warning else None, issues)

    return check


# --------------------------------------------------------------------------- emptiness, defaults


def is_empty(value: Any) -> bool:
    """None, "" and [] are empty: a required field holding them is reported."""
    return value is None or ((type(value) is str or type(value) is list) and not value)


def is_scalar(field: m.ValueField | m.ColumnField) -> bool:
    """True when the field's value is never a list or dict (so it can be a memo key as is)."""
    if isinstance(field, m.PersonField | m.DepartmentField | m.RelatedInstanceField):
        return not field.multiple
    return not isinstance(
        field,
        m.DateRangeField | m.MultiSelectField | m.CheckboxField | m.AttachmentField | m.DetailTableField,
    )


def holds_text_or_list(field: m.ValueField | m.ColumnField) -> bool:
    """True when the field's value is a str or list, so that "" / [] mean empty."""
    if isinstance(field, m.PersonField | m.DepartmentField | m.RelatedInstanceField):
        return True
    return isinstance(
        field,
        m.TextField
        | m.TextareaField
        | m.MultiSelectField
        | m.CheckboxField
        | m.AttachmentField
        | m.DetailTableField,
    )


Default = Callable[[ValidationContext], Any]


def default_of(field: m.ValueField | m.ColumnField) -> Default | None:
    """A function giving the field's default for a submission, None if it has none.

    Raises ValueError (with a msgid) when the default does not suit the field: the
    design-time check reports it.
    """
    if isinstance(field, m.ComputedField | m.DetailTableField) or field.default is None:
        return None
    default = field.default
    if isinstance(default, str) and default in m.DEFAULT_TOKENS:
        return _token_default(field, default)
    problems = Problems()
    value = walk(shape_of(field), default, field.key, problems)
    if value is INVALID or problems.errors:
        raise ValueError(problems.errors[0][1] if problems.errors else REQUIRED)
    check = check_of(field)
    if check is not None and not is_empty(value):
        value = check(value)
        if type(value) is Report:
            refusals = [issue for issue in value.issues if not issue.warning]
            if refusals:
                raise ValueError(refusals[0].msgid)
            value = value.value
    if isinstance(value, list):
        return lambda ctx: list(value)
    if isinstance(value, dict):
        return lambda ctx: dict(value)
    return lambda ctx: value


BAD_TOKEN = N_("This default does not suit a field of this type.")


def _token_default(field: m.ValueField | m.ColumnField, token: str) -> Default:
    multiple = getattr(field, "multiple", False)

    def wrap(value: Any) -> Any:
        return None if value is None else ([value] if multiple else value)

    if token == "$today" and isinstance(field, m.DateField):
        return lambda ctx: ctx.today
    if token == "$current_user":
        if isinstance(field, m.PersonField):
            return lambda ctx: wrap(ctx.user.id if ctx.user is not None else None)
        if isinstance(field, m.TextField):
            return lambda ctx: ctx.user.name or None if ctx.user is not None else None
    if token == "$current_department" and isinstance(field, m.DepartmentField):
        return lambda ctx: wrap(ctx.user.department_id if ctx.user is not None else None)
    raise ValueError(BAD_TOKEN)
