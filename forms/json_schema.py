"""Export a form version as a JSON Schema (2020-12) document of its submitted data.

The export states what JSON Schema can: types, lengths, ranges, options, patterns, list
sizes, unknown keys, unconditional `required`. It cannot state CEL conditions, computed
values, rules, totals that must match, date ranges whose end precedes the start, or the
decimals of money sent as a number, so a document valid here may still be refused by
`CompiledForm.validate`; a document refused here is refused there too.

Money is exported as `"type": ["string", "number"]`: a string of at most 2 decimals
(`pattern` applies to strings only) or a JSON number within the range (bounds apply to
numbers only). `multipleOf: 0.01` is deliberately not used: validators that divide floats
(the `jsonschema` package) wrongly refuse about one 2-decimal amount in seven. JSON Schema
has no exact way to limit the decimals of a JSON number, so that check stays with the
validator, as do the min/max of money sent as a string.
"""

from __future__ import annotations

from typing import Any

from forms import model as m
from forms._values import (
    FILE_ID_MAX_LENGTH,
    FILE_NAME_MAX_LENGTH,
    MULTIPLE_IDS_LIMIT,
    file_types_pattern,
    number_bounds,
    text_max_length,
)
from forms.money import MONEY_LIMIT, MONEY_STRING_PATTERN, to_decimal

