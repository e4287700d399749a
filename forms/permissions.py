"""Per-node field permissions: which fields a flow node may see and change.

A `PermissionMask` maps field keys, and `table.column` keys for detail-table columns, to a
`FieldAccess`. Anything not listed gets the mask's default, read-only unless the node says
otherwise; a column not listed takes its table's access. A hidden table hides its columns.

Every read path (page, API, export, notification) passes data through `mask_for_read`;
every write path merges the submitted data into the stored one with `accept_edits`, which
keeps stored values the node may not change and reports attempts to change them. Both work
on plain data dicts (as stored, or as cleaned by validation) and never raise for bad data.
"""

from __future__ import annotations

import enum
import functools
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from forms import model as m
from forms.context import ValidationContext
from forms.expressions import Expression, ExpressionSyntaxError
from forms.i18n import DEFAULT_LOCALE, N_, translator
from forms.result import FieldError

READ_ONLY = N_("This field is read-only at this step.")
NOT_VISIBLE = N_("This field cannot be changed at this step.")
ROWS_KEPT = N_("Rows cannot be removed at this step.")


class FieldAccess(enum.StrEnum):
    """What a flow node may do with a field."""

    EDITABLE = "editable"
    READ_ONLY = "read_only"
    HIDDEN = "hidden"


