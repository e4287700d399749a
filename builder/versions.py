"""What changed between two versions of a template, and what a new version would break.

    changes = diff_versions(old_form, old_flow, new_form, new_flow)
    changes.fields   # FieldChange per field (or table column) added, removed or changed
    changes.steps    # StepChange per flow node added, removed or changed
    changes.routes   # edges (with their conditions) added and removed

    breaking = breaking_changes(old_form, new_form, new_flow, draft_values)

A breaking change is one that hurts requests already in the system: a removed field that
drafts hold values for, a field whose type changes under existing values, a removed option
that drafts chose. Problems *inside* the new version (a condition naming a removed field)
are the form check's and `validate_graph`'s business and block publishing on their own.
Pure: shapes in, shapes out.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import msgspec

from forms import model as m
from runtime.flow.graph import FlowGraph


class Change(enum.StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


class FieldChange(msgspec.Struct, frozen=True, kw_only=True):
    """`key` is a field key or "table.column"; `properties` names what changed."""

    key: str
    label: str
    change: Change
    properties: tuple[str, ...] = ()


class StepChange(msgspec.Struct, frozen=True, kw_only=True):
    node_id: str
    title: str
    change: Change
    properties: tuple[str, ...] = ()


class RouteChange(msgspec.Struct, frozen=True, kw_only=True):
    source: str
    target: str
    condition: str | None
    change: Change


class VersionDiff(msgspec.Struct, frozen=True, kw_only=True):
    fields: tuple[FieldChange, ...]
    steps: tuple[StepChange, ...]
    routes: tuple[RouteChange, ...]
    settings: tuple[str, ...]
    """Form- and flow-level settings that changed (title, rules, change approvers...)."""

    @property
    def empty(self) -> bool:
        return not (self.fields or self.steps or self.routes or self.settings)


class BreakingChange(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    kind: str  # "removed_field" | "type_changed" | "removed_option"
    drafts: int
    """How many drafts hold a value the change affects."""


def diff_versions(
    old_form: m.FormSchema,
    old_flow: FlowGraph | None,
    new_form: m.FormSchema,
    new_flow: FlowGraph | None,
) -> VersionDiff:
    """The readable difference from the old version to the new one, in display order."""
    fields = _keyed_changes(_fields(old_form), _fields(new_form))
    field_changes = tuple(
        FieldChange(key=key, label=label, change=change, properties=properties)
        for key, label, change, properties in fields
    )
    step_changes: tuple[StepChange, ...] = ()
    route_changes: tuple[RouteChange, ...] = ()
    if old_flow is not None or new_flow is not None:
        steps = _keyed_changes(_steps(old_flow), _steps(new_flow))
        step_changes = tuple(
            StepChange(node_id=key, title=title, change=change, properties=properties)
            for key, title, change, properties in steps
        )
        route_changes = _route_changes(old_flow, new_flow)
    return VersionDiff(
        fields=field_changes,
        steps=step_changes,
        routes=route_changes,
        settings=_setting_changes(old_form, old_flow, new_form, new_flow),
    )


def breaking_changes(
    old_form: m.FormSchema,
    new_form: m.FormSchema,
    draft_values: Mapping[str, Mapping[str, int]],
) -> list[BreakingChange]:
    """Changes that affect drafts: `draft_values[key][value]` counts drafts holding that value.

    For a list value (multi-select) each element is counted; for any other field the value's
    `str` is the key, and only choice fields need more than the total.
    """
    old = dict(_value_fields(old_form))
    new = dict(_value_fields(new_form))
    found: list[BreakingChange] = []
    for key, field in old.items():
        held = draft_values.get(key, {})
        total = sum(held.values())
        if not total:
            continue
        if key not in new:
            found.append(BreakingChange(key=key, kind="removed_field", drafts=total))
            continue
        if m.field_type(field) != m.field_type(new[key]):
            found.append(BreakingChange(key=key, kind="type_changed", drafts=total))
            continue
        removed = _options(field) - _options(new[key])
        affected = sum(count for value, count in held.items() if value in removed)
        if affected:
            found.append(BreakingChange(key=key, kind="removed_option", drafts=affected))
    return found


# -- fields ---------------------------------------------------------------------------------


def _fields(schema: m.FormSchema) -> dict[str, tuple[str, dict[str, Any]]]:
    """Key -> (label, settings) for every field, and "table.column" for table columns."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for field in schema.fields:
        settings = msgspec.to_builtins(field)
        label = _label(field)
        if isinstance(field, m.DetailTableField):
            settings.pop("columns", None)
            found[field.key] = (label, settings)
            for column in field.columns:
                found[f"{field.key}.{column.key}"] = (
                    f"{label} / {_label(column)}",
                    msgspec.to_builtins(column),
                )
        else:
            found[field.key] = (label, settings)
    return found


