"""Graph analysis shared by validation and the engine: adjacency, reachability, dominators,
parallel regions, cycles. Tolerates broken graphs (validation reports what is broken)."""

from __future__ import annotations

from collections import defaultdict

from runtime.flow.graph import EndNode, FlowGraph, JoinNode, Node, ParallelNode, StartNode


class Structure:
    """`nodes`: id -> node (first of duplicates); `outgoing`/`incoming`: edges between known
    nodes, in graph order; `split_of`: join -> the nearest parallel split dominating it;
    `depth`: node -> how many parallel regions (split..join) it lies inside."""

    def __init__(self, graph: FlowGraph) -> None:
        self.graph = graph
        self.nodes: dict[str, Node] = {}
        self.duplicates: list[str] = []
        for node in graph.nodes:
            if node.id in self.nodes:
                self.duplicates.append(node.id)
            else:
                self.nodes[node.id] = node
        self.outgoing: dict[str, list[int]] = defaultdict(list)
        self.incoming: dict[str, list[int]] = defaultdict(list)
        self.dangling: list[int] = []
        for index, edge in enumerate(graph.edges):
            if edge.source in self.nodes and edge.target in self.nodes:
                self.outgoing[edge.source].append(index)
                self.incoming[edge.target].append(index)
            else:
                self.dangling.append(index)
        self.starts = [node.id for node in self.nodes.values() if isinstance(node, StartNode)]
        self.ends = frozenset(node.id for node in self.nodes.values() if isinstance(node, EndNode))
        self.start = self.starts[0] if self.starts else None
        self.order = self._reverse_postorder()
        self.reachable = frozenset(self.order)
        self.dominators = self._dominators()
        self.split_of = self._splits()
        self.depth = self._depths()

    def successors(self, node_id: str) -> list[str]:
        edges = self.graph.edges
        return [edges[index].target for index in self.outgoing.get(node_id, ())]

    def predecessors(self, node_id: str) -> list[str]:
        edges = self.graph.edges
        return [edges[index].source for index in self.incoming.get(node_id, ())]

    def _reverse_postorder(self) -> list[str]:
        if self.start is None:
            return []
        seen = {self.start}
        postorder: list[str] = []
        stack: list[tuple[str, list[str]]] = [(self.start, self.successors(self.start))]
        while stack:
            node_id, pending = stack[-1]
            if pending:
                target = pending.pop(0)
                if target not in seen:
                    seen.add(target)
                    stack.append((target, self.successors(target)))
            else:
                postorder.append(node_id)
                stack.pop()
        return postorder[::-1]

    def _dominators(self) -> dict[str, frozenset[str]]:
        if self.start is None:
            return {}
        everything = frozenset(self.order)
        dominators: dict[str, frozenset[str]] = {n: everything for n in self.order}
        dominators[self.start] = frozenset({self.start})
        changed = True
        while changed:
            changed = False
            for node_id in self.order[1:]:
                preds = [dominators[p] for p in self.predecessors(node_id) if p in dominators]
                common = frozenset.intersection(*preds) if preds else frozenset()
                updated = common | {node_id}
                if updated != dominators[node_id]:
                    dominators[node_id] = updated
                    changed = True
        return dominators

    def _splits(self) -> dict[str, str]:
        """Each reachable join -> the parallel split dominating it most closely."""
        matched: dict[str, str] = {}
        for node_id in self.order:
            if not isinstance(self.nodes[node_id], JoinNode):
                continue
            candidates = [
                d
                for d in self.dominators[node_id]
                if d != node_id and isinstance(self.nodes[d], ParallelNode)
            ]
            if candidates:
                matched[node_id] = max(candidates, key=lambda d: len(self.dominators[d]))
        return matched

    def _depths(self) -> dict[str, int]:
        depth = dict.fromkeys(self.order, 0)
        for join, split in self.split_of.items():
            for node_id in self.order:
                doms = self.dominators[node_id]
                if node_id != split and split in doms and join not in doms:
                    depth[node_id] += 1
        return depth

    def arm_reach(self, split: str, first: str, join: str | None) -> set[str]:
        """Nodes reachable from `first` (an arm of `split`) without passing `join`."""
        seen = {first}
        stack = [first]
        while stack:
            node_id = stack.pop()
            if node_id == join:
                continue
            for target in self.successors(node_id):
                if target not in seen:
                    seen.add(target)
                    stack.append(target)
        seen.discard(join)  # type: ignore[arg-type]
        return seen

    def cycles(self) -> list[list[str]]:
        """Strongly connected components that contain a cycle (Tarjan, iterative)."""
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        on_stack: set[str] = set()
        stack: list[str] = []
        found: list[list[str]] = []
        counter = 0
        for root in self.nodes:
            if root in index:
                continue
            work: list[tuple[str, int]] = [(root, 0)]
            while work:
                node_id, child = work.pop()
                if child == 0:
                    index[node_id] = low[node_id] = counter
                    counter += 1
                    stack.append(node_id)
                    on_stack.add(node_id)
                successors = self.successors(node_id)
                if child < len(successors):
                    work.append((node_id, child + 1))
                    target = successors[child]
                    if target not in index:
                        work.append((target, 0))
                    elif target in on_stack:
                        low[node_id] = min(low[node_id], index[target])
                    continue
                if low[node_id] == index[node_id]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node_id:
                            break
                    if len(component) > 1 or node_id in self.successors(node_id):
                        found.append(component[::-1])
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node_id])
        return found
