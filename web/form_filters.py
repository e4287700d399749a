"""Jinja filters the form renderer uses: element ids, field types, display values, sizes."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from forms.model import field_type
from web.i18n import _, current_locale

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def field_id(path: str) -> str:
    """`budget_lines[2].amount` -> `f-budget_lines-2-amount`: a valid, unique element id."""
    return "f-" + _ID_UNSAFE.sub("-", path).strip("-")


def in_words(value: Any) -> str:
    from forms import amount_in_words

    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return ""
    if value in (None, "") or not amount.is_finite() or amount.as_tuple().exponent < -2:  # type: ignore[operator]
        return ""
    return amount_in_words(amount)


def display_value(value: Any, field: Any) -> str:
    """A stored value as a reader sees it, in the current language."""
    if value is None or value == "" or value == []:
        return "—"
    kind = field_type(field)
    locale = current_locale()
    if kind in ("select", "radio", "multi_select", "checkbox"):
        labels = {o.value: o.label.get(locale) for o in field.options}
        chosen = value if isinstance(value, list) else [value]
        return "、".join(labels.get(v, str(v)) for v in chosen)
    if kind == "switch":
        return _("Yes") if value else _("No")
    if kind == "money":
        try:
            return f"{Decimal(str(value)):,.2f}"
        except (InvalidOperation, ValueError):
            return str(value)
    if kind == "date_range" and isinstance(value, dict):
        return f"{value.get('start') or '?'} — {value.get('end') or '?'}"
    if kind == "attachment" and isinstance(value, list):
        return "、".join(str(a.get("name", "")) for a in value if isinstance(a, dict))
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    return str(value)


def filesize(size: Any) -> str:
    try:
        number = float(size)
    except (TypeError, ValueError):
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if number < 1024 or unit == "GB":
            return f"{number:.0f} {unit}" if unit == "B" else f"{number:.1f} {unit}"
        number /= 1024
    return ""


FILTERS = {
    "field_id": field_id,
    "field_type": field_type,
    "in_words": in_words,
    "display_value": display_value,
    "filesize": filesize,
    "add_dot": lambda ext: "." + ext,
}