def _value_fields(schema: m.FormSchema) -> list[tuple[str, m.ValueField | m.ColumnField]]:
    found: list[tuple[str, m.ValueField | m.ColumnField]] = []
    for field in m.value_fields(schema):
        found.append((field.key, field))
        if isinstance(field, m.DetailTableField):
            found.extend((f"{field.key}.{column.key}", column) for column in field.columns)
    return found


def _label(field: m.Field | m.ColumnField) -> str:
    label = getattr(field, "label", None) or getattr(field, "text", None)
    return str(getattr(label, "zh", "") or getattr(label, "en", "") or field.key)


def _options(field: m.ValueField | m.ColumnField) -> set[str]:
    options = getattr(field, "options", None) or []
    return {str(option.value) for option in options}


# -- steps and routes -----------------------------------------------------------------------


def _steps(flow: FlowGraph | None) -> dict[str, tuple[str, dict[str, Any]]]:
    if flow is None:
        return {}
    return {node.id: (node.title or node.id, msgspec.to_builtins(node)) for node in flow.nodes}


def _route_changes(old: FlowGraph | None, new: FlowGraph | None) -> tuple[RouteChange, ...]:
    def routes(flow: FlowGraph | None) -> list[tuple[str, str, str | None, bool]]:
        return [] if flow is None else [(e.source, e.target, e.condition, e.is_default) for e in flow.edges]

    before, after = routes(old), routes(new)
    removed = [
        RouteChange(source=s, target=t, condition=c, change=Change.REMOVED)
        for s, t, c, d in before
        if (s, t, c, d) not in after
    ]
    added = [
        RouteChange(source=s, target=t, condition=c, change=Change.ADDED)
        for s, t, c, d in after
        if (s, t, c, d) not in before
    ]
    return (*removed, *added)


# -- shared ---------------------------------------------------------------------------------


def _keyed_changes(
    before: dict[str, tuple[str, dict[str, Any]]], after: dict[str, tuple[str, dict[str, Any]]]
) -> list[tuple[str, str, Change, tuple[str, ...]]]:
    """Changes in the new order, removed entries where they stood in the old one."""
    changes: list[tuple[str, str, Change, tuple[str, ...]]] = []
    for key, (label, settings) in after.items():
        if key not in before:
            changes.append((key, label, Change.ADDED, ()))
            continue
        properties = _changed_properties(before[key][1], settings)
        if properties:
            changes.append((key, label, Change.CHANGED, properties))
    removed = [(key, label, Change.REMOVED, ()) for key, (label, _) in before.items() if key not in after]
    return removed + changes


def _changed_properties(before: dict[str, Any], after: dict[str, Any]) -> tuple[str, ...]:
    names = sorted(set(before) | set(after))
    return tuple(name for name in names if before.get(name) != after.get(name))


def _setting_changes(
    old_form: m.FormSchema, old_flow: FlowGraph | None, new_form: m.FormSchema, new_flow: FlowGraph | None
) -> tuple[str, ...]:
    changed: list[str] = []
    for name in ("title", "description", "rules"):
        if getattr(old_form, name) != getattr(new_form, name):
            changed.append(f"form.{name}")
    if old_flow is None or new_flow is None:
        if (old_flow is None) != (new_flow is None):
            changed.append("flow")
        return tuple(changed)
    for name in ("title", "change_approvers", "resubmit_from"):
        if getattr(old_flow, name) != getattr(new_flow, name):
            changed.append(f"flow.{name}")
    return tuple(changed)