DIALECT = "https://json-schema.org/draft/2020-12/schema"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def to_json_schema(schema: m.FormSchema) -> dict[str, Any]:
    """The JSON Schema document of data submitted to `schema` (submit mode)."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in m.value_fields(schema):
        properties[field.key] = _property(field)
        if _always_required(field):
            required.append(field.key)
    if any(isinstance(field, m.DetailTableField) and field.totals for field in schema.fields):
        properties["totals"] = {"readOnly": True, "description": "Recomputed on the server; ignored."}
    document: dict[str, Any] = {
        "$schema": DIALECT,
        "$id": f"urn:formflow:form:{schema.key}:{schema.version}",
        "title": schema.title.zh,
        "description": schema.title.en,
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        document["required"] = required
    return document


def _always_required(field: m.ValueField | m.ColumnField) -> bool:
    if isinstance(field, m.ComputedField):
        return False
    if isinstance(field, m.DetailTableField) and field.min_rows > 0:
        return field.visible_when is None
    return field.required and field.visible_when is None and field.default is None


def _property(field: m.ValueField | m.ColumnField) -> dict[str, Any]:
    if isinstance(field, m.ComputedField):
        return {"readOnly": True, "title": field.label.zh, "description": "Computed on the server; ignored."}
    value = _value_schema(field)
    value = _non_empty(field, value) if _always_required(field) else _nullable(value)
    return {"title": field.label.zh, **value}


def _nullable(value: dict[str, Any]) -> dict[str, Any]:
    """`value` or null, without `anyOf` where possible (validators try anyOf branches in turn)."""
    kind = value.get("type")
    if isinstance(kind, str):
        return {**value, "type": [kind, "null"]}
    if isinstance(kind, list):
        return {**value, "type": [*kind, "null"]}
    if "enum" in value:
        return {**value, "enum": [*value["enum"], None]}
    return {"anyOf": [{"type": "null"}, value]}


def _non_empty(field: m.InputField | m.ColumnField, value: dict[str, Any]) -> dict[str, Any]:
    """A required value must not be "" or [] either."""
    if isinstance(field, m.TextField | m.TextareaField):
        return {**value, "minLength": max(1, value.get("minLength", 0))}
    if isinstance(field, m.PersonField | m.DepartmentField | m.RelatedInstanceField) and not field.multiple:
        return {**value, "minLength": 1}
    if value.get("type") == "array":
        return {**value, "minItems": max(1, value.get("minItems", 0))}
    return value


def _value_schema(field: m.InputField | m.ColumnField) -> dict[str, Any]:
    if isinstance(field, m.TextField | m.TextareaField):
        return _text(field)
    if isinstance(field, m.NumberField):
        low, high = number_bounds(field)
        return {"type": "integer" if field.integer else "number", "minimum": low, "maximum": high}
    if isinstance(field, m.MoneyField):
        return _money(field)
    if isinstance(field, m.DateField):
        return {"type": "string", "format": "date", "pattern": DATE_PATTERN}
    if isinstance(field, m.DateTimeField):
        return {"type": "string", "format": "date-time"}
    if isinstance(field, m.DateRangeField):
        date = {"type": "string", "format": "date", "pattern": DATE_PATTERN}
        return {
            "type": "object",
            "properties": {"start": date, "end": date},
            "required": ["start", "end"],
            "additionalProperties": False,
        }
    if isinstance(field, m.SelectField | m.RadioField):
        return {"enum": [option.value for option in field.options]}
    if isinstance(field, m.MultiSelectField | m.CheckboxField):
        return _choices(field)
    if isinstance(field, m.SwitchField):
        return {"type": "boolean"}
    if isinstance(field, m.PersonField | m.DepartmentField | m.RelatedInstanceField):
        ident = {"type": "string", "maxLength": m.ID_MAX_LENGTH}
        return {"type": "array", "items": ident, "maxItems": MULTIPLE_IDS_LIMIT} if field.multiple else ident
    if isinstance(field, m.AttachmentField):
        return _files(field)
    if isinstance(field, m.DetailTableField):
        return _table(field)
    raise TypeError(f"no JSON Schema for {type(field).__name__}")


def _text(field: m.TextField | m.TextareaField) -> dict[str, Any]:
    text: dict[str, Any] = {"type": "string", "maxLength": text_max_length(field)}
    rules = field.validation
    if rules is None or (not rules.min_length and rules.pattern is None):
        return text
    # The length floor and the pattern apply to non-empty text only: "" means "not filled".
    filled: dict[str, Any] = {}
    if rules.min_length:
        filled["minLength"] = rules.min_length
    if rules.pattern is not None:
        filled["pattern"] = rules.pattern
    if field.required and field.visible_when is None and field.default is None:
        return {**text, **filled}
    return {**text, "anyOf": [{"maxLength": 0}, filled]}


def _money(field: m.MoneyField) -> dict[str, Any]:
    number: dict[str, Any] = {"type": "number"}
    rules = field.validation
    low = to_decimal(rules.min) if rules is not None and rules.min is not None else None
    high = to_decimal(rules.max) if rules is not None and rules.max is not None else None
    if low is not None and low > -MONEY_LIMIT:
        number["minimum"] = _json_number(low)
    else:
        number["exclusiveMinimum"] = -int(MONEY_LIMIT)
    if high is not None and high < MONEY_LIMIT:
        number["maximum"] = _json_number(high)
    else:
        number["exclusiveMaximum"] = int(MONEY_LIMIT)
    # One schema for both forms: `pattern` only applies to strings, the bounds only to numbers.
    return {
        **number,
        "type": ["string", "number"],
        "pattern": MONEY_STRING_PATTERN,
        "description": f"Amount in {field.currency}, at most 2 decimal places.",
    }


def _json_number(value: Any) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _choices(field: m.MultiSelectField | m.CheckboxField) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "array",
        "items": {"enum": [option.value for option in field.options]},
        "uniqueItems": True,
        "maxItems": len(field.options),
    }
    rules = field.validation
    if rules is None or (not rules.min_length and rules.max_length is None):
        return schema
    counted: dict[str, Any] = {}
    if rules.min_length:
        counted["minItems"] = rules.min_length
    if rules.max_length is not None:
        counted["maxItems"] = rules.max_length
    # Count limits apply once something is chosen; [] means "not filled".
    return {**schema, "anyOf": [{"maxItems": 0}, counted]}


def _files(field: m.AttachmentField) -> dict[str, Any]:
    names: list[dict[str, Any]] = [{"pattern": file_types_pattern(field.allowed_types, end="$")}]
    if field.name_pattern is not None and field.name_pattern_policy == "refuse":
        names.append({"pattern": field.name_pattern})
    item = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "minLength": 1, "maxLength": FILE_ID_MAX_LENGTH},
            "name": {"type": "string", "minLength": 1, "maxLength": FILE_NAME_MAX_LENGTH, "allOf": names},
            "size": {"type": "integer", "minimum": 0, "maximum": field.max_size},
            "content_type": {"type": ["string", "null"], "maxLength": 255},
        },
        "required": ["id", "name", "size"],
        "additionalProperties": False,
    }
    return {"type": "array", "items": item, "maxItems": field.max_count}


def _table(field: m.DetailTableField) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for column in field.columns:
        properties[column.key] = _property(column)
        if _always_required(column):
            required.append(column.key)
    row: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        row["required"] = required
    table: dict[str, Any] = {"type": "array", "items": row, "maxItems": field.max_rows}
    if field.min_rows:
        table["minItems"] = field.min_rows
    return table
