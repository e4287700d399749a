"""Turning an HTML form post into form data the validator understands.

Inputs are named by their data path: `activity_name`, `period.start`, `budget_lines[2].amount`.
Values stay strings where the validator parses them itself (money, dates); numbers are
converted when they look like numbers and passed through as text otherwise, so the
validator reports "must be a number" at the right path instead of this module guessing.
Computed fields are never read from the post: the server recomputes them.
"""

from __future__ import annotations

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


def _value(field: Any, name: str, values: dict[str, list[str]], utc_offset: str) -> Any:
    if isinstance(field, DateRangeField):
        start, end = _last(values, f"{name}.start"), _last(values, f"{name}.end")
        return {"start": start, "end": end} if start or end else None
    posted = values.get(name)
    if isinstance(field, SwitchField):
        return None if posted is None else posted[-1] in ("true", "on", "1")
    if isinstance(field, MultiSelectField | CheckboxField) or (
        isinstance(field, PersonField | DepartmentField | RelatedInstanceField) and field.multiple
    ):
        return None if posted is None else [v for v in posted if v]
    text = _last(values, name)
    if text is None:
        return None
    if isinstance(field, NumberField):
        return _number(text)
    if isinstance(field, AttachmentField):
        try:
            return json.loads(text)
        except ValueError:
            return text
    if isinstance(field, DateTimeField) and re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$", text):
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
