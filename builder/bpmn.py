"""BPMN 2.0 interchange: a flow graph out as BPMN XML, and the supported subset back in.

    xml = to_bpmn(graph)                  # opens in bpmn.io / Camunda Modeler, with a diagram
    imported = from_bpmn(xml)             # BpmnImport(graph, warnings); BpmnImportError if not

The mapping, element by element:

| flow node            | BPMN                                                              |
|----------------------|-------------------------------------------------------------------|
| `start` / `end`      | `startEvent` / `endEvent` (plain, no event definition)            |
| `approval`           | `userTask`                                                        |
| `task` (work stage)  | `userTask` whose `formflow:properties` say `type="task"`          |
| `cc`                 | `sendTask`                                                        |
| `plugin`             | `serviceTask`                                                     |
| `wait`               | `intermediateCatchEvent` with a `timerEventDefinition`            |
| `branch`             | `exclusiveGateway`; the default edge is the gateway's `default`   |
| `parallel` / `join`  | `parallelGateway`, diverging / converging                         |
| edge                 | `sequenceFlow`; a branch condition is a CEL `conditionExpression` |

Every node keeps its settings (assignee rule, mode, SLA, field permissions, plugin config...)
as JSON inside `<formflow:properties>` in its `extensionElements`, which BPMN tools keep
untouched, so a graph survives the round trip exactly. A file from another tool may lack them:
a `userTask` then becomes an approval by the initiator's department head and a `sendTask` a
CC to the initiator, each with a warning; anything outside the subset is refused with one
problem per element. Pure: strings in, shapes out, no I/O.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import deque
from typing import Any

import msgspec

from runtime.flow.graph import (
    ApprovalNode,
    BranchNode,
    CcNode,
    Edge,
    EndNode,
    FlowGraph,
    JoinNode,
    Node,
    ParallelNode,
    PluginNode,
    StartNode,
    TaskNode,
    WaitNode,
)
from runtime.flow.rules import DepartmentHeadRule, InitiatorRule

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
FORMFLOW = "urn:formflow:bpmn:1"
CEL = "https://github.com/google/cel-spec"

MAX_BYTES = 5_000_000
"""A larger file is refused before parsing."""

_ELEMENT: dict[type[Any], str] = {
    StartNode: "startEvent",
    EndNode: "endEvent",
    ApprovalNode: "userTask",
    TaskNode: "userTask",
    CcNode: "sendTask",
    PluginNode: "serviceTask",
    WaitNode: "intermediateCatchEvent",
    BranchNode: "exclusiveGateway",
    ParallelNode: "parallelGateway",
    JoinNode: "parallelGateway",
}
_SIZE = {"event": (36, 36), "gateway": (50, 50), "activity": (100, 80)}
_IGNORED = {"laneSet", "textAnnotation", "association", "documentation", "extensionElements", "sequenceFlow"}
_UNSUPPORTED_HINT = {
    "inclusiveGateway": "inclusive gateways are not supported; use an exclusive branch or a parallel split",
    "eventBasedGateway": "event-based gateways are not supported",
    "complexGateway": "complex gateways are not supported",
    "subProcess": "sub-processes are not supported; draw their steps in the main flow",
    "callActivity": "call activities are not supported",
    "scriptTask": "script tasks are not supported; use a plugin step (serviceTask)",
    "businessRuleTask": "business rule tasks are not supported; use a branch with conditions",
    "receiveTask": "receive tasks are not supported; use a plugin step that waits for a callback",
    "manualTask": "manual tasks are not supported; use a userTask (approval or work stage)",
    "task": "untyped tasks are not supported; make it a userTask (approval or work stage)",
    "boundaryEvent": "boundary events are not supported; deadlines are set on the approval step",
    "intermediateThrowEvent": "intermediate throw events are not supported",
    "transaction": "transactions are not supported",
    "adHocSubProcess": "ad-hoc sub-processes are not supported",
    "dataObject": "data objects are not supported",
    "dataObjectReference": "data objects are not supported",
    "dataStoreReference": "data stores are not supported",
}
_NODE_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")


class BpmnProblem(msgspec.Struct, frozen=True, kw_only=True):
    """Why one element cannot be imported: its BPMN tag, its id and the reason."""

    element: str
    id: str | None
    message: str


class BpmnImportError(ValueError):
    """The file is not BPMN we can run; `problems` names every element at fault."""

    def __init__(self, problems: list[BpmnProblem]) -> None:
        self.problems = problems
        first = problems[0]
        where = f"{first.element} {first.id!r}" if first.id else first.element
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{where}: {first.message}{more}")


class BpmnImport(msgspec.Struct, frozen=True, kw_only=True):
    graph: FlowGraph
    warnings: list[BpmnProblem]


# -- export ---------------------------------------------------------------------------------


def to_bpmn(graph: FlowGraph) -> str:
    """`graph` as a BPMN 2.0 document with a diagram (shapes laid out left to right)."""
    ET.register_namespace("bpmn", BPMN)
    ET.register_namespace("bpmndi", BPMNDI)
    ET.register_namespace("dc", DC)
    ET.register_namespace("di", DI)
    ET.register_namespace("xsi", XSI)
    ET.register_namespace("formflow", FORMFLOW)
    definitions = ET.Element(
        _q(BPMN, "definitions"),
        {
            "id": "Definitions_formflow",
            "targetNamespace": "urn:formflow:flows",
            "exporter": "Formflow",
            "exporterVersion": str(graph.schema_version),
        },
    )
    process_id = _process_id(graph.key)
    process = ET.SubElement(
        definitions, _q(BPMN, "process"), {"id": process_id, "name": graph.title, "isExecutable": "true"}
    )
    _properties(process, "flow", _flow_settings(graph))
    edge_ids = [f"Flow_{index + 1}" for index in range(len(graph.edges))]
    outgoing: dict[str, list[int]] = {}
    incoming: dict[str, list[int]] = {}
    for index, edge in enumerate(graph.edges):
        outgoing.setdefault(edge.source, []).append(index)
        incoming.setdefault(edge.target, []).append(index)
    for node in graph.nodes:
        attributes = {"id": node.id}
        if node.title:
            attributes["name"] = node.title
        if isinstance(node, BranchNode):
            default = next((i for i in outgoing.get(node.id, []) if graph.edges[i].is_default), None)
            if default is not None:
                attributes["default"] = edge_ids[default]
        if isinstance(node, ParallelNode | JoinNode):
            attributes["gatewayDirection"] = "Converging" if isinstance(node, JoinNode) else "Diverging"
        element = ET.SubElement(process, _q(BPMN, _ELEMENT[type(node)]), attributes)
        settings = _node_settings(node)
        if settings or isinstance(node, TaskNode):
            _properties(element, "task" if isinstance(node, TaskNode) else _tag(node), settings)
        for index in incoming.get(node.id, []):
            ET.SubElement(element, _q(BPMN, "incoming")).text = edge_ids[index]
        for index in outgoing.get(node.id, []):
            ET.SubElement(element, _q(BPMN, "outgoing")).text = edge_ids[index]
        if isinstance(node, WaitNode):
            timer = ET.SubElement(element, _q(BPMN, "timerEventDefinition"))
            ET.SubElement(
                timer, _q(BPMN, "timeDate"), {_q(XSI, "type"): "bpmn:tFormalExpression"}
            ).text = f"form.{node.field} + {node.working_days} working days"
    for index, edge in enumerate(graph.edges):
        flow = ET.SubElement(
            process,
            _q(BPMN, "sequenceFlow"),
            {"id": edge_ids[index], "sourceRef": edge.source, "targetRef": edge.target},
        )
        if edge.condition is not None:
            ET.SubElement(
                flow,
                _q(BPMN, "conditionExpression"),
                {_q(XSI, "type"): "bpmn:tFormalExpression", "language": CEL},
            ).text = edge.condition
    _diagram(definitions, graph, process_id, edge_ids)
    ET.indent(definitions)
    body = ET.tostring(definitions, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def _flow_settings(graph: FlowGraph) -> dict[str, Any]:
    return {
        "key": graph.key,
        "version": graph.version,
        "change_approvers": msgspec.to_builtins(graph.change_approvers),
        "resubmit_from": graph.resubmit_from.value,
    }


def _node_settings(node: Node) -> dict[str, Any]:
    settings: dict[str, Any] = msgspec.to_builtins(node)
    for key in ("type", "id", "title"):
        settings.pop(key, None)
    return settings


def _tag(node: Node) -> str:
    return str(type(node).__struct_config__.tag)


def _properties(parent: ET.Element, kind: str, settings: dict[str, Any]) -> None:
    extensions = ET.SubElement(parent, _q(BPMN, "extensionElements"))
    element = ET.SubElement(extensions, _q(FORMFLOW, "properties"), {"type": kind})
    element.text = msgspec.json.encode(settings).decode()


def _diagram(definitions: ET.Element, graph: FlowGraph, process_id: str, edge_ids: list[str]) -> None:
    """Shapes in columns by distance from the start, edges from the right side to the left side."""
    column = _columns(graph)
    rows: dict[int, int] = {}
    bounds: dict[str, tuple[int, int, int, int]] = {}
    for node in graph.nodes:
        depth = column.get(node.id, max(column.values(), default=0) + 1)
        row = rows.get(depth, 0)
        rows[depth] = row + 1
        width, height = _SIZE[_shape_kind(node)]
        x = 150 + depth * 180 + (100 - width) // 2
        y = 80 + row * 140 + (80 - height) // 2
        bounds[node.id] = (x, y, width, height)
    diagram = ET.SubElement(definitions, _q(BPMNDI, "BPMNDiagram"), {"id": "Diagram_1"})
    plane = ET.SubElement(diagram, _q(BPMNDI, "BPMNPlane"), {"id": "Plane_1", "bpmnElement": process_id})
    for node in graph.nodes:
        x, y, width, height = bounds[node.id]
        shape = ET.SubElement(plane, _q(BPMNDI, "BPMNShape"), {"id": f"{node.id}_di", "bpmnElement": node.id})
        ET.SubElement(
            shape, _q(DC, "Bounds"), {"x": str(x), "y": str(y), "width": str(width), "height": str(height)}
        )
    for index, edge in enumerate(graph.edges):
        if edge.source not in bounds or edge.target not in bounds:
            continue
        sx, sy, sw, sh = bounds[edge.source]
        tx, ty, _, th = bounds[edge.target]
        line = ET.SubElement(
            plane, _q(BPMNDI, "BPMNEdge"), {"id": f"{edge_ids[index]}_di", "bpmnElement": edge_ids[index]}
        )
        for px, py in ((sx + sw, sy + sh // 2), (tx, ty + th // 2)):
            ET.SubElement(line, _q(DI, "waypoint"), {"x": str(px), "y": str(py)})


def _columns(graph: FlowGraph) -> dict[str, int]:
    """Each node's distance from the start (breadth first), so loops do not stretch the picture."""
    following: dict[str, list[str]] = {}
    for edge in graph.edges:
        following.setdefault(edge.source, []).append(edge.target)
    starts = [node.id for node in graph.nodes if isinstance(node, StartNode)]
    column = dict.fromkeys(starts, 0)
    queue = deque(starts)
    while queue:
        current = queue.popleft()
        for target in following.get(current, []):
            if target not in column:
                column[target] = column[current] + 1
                queue.append(target)
    return column


