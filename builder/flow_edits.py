"""The flow designer's edits: small pure functions from one flow JSON to the next.

    flow, node_id = insert_step(flow, "approval", on_edge=3)        # "+" on an edge
    flow, node_id = insert_step(flow, "cc", before="approved_notice")  # "+" above a merge point
    flow = update_step(flow, node_id, {"title": "分管领导审批", "mode": "all", ...})
    flow = remove_step(flow, node_id)

Each edit returns a new dict (the input is never changed) or raises `EditError` with a message
for the designer. New steps get settings that validate (an approval by the department head, a
branch with a condition arm and a default arm), so a flow stays publishable as it is built;
`runtime.flow.validate_graph` remains the judge of the result.
"""

from __future__ import annotations

import copy
from collections import deque
from typing import Any

import msgspec

from runtime.flow.graph import Node

STEP_KINDS = ("approval", "cc", "branch", "parallel", "task", "wait", "plugin")
"""What "+" offers. `join` comes with `parallel`; `start` and `end` are fixed."""

DEFAULT_TITLES = {
    "approval": "审批人",
    "cc": "抄送人",
    "branch": "条件分支",
    "parallel": "并行分支",
    "join": "汇合",
    "task": "执行阶段",
    "wait": "等待",
    "plugin": "插件步骤",
}
ACCESS = ("editable", "read_only", "hidden")


class EditError(ValueError):
    """The edit does not apply to this flow; the message says why."""


def insert_step(
    flow: dict[str, Any],
    kind: str,
    *,
    on_edge: int | None = None,
    before: str | None = None,
    settings: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], str]:
    """A new step of `kind` on edge `on_edge`, or before node `before` (all its ways in lead to it).

    A branch comes with two arms (a condition arm, empty until set, and the default arm), a
    parallel split with two arms and its join. Returns the new flow and the new node's id.
    """
    if kind not in STEP_KINDS:
        raise EditError(f"unknown step kind {kind!r}")
    flow = copy.deepcopy(flow)
    edges: list[dict[str, Any]] = flow.setdefault("edges", [])
    nodes: list[dict[str, Any]] = flow.setdefault("nodes", [])
    ids = {node.get("id") for node in nodes}
    if on_edge is not None:
        if not 0 <= on_edge < len(edges):
            raise EditError("that place in the flow no longer exists; reload the designer")
        incoming = [edges[on_edge]]
        target = edges[on_edge]["to"]
    elif before is not None:
        if before not in ids:
            raise EditError(f"no step {before!r}")
        if _node(flow, before).get("type") == "start":
            raise EditError("nothing can come before the start")
        incoming = [edge for edge in edges if edge.get("to") == before]
        target = before
    else:
        raise EditError("say where the step goes")
    node_id = _new_id(kind, ids)
    node = {"type": kind, "id": node_id, "title": DEFAULT_TITLES[kind], **_defaults(kind), **(settings or {})}
    _check_node(node)
    nodes.insert(_position(nodes, target), node)
    for edge in incoming:
        edge["to"] = node_id
    if kind == "branch":
        edges.append({"from": node_id, "to": target, "condition": "true"})
        edges.append({"from": node_id, "to": target, "is_default": True})
    elif kind == "parallel":
        join_id = _new_id("join", ids | {node_id})
        nodes.insert(
            _position(nodes, target), {"type": "join", "id": join_id, "title": DEFAULT_TITLES["join"]}
        )
        edges.append({"from": node_id, "to": join_id})
        edges.append({"from": node_id, "to": join_id})
        edges.append({"from": join_id, "to": target})
    else:
        edges.append({"from": node_id, "to": target})
    return flow, node_id


def add_arm(flow: dict[str, Any], split_id: str, condition: str | None = None) -> dict[str, Any]:
    """One more arm on a branch (with `condition`, "true" until set) or a parallel split."""
    flow = copy.deepcopy(flow)
    split = _node(flow, split_id)
    if split.get("type") not in ("branch", "parallel"):
        raise EditError(f"{split_id!r} is not a branch or a parallel split")
    merge = merge_point(flow, split_id)
    if merge is None:
        raise EditError(f"the arms of {split_id!r} never meet; add the arm by hand")
    edge: dict[str, Any] = {"from": split_id, "to": merge}
    if split["type"] == "branch":
        edge["condition"] = condition or "true"
    position = max(
        i for i, e in enumerate(flow["edges"]) if e.get("from") == split_id and not e.get("is_default")
    )
    flow["edges"].insert(position + 1, edge)
    return flow


def remove_step(flow: dict[str, Any], node_id: str) -> dict[str, Any]:
    """Remove a step, reconnecting the ways into it to the step after it.

    A branch or parallel split goes with everything on its arms up to where they meet (and a
    parallel split with its join). Start and end, and a join on its own, cannot be removed.
    """
    flow = copy.deepcopy(flow)
    node = _node(flow, node_id)
    kind = node.get("type")
    if kind in ("start", "end"):
        raise EditError("the start and the end of a flow cannot be removed")
    if kind == "join":
        raise EditError("remove the parallel split instead; its join goes with it")
    edges: list[dict[str, Any]] = flow["edges"]
    if kind in ("branch", "parallel"):
        merge = merge_point(flow, node_id)
        if merge is None:
            raise EditError(f"the arms of {node_id!r} never meet; remove their steps first")
        doomed = _between(flow, node_id, merge) | {node_id}
        after = merge
        if kind == "parallel" and _node(flow, merge).get("type") == "join":
            doomed.add(merge)
            outs = [e for e in edges if e.get("from") == merge]
            after = outs[0]["to"] if outs else merge
    else:
        outs = [e for e in edges if e.get("from") == node_id]
        if len(outs) != 1:
            raise EditError(f"{node_id!r} has {len(outs)} ways on; remove them first")
        doomed, after = {node_id}, outs[0]["to"]
    for edge in edges:
        if edge.get("to") in doomed and edge.get("from") not in doomed:
            edge["to"] = after
    flow["edges"] = [e for e in edges if e.get("from") not in doomed]
    flow["nodes"] = [n for n in flow["nodes"] if n.get("id") not in doomed]
    return flow


