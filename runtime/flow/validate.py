"""Design-time check of a flow graph: every problem at once, each with its node id.

`validate_graph` is what the builder shows before publishing; the engine refuses to run a
graph with structural problems (`DefinitionError`). Field checks need the form's field keys
(a detail-table column is "table.column"); without them (`None`) only the structure is checked.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from runtime.flow._structure import Structure
from runtime.flow.conditions import INITIATOR_ATTRIBUTES, Condition, ConditionSyntaxError
from runtime.flow.graph import (
    WAITING_NODES,
    ApprovalNode,
    BranchNode,
    CcNode,
    EndNode,
    FlowGraph,
    JoinNode,
    ParallelNode,
    StartNode,
    TaskNode,
    WaitNode,
)
from runtime.flow.rules import AssigneeRule, DepartmentFieldHeadRule, PersonFieldRule


class GraphProblem(msgspec.Struct, frozen=True, kw_only=True):
    """One problem; `node_id` is None for problems of the graph as a whole."""

    node_id: str | None
    message: str


def validate_graph(graph: FlowGraph, form_field_keys: set[str] | frozenset[str] | None) -> list[GraphProblem]:
    """Every problem of `graph`, in a stable order; an empty list means it can be published."""
    structure = Structure(graph)
    problems = structural_problems(structure)
    if form_field_keys is not None:
        problems.extend(_field_problems(graph, structure, frozenset(form_field_keys)))
    return problems


def structural_problems(structure: Structure) -> list[GraphProblem]:
    """Problems that make a graph unrunnable whatever the form (the engine checks these)."""
    problems: list[GraphProblem] = []
    add = problems.append
    graph = structure.graph
    for node_id in structure.duplicates:
        add(GraphProblem(node_id=node_id, message=f"duplicate node id {node_id!r}"))
    if not structure.starts:
        add(GraphProblem(node_id=None, message="the flow has no start node"))
    for extra in structure.starts[1:]:
        add(GraphProblem(node_id=extra, message="a flow has exactly one start node"))
    if not structure.ends:
        add(GraphProblem(node_id=None, message="the flow has no end node"))
    for index in structure.dangling:
        edge = graph.edges[index]
        unknown = edge.source if edge.source not in structure.nodes else edge.target
        add(
            GraphProblem(
                node_id=edge.source, message=f"edge {edge.source} -> {edge.target}: unknown node {unknown!r}"
            )
        )
    problems.extend(_edge_problems(structure))
    problems.extend(_branch_problems(structure))
    for node_id in structure.nodes:
        if structure.start is not None and node_id not in structure.reachable:
            add(GraphProblem(node_id=node_id, message="unreachable from the start node"))
    problems.extend(_parallel_problems(structure))
    problems.extend(_cycle_problems(structure))
    return problems


def _edge_problems(structure: Structure) -> Iterable[GraphProblem]:
    for node_id, node in structure.nodes.items():
        out = structure.outgoing.get(node_id, [])
        if isinstance(node, EndNode):
            if out:
                yield GraphProblem(node_id=node_id, message="an end node cannot have outgoing edges")
            continue
        if isinstance(node, StartNode) and structure.incoming.get(node_id):
            yield GraphProblem(node_id=node_id, message="the start node cannot have incoming edges")
        if not out:
            yield GraphProblem(node_id=node_id, message="dead end: no outgoing edge and not an end node")
        elif isinstance(node, ParallelNode):
            if len(out) < 2:
                yield GraphProblem(
                    node_id=node_id, message="a parallel split needs at least two outgoing edges"
                )
        elif not isinstance(node, BranchNode) and len(out) > 1:
            yield GraphProblem(
                node_id=node_id, message="only branch and parallel nodes may have several outgoing edges"
            )
    for edge in structure.graph.edges:
        source = structure.nodes.get(edge.source)
        if source is not None and not isinstance(source, BranchNode) and (edge.condition or edge.is_default):
            yield GraphProblem(
                node_id=edge.source,
                message=f"edge {edge.source} -> {edge.target}: only edges leaving a branch have conditions",
            )


def _branch_problems(structure: Structure) -> Iterable[GraphProblem]:
    edges = structure.graph.edges
    for node_id, node in structure.nodes.items():
        if not isinstance(node, BranchNode):
            continue
        out = [edges[index] for index in structure.outgoing.get(node_id, [])]
        defaults = [edge for edge in out if edge.is_default]
        if not defaults:
            yield GraphProblem(node_id=node_id, message="a branch needs a default edge")
        elif len(defaults) > 1:
            yield GraphProblem(node_id=node_id, message="a branch has exactly one default edge")
        for edge in out:
            if edge.is_default and edge.condition:
                yield GraphProblem(
                    node_id=node_id,
                    message=f"edge {edge.source} -> {edge.target}: the default edge has no condition",
                )
            elif not edge.is_default and not edge.condition:
                yield GraphProblem(
                    node_id=node_id,
                    message=f"edge {edge.source} -> {edge.target}: a condition or is_default is required",
                )
            elif edge.condition:
                try:
                    Condition(edge.condition)
                except ConditionSyntaxError as exc:
                    yield GraphProblem(
                        node_id=node_id,
                        message=f"edge {edge.source} -> {edge.target}: condition does not parse: {exc}",
                    )


def _parallel_problems(structure: Structure) -> Iterable[GraphProblem]:
    nodes = structure.nodes
    joins_of: dict[str, list[str]] = {}
    for join, split in structure.split_of.items():
        joins_of.setdefault(split, []).append(join)
    for node_id in structure.order:
        if isinstance(nodes[node_id], JoinNode) and node_id not in structure.split_of:
            yield GraphProblem(node_id=node_id, message="join without a matching parallel split")
    for split, joins in joins_of.items():
        if len(joins) > 1:
            names = ", ".join(sorted(joins))
            yield GraphProblem(node_id=split, message=f"parallel split is closed by several joins: {names}")
            continue
        join = joins[0]
        reached: list[set[str]] = []
        for first in structure.successors(split):
            arm = structure.arm_reach(split, first, join)
            ends = sorted(arm & structure.ends)
            if ends:
                yield GraphProblem(
                    node_id=split,
                    message=f"an arm of this split reaches end {ends[0]!r} without passing join {join!r}",
                )
            for other in reached:
                if arm & other:
                    meet = sorted(arm & other)[0]
                    yield GraphProblem(
                        node_id=split, message=f"arms of this split meet at {meet!r} before join {join!r}"
                    )
            reached.append(arm)


def _cycle_problems(structure: Structure) -> Iterable[GraphProblem]:
    for component in structure.cycles():
        members = set(component)
        exits = any(
            target not in members for node_id in component for target in structure.successors(node_id)
        )
        path = " -> ".join(component)
        if not exits:
            yield GraphProblem(node_id=component[0], message=f"loop with no exit: {path}")
        elif not any(isinstance(structure.nodes[n], WAITING_NODES) for n in component):
            yield GraphProblem(
                node_id=component[0], message=f"loop without a waiting step would spin: {path}"
            )


def _field_problems(graph: FlowGraph, structure: Structure, keys: frozenset[str]) -> Iterable[GraphProblem]:
    for edge in graph.edges:
        if not edge.condition:
            continue
        try:
            condition = Condition(edge.condition)
        except ConditionSyntaxError:
            continue  # reported with the branch
        where = f"condition on {edge.source} -> {edge.target}"
        for name in sorted(condition.unknown_names):
            yield GraphProblem(node_id=edge.source, message=f"{where}: unknown name {name!r}")
        for field in condition.fields:
            if field not in keys:
                yield GraphProblem(node_id=edge.source, message=f"{where}: unknown field {field!r}")
        for attribute in condition.attributes:
            if attribute not in INITIATOR_ATTRIBUTES:
                yield GraphProblem(
                    node_id=edge.source, message=f"{where}: unknown initiator attribute {attribute!r}"
                )
    for node in structure.nodes.values():
        for field, what in _fields_read(node):
            if not _known_field(field, keys):
                yield GraphProblem(node_id=node.id, message=f"{what}: unknown field {field!r}")


def _fields_read(node: object) -> Iterable[tuple[str, str]]:
    rule: AssigneeRule | None = None
    if isinstance(node, ApprovalNode):
        rule = node.assignees
    elif isinstance(node, TaskNode):
        rule = node.owner
        if node.due_from_field:
            yield node.due_from_field, "due_from_field"
    elif isinstance(node, CcNode):
        rule = node.recipients
    elif isinstance(node, WaitNode):
        yield node.field, "wait field"
    if isinstance(rule, PersonFieldRule | DepartmentFieldHeadRule):
        yield rule.field, "assignee rule"
    for key in getattr(node, "field_permissions", {}):
        yield key, "field permission"


def _known_field(key: str, keys: frozenset[str]) -> bool:
    """Listed, or "table.column" where the table is listed without its columns."""
    if key in keys:
        return True
    table, _, column = key.partition(".")
    return bool(column) and table in keys and not any(k.startswith(table + ".") for k in keys)