def _shape_kind(node: Node) -> str:
    if isinstance(node, StartNode | EndNode | WaitNode):
        return "event"
    if isinstance(node, BranchNode | ParallelNode | JoinNode):
        return "gateway"
    return "activity"


def _process_id(key: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_\-.]", "_", key)
    return f"Process_{cleaned}"


def _q(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


# -- import ---------------------------------------------------------------------------------


def from_bpmn(document: str | bytes, *, key: str | None = None) -> BpmnImport:
    """The flow graph of a BPMN document in the supported subset.

    `key` names the flow when the document does not carry ours (a file from another tool).
    Raises `BpmnImportError` listing every element that cannot be imported.
    """
    root = _parse(document)
    processes = root.findall(_q(BPMN, "process"))
    if len(processes) != 1:
        raise BpmnImportError(
            [BpmnProblem(element="definitions", id=root.get("id"), message=_process_count(len(processes)))]
        )
    process = processes[0]
    problems: list[BpmnProblem] = []
    warnings: list[BpmnProblem] = []
    flows = process.findall(_q(BPMN, "sequenceFlow"))
    defaults = {
        element.get("default"): element.get("id")
        for element in process
        if _local(element.tag) == "exclusiveGateway" and element.get("default")
    }
    counts = _degrees(flows)
    for element in process:
        if _local(element.tag) == "exclusiveGateway" and counts.get(element.get("id", ""), (0, 0))[1] == 1:
            # a merging gateway drawn by another tool: its only way on is the default
            only = next(flow for flow in flows if flow.get("sourceRef") == element.get("id"))
            defaults.setdefault(only.get("id"), element.get("id"))
    nodes: list[Node] = []
    for element in process:
        tag = _local(element.tag)
        if element.tag.startswith(f"{{{BPMN}}}") and tag not in _IGNORED:
            node = _node(element, tag, counts, problems, warnings)
            if node is not None:
                nodes.append(node)
        elif not element.tag.startswith(f"{{{BPMN}}}"):
            warnings.append(BpmnProblem(element=tag, id=element.get("id"), message="ignored (not BPMN)"))
    edges = [_edge(flow, defaults, problems) for flow in flows]
    settings = _settings(process, "flow", problems) or {}
    flow_key = key or settings.get("key") or _key_from(process.get("id", ""))
    graph_data: dict[str, Any] = {
        "key": flow_key,
        "title": process.get("name", "") or "",
        "nodes": [msgspec.to_builtins(node) for node in nodes],
        "edges": [msgspec.to_builtins(edge) for edge in edges if edge is not None],
    }
    for name in ("version", "change_approvers", "resubmit_from"):
        if name in settings:
            graph_data[name] = settings[name]
    if problems:
        raise BpmnImportError(problems)
    try:
        graph = msgspec.convert(graph_data, FlowGraph)
    except msgspec.ValidationError as exc:
        raise BpmnImportError(
            [BpmnProblem(element="process", id=process.get("id"), message=f"flow settings: {exc}")]
        ) from exc
    return BpmnImport(graph=graph, warnings=warnings)


def _parse(document: str | bytes) -> ET.Element:
    raw = document.encode() if isinstance(document, str) else document
    if len(raw) > MAX_BYTES:
        raise BpmnImportError([BpmnProblem(element="file", id=None, message="larger than 5 MB")])
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise BpmnImportError(
            [BpmnProblem(element="file", id=None, message="document type declarations are not accepted")]
        )
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise BpmnImportError(
            [BpmnProblem(element="file", id=None, message=f"not well-formed XML: {exc}")]
        ) from exc
    if root.tag != _q(BPMN, "definitions"):
        raise BpmnImportError(
            [
                BpmnProblem(
                    element=_local(root.tag), id=None, message="not a BPMN 2.0 document (bpmn:definitions)"
                )
            ]
        )
    return root


def _process_count(count: int) -> str:
    if count == 0:
        return "the file holds no process"
    return f"the file holds {count} processes (pools); import them one at a time"


def _degrees(flows: list[ET.Element]) -> dict[str, tuple[int, int]]:
    """Node id -> (incoming, outgoing) sequence flow counts."""
    counts: dict[str, list[int]] = {}
    for flow in flows:
        counts.setdefault(flow.get("targetRef", ""), [0, 0])[0] += 1
        counts.setdefault(flow.get("sourceRef", ""), [0, 0])[1] += 1
    return {node: (value[0], value[1]) for node, value in counts.items()}


def _node(
    element: ET.Element,
    tag: str,
    counts: dict[str, tuple[int, int]],
    problems: list[BpmnProblem],
    warnings: list[BpmnProblem],
) -> Node | None:
    node_id = element.get("id") or ""
    title = element.get("name") or ""
    if not _NODE_ID.match(node_id):
        problems.append(
            BpmnProblem(
                element=tag,
                id=node_id or None,
                message="the id must start with a letter and use A-Z, 0-9, _ or -",
            )
        )
        return None
    if tag in _UNSUPPORTED_HINT or tag not in _KNOWN:
        message = _UNSUPPORTED_HINT.get(tag, "this element is not supported")
        problems.append(BpmnProblem(element=tag, id=node_id, message=message))
        return None
    kind, settings = _extension(element, problems)
    base: dict[str, Any] = {"id": node_id, "title": title}
    definitions = [_local(child.tag) for child in element if _local(child.tag).endswith("EventDefinition")]
    if tag in ("startEvent", "endEvent"):
        if definitions:
            problems.append(
                BpmnProblem(
                    element=tag, id=node_id, message=f"{definitions[0]} is not supported; use a plain {tag}"
                )
            )
            return None
        return _convert({**base, "type": "start" if tag == "startEvent" else "end"}, tag, problems)
    if tag == "userTask":
        if kind not in ("approval", "task"):
            warnings.append(
                BpmnProblem(
                    element=tag,
                    id=node_id,
                    message="no Formflow settings: imported as an approval by the initiator's department head",
                )
            )
            return ApprovalNode(id=node_id, title=title[:200], assignees=DepartmentHeadRule())
        return _convert({**settings, **base, "type": kind}, tag, problems)
    if tag == "sendTask":
        if kind != "cc":
            warnings.append(
                BpmnProblem(
                    element=tag, id=node_id, message="no Formflow settings: imported as a CC to the initiator"
                )
            )
            return CcNode(id=node_id, title=title[:200], recipients=InitiatorRule())
        return _convert({**settings, **base, "type": "cc"}, tag, problems)
    if tag == "serviceTask":
        if kind != "plugin":
            problems.append(
                BpmnProblem(
                    element=tag,
                    id=node_id,
                    message="a service task must name its plugin in formflow:properties",
                )
            )
            return None
        return _convert({**settings, **base, "type": "plugin"}, tag, problems)
    if tag == "intermediateCatchEvent":
        if definitions != ["timerEventDefinition"] or kind != "wait":
            problems.append(
                BpmnProblem(
                    element=tag,
                    id=node_id,
                    message="only timer waits with Formflow settings (a date field plus working days) are supported",
                )
            )
            return None
        return _convert({**settings, **base, "type": "wait"}, tag, problems)
    if tag == "exclusiveGateway":
        return BranchNode(id=node_id, title=title[:200])
    # parallelGateway
    direction = element.get("gatewayDirection")
    incoming, outgoing = counts.get(node_id, (0, 0))
    joins = direction == "Converging" or (direction != "Diverging" and incoming > 1 and outgoing <= 1)
    return (JoinNode if joins else ParallelNode)(id=node_id, title=title[:200])


_KNOWN = {
    "startEvent",
    "endEvent",
    "userTask",
    "sendTask",
    "serviceTask",
    "intermediateCatchEvent",
    "exclusiveGateway",
    "parallelGateway",
}


def _extension(element: ET.Element, problems: list[BpmnProblem]) -> tuple[str | None, dict[str, Any]]:
    properties = element.find(f"{_q(BPMN, 'extensionElements')}/{_q(FORMFLOW, 'properties')}")
    if properties is None:
        return None, {}
    kind = properties.get("type")
    try:
        settings = msgspec.json.decode(properties.text or "{}")
    except msgspec.DecodeError as exc:
        problems.append(
            BpmnProblem(
                element=_local(element.tag), id=element.get("id"), message=f"formflow:properties: {exc}"
            )
        )
        return kind, {}
    if not isinstance(settings, dict):
        problems.append(
            BpmnProblem(
                element=_local(element.tag),
                id=element.get("id"),
                message="formflow:properties must be a JSON object",
            )
        )
        return kind, {}
    return kind, settings


def _settings(element: ET.Element, kind: str, problems: list[BpmnProblem]) -> dict[str, Any] | None:
    found, settings = _extension(element, problems)
    return settings if found == kind else None


def _convert(data: dict[str, Any], tag: str, problems: list[BpmnProblem]) -> Node | None:
    try:
        node: Node = msgspec.convert(data, Node)  # type: ignore[arg-type]
    except msgspec.ValidationError as exc:
        problems.append(BpmnProblem(element=tag, id=data.get("id"), message=f"settings: {exc}"))
        return None
    return node


def _edge(
    flow: ET.Element, defaults: dict[str | None, str | None], problems: list[BpmnProblem]
) -> Edge | None:
    flow_id = flow.get("id")
    source, target = flow.get("sourceRef"), flow.get("targetRef")
    if not source or not target:
        problems.append(
            BpmnProblem(element="sequenceFlow", id=flow_id, message="needs a sourceRef and a targetRef")
        )
        return None
    condition_element = flow.find(_q(BPMN, "conditionExpression"))
    condition: str | None = None
    if condition_element is not None:
        condition = (condition_element.text or "").strip() or None
        language = condition_element.get("language")
        if condition is not None and (
            (language is not None and language != CEL and language.lower() != "cel")
            or condition.startswith("${")
        ):
            problems.append(
                BpmnProblem(
                    element="sequenceFlow",
                    id=flow_id,
                    message=f"the condition {condition!r} is not CEL (write it like form.budget > 50000)",
                )
            )
            return None
    return Edge(source=source, target=target, condition=condition, is_default=flow_id in defaults)


def _key_from(process_id: str) -> str:
    key = process_id.removeprefix("Process_") or "imported-flow"
    return re.sub(r"[^A-Za-z0-9_\-]", "-", key)[:64]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
