"""Design-time checks of a flow's plugin steps, for saving and publishing a flow.

`validate_plugin_nodes` complements `runtime.flow.validate_graph`: for every plugin node it
reports an unknown or disabled plugin, a config that does not fit the plugin's config type
(with the path inside the config), and the plugin's own `check` problems. Each problem names
its node, in graph order. A plugin whose `check` raises is reported, never propagated.
"""

from __future__ import annotations

from collections.abc import Mapping

from forms import model as m
from forms.model import FormSchema
from plugins.errors import ConfigInvalid
from plugins.registry import Registry, default_registry
from plugins.step import NodeSite
from runtime.flow.graph import FlowGraph, PluginNode
from runtime.flow.plugins import placement
from runtime.flow.validate import GraphProblem


def validate_plugin_nodes(
    graph: FlowGraph, form: FormSchema | None = None, *, registry: Registry | None = None
) -> list[GraphProblem]:
    """Every problem of the plugin steps of `graph` (an empty list: they can be published).

    With `form`, field references are checked too (the field exists, has the right type)."""
    registry = registry or default_registry()
    fields = form_fields(form) if form is not None else None
    problems: list[GraphProblem] = []
    for node in graph.nodes:
        if isinstance(node, PluginNode):
            problems.extend(
                GraphProblem(node_id=node.id, message=message)
                for message in _node_problems(graph, node, registry, fields)
            )
    return problems


def _node_problems(
    graph: FlowGraph, node: PluginNode, registry: Registry, fields: Mapping[str, str] | None
) -> list[str]:
    step = registry.get(node.plugin)
    if step is None:
        problem = registry.problem_for(node.plugin)
        if problem is not None:
            return [f"step plugin {node.plugin!r} is disabled: {problem.message}"]
        return [f"no step plugin named {node.plugin!r} is installed"]
    try:
        config = step.config(node.config)
    except ConfigInvalid as exc:
        return exc.messages
    messages = _mask_problems(config.field_permissions, fields)
    site = site_of(graph, node.id, fields)
    try:
        messages.extend(step.check(config, site))
    except Exception as exc:
        messages.append(f"step plugin {step.name!r} failed to check its config: {type(exc).__name__}: {exc}")
    return messages


def site_of(graph: FlowGraph, node_id: str, fields: Mapping[str, str] | None) -> NodeSite:
    """Where `node_id` sits in `graph`, as a plugin's `check` sees it."""
    where = placement(graph, node_id)
    return NodeSite(node_id=node_id, fields=fields, after=where.after, alongside=where.alongside)


def form_fields(form: FormSchema) -> dict[str, str]:
    """Field key ("table.column" for columns) -> type; computed fields by their result type."""
    found: dict[str, str] = {}
    for field in m.value_fields(form):
        found[field.key] = _kind(field)
        if isinstance(field, m.DetailTableField):
            for column in field.columns:
                found[f"{field.key}.{column.key}"] = _kind(column)
    return found


def _kind(field: object) -> str:
    if isinstance(field, m.ComputedField):
        return str(field.result_type)
    return m.field_type(field)  # type: ignore[arg-type]


def _mask_problems(permissions: Mapping[str, object], fields: Mapping[str, str] | None) -> list[str]:
    if fields is None:
        return []
    return [f"field_permissions: unknown field {key!r}" for key in permissions if key not in fields]


__all__ = ["form_fields", "site_of", "validate_plugin_nodes"]
