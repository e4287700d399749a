"""A flow graph prepared for the engine: lookups by node id, compiled conditions, regions.

Compiled once per definition and cached by (key, version); a cached entry is reused when it
is the same object or an equal one, so a definition decoded again from the database does not
recompile. A graph with structural problems raises `DefinitionError` here.
"""

from __future__ import annotations

import threading

from runtime.flow._structure import Structure
from runtime.flow.conditions import Condition
from runtime.flow.errors import DefinitionError
from runtime.flow.graph import (
    ApprovalNode,
    BranchNode,
    FlowGraph,
    Node,
    ParallelNode,
    PluginNode,
    TaskNode,
    TaskPurpose,
    WaitNode,
)
from runtime.flow.lifecycle import Status
from runtime.flow.validate import structural_problems

_CACHE_LIMIT = 512


class CompiledFlow:
    """`next`: the single successor of a node that does not fork; `fork`: the targets of a
    parallel split; `branches`: a branch's (condition, target) pairs in order and its default;
    `arms`: split -> number of tokens its join waits for; `phase`: the status a token resting
    on the node implies; `budget`: how many token moves one step may make."""

    __slots__ = (
        "arms",
        "branches",
        "budget",
        "depth",
        "fork",
        "graph",
        "next",
        "nodes",
        "phase",
        "split_of",
        "start",
    )

    def __init__(self, graph: FlowGraph) -> None:
        structure = Structure(graph)
        problems = structural_problems(structure)
        if problems:
            raise DefinitionError(f"flow {graph.key} v{graph.version} cannot run", problems)
        assert structure.start is not None  # no problems means exactly one start
        self.graph = graph
        self.start: str = structure.start
        self.nodes: dict[str, Node] = structure.nodes
        self.split_of = structure.split_of
        self.depth = structure.depth
        self.next: dict[str, str] = {}
        self.fork: dict[str, tuple[str, ...]] = {}
        self.branches: dict[str, tuple[tuple[tuple[Condition, str], ...], str]] = {}
        self.arms: dict[str, int] = {}
        self.phase: dict[str, Status | None] = {}
        edges = graph.edges
        for node_id, node in self.nodes.items():
            out = [edges[index] for index in structure.outgoing.get(node_id, [])]
            if isinstance(node, BranchNode):
                conditional = tuple((Condition(e.condition), e.target) for e in out if e.condition)
                default = next(e.target for e in out if e.is_default)
                self.branches[node_id] = (conditional, default)
            elif isinstance(node, ParallelNode):
                self.fork[node_id] = tuple(e.target for e in out)
                self.arms[node_id] = len(out)
            elif out:
                self.next[node_id] = out[0].target
            self.phase[node_id] = _phase(node)
        self.budget = 4 * len(self.nodes) + 16


def _phase(node: Node) -> Status | None:
    if isinstance(node, ApprovalNode | PluginNode):
        return Status.IN_APPROVAL
    if isinstance(node, TaskNode):
        return Status.AWAITING_SUMMARY if node.purpose == TaskPurpose.SUMMARY else Status.EXECUTING
    if isinstance(node, WaitNode):
        return Status.EXECUTING
    return None


_cache: dict[tuple[str, int], tuple[FlowGraph, CompiledFlow]] = {}
_lock = threading.Lock()
_last: tuple[FlowGraph | None, CompiledFlow | None] = (None, None)


def compile_flow(graph: FlowGraph) -> CompiledFlow:
    """The compiled form of `graph`, from the cache when an identical graph was compiled."""
    last_graph, last_flow = _last
    if last_graph is graph and last_flow is not None:
        return last_flow
    entry = _cache.get((graph.key, graph.version))
    if entry is not None and (entry[0] is graph or entry[0] == graph):
        _remember(graph, entry[1])
        return entry[1]
    flow = CompiledFlow(graph)
    with _lock:
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[(graph.key, graph.version)] = (graph, flow)
    _remember(graph, flow)
    return flow


def _remember(graph: FlowGraph, flow: CompiledFlow) -> None:
    """Keep the last graph for an identity check: the common case is one definition in a row."""
    global _last
    _last = (graph, flow)
