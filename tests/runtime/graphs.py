"""Builders for small flow graphs in tests."""

from __future__ import annotations

import itertools
from typing import Any

from runtime.flow.graph import (
    ApprovalNode,
    Edge,
    EndNode,
    FlowGraph,
    Node,
    StartNode,
)
from runtime.flow.rules import AssigneeRule, PeopleRule


def approval(node_id: str, *people: int, rule: AssigneeRule | None = None, **options: Any) -> ApprovalNode:
    return ApprovalNode(id=node_id, title=node_id, assignees=rule or PeopleRule(ids=people), **options)


def chain(*nodes: Node, key: str = "test", **options: Any) -> FlowGraph:
    """start -> nodes... -> end, in order."""
    all_nodes = [StartNode(id="start"), *nodes, EndNode(id="end")]
    edges = [Edge(source=a.id, target=b.id) for a, b in itertools.pairwise(all_nodes)]
    return FlowGraph(key=key, nodes=tuple(all_nodes), edges=tuple(edges), **options)


def graph(
    nodes: list[Node], edges: list[tuple[str, str] | Edge], key: str = "test", **options: Any
) -> FlowGraph:
    built = tuple(e if isinstance(e, Edge) else Edge(source=e[0], target=e[1]) for e in edges)
    return FlowGraph(key=key, nodes=tuple(nodes), edges=built, **options)