class PermissionMask(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Field access for one flow node: `{"budget": "editable", "budget_lines.note": "hidden"}`."""

    fields: dict[str, FieldAccess] = {}
    default: FieldAccess = FieldAccess.READ_ONLY

    def access(self, key: str) -> FieldAccess:
        """The access to a top-level field key, or to a column as "table.column"."""
        table, dot, column = key.partition(".")
        if dot:
            return self.column_access(table, column)
        return self.fields.get(key, self.default)

    def column_access(self, table: str, column: str) -> FieldAccess:
        """A column's access: hidden when its table is, else as listed, else its table's."""
        table_access = self.fields.get(table, self.default)
        if table_access is FieldAccess.HIDDEN:
            return FieldAccess.HIDDEN
        return self.fields.get(f"{table}.{column}", table_access)


def hide_derived(schema: m.FormSchema, mask: PermissionMask) -> PermissionMask:
    """`mask` with every computed field hidden whose formula reads a hidden field or a hidden
    table's totals: a duration would give away hidden dates. Repeated until nothing changes,
    since a computed field may read another."""
    computed = [field for field in schema.fields if isinstance(field, m.ComputedField)]
    if not computed or (
        FieldAccess.HIDDEN not in mask.fields.values() and mask.default is not FieldAccess.HIDDEN
    ):
        return mask
    reads = {field.key: found for field in computed if (found := _formula_reads(field.formula)) is not None}
    fields = dict(mask.fields)
    changed = True
    while changed:
        changed = False
        current = PermissionMask(fields=fields, default=mask.default)
        for key, names in reads.items():
            if current.access(key) is FieldAccess.HIDDEN:
                continue
            if any(name == "*totals*" and FieldAccess.HIDDEN in fields.values() for name in names) or any(
                current.access(name) is FieldAccess.HIDDEN for name in names if name != "*totals*"
            ):
                fields[key] = FieldAccess.HIDDEN
                changed = True
    return PermissionMask(fields=fields, default=mask.default)


@functools.lru_cache(maxsize=1024)
def _formula_reads(formula: str) -> frozenset[str] | None:
    """The field keys a formula reads; a table's totals as the table key ("*totals*": unknown)."""
    try:
        expression = Expression(formula)
    except ExpressionSyntaxError:
        return None
    names = set(expression.names) - {"totals", "user", "today", "row"}
    if "totals" in expression.names:
        totals = expression.members.get("totals")
        names |= set(totals) if totals else {"*totals*"}
    return frozenset(names)


def mask_for_read(data: dict[str, Any], mask: PermissionMask) -> dict[str, Any]:
    """A copy of `data` without hidden fields, hidden columns and their totals."""
    shown: dict[str, Any] = {}
    for key, value in data.items():
        if key == "totals" and isinstance(value, dict):
            shown["totals"] = _visible_totals(value, mask)
        elif mask.access(key) is not FieldAccess.HIDDEN:
            shown[key] = _visible_rows(key, value, mask) if _is_rows(value) else value
    return shown


def _visible_rows(table: str, rows: list[Any], mask: PermissionMask) -> list[Any]:
    return [
        {
            column: cell
            for column, cell in row.items()
            if mask.column_access(table, column) is not FieldAccess.HIDDEN
        }
        if isinstance(row, dict)
        else row
        for row in rows
    ]


def _visible_totals(totals: dict[str, Any], mask: PermissionMask) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for table, sums in totals.items():
        if mask.access(table) is FieldAccess.HIDDEN:
            continue
        shown[table] = (
            {c: v for c, v in sums.items() if mask.column_access(table, c) is not FieldAccess.HIDDEN}
            if isinstance(sums, dict)
            else sums
        )
    return shown


def accept_edits(
    old: dict[str, Any],
    new: dict[str, Any],
    mask: PermissionMask,
    *,
    schema: m.FormSchema | None = None,
    ctx: ValidationContext | None = None,
) -> tuple[dict[str, Any], list[FieldError]]:
    """Merge a node's submitted `new` data into the stored `old` data under `mask`.

    Editable fields take the submitted value (absent means cleared). Read-only and hidden
    fields keep the stored value; submitting a different value for one is reported with
    its path (`budget`, `budget_lines[2].amount`) and the stored value is kept. Leaving
    them out is fine. Values are compared by their JSON form, amounts by their value
    (1.5 equals "1.50"). In an editable table rows are matched by position: appended rows
    may fill editable columns only, and when some columns are not editable, rows cannot be
    removed (that would shift stored values onto other rows). With `schema`, computed
    fields and totals are taken from `new` (validation recomputes them anyway). Messages
    are in `ctx.locale` (default zh-CN).
    """
    translate = translator(ctx.locale if ctx is not None else DEFAULT_LOCALE)
    derived = {"totals"}
    if schema is not None:
        derived |= {field.key for field in m.value_fields(schema) if isinstance(field, m.ComputedField)}
    merged: dict[str, Any] = {}
    errors: list[FieldError] = []
    for key in [*old, *(k for k in new if k not in old)]:
        if key in derived:
            if key in new:
                merged[key] = new[key]
            continue
        access = mask.access(key)
        stored, present = old.get(key), key in new
        if access is FieldAccess.EDITABLE:
            if _is_rows(new.get(key)) or _is_rows(stored):
                merged[key] = _merge_rows(key, stored, new.get(key), mask, errors, translate)
            else:
                merged[key] = new.get(key)
            continue
        if present and not same_value(stored, new[key]):
            errors.append(FieldError(path=key, message=translate(_refusal(access))))
        if key in old:
            merged[key] = stored
    return merged, errors


def _merge_rows(
    table: str, old: Any, new: Any, mask: PermissionMask, errors: list[FieldError], translate: Any
) -> Any:
    old_rows = old if _is_rows(old) else []
    if not _is_rows(new):
        return new
    columns = {column for row in (*old_rows, *new) if isinstance(row, dict) for column in row}
    locked = {c for c in columns if mask.column_access(table, c) is not FieldAccess.EDITABLE}
    if not locked:
        return new
    if len(new) < len(old_rows):
        errors.append(FieldError(path=table, message=translate(ROWS_KEPT)))
        return old
    merged: list[Any] = []
    for index, row in enumerate(new):
        stored = old_rows[index] if index < len(old_rows) and isinstance(old_rows[index], dict) else {}
        if not isinstance(row, dict):
            merged.append(row)
            continue
        result = dict(row)
        for column in locked:
            present = column in row
            before = stored.get(column)
            if (
                present
                and not same_value(before, row[column])
                and not (before is None and row[column] is None)
            ):
                access = mask.column_access(table, column)
                errors.append(
                    FieldError(path=f"{table}[{index}].{column}", message=translate(_refusal(access)))
                )
            if column in stored:
                result[column] = before
            else:
                result.pop(column, None)
        merged.append(result)
    return merged


def _refusal(access: FieldAccess) -> str:
    return NOT_VISIBLE if access is FieldAccess.HIDDEN else READ_ONLY


def _is_rows(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(row, dict) for row in value)


def same_value(a: Any, b: Any) -> bool:
    """True when two values are the same data: equal JSON forms, or equal amounts.

    Lenient on purpose ("0123" and 123 compare equal): it only decides whether to report a
    change to a locked value; the stored value is what is kept either way.
    """
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    if a == b:
        return True
    try:
        ja, jb = msgspec.to_builtins(a), msgspec.to_builtins(b)
    except TypeError:
        return False
    if ja == jb:
        return True
    if isinstance(ja, list) and isinstance(jb, list):
        return len(ja) == len(jb) and all(same_value(x, y) for x, y in zip(ja, jb, strict=True))
    if isinstance(ja, dict) and isinstance(jb, dict):
        return ja.keys() == jb.keys() and all(same_value(ja[k], jb[k]) for k in ja)
    return _same_amount(ja, jb)


def _same_amount(a: Any, b: Any) -> bool:
    numeric = (int, float, str)
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, numeric) or not isinstance(b, numeric):
        return False
    try:
        return Decimal(repr(a) if isinstance(a, float) else a) == Decimal(
            repr(b) if isinstance(b, float) else b
        )
    except (InvalidOperation, ValueError):
        return False