def update_step(flow: dict[str, Any], node_id: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Replace a step's settings (everything but its type and id); refused when they do not fit."""
    flow = copy.deepcopy(flow)
    nodes: list[dict[str, Any]] = flow["nodes"]
    index = next((i for i, n in enumerate(nodes) if n.get("id") == node_id), None)
    if index is None:
        raise EditError(f"no step {node_id!r}")
    kind = nodes[index]["type"]
    updated = {**{k: v for k, v in settings.items() if k not in ("type", "id")}, "type": kind, "id": node_id}
    _check_node(updated)
    nodes[index] = updated
    return flow


def set_condition(
    flow: dict[str, Any], edge: int, condition: str | None, *, default: bool = False
) -> dict[str, Any]:
    """The condition of a branch arm, or make the arm the branch's default (its condition goes)."""
    flow = copy.deepcopy(flow)
    edges: list[dict[str, Any]] = flow["edges"]
    if not 0 <= edge < len(edges):
        raise EditError("that arm no longer exists; reload the designer")
    source = edges[edge]["from"]
    if _node(flow, source).get("type") != "branch":
        raise EditError("only the arms of a branch have conditions")
    if default:
        for other in edges:
            if other.get("from") == source:
                other.pop("is_default", None)
        edges[edge].pop("condition", None)
        edges[edge]["is_default"] = True
    else:
        if not condition or not condition.strip():
            raise EditError("write a condition, or make this arm the default")
        edges[edge]["condition"] = condition.strip()
        edges[edge].pop("is_default", None)
    return flow


def set_field_access(flow: dict[str, Any], node_id: str, access: dict[str, str]) -> dict[str, Any]:
    """A step's field-permission matrix: field key (or "table.column") -> editable/read_only/hidden."""
    bad = sorted(key for key, value in access.items() if value not in ACCESS)
    if bad:
        raise EditError(f"unknown access for {', '.join(bad)}: use editable, read_only or hidden")
    node = _node(flow, node_id)
    if node.get("type") not in ("approval", "task"):
        raise EditError("only approval steps and work stages have field permissions")
    settings = {k: v for k, v in node.items() if k not in ("type", "id")}
    settings["field_permissions"] = dict(access)
    return update_step(flow, node_id, settings)


def merge_point(flow: dict[str, Any], split_id: str) -> str | None:
    """Where the arms of a split meet: the first node (breadth first along the first arm) all reach."""
    edges = flow.get("edges", [])
    arms = [e.get("to") for e in edges if e.get("from") == split_id]
    if not arms:
        return None
    reach = [_reachable(edges, target) for target in arms]
    common = set.intersection(*(set(order) for order in reach))
    return next((node for node in reach[0] if node in common), None)


def _between(flow: dict[str, Any], split_id: str, merge: str) -> set[str]:
    """Nodes on the arms of `split_id` before `merge`."""
    edges = flow["edges"]
    found: set[str] = set()
    queue = deque(e.get("to") for e in edges if e.get("from") == split_id)
    while queue:
        current = queue.popleft()
        if current is None or current in (merge, split_id) or current in found:
            continue
        found.add(current)
        queue.extend(e.get("to") for e in edges if e.get("from") == current)
    return found


def _reachable(edges: list[dict[str, Any]], start: str | None) -> list[str]:
    if start is None:
        return []
    order, seen, queue = [], {start}, deque([start])
    while queue:
        current = queue.popleft()
        order.append(current)
        for edge in edges:
            target = edge.get("to")
            if edge.get("from") == current and isinstance(target, str) and target not in seen:
                seen.add(target)
                queue.append(target)
    return order


def _defaults(kind: str) -> dict[str, Any]:
    if kind == "approval":
        return {"assignees": {"kind": "department_head"}}
    if kind == "cc":
        return {"recipients": {"kind": "initiator"}}
    if kind == "task":
        return {"owner": {"kind": "initiator"}, "planned_days": 1}
    if kind == "wait":
        return {"field": "start_date", "working_days": 0}
    if kind == "plugin":
        return {"plugin": "notify", "config": {}}
    return {}


def _check_node(node: dict[str, Any]) -> None:
    try:
        msgspec.convert(node, Node)  # type: ignore[arg-type]
    except msgspec.ValidationError as exc:
        raise EditError(f"step {node.get('id')!r}: {exc}") from exc


def _node(flow: dict[str, Any], node_id: str) -> dict[str, Any]:
    for node in flow.get("nodes", []):
        if node.get("id") == node_id:
            found: dict[str, Any] = node
            return found
    raise EditError(f"no step {node_id!r}")


def _new_id(kind: str, taken: set[Any]) -> str:
    number = 1
    while f"{kind}_{number}" in taken:
        number += 1
    return f"{kind}_{number}"


def _position(nodes: list[dict[str, Any]], before: str) -> int:
    """Keep the node list readable: new nodes go just before the node they lead to."""
    return next((i for i, node in enumerate(nodes) if node.get("id") == before), len(nodes))
