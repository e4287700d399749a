"""The outcome of validating a submission: every error at once, and the cleaned data."""

from __future__ import annotations

from typing import Any

import msgspec


class FieldError(msgspec.Struct, frozen=True, kw_only=True):
    """One problem with submitted data.

    `path` names the value: `budget`, `budget_lines[2].amount`, `attachments[0].name`, or ""
    for the submission as a whole (malformed JSON). `message` is in the context's language.
    """

    path: str
    message: str


class ValidationResult(msgspec.Struct, frozen=True, kw_only=True):
    """What `CompiledForm.validate` returns; it never raises for bad input.

    `data` holds every value-bearing field key (None when empty) with Python values
    (Decimal with 2 places for money, `datetime.date` for dates), computed fields
    recomputed, defaults applied, and `data["totals"]` when the form has table totals.
    Values that failed validation are None. `hidden` lists the paths of fields whose
    `visible_when` was false: their values are cleared, or kept (still cleaned: an invalid
    one is dropped) per `hidden_value_policy`, and they never cause an error. `warnings`
    are advisory (e.g. a file name off the naming convention).
    """

    errors: list[FieldError]
    data: dict[str, Any]
    warnings: list[FieldError] = []
    hidden: list[str] = []

    @property
    def ok(self) -> bool:
        """True when there are no errors (warnings do not count)."""
        return not self.errors

    def error_dict(self) -> dict[str, list[str]]:
        """Errors grouped by path, in order: the shape a page needs beside each field."""
        grouped: dict[str, list[str]] = {}
        for error in self.errors:
            grouped.setdefault(error.path, []).append(error.message)
        return grouped
