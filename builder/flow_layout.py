"""A flow graph as the designer draws it: a vertical sequence of steps with branches side by side.

    blocks = layout(flow)          # Sequence of Step / Split blocks, start to end

Walking from the start node, a node with one way on is a `Step`; a `branch` or `parallel` node
is a `Split` whose arms are laid out recursively until they meet again (`merge`, the first node
every arm reaches), after which the walk goes on from the merge. An edge leading back to a node
already drawn ends its arm with `loops_to`. Every slot between two steps carries the index of the
edge it stands for, so the designer's "+" knows where to insert. Works on the draft's JSON as it
stands (problems and all); pure.
"""

from __future__ import annotations

from typing import Any

import msgspec

from builder.flow_edits import merge_point


class Step(msgspec.Struct, frozen=True, kw_only=True):
    node: dict[str, Any]
    edge_in: int | None
    """The edge that leads into this step (where "+" above it inserts), None for the start."""


class Arm(msgspec.Struct, frozen=True, kw_only=True):
    edge: int
    condition: str | None
    is_default: bool
    blocks: list[Step | Split]
    loops_to: str | None = None
    """The arm goes back to this already drawn node (a loop) instead of reaching the merge."""
    edge_out: int | None = None
    """The edge from the arm's last step to the merge (where "+" at the arm's foot inserts);
    the arm's own edge when the arm is empty; None when the last block is a split."""


class Split(msgspec.Struct, frozen=True, kw_only=True):
    node: dict[str, Any]
    edge_in: int | None
    arms: list[Arm]
    merge: str | None
    """Where the arms meet (a join for a parallel split), None when they never do."""


Block = Step | Split


class Layout(msgspec.Struct, frozen=True, kw_only=True):
    blocks: list[Block]
    unreachable: list[dict[str, Any]]
    """Nodes no path from the start reaches (validation reports them too)."""


def layout(flow: dict[str, Any]) -> Layout:
    nodes = {str(node.get("id")): node for node in flow.get("nodes", []) if isinstance(node, dict)}
    edges = [edge for edge in flow.get("edges", []) if isinstance(edge, dict)]
    outgoing: dict[str, list[int]] = {}
    for index, edge in enumerate(edges):
        outgoing.setdefault(edge.get("from", ""), []).append(index)
    start = next((node_id for node_id, node in nodes.items() if node.get("type") == "start"), None)
    drawn: set[str] = set()
    walker = _Walker(nodes, edges, outgoing, drawn)
    blocks = walker.sequence(start, None, stop=None) if start else []
    unreachable = [node for node_id, node in nodes.items() if node_id not in drawn]
    return Layout(blocks=blocks, unreachable=unreachable)


class _Walker:
    def __init__(
        self,
        nodes: dict[str, dict[str, Any]],
        edges: list[dict[str, Any]],
        outgoing: dict[str, list[int]],
        drawn: set[str],
    ) -> None:
        self.nodes, self.edges, self.outgoing, self.drawn = nodes, edges, outgoing, drawn

    def sequence(self, node_id: str | None, edge_in: int | None, *, stop: str | None) -> list[Block]:
        blocks, _ = self.walk(node_id, edge_in, stop=stop)
        return blocks

    def walk(
        self, node_id: str | None, edge_in: int | None, *, stop: str | None
    ) -> tuple[list[Block], str | None]:
        """The blocks from `node_id` until `stop`, an end, or a node drawn before (returned)."""
        blocks: list[Block] = []
        while node_id is not None and node_id != stop and node_id in self.nodes:
            if node_id in self.drawn:
                return blocks, node_id
            self.drawn.add(node_id)
            node = self.nodes[node_id]
            ways = self.outgoing.get(node_id, [])
            if node.get("type") in ("branch", "parallel") and len(ways) > 1:
                merge = merge_point({"edges": self.edges}, node_id)
                arms = [self.arm(index, merge) for index in ways]
                blocks.append(Split(node=node, edge_in=edge_in, arms=arms, merge=merge))
                node_id, edge_in = merge, None
                continue
            blocks.append(Step(node=node, edge_in=edge_in))
            if not ways:
                break
            edge_in = ways[0]
            node_id = self.edges[edge_in].get("to")
        return blocks, None

    def arm(self, index: int, merge: str | None) -> Arm:
        edge = self.edges[index]
        blocks, back_to = self.walk(edge.get("to"), index, stop=merge)
        edge_out: int | None = index
        if blocks:
            last = blocks[-1]
            ways = self.outgoing.get(str(last.node.get("id")), [])
            edge_out = ways[0] if isinstance(last, Step) and len(ways) == 1 else None
        return Arm(
            edge_out=edge_out,
            edge=index,
            condition=edge.get("condition"),
            is_default=bool(edge.get("is_default")),
            blocks=blocks,
            loops_to=back_to,
        )
