"""What the expressions of a schema read, and the order that follows from it.

Parses every CEL expression of a schema once, resolves the names it reads, and orders the
fields so that each is settled (defaulted, hidden or kept, computed) before anything that
reads it. Both the design-time check (`forms.check`) and the compiler use the result; the
check reports `findings`, the compiler refuses a schema that has any.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from forms import model as m
from forms.expressions import CONTEXT_NAMES, Expression, ExpressionSyntaxError
from forms.i18n import N_

BAD_EXPRESSION = N_("The expression does not parse: {detail}")
UNKNOWN_NAME = N_('Unknown name "{name}".')
ROW_OUTSIDE_TABLE = N_('"row" can only be used inside a detail table.')
UNKNOWN_COLUMN = N_('Unknown column "{name}".')
UNKNOWN_FUNCTION = N_('Unknown function "{name}".')
UNKNOWN_TOTAL = N_('"{name}" is not a detail table with totals.')
CYCLE = N_("Dependency cycle: {cycle}.")


class Finding(msgspec.Struct, frozen=True):
    """A problem found in a schema: where, a short code, the msgid and its parameters."""

    path: str
    code: str
    msgid: str
    params: dict[str, Any] = {}


class Site(msgspec.Struct, frozen=True):
    """One expression of the schema and where it sits.

    `owner`: the top-level key whose settling evaluates it ("" for form rules); `table` /
    `column`: set when it is evaluated inside the rows of that table (for that column).
    """

    path: str
    expression: Expression
    owner: str
    table: m.DetailTableField | None = None
    column: str | None = None


class Analysis:
    """Parsed expressions by schema path, findings, and the settling order of fields."""

    def __init__(self, schema: m.FormSchema) -> None:
        self.schema = schema
        self.findings: list[Finding] = []
        self.expressions: dict[str, Expression] = {}
        self.sites: list[Site] = []
        self.value_keys = {field.key: field for field in m.value_fields(schema)}
        self.totals_tables = {
            field.key: field
            for field in schema.fields
            if isinstance(field, m.DetailTableField) and field.totals
        }
        for path, source, owner, table, column in _expression_sources(schema):
            try:
                expression = Expression(source)
            except ExpressionSyntaxError as exc:
                self.findings.append(Finding(path, "expression_syntax", BAD_EXPRESSION, {"detail": str(exc)}))
                continue
            self.expressions[path] = expression
            site = Site(path, expression, owner, table, column)
            self.sites.append(site)
            self._check_names(site)
        self.order = self._field_order()
        self.column_orders = {
            field.key: self._column_order(index, field)
            for index, field in enumerate(schema.fields)
            if isinstance(field, m.DetailTableField)
        }

    # ------------------------------------------------------------------ names

    def _check_names(self, site: Site) -> None:
        expression = site.expression
        for name in sorted(expression.names):
            if name == "row":
                if site.table is None:
                    self.findings.append(Finding(site.path, "row_outside_table", ROW_OUTSIDE_TABLE))
                    continue
                columns = {column.key for column in site.table.columns}
                for attr in sorted(expression.members.get("row") or ()):
                    if attr not in columns:
                        self.findings.append(
                            Finding(site.path, "unknown_column", UNKNOWN_COLUMN, {"name": attr})
                        )
            elif name == "totals":
                for attr in sorted(expression.members.get("totals") or ()):
                    if attr not in self.totals_tables:
                        self.findings.append(
                            Finding(site.path, "unknown_total", UNKNOWN_TOTAL, {"name": attr})
                        )
            elif name not in CONTEXT_NAMES and name not in self.value_keys:
                self.findings.append(Finding(site.path, "unknown_name", UNKNOWN_NAME, {"name": name}))
        for name in sorted(expression.unknown_functions):
            self.findings.append(Finding(site.path, "unknown_function", UNKNOWN_FUNCTION, {"name": name}))

    def reads(self, expression: Expression) -> set[str]:
        """The top-level keys an expression depends on (totals resolved to their tables)."""
        keys = {name for name in expression.names if name in self.value_keys}
        if "totals" in expression.names:
            tables = expression.members.get("totals")
            keys |= (
                set(self.totals_tables) if tables is None else {t for t in tables if t in self.totals_tables}
            )
        return keys

    # ------------------------------------------------------------------ order

    def _field_order(self) -> list[str]:
        deps: dict[str, set[str]] = {key: set() for key in self.value_keys}
        for site in self.sites:
            if site.owner:
                deps[site.owner] |= self.reads(site.expression)
        for field in self.schema.fields:
            if isinstance(field, m.DetailTableField):
                deps[field.key] |= {key for key in field.totals_must_equal.values() if key in self.value_keys}
        order, cycle = toposort(list(self.value_keys), deps)
        if cycle:
            index = next(i for i, f in enumerate(self.schema.fields) if getattr(f, "key", None) == cycle[0])
            self.findings.append(Finding(f"fields[{index}]", "cycle", CYCLE, {"cycle": " -> ".join(cycle)}))
        return order

    def _column_order(self, index: int, table: m.DetailTableField) -> list[str]:
        columns = [column.key for column in table.columns]
        deps: dict[str, set[str]] = {key: set() for key in columns}
        for site in self.sites:
            if site.table is table and site.column is not None and "row" in site.expression.names:
                attrs = site.expression.members.get("row")
                deps[site.column] |= (
                    set(columns) - {site.column} if attrs is None else set(attrs) & set(columns)
                )
        order, cycle = toposort(columns, deps)
        if cycle:
            self.findings.append(
                Finding(f"fields[{index}].columns", "cycle", CYCLE, {"cycle": " -> ".join(cycle)})
            )
        return order


def toposort(nodes: list[str], deps: dict[str, set[str]]) -> tuple[list[str], list[str]]:
    """`nodes` ordered so each comes after its dependencies, keeping the given order where free.

    Returns (order, cycle): `cycle` is empty, or one cycle as a path that starts and ends
    with the same node (then `order` still holds every node, the cycle in given order).
    """
    order: list[str] = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    cycle: list[str] = []

    def visit(node: str, stack: list[str]) -> None:
        nonlocal cycle
        state[node] = 1
        stack.append(node)
        for dep in sorted(deps.get(node, ()), key=nodes.index):
            if state.get(dep) == 1:
                if not cycle:
                    cycle = [*stack[stack.index(dep) :], dep]
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[node] = 2
        order.append(node)

    for node in nodes:
        if node not in state:
            visit(node, [])
    return order, cycle


def _expression_sources(
    schema: m.FormSchema,
) -> Iterator[tuple[str, str, str, m.DetailTableField | None, str | None]]:
    """(schema path, source, owner key, table, column) of every expression in `schema`."""
    for index, field in enumerate(schema.fields):
        if m.is_layout(field):
            continue
        base = f"fields[{index}]"
        yield from _own_sources(base, field, field.key, None)  # type: ignore[arg-type]
        if isinstance(field, m.DetailTableField):
            for column_index, column in enumerate(field.columns):
                column_base = f"{base}.columns[{column_index}]"
                yield from _own_sources(column_base, column, field.key, field)
            for rule_index, rule in enumerate(field.row_rules):
                rule_base = f"{base}.row_rules[{rule_index}]"
                if rule.when is not None:
                    yield f"{rule_base}.when", rule.when, field.key, field, None
                yield f"{rule_base}.check", rule.check, field.key, field, None
    for rule_index, rule in enumerate(schema.rules):
        if rule.when is not None:
            yield f"rules[{rule_index}].when", rule.when, "", None, None
        yield f"rules[{rule_index}].check", rule.check, "", None, None


def _own_sources(
    base: str, field: m.ValueField | m.ColumnField, owner: str, table: m.DetailTableField | None
) -> Iterator[tuple[str, str, str, m.DetailTableField | None, str | None]]:
    column = field.key if table is not None else None
    if field.visible_when is not None:
        yield f"{base}.visible_when", field.visible_when, owner, table, column
    if not isinstance(field, m.ComputedField) and field.required_when is not None:
        yield f"{base}.required_when", field.required_when, owner, table, column
    if isinstance(field, m.ComputedField):
        yield f"{base}.formula", field.formula, owner, table, column
