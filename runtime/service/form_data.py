"""Form data between the validator, the database and the engine.

Stored data is the validator's cleaned output as JSON (amounts and dates as strings). The
engine's conditions compare amounts as numbers, so `engine_form` turns stored money and
date values back into `Decimal` and `date`. `attachment_refs` finds the uploads the data
refers to, so that they can be linked to the instance.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import msgspec

from forms import FieldError, ValidationContext
from forms import model as m
from runtime.service.definitions import Definition
from runtime.service.errors import FormInvalid

_TITLE_LENGTH = 200
UNKNOWN_FIELD = "Unknown field."
"""The forms catalog's message for a key the form does not have (translated by it)."""


def validated(
    definition: Definition, raw: Mapping[str, Any], ctx: ValidationContext, mode: Literal["draft", "submit"]
) -> dict[str, Any]:
    """The cleaned data as it is stored (JSON values), or `FormInvalid` with every error."""
    result = definition.form.validate(raw, ctx, mode=mode)
    if result.errors:
        raise FormInvalid(result.errors)
    return as_stored(result.data)


def as_stored(data: Mapping[str, Any]) -> dict[str, Any]:
    stored: dict[str, Any] = msgspec.to_builtins(dict(data))
    return stored


def engine_form(schema: m.FormSchema, data: Mapping[str, Any]) -> dict[str, Any]:
    """Stored data with amounts as `Decimal` and dates as `date`, as branch conditions expect."""
    typed = dict(data)
    for field in m.value_fields(schema):
        value = typed.get(field.key)
        if value is None:
            continue
        if isinstance(field, m.DetailTableField) and isinstance(value, list):
            typed[field.key] = [_typed_row(field, row) for row in value]
        else:
            typed[field.key] = _typed(field, value)
    return typed


def _typed_row(table: m.DetailTableField, row: Any) -> Any:
    if not isinstance(row, dict):
        return row
    columns = {column.key: column for column in table.columns}
    return {key: _typed(columns.get(key), value) for key, value in row.items()}


def _typed(field: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(field, m.MoneyField) or (
        isinstance(field, m.ComputedField) and field.result_type == "money"
    ):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return value
    if isinstance(field, m.DateField) and isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(field, m.DateTimeField) and isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def attachment_refs(schema: m.FormSchema, data: Mapping[str, Any]) -> dict[str, str]:
    """Attachment uid -> the path of the value that names it (`attachments[0].id`)."""
    refs: dict[str, str] = {}
    for field in m.value_fields(schema):
        value = data.get(field.key)
        if isinstance(field, m.AttachmentField):
            _collect(value, field.key, refs)
        elif isinstance(field, m.DetailTableField) and isinstance(value, list):
            files = [c.key for c in field.columns if isinstance(c, m.AttachmentField)]
            for index, row in enumerate(value):
                if isinstance(row, dict):
                    for column in files:
                        _collect(row.get(column), f"{field.key}[{index}].{column}", refs)
    return refs


def _collect(value: Any, path: str, refs: dict[str, str]) -> None:
    if not isinstance(value, list):
        return
    for index, item in enumerate(value):
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            refs.setdefault(item["id"], f"{path}[{index}].id")


def title_of(definition: Definition, data: Mapping[str, Any]) -> str:
    """The request's title for lists: its first filled text field, else the template's name."""
    for field in m.value_fields(definition.schema):
        if isinstance(field, m.TextField):
            value = data.get(field.key)
            if isinstance(value, str) and value.strip():
                return value.strip()[:_TITLE_LENGTH]
    return definition.name_zh[:_TITLE_LENGTH]


def unknown_fields(definition: Definition, keys: Iterable[str], ctx: ValidationContext) -> list[FieldError]:
    """Errors for keys that are not input fields of the form (computed fields cannot be set)."""
    inputs = {
        field.key for field in m.value_fields(definition.schema) if not isinstance(field, m.ComputedField)
    }
    message = ctx.translate(UNKNOWN_FIELD)
    return [FieldError(path=key, message=message) for key in keys if key not in inputs]
