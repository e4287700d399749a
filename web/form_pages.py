"""What a rendered form needs besides the schema: context, directory, values to show."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import msgspec
from litestar import Request
from litestar.exceptions import NotFoundException

from forms import (
    CompiledForm,
    CurrentUser,
    FormSchema,
    ValidationContext,
    ValidationResult,
    compile_form,
    load_schema,
)
from forms.expressions import Expression, ExpressionSyntaxError
from forms.model import ComputedField, DetailTableField, is_layout
from storage.access import Principal
from storage.tables import Department, Person
from storage.templates import PublishedVersion, version_in_effect
from web.form_input import decode_form
from web.i18n import current_locale

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")


async def published_version(key: str, now: datetime) -> PublishedVersion:
    """The version of template `key` in effect at `now`; 404 when there is none."""
    version = await version_in_effect(key, now)
    if version is None:
        raise NotFoundException(f"template {key!r} does not exist or has no version in effect")
    return version


async def posted_data(request: Request[Any, Any, Any], version: PublishedVersion) -> dict[str, Any]:
    """The posted HTML form as form data of `version`'s schema."""
    schema, _ = compiled(version)
    form = await request.form()
    return decode_form(schema, form.multi_items())


def schema_of(version: PublishedVersion) -> FormSchema:
    return _schema(msgspec.json.encode(version.form))


@functools.lru_cache(maxsize=64)
def _schema(stored: bytes) -> FormSchema:
    """Schemas are decoded once per stored text: a form is read on every change of every input,
    and the same (frozen) schema object lets `compile_form` find its cached validator at once."""
    return load_schema(stored)


def compiled(version: PublishedVersion) -> tuple[FormSchema, CompiledForm]:
    schema = schema_of(version)
    return schema, compile_form(schema)


def validation_context(principal: Principal, now: datetime | None = None) -> ValidationContext:
    now = now or datetime.now(UTC)
    return ValidationContext(
        today=now.astimezone(BUSINESS_TZ).date(),
        user=CurrentUser(
            id=str(principal.id),
            name=principal.name,
            department_id=str(principal.department_id) if principal.department_id is not None else None,
        ),
        locale=current_locale(),
    )


async def directory() -> dict[str, list[dict[str, str]]]:
    """People and departments for the pickers (ids as strings, as form data stores them)."""
    people = (
        await Person.select(Person.id, Person.name, Person.employee_no)
        .where(Person.active.eq(True))
        .order_by(Person.employee_no)
    )
    departments = await Department.select(Department.id, Department.name_zh, Department.name_en).order_by(
        Department.id
    )
    zh = current_locale() == "zh-CN"
    return {
        "people": [{"id": str(p["id"]), "label": f"{p['name']} ({p['employee_no']})"} for p in people],
        "departments": [
            {"id": str(d["id"]), "label": d["name_zh"] if zh else d["name_en"]} for d in departments
        ],
    }


def shown_values(schema: FormSchema, posted: dict[str, Any], result: ValidationResult) -> dict[str, Any]:
    """What the inputs show after a check: the user's own input (even when invalid, so nothing
    typed is lost), and the server's recomputed values for computed fields and totals."""
    values = dict(posted)
    for field in schema.fields:
        if is_layout(field):
            continue
        if isinstance(field, ComputedField):
            values[field.key] = result.data.get(field.key)
        elif isinstance(field, DetailTableField) and any(isinstance(c, ComputedField) for c in field.columns):
            cleaned = result.data.get(field.key) or []
            rows = [dict(r) for r in posted.get(field.key) or []]
            for row, clean in zip(rows, cleaned, strict=False):
                if isinstance(clean, dict):
                    row.update(
                        {c.key: clean.get(c.key) for c in field.columns if isinstance(c, ComputedField)}
                    )
            values[field.key] = rows
    if "totals" in result.data:
        values["totals"] = result.data["totals"]
    return values


def visibility(result: ValidationResult) -> dict[str, dict[str, bool]]:
    return {path: {"visible": False} for path in result.hidden}


_CELL = re.compile(r"^([a-z][a-z0-9_]*)\[(\d{1,5})\]\.[a-z][a-z0-9_]*$")
_INPUT = re.compile(r"^([a-z][a-z0-9_]*)(\.(start|end))?$")


class Evaluation(NamedTuple):
    """What the answer to a change holds besides computed fields, totals and visibility.

    `words`: the money fields whose amount in words is sent (None: every one). `rows`: per
    detail table with computed columns, the rows whose computed cells are sent (None: all)."""

    words: frozenset[str] | None
    rows: dict[str, frozenset[int] | None]


def evaluation_scope(schema: FormSchema, changed: str) -> Evaluation:
    """What a change of input `changed` (its name; "" when unknown, as after adding or removing
    a row) can alter. A cell changes only its own row's computed cells when the table's formulas
    read nothing but `row`; a field's amount in words follows that field alone."""
    cell = _CELL.match(changed)
    field = _INPUT.match(changed)
    words: frozenset[str] | None = None
    if cell:
        words = frozenset()
    elif field and any(f.key == field.group(1) for f in schema.fields):
        words = frozenset({field.group(1)})
    rows: dict[str, frozenset[int] | None] = {}
    for table in schema.fields:
        if not isinstance(table, DetailTableField):
            continue
        formulas = tuple(c.formula for c in table.columns if isinstance(c, ComputedField))
        if not formulas:
            continue
        if cell and _reads_only_its_row(formulas):
            rows[table.key] = frozenset({int(cell.group(2))}) if cell.group(1) == table.key else frozenset()
        else:
            rows[table.key] = None
    return Evaluation(words=words, rows=rows)


@functools.lru_cache(maxsize=1024)
def _reads_only_its_row(formulas: tuple[str, ...]) -> bool:
    try:
        return all(Expression(source).names <= {"row"} for source in formulas)
    except ExpressionSyntaxError:
        return False
