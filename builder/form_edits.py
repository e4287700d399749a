"""The form designer's edits: small pure functions from a form dict to the next form dict.

    form = add_field(form, "money", 2, key=fresh_key(form, "money"))          # from the palette
    form = add_field(form, "money", 0, key="amount", table="budget_lines")    # as a table column
    form = move_field(form, "budget", 0)                                       # reorder
    form = move_field(form, "note", 1, table="budget_lines")                   # into a table
    form = remove_field(form, "budget_lines.note")
    form = update_property(form, "budget", "label.zh", "预算金额")

A field is named by a *ref*: its key, or "table.column" for a detail-table column. Sections
are headings in the flat field list: a field "in a section" is one placed after it. Each
function returns a new dict (the argument is never changed) or raises `EditError` naming
the ref and the reason; an edit that would break the shape of the schema (a detail table
without columns, a select without options, a duplicate key) is refused here, while problems
a designer may leave for later (an empty label, a condition naming a missing field) are the
form check's business and show up as the draft's problems.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any, Final

from forms import model as m

FIELD_TYPES: Final = (
    "text",
    "textarea",
    "number",
    "money",
    "date",
    "datetime",
    "date_range",
    "select",
    "radio",
    "multi_select",
    "checkbox",
    "switch",
    "person",
    "department",
    "related_instance",
    "attachment",
    "detail_table",
    "computed",
    "section",
    "description",
)
"""Every field type of `forms.model`, in palette order."""

LAYOUT_TYPES: Final = frozenset({"section", "description"})
NOT_IN_TABLES: Final = LAYOUT_TYPES | {"detail_table"}
CHOICE_TYPES: Final = frozenset({"select", "radio", "multi_select", "checkbox"})
NUMERIC_TYPES: Final = frozenset({"number", "money"})
MAX_ROW_LIMIT: Final = m.MAX_ROWS_LIMIT

_KEY = re.compile(m.KEY_PATTERN)
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")

DEFAULT_LABELS: Final[dict[str, tuple[str, str]]] = {
    "text": ("单行文本", "Text"),
    "textarea": ("多行文本", "Paragraph"),
    "number": ("数字", "Number"),
    "money": ("金额", "Amount"),
    "date": ("日期", "Date"),
    "datetime": ("日期时间", "Date and time"),
    "date_range": ("日期区间", "Date range"),
    "select": ("下拉选择", "Choice"),
    "radio": ("单选", "Single choice"),
    "multi_select": ("多选下拉", "Multiple choice"),
    "checkbox": ("复选框", "Check boxes"),
    "switch": ("开关", "Switch"),
    "person": ("人员", "Person"),
    "department": ("部门", "Department"),
    "related_instance": ("关联审批单", "Related request"),
    "attachment": ("附件", "Attachments"),
    "detail_table": ("明细", "Details"),
    "computed": ("计算字段", "Computed"),
    "section": ("分组标题", "Section"),
    "description": ("说明文字", "Explanation"),
}


class EditError(ValueError):
    """A refused edit: `ref` is the field concerned ("" for the form), `reason` a stable code.

    Retrying the same edit fails the same way; the designer changes the edit.
    """

    def __init__(self, ref: str, reason: str, message: str) -> None:
        self.ref = ref
        self.reason = reason
        super().__init__(f"{ref}: {message}" if ref else message)


# -- reading --------------------------------------------------------------------------------


def field_keys(form: dict[str, Any]) -> set[str]:
    """Every key in use: top-level fields and table columns (columns share one key space here)."""
    keys: set[str] = set()
    for field in form.get("fields", []):
        keys.add(field.get("key", ""))
        for column in field.get("columns", []) if field.get("type") == "detail_table" else []:
            keys.add(column.get("key", ""))
    return keys


def fresh_key(form: dict[str, Any], kind: str) -> str:
    """An unused key for a new field of type `kind`: "money_1", "money_2", ..."""
    used = field_keys(form)
    number = 1
    while f"{kind}_{number}" in used:
        number += 1
    return f"{kind}_{number}"


def find_field(form: dict[str, Any], ref: str) -> dict[str, Any]:
    """The field (or column) dict named by `ref`, or `EditError`."""
    container, index = _locate(form, ref)
    return container[index]


# -- edits ----------------------------------------------------------------------------------


def new_field(kind: str, key: str) -> dict[str, Any]:
    """A field of type `kind` with settings that make a valid schema (labels, one option, ...)."""
    if kind not in FIELD_TYPES:
        raise EditError("", "unknown_type", f"unknown field type {kind!r}")
    if not _KEY.match(key):
        raise EditError(key, "bad_key", "a key starts with a-z and holds only a-z, 0-9 and _ (at most 64)")
    zh, en = DEFAULT_LABELS[kind]
    if kind == "description":
        return {"type": kind, "key": key, "text": {"zh": "请填写说明文字", "en": "Explanatory text"}}
    field: dict[str, Any] = {"type": kind, "key": key, "label": {"zh": zh, "en": en}}
    if kind in CHOICE_TYPES:
        field["options"] = [
            {"value": "option_1", "label": {"zh": "选项1", "en": "Option 1"}},
            {"value": "option_2", "label": {"zh": "选项2", "en": "Option 2"}},
        ]
    elif kind == "detail_table":
        field["columns"] = [{"type": "text", "key": f"{key}_item", "label": {"zh": "项目", "en": "Item"}}]
    elif kind == "computed":
        field["formula"] = "0"
    return field


def add_field(
    form: dict[str, Any], kind: str, index: int, *, key: str, table: str | None = None
) -> dict[str, Any]:
    """`form` with a new field of type `kind` at `index` (clamped), at the top level or in `table`."""
    if key in field_keys(form):
        raise EditError(key, "duplicate_key", f"the key {key!r} is used already")
    field = new_field(kind, key)
    result = copy.deepcopy(form)
    container = _container(result, table, kind)
    container.insert(_clamp(index, len(container)), field)
    return result


def move_field(form: dict[str, Any], ref: str, index: int, *, table: str | None = None) -> dict[str, Any]:
    """`form` with field `ref` moved to `index` of the top level, or of `table`'s columns.

    Moving a column out of its table makes it a top-level field, and a field into a table
    makes it a column; the table's totals follow a column that leaves it.
    """
    result = copy.deepcopy(form)
    source, at = _locate(result, ref)
    field = source[at]
    target = _container(result, table, field.get("type", ""))
    if source is target and len(source) == 1:
        return result
    if source is not target and _is_column(ref) and len(source) == 1:
        raise EditError(ref, "last_column", "a detail table keeps at least one column")
    del source[at]
    if source is not target and _is_column(ref):
        _forget_column(result, ref)
    target.insert(_clamp(index, len(target)), field)
    return result


def remove_field(form: dict[str, Any], ref: str) -> dict[str, Any]:
    """`form` without field `ref` (a table's last column cannot go: remove the table instead)."""
    result = copy.deepcopy(form)
    container, at = _locate(result, ref)
    if _is_column(ref) and len(container) == 1:
        raise EditError(ref, "last_column", "a detail table keeps at least one column")
    del container[at]
    if _is_column(ref):
        _forget_column(result, ref)
    return result


def update_property(
    form: dict[str, Any], ref: str, name: str, value: str | list[str] | None
) -> dict[str, Any]:
    """`form` with property `name` of field `ref` set from `value` as a form posts it.

    `value` is text (None or "" clears an optional setting; check boxes send "true" or
    nothing). Names: "key", "label.zh", "label.en", "help.zh", "placeholder.zh", ...,
    "required", "sensitive", "default", "validation.min" (max, min_length, max_length,
    pattern), "visible_when", "required_when", "options" (one "value=中文|English" a line),
    "max_size_mb", "allowed_types", "max_count", "currency", "show_in_words", "integer",
    "multiple", "formula", "result_type", "min_rows", "max_rows", "total" (of a column).
    """
    result = copy.deepcopy(form)
    field = find_field(result, ref)
    kind = field.get("type", "")
    text = _text(value)
    if name not in _applies(kind, _is_column(ref)):
        raise EditError(ref, "bad_property", f"a {kind} field has no property {name!r}")
    if name == "key":
        return _rename(result, ref, text)
    if name == "total":
        _set_total(result, ref, _flag(value))
        return result
    prefix, _, part = name.partition(".")
    if prefix in ("label", "help", "placeholder", "text") and part in ("zh", "en"):
        _set_localized(field, prefix, part, text, optional=prefix in ("help", "placeholder"))
    elif prefix == "validation":
        _set_validation(field, ref, part, text)
    elif name in ("required", "sensitive", "show_in_words", "integer", "multiple"):
        field[name] = _flag(value)
    elif name in ("visible_when", "required_when", "formula"):
        _set_optional(field, name, text.strip() or None)
        if name == "formula" and "formula" not in field:
            raise EditError(ref, "required", "a computed field needs a formula")
    elif name == "default":
        _set_optional(field, name, _default(kind, ref, value))
    elif name == "options":
        field["options"] = parse_options(ref, text)
    elif name == "max_size_mb":
        field["max_size"] = round(_number(ref, name, text, low=0.001, high=2048) * m.MIB)
    elif name == "allowed_types":
        field["allowed_types"] = _file_types(ref, text)
    elif name == "max_count":
        field["max_count"] = int(_number(ref, name, text, low=1, high=100, whole=True))
    elif name == "currency":
        if not re.fullmatch(r"[A-Z]{3}", text):
            raise EditError(ref, "bad_value", "a currency is three capital letters, e.g. CNY")
        field["currency"] = text
    elif name == "result_type":
        if text not in ("number", "money", "text"):
            raise EditError(ref, "bad_value", "the result type is number, money or text")
        field["result_type"] = text
    elif name in ("min_rows", "max_rows"):
        field[name] = int(
            _number(ref, name, text, low=0 if name == "min_rows" else 1, high=MAX_ROW_LIMIT, whole=True)
        )
    return result


def parse_options(ref: str, text: str) -> list[dict[str, Any]]:
    """Options from lines "value=中文|English" ("中文" alone makes the value from the position)."""
    options: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, line in enumerate((line.strip() for line in text.splitlines() if line.strip()), start=1):
        value, sep, labels = line.partition("=")
        if not sep:
            value, labels = f"option_{number}", line
        value = value.strip()
        zh, _, en = labels.partition("|")
        if not value or len(value) > 64:
            raise EditError(ref, "bad_value", f"line {number}: an option value has 1 to 64 characters")
        if value in seen:
            raise EditError(ref, "bad_value", f"line {number}: the option value {value!r} is used twice")
        seen.add(value)
        options.append({"value": value, "label": {"zh": zh.strip(), "en": en.strip()}})
    if not options:
        raise EditError(ref, "bad_value", "a choice field needs at least one option")
    return options


def options_text(field: dict[str, Any]) -> str:
    """The options of a choice field as `parse_options` reads them back."""
    return "\n".join(
        f"{o['value']}={o['label'].get('zh', '')}" + (f"|{o['label']['en']}" if o["label"].get("en") else "")
        for o in field.get("options", [])
    )


def properties_of(kind: str, *, column: bool) -> tuple[str, ...]:
    """The property names `update_property` accepts for a field of type `kind`."""
    return tuple(_applies(kind, column))


# -- internals ------------------------------------------------------------------------------


def _is_column(ref: str) -> bool:
    return "." in ref


def _clamp(index: int, length: int) -> int:
    return max(0, min(index, length))


def _locate(form: dict[str, Any], ref: str) -> tuple[list[dict[str, Any]], int]:
    table, dot, column = ref.partition(".")
    fields: list[dict[str, Any]] = form.setdefault("fields", [])
    for at, field in enumerate(fields):
        if field.get("key") != table:
            continue
        if not dot:
            return fields, at
        if field.get("type") != "detail_table":
            break
        columns: list[dict[str, Any]] = field.setdefault("columns", [])
        for position, candidate in enumerate(columns):
            if candidate.get("key") == column:
                return columns, position
        break
    raise EditError(ref, "not_found", f"there is no field {ref!r}")


def _container(form: dict[str, Any], table: str | None, kind: str) -> list[dict[str, Any]]:
    if table is None:
        fields: list[dict[str, Any]] = form.setdefault("fields", [])
        return fields
    if kind in NOT_IN_TABLES:
        raise EditError(table, "not_a_column", f"a {kind} field cannot be a detail-table column")
    holder, at = _locate(form, table)
    if holder[at].get("type") != "detail_table":
        raise EditError(table, "not_a_table", f"{table!r} is not a detail table")
    columns: list[dict[str, Any]] = holder[at].setdefault("columns", [])
    if len(columns) >= 100:
        raise EditError(table, "too_many", "a detail table has at most 100 columns")
    return columns


def _forget_column(form: dict[str, Any], ref: str) -> None:
    table, _, column = ref.partition(".")
    holder, at = _locate(form, table)
    owner = holder[at]
    if column in owner.get("totals", []):
        owner["totals"] = [key for key in owner["totals"] if key != column]
        if not owner["totals"]:
            del owner["totals"]
    if column in owner.get("totals_must_equal", {}):
        owner["totals_must_equal"] = {k: v for k, v in owner["totals_must_equal"].items() if k != column}


def _rename(form: dict[str, Any], ref: str, key: str) -> dict[str, Any]:
    old = ref.rpartition(".")[2]
    if key == old:
        return form
    if not _KEY.match(key):
        raise EditError(ref, "bad_key", "a key starts with a-z and holds only a-z, 0-9 and _ (at most 64)")
    if key in field_keys(form):
        raise EditError(ref, "duplicate_key", f"the key {key!r} is used already")
    find_field(form, ref)["key"] = key
    if _is_column(ref):
        table, _, _ = ref.partition(".")
        owner = find_field(form, table)
        owner["totals"] = [key if k == old else k for k in owner.get("totals", [])]
        if old in owner.get("totals_must_equal", {}):
            owner["totals_must_equal"][key] = owner["totals_must_equal"].pop(old)
    return form


def _set_total(form: dict[str, Any], ref: str, on: bool) -> None:
    table, _, column = ref.partition(".")
    owner = find_field(form, table)
    totals = [key for key in owner.get("totals", []) if key != column]
    if on:
        totals.append(column)
    if totals:
        owner["totals"] = totals
    else:
        owner.pop("totals", None)


def _set_localized(field: dict[str, Any], prefix: str, part: str, text: str, *, optional: bool) -> None:
    current = dict(field.get(prefix) or {"zh": "", "en": ""})
    current[part] = text.strip()
    if optional and not current.get("zh") and not current.get("en"):
        field.pop(prefix, None)
    else:
        field[prefix] = current


def _set_optional(field: dict[str, Any], name: str, value: Any) -> None:
    if value is None or value == "":
        field.pop(name, None)
    else:
        field[name] = value


def _set_validation(field: dict[str, Any], ref: str, part: str, text: str) -> None:
    validation = dict(field.get("validation") or {})
    text = text.strip()
    if not text:
        validation.pop(part, None)
    elif part in ("min", "max"):
        number = _number(ref, f"validation.{part}", text)
        validation[part] = int(number) if number.is_integer() else number
    elif part in ("min_length", "max_length"):
        validation[part] = int(
            _number(
                ref,
                f"validation.{part}",
                text,
                low=0 if part == "min_length" else 1,
                high=m.LENGTH_LIMIT,
                whole=True,
            )
        )
    elif part == "pattern":
        try:
            re.compile(text)
        except re.error as exc:
            raise EditError(ref, "bad_value", f"not a regular expression: {exc}") from exc
        validation[part] = text
    else:
        raise EditError(ref, "bad_property", f"no validation setting {part!r}")
    if validation:
        field["validation"] = validation
    else:
        field.pop("validation", None)


def _default(kind: str, ref: str, value: str | list[str] | None) -> Any:
    if kind == "switch":
        return _flag(value) or None
    if isinstance(value, list):
        return [item for item in value if item] or None
    text = (value or "").strip()
    if not text:
        return None
    if kind == "number":
        number = _number(ref, "default", text)
        return int(number) if number.is_integer() else number
    if kind == "money":
        if not _NUMBER.match(text):
            raise EditError(ref, "bad_value", "an amount is a number such as 1200.50")
        return text
    if kind in ("multi_select", "checkbox"):
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def _number(
    ref: str,
    name: str,
    text: str,
    *,
    low: float | None = None,
    high: float | None = None,
    whole: bool = False,
) -> float:
    try:
        number = float(text.strip())
    except ValueError:
        raise EditError(ref, "bad_value", f"{name}: {text!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise EditError(ref, "bad_value", f"{name}: {text!r} is not a number")
    if whole and not number.is_integer():
        raise EditError(ref, "bad_value", f"{name}: a whole number is needed")
    if (low is not None and number < low) or (high is not None and number > high):
        raise EditError(ref, "bad_value", f"{name}: between {low:g} and {high:g}")
    return number


def _file_types(ref: str, text: str) -> list[str]:
    types = [part.strip().lower().lstrip(".") for part in re.split(r"[,\s]+", text) if part.strip()]
    bad = [t for t in types if not re.fullmatch(r"[a-z0-9]{1,10}", t)]
    if bad or not types:
        raise EditError(ref, "bad_value", "file types are extensions such as pdf, docx, jpg")
    return list(dict.fromkeys(types))


def _flag(value: str | list[str] | None) -> bool:
    if isinstance(value, list):
        value = value[-1] if value else None
    return (value or "").strip().lower() in ("true", "on", "1", "yes")


def _text(value: str | list[str] | None) -> str:
    if isinstance(value, list):
        return "\n".join(value)
    return value or ""


def _applies(kind: str, column: bool) -> Iterable[str]:
    if kind == "section":
        return ("key", "label.zh", "label.en")
    if kind == "description":
        return ("key", "text.zh", "text.en")
    names = ["key", "label.zh", "label.en", "help.zh", "help.en", "visible_when", "sensitive"]
    if kind == "computed":
        names += ["formula", "result_type"]
    else:
        names += ["placeholder.zh", "placeholder.en", "required", "required_when"]
        if kind not in ("detail_table", "attachment", "date_range"):
            names.append("default")
    if kind in NUMERIC_TYPES:
        names += ["validation.min", "validation.max"]
    if kind in ("text", "textarea"):
        names += ["validation.min_length", "validation.max_length", "validation.pattern"]
    if kind in ("multi_select", "checkbox"):
        names += ["validation.min_length", "validation.max_length"]
    if kind in CHOICE_TYPES:
        names.append("options")
    if kind == "money":
        names += ["currency", "show_in_words"]
    if kind == "number":
        names.append("integer")
    if kind in ("person", "department", "related_instance"):
        names.append("multiple")
    if kind == "attachment":
        names += ["max_size_mb", "allowed_types", "max_count"]
    if kind == "detail_table":
        names += ["min_rows", "max_rows"]
    if column and (kind in NUMERIC_TYPES or kind == "computed"):
        names.append("total")
    return names
