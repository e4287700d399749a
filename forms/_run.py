"""The mutable state of one validation: collected errors and what is known to be invalid."""

from __future__ import annotations

from typing import Any

from forms.context import ValidationContext
from forms.model import LocalizedText
from forms.result import FieldError


class Run:
    """Errors, warnings and bookkeeping of one `CompiledForm.validate` call.

    `invalid`: paths whose value failed the structural check (the value is None now, and
    no further error, such as "required", is reported for it). `tainted`: top-level keys
    with an invalid value somewhere inside (totals and rules that read them are skipped).
    `hidden`: paths whose `visible_when` is false; errors under them are dropped at the end
    (a hidden field never blocks a submission). `scope`: the CEL names besides fields.
    """

    __slots__ = ("ctx", "errors", "hidden", "invalid", "scope", "submit", "tainted", "warnings")

    def __init__(
        self,
        ctx: ValidationContext,
        *,
        submit: bool,
        invalid: set[str],
        tainted: set[str],
        scope: dict[str, Any],
    ) -> None:
        self.ctx = ctx
        self.submit = submit
        self.invalid = invalid
        self.tainted = tainted
        self.scope = scope
        self.errors: list[FieldError] = []
        self.warnings: list[FieldError] = []
        self.hidden: list[str] = []

    def hide(self, path: str) -> None:
        self.hidden.append(path)

    def error(self, path: str, msgid: str, **params: object) -> None:
        self.errors.append(FieldError(path=path, message=self.ctx.translate(msgid, **params)))

    def error_text(self, path: str, text: LocalizedText) -> None:
        self.errors.append(FieldError(path=path, message=text.get(self.ctx.locale)))

    def warn(self, path: str, msgid: str, **params: object) -> None:
        self.warnings.append(FieldError(path=path, message=self.ctx.translate(msgid, **params)))

    def warn_text(self, path: str, text: LocalizedText) -> None:
        self.warnings.append(FieldError(path=path, message=text.get(self.ctx.locale)))
