"""Compile a form schema into a validator: `compile_form(schema).validate(raw, ctx)`.

A compiled form holds

- a msgspec decoder for a Struct type generated from the schema (types, lengths, ranges,
  options, unknown keys: one C pass over the JSON bytes), and the same shape as a tree for
  the slow path that collects every structural error when the fast path fails;
- one "settle" step per field, in dependency order: apply the default, evaluate
  `visible_when` (clear the value when hidden, per `hidden_value_policy`), run the checks
  msgspec cannot express (money, patterns, files, ...), recompute computed fields, process
  detail-table rows column by column (row conditions see `row`), sum totals exactly, and
  check `required` / `required_when` on submit;
- the form's rules (CEL assertions), run last.

Compiled forms are cached by (form key, version); a published version is immutable, and a
cached entry is reused only if its schema is equal to the one asked for.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from operator import itemgetter
from typing import Any, Literal

import msgspec

from forms import model as m
from forms._run import Run
from forms._shapes import INVALID, Node, Obj, Opaque, Problems, fast_type, plain, walk_object
from forms._values import (
    REQUIRED,
    Check,
    Report,
    attributes,
    bulk_money_check,
    check_of,
    default_of,
    holds_text_or_list,
    is_scalar,
    report,
    required_shape,
)
from forms.check import schema_findings
from forms.context import ValidationContext
from forms.errors import SchemaError
from forms.expressions import Evaluator
from forms.i18n import N_
from forms.money import CENT, MONEY_LIMIT, format_money
from forms.result import FieldError, ValidationResult

Mode = Literal["draft", "submit"]
Step = Callable[[dict[str, Any], Run], None]

MALFORMED_JSON = N_("The submission is not valid JSON.")
NOT_AN_OBJECT = N_("The submission must be a JSON object of field values.")
TOO_FEW_ROWS = N_("At least {min} rows.")
TOTAL_MISMATCH = N_("The total of {column} ({total}) must equal {field} ({value}).")

_CACHE_SIZE = 256
_cache: OrderedDict[tuple[str, int], CompiledForm] = OrderedDict()
_cache_lock = threading.Lock()


def compile_form(schema: m.FormSchema) -> CompiledForm:
    """The compiled validator of `schema`, cached by (key, version).

    Raises `SchemaError` (with the problems, messages in English) when `check_schema`
    finds any.
    """
    cache_key = (schema.key, schema.version)
    with _cache_lock:
        hit = _cache.get(cache_key)
        if hit is not None and (hit.schema is schema or hit.schema == schema):
            _cache.move_to_end(cache_key)
            return hit
    compiled = CompiledForm(schema)
    with _cache_lock:
        _cache[cache_key] = compiled
        _cache.move_to_end(cache_key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return compiled


class CompiledForm:
    """A form schema compiled for validation. Build with `compile_form`."""

    def __init__(self, schema: m.FormSchema) -> None:
        problems, analysis = schema_findings(schema, locale="en")
        if problems or analysis is None:
            summary = "; ".join(f"{p.path}: {p.message}" for p in problems[:5])
            raise SchemaError(f"form {schema.key!r} v{schema.version} has problems: {summary}", problems)
        self.schema = schema
        self._analysis = analysis
        self._evaluators: list[Evaluator] = []
        fields = m.value_fields(schema)
        self._field_index = {field.key: index for index, field in enumerate(fields)}
        self._column_index = {
            field.key: {column.key: index for index, column in enumerate(field.columns)}
            for field in fields
            if isinstance(field, m.DetailTableField)
        }
        self._has_totals = bool(analysis.totals_tables)
        self._uses_user = any("user" in site.expression.names for site in analysis.sites)
        self._scalars = frozenset(field.key for field in fields if is_scalar(field))
        self._schema_index = {id(field): index for index, field in enumerate(schema.fields)}
        self._labels = {field.key: field.label for field in fields}
        self._currencies = {field.key: field.currency for field in fields if isinstance(field, m.MoneyField)}
        self._fields = fields
        self._tops: dict[bool, Obj] = {}
        self._decoders: dict[bool, msgspec.json.Decoder[Any]] = {}
        self._decoder(True)
        self._generic = msgspec.json.Decoder(float_hook=Decimal)
        to_plain = plain(self._tops[True])
        assert to_plain is not None
        self._plain = to_plain
        by_key = {field.key: field for field in fields}
        self._steps: list[Step] = []
        for key in analysis.order:
            step = self._settle(by_key[key])
            if step is not None:
                self._steps.append(step)
        for index, rule in enumerate(schema.rules):
            self._steps.append(self._form_rule(rule, f"rules[{index}]"))

    def _top(self, submit: bool) -> Obj:
        """The shape of a whole submission for a mode, built on first use (drafts may never come)."""
        top = self._tops.get(submit)
        if top is None:
            attrs: dict[str, tuple[Node, bool]] = attributes(self._fields, submit=submit)
            if self._has_totals:
                attrs["totals"] = (Opaque(), False)
            name = f"Form_{self.schema.key.replace('-', '_')}_v{self.schema.version}"
            top = self._tops[submit] = Obj(name, attrs)
        return top

    def _decoder(self, submit: bool) -> msgspec.json.Decoder[Any]:
        """The fast-path decoder for a mode, built on first use."""
        decoder = self._decoders.get(submit)
        if decoder is None:
            decoder = self._decoders[submit] = msgspec.json.Decoder(
                fast_type(self._top(submit)), float_hook=Decimal
            )
        return decoder

    # ------------------------------------------------------------------ validation

    def validate(
        self,
        raw: bytes | bytearray | memoryview | str | Mapping[str, Any],
        ctx: ValidationContext,
        *,
        mode: Mode = "submit",
    ) -> ValidationResult:
        """Check a submission and clean it; never raises for bad input.

        `raw` is the JSON body (bytes or str) or an already decoded mapping (treated as its
        JSON encoding). `mode="draft"` checks types and formats but skips required fields,
        `required_when`, `min_rows`, totals that must match and rules; "submit" checks all.
        Every error is returned, each with its path and a message in `ctx.locale`.
        """
        if mode == "submit":
            submit = True
        elif mode == "draft":
            submit = False
        else:
            raise ValueError(f"mode must be 'draft' or 'submit', not {mode!r}")
        data: Any = raw
        if type(raw) is not bytes and isinstance(raw, Mapping):
            try:
                data = msgspec.json.encode(raw)
            except (TypeError, ValueError, OverflowError):
                return _root_error(ctx, NOT_AN_OBJECT)
        problems: Problems | None = None
        try:
            values = self._plain(self._decoder(submit).decode(data))
        except (msgspec.DecodeError, RecursionError):
            problems = Problems()
            values = self._walk(data, problems, submit)
            if values is None:
                return _root_error(ctx, problems.errors[0][1])
        scope: dict[str, Any] = {"today": ctx.today}
        if self._uses_user:
            user = ctx.user
            scope["user"] = (
                {"id": user.id, "name": user.name, "department_id": user.department_id}
                if user is not None
                else None
            )
        if self._has_totals:
            values["totals"] = scope["totals"] = {}
        if problems is None:
            run = Run(ctx, submit=submit, invalid=set(), tainted=set(), scope=scope)
        else:
            tainted = {_top_key(path) for path in problems.invalid}
            run = Run(ctx, submit=submit, invalid=problems.invalid, tainted=tainted, scope=scope)
            for path, msgid, params in problems.errors:
                run.error(path, msgid, **params)
        for step in self._steps:
            step(values, run)
        errors = run.errors
        if errors:
            errors = self._ordered(errors, run.hidden)
        return ValidationResult(errors=errors, data=values, warnings=run.warnings, hidden=run.hidden)

    def clear_memos(self) -> None:
        """Forget memoized CEL results (for benchmarks of cold evaluation)."""
        for evaluator in self._evaluators:
            evaluator.clear()

    def _walk(self, data: Any, problems: Problems, submit: bool) -> dict[str, Any] | None:
        try:
            document = self._generic.decode(data)
        except (msgspec.DecodeError, RecursionError):
            problems.add("", MALFORMED_JSON)
            return None
        values = walk_object(self._top(submit), document, "", problems)
        if values is INVALID:
            problems.errors[-1] = ("", NOT_AN_OBJECT, {})
            return None
        return values  # type: ignore[no-any-return]

    def _ordered(self, errors: list[FieldError], hidden_paths: list[str]) -> list[FieldError]:
        """Errors in form order, without those under hidden values: hidden fields never block."""
        if hidden_paths:
            hidden = set(hidden_paths)
            errors = [error for error in errors if not _under(error.path, hidden)]
        unknown = len(self._field_index)
        columns = self._column_index

        def key(error: FieldError) -> tuple[int, int, int]:
            match = _PATH_HEAD.match(error.path)
            if match is None:
                return (-1, -1, -1)
            name, row, column = match.groups()
            column_index = columns.get(name, {}).get(column, unknown) if column else -1
            return (self._field_index.get(name, unknown), int(row or -1), column_index)

        return sorted(errors, key=key)

    # ------------------------------------------------------------------ building steps

    def _evaluator(
        self, source: str | None, path: str, table: m.DetailTableField | None = None
    ) -> Evaluator | None:
        if source is None:
            return None
        if table is None:
            evaluator = Evaluator(self._analysis.expressions[path], None, self._scalars)
        else:
            columns = frozenset(column.key for column in table.columns)
            scalar_columns = frozenset(column.key for column in table.columns if is_scalar(column))
            evaluator = Evaluator(self._analysis.expressions[path], columns, self._scalars | scalar_columns)
        self._evaluators.append(evaluator)
        return evaluator

    def _settle(self, field: m.ValueField) -> Step | None:
        base = f"fields[{self._schema_index[id(field)]}]"
        visible = self._evaluator(field.visible_when, f"{base}.visible_when")
        if isinstance(field, m.ComputedField):
            formula = self._evaluator(field.formula, f"{base}.formula")
            assert formula is not None
            return _computed_step(field, visible, formula)
        required_when = self._evaluator(field.required_when, f"{base}.required_when")
        if isinstance(field, m.DetailTableField):
            return self._table_step(field, base, visible, required_when)
        return _input_step(field, visible, required_when)

    def _table_step(
        self, table: m.DetailTableField, base: str, visible: Evaluator | None, required_when: Evaluator | None
    ) -> Step:
        key = table.key
        clear = table.hidden_value_policy == "clear"
        required = table.required and required_shape(table) is None
        min_rows = table.min_rows
        index_of = {column.key: index for index, column in enumerate(table.columns)}
        passes: list[RowPass] = []
        for column_key in self._analysis.column_orders[key]:
            index = index_of[column_key]
            column_pass = self._column_pass(table, table.columns[index], f"{base}.columns[{index}]")
            if column_pass is not None:
                passes.append(column_pass)
        for index, rule in enumerate(table.row_rules):
            passes.append(self._row_rule(table, rule, f"{base}.row_rules[{index}]"))
        totals = _totals(table, self._labels, self._currencies)

        def step(values: dict[str, Any], run: Run) -> None:
            rows = values[key]
            shown = visible is None or visible(values, None, run.scope) is True
            if not shown:
                run.hide(key)
                if clear:
                    values[key] = rows = None
            if rows:
                for row_pass in passes:
                    row_pass(rows, values, run)
            if totals is not None:
                totals(rows, values, run, shown)
            if not run.submit or not shown or key in run.invalid:
                return
            count = len(rows) if rows else 0
            if count == 0:  # min_rows > 0 makes a table required
                if (
                    required
                    or (min_rows and not table.required)
                    or (required_when is not None and required_when(values, None, run.scope) is True)
                ):
                    run.error(key, REQUIRED)
            elif count < min_rows:
                run.error(key, TOO_FEW_ROWS, min=min_rows)

        return step

    def _column_pass(self, table: m.DetailTableField, column: m.ColumnField, base: str) -> RowPass | None:
        table_key = table.key
        key = column.key
        visible = self._evaluator(column.visible_when, f"{base}.visible_when", table)
        clear = column.hidden_value_policy == "clear"
        if isinstance(column, m.ComputedField):
            formula = self._evaluator(column.formula, f"{base}.formula", table)
            assert formula is not None
            return _computed_pass(
                table_key, key, visible, clear, formula, _RESULT_CONVERTERS[column.result_type]
            )
        required_when = self._evaluator(column.required_when, f"{base}.required_when", table)
        required = column.required and required_shape(column) is None
        default = default_of(column)
        check = check_of(column)
        if visible is None and default is None and check is None and not required and required_when is None:
            return None
        textual = holds_text_or_list(column)
        if visible is None and default is None:
            bulk = bulk_money_check(column) if isinstance(column, m.MoneyField) else None
            return _checking_pass(table_key, key, textual, required, required_when, check, bulk)

        def column_pass(rows: list[Any], values: dict[str, Any], run: Run) -> None:
            scope = run.scope
            submit = run.submit
            for index, row in enumerate(rows):
                if row is None:
                    continue
                value = row[key]
                if value is None and default is not None:
                    value = row[key] = default(run.ctx)
                shown = visible is None or visible(values, row, scope) is True
                if not shown:
                    run.hide(f"{table_key}[{index}].{key}")
                    if clear:
                        row[key] = None
                        continue
                if (not value) if textual else (value is None):
                    if (
                        shown
                        and submit
                        and (
                            required
                            or (required_when is not None and required_when(values, row, scope) is True)
                        )
                    ):
                        path = f"{table_key}[{index}].{key}"
                        if path not in run.invalid:
                            run.error(path, REQUIRED)
                elif check is not None:
                    checked = check(value)
                    if type(checked) is Report:
                        checked = report(checked, f"{table_key}[{index}].{key}", run)
                        if checked is None:
                            run.tainted.add(table_key)
                    row[key] = checked

        return column_pass

    def _row_rule(self, table: m.DetailTableField, rule: m.Rule, base: str) -> RowPass:
        check = self._evaluator(rule.check, f"{base}.check", table)
        when = self._evaluator(rule.when, f"{base}.when", table)
        assert check is not None
        table_key = table.key
        message = rule.message
        column = rule.path

        def row_rule(rows: list[Any], values: dict[str, Any], run: Run) -> None:
            if not run.submit:
                return
            scope = run.scope
            for index, row in enumerate(rows):
                if row is None or (when is not None and when(values, row, scope) is not True):
                    continue
                if check(values, row, scope) is False:
                    path = f"{table_key}[{index}].{column}"
                    if path not in run.invalid:
                        run.error_text(path, message)

        return row_rule

    def _form_rule(self, rule: m.Rule, base: str) -> Step:
        check = self._evaluator(rule.check, f"{base}.check")
        when = self._evaluator(rule.when, f"{base}.when")
        assert check is not None
        reads = self._analysis.reads(check.expression)
        if when is not None:
            reads |= self._analysis.reads(when.expression)
        message = rule.message
        path = rule.path

        def form_rule(values: dict[str, Any], run: Run) -> None:
            if not run.submit or (run.tainted and reads & run.tainted):
                return
            scope = run.scope
            if when is not None and when(values, None, scope) is not True:
                return
            if check(values, None, scope) is False:
                run.error_text(path, message)

        return form_rule


RowPass = Callable[[list[Any], dict[str, Any], Run], None]


def _input_step(
    field: m.InputField, visible: Evaluator | None, required_when: Evaluator | None
) -> Step | None:
    key = field.key
    clear = field.hidden_value_policy == "clear"
    required = field.required and required_shape(field) is None
    default = default_of(field)
    check = check_of(field)
    if visible is None and default is None and check is None and not required and required_when is None:
        return None
    textual = holds_text_or_list(field)

    def step(values: dict[str, Any], run: Run) -> None:
        value = values[key]
        if value is None and default is not None:
            value = values[key] = default(run.ctx)
        shown = visible is None or visible(values, None, run.scope) is True
        if not shown:
            run.hide(key)
            if clear:
                values[key] = None
                return
        if (not value) if textual else (value is None):
            if (
                shown
                and run.submit
                and (
                    required or (required_when is not None and required_when(values, None, run.scope) is True)
                )
                and key not in run.invalid
            ):
                run.error(key, REQUIRED)
        elif check is not None:
            checked = check(value)
            if type(checked) is Report:
                checked = report(checked, key, run)
                if checked is None:
                    run.tainted.add(key)
            values[key] = checked

    return step


def _computed_step(field: m.ComputedField, visible: Evaluator | None, formula: Evaluator) -> Step:
    key = field.key
    clear = field.hidden_value_policy == "clear"
    convert = _RESULT_CONVERTERS[field.result_type]

    def step(values: dict[str, Any], run: Run) -> None:
        if visible is not None and visible(values, None, run.scope) is not True:
            run.hide(key)
            if clear:
                values[key] = None
                return
        values[key] = convert(formula(values, None, run.scope))

    return step


def _checking_pass(
    table_key: str,
    key: str,
    textual: bool,
    required: bool,
    required_when: Evaluator | None,
    check: Check | None,
    bulk: Callable[[list[Any]], list[Any] | None] | None = None,
) -> RowPass:
    """The column pass without default and condition: required checks and value checks only.

    `bulk` checks a whole column at once when all is well (money); when it declines, the
    cells are checked one by one.
    """

    cell = itemgetter(key)

    def checking_pass(rows: list[Any], values: dict[str, Any], run: Run) -> None:
        # A table that is not tainted has no rows refused as a whole (None).
        whole = table_key not in run.tainted
        if bulk is not None and whole:
            cells = list(map(cell, rows))
            cleaned = bulk(cells)
            if cleaned is not None:
                if cleaned is not cells:
                    for row, value in zip(rows, cleaned, strict=True):
                        row[key] = value
                return
        submit = run.submit
        if check is None:  # required checks only: look at the empty cells alone
            if submit:
                cells = (
                    list(map(cell, rows)) if whole else [row[key] if row is not None else 1 for row in rows]
                )
                empty = (
                    [i for i, value in enumerate(cells) if not value]
                    if textual
                    else [i for i, value in enumerate(cells) if value is None]
                )
                if not empty:
                    return
                if required:
                    needed = [True] * len(empty)
                else:
                    assert required_when is not None
                    needed = required_when.each_row(values, [rows[i] for i in empty], run.scope)
                for index, need in zip(empty, needed, strict=True):
                    if need is True:
                        path = f"{table_key}[{index}].{key}"
                        if path not in run.invalid:
                            run.error(path, REQUIRED)
            return
        for index, row in enumerate(rows):
            if row is None:
                continue
            value = row[key]
            if (not value) if textual else (value is None):
                if submit and (
                    required or (required_when is not None and required_when(values, row, run.scope) is True)
                ):
                    path = f"{table_key}[{index}].{key}"
                    if path not in run.invalid:
                        run.error(path, REQUIRED)
            elif check is not None:
                checked = check(value)
                if type(checked) is Report:
                    checked = report(checked, f"{table_key}[{index}].{key}", run)
                    if checked is None:
                        run.tainted.add(table_key)
                row[key] = checked

    return checking_pass


def _computed_pass(
    table_key: str,
    key: str,
    visible: Evaluator | None,
    clear: bool,
    formula: Evaluator,
    convert: Callable[[Any], Any],
) -> RowPass:
    def computed_pass(rows: list[Any], values: dict[str, Any], run: Run) -> None:
        scope = run.scope
        for index, row in enumerate(rows):
            if row is None:
                continue
            if visible is not None and visible(values, row, scope) is not True:
                run.hide(f"{table_key}[{index}].{key}")
                if clear:
                    row[key] = None
                    continue
            row[key] = convert(formula(values, row, scope))

    return computed_pass


def _under(path: str, hidden: set[str]) -> bool:
    """True when `path` is one of `hidden` or inside one (`a[1].b` is inside `a` and `a[1].b`)."""
    return path in hidden or any(path[: boundary.start()] in hidden for boundary in _BOUNDARY.finditer(path))


def _totals(
    table: m.DetailTableField, labels: dict[str, m.LocalizedText], currency: dict[str, str]
) -> Callable[[list[Any] | None, dict[str, Any], Run, bool], None] | None:
    """Exact column sums into `values["totals"][table]`, and the totals that must match."""
    if not table.totals:
        return None
    key = table.key
    columns = {column.key: column for column in table.columns}
    money = {column for column in table.totals if _is_money(columns[column])}
    must_equal = list(table.totals_must_equal.items())
    # (column, cell getter, zero); filter(None, ...) drops empty cells (and zeros: harmless).
    summed = [(column, itemgetter(column), Decimal(0) if column in money else 0) for column in table.totals]

    def totals(rows: list[Any] | None, values: dict[str, Any], run: Run, shown: bool) -> None:
        tainted = key in run.tainted
        if tainted:
            sums: dict[str, Any] = dict.fromkeys(table.totals)
        else:
            present = rows or ()  # untainted: no row was refused as a whole
            sums = {column: sum(filter(None, map(cell, present)), zero) for column, cell, zero in summed}
        values["totals"][key] = sums
        if not run.submit or tainted or not shown or not rows:
            return
        for column, target in must_equal:
            expected = values.get(target)
            total = sums[column]
            if expected is None or target in run.tainted or total == expected:
                continue
            locale = run.ctx.locale
            unit = currency.get(target, "CNY")
            run.error(
                key,
                TOTAL_MISMATCH,
                column=columns[column].label.get(locale),
                total=format_money(total, unit, locale) if column in money else total,
                field=labels[target].get(locale),
                value=format_money(expected, unit, locale) if target in currency else expected,
            )

    return totals


def _is_money(column: m.ColumnField) -> bool:
    return isinstance(column, m.MoneyField) or (
        isinstance(column, m.ComputedField) and column.result_type == "money"
    )


def _number_result(result: Any) -> int | float | None:
    kind = type(result)
    if kind is int or (kind is float and result - result == 0):
        return result  # type: ignore[no-any-return]
    return None


def _money_result(result: Any) -> Decimal | None:
    """A CEL number as money: binary noise rounded off at 9 places, then half-up to cents."""
    kind = type(result)
    if kind is int:
        amount = Decimal(result)
    elif kind is float and result - result == 0:
        amount = Decimal(repr(round(result, 9)))
    else:
        return None
    if abs(amount) >= MONEY_LIMIT:
        return None
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def _text_result(result: Any) -> str | None:
    return result if type(result) is str and len(result) <= m.TEXTAREA_MAX_LENGTH else None


_RESULT_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "number": _number_result,
    "money": _money_result,
    "text": _text_result,
}
_BOUNDARY = re.compile(r"[.\[]")
_PATH_HEAD = re.compile(r"([^.[]+)(?:\[(\d+)\](?:\.([^.[]+))?)?")


def _top_key(path: str) -> str:
    match = _PATH_HEAD.match(path)
    return match.group(1) if match else ""


def _root_error(ctx: ValidationContext, msgid: str) -> ValidationResult:
    return ValidationResult(errors=[FieldError(path="", message=ctx.translate(msgid))], data={})
