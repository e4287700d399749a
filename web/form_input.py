"""Turning an HTML form post into form data the validator understands.

Inputs are named by their data path: `activity_name`, `period.start`, `budget_lines[2].amount`.
Values stay strings where the validator parses them itself (money, dates); numbers are
converted when they look like numbers and passed through as text otherwise, so the
validator reports "must be a number" at the right path instead of this module guessing.
Computed fields are never read from the post: the server recomputes them.
"""

from __future__ import annotations

import functools
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from forms.model import (
    AttachmentField,
    CheckboxField,
    ComputedField,
    DateRangeField,
    DateTimeField,
    DepartmentField,
    DetailTableField,
    FormSchema,
    MultiSelectField,
    NumberField,
    PersonField,
    RelatedInstanceField,
    SwitchField,
    is_layout,
)

_ROW = re.compile(r"^([a-z][a-z0-9_]*)\[(\d{1,5})\]\.([a-z][a-z0-9_]*)$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
MAX_FORM_ROWS = 5_000


def decode_form(
    schema: FormSchema, items: Iterable[tuple[str, str]], utc_offset: str = "+08:00"
) -> dict[str, Any]:
    """Form data from posted `(name, value)` pairs, shaped by `schema`."""
    values: dict[str, list[str]] = defaultdict(list)
    rows: dict[str, dict[int, dict[str, list[str]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for name, value in items:
        match = _ROW.match(name)
        if match:
            table, index, column = match.group(1), int(match.group(2)), match.group(3)
            if index < MAX_FORM_ROWS:
                rows[table][index][column].append(value)
        else:
            values[name].append(value)

    data: dict[str, Any] = {}
    for field in schema.fields:
        if is_layout(field) or isinstance(field, ComputedField):
            continue
        if isinstance(field, DetailTableField):
            if field.key in rows or field.key in values:
                data[field.key] = [
                    _row(field, rows[field.key][i], utc_offset) for i in sorted(rows[field.key])
                ]
            continue
        value = _value(field, field.key, values, utc_offset)
        if value is not None:
            data[field.key] = value
    return data


def _row(table: DetailTableField, cells: dict[str, list[str]], utc_offset: str) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for column in table.columns:
        if isinstance(column, ComputedField):
            continue
        value = _value(column, column.key, cells, utc_offset)
        if value is not None:
            row[column.key] = value
    return row


_MULTIPLE = (MultiSelectField, CheckboxField)
_PICKERS = (PersonField, DepartmentField, RelatedInstanceField)
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")


@functools.cache
def _kind(cls: type) -> str:
    """How a field class reads its posted text (decided once per class: a detail table of 500
    rows reads a thousand cells on every change)."""
    for kind, classes in (
        ("range", DateRangeField),
        ("switch", SwitchField),
        ("multiple", _MULTIPLE),
        ("picker", _PICKERS),
        ("number", NumberField),
        ("attachment", AttachmentField),
        ("datetime", DateTimeField),
    ):
        if issubclass(cls, classes):
            return kind
    return "text"


def _value(field: Any, name: str, values: dict[str, list[str]], utc_offset: str) -> Any:
    kind = _kind(type(field))
    if kind == "range":
        start, end = _last(values, f"{name}.start"), _last(values, f"{name}.end")
        return {"start": start, "end": end} if start or end else None
    posted = values.get(name)
    if kind == "switch":
        return None if posted is None else posted[-1] in ("true", "on", "1")
    if kind == "multiple" or (kind == "picker" and field.multiple):
        return None if posted is None else [v for v in posted if v]
    text = _last(values, name)
    if text is None or kind in ("text", "picker"):
        return text
    if kind == "number":
        return _number(text)
    if kind == "attachment":
        try:
            return json.loads(text)
        except ValueError:
            return text
    if _DATETIME.match(text):
        return text + (":00" if len(text) == 16 else "") + utc_offset
    return text


def _last(values: dict[str, list[str]], name: str) -> str | None:
    posted = values.get(name)
    if not posted:
        return None
    text = posted[-1].strip()
    return text or None


def _number(text: str) -> Any:
    if not _NUMBER.match(text):
        return text
    number = float(text)
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
