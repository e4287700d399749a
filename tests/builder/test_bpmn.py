"""BPMN 2.0 interchange: the demo flows survive the round trip; other tools' files are read or refused clearly."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from builder.bpmn import BPMN, BPMNDI, BpmnImportError, from_bpmn, to_bpmn
from builder.demo_templates import DEMO_DIR
from runtime.flow import decode_graph, validate_graph
from runtime.flow.graph import ApprovalNode, BranchNode, CcNode, JoinNode, ParallelNode

DEMO_FLOWS = sorted(DEMO_DIR.glob("*.flow.json"))


def _flow(path: Path):  # type: ignore[no-untyped-def]
    return decode_graph(path.read_bytes())


@pytest.mark.parametrize("path", DEMO_FLOWS, ids=lambda path: path.name.removesuffix(".flow.json"))
def test_every_demo_flow_comes_back_from_bpmn_unchanged(path: Path) -> None:
    graph = _flow(path)
    imported = from_bpmn(to_bpmn(graph))
    assert imported.graph == graph
    assert imported.warnings == []


def test_the_export_is_bpmn_a_modeler_can_draw() -> None:
    graph = _flow(DEMO_DIR / "marketing-activity.flow.json")
    root = ET.fromstring(to_bpmn(graph))
    process = root.find(f"{{{BPMN}}}process")
    assert process is not None and process.get("name") == graph.title
    shapes = root.findall(f".//{{{BPMNDI}}}BPMNShape")
    edges = root.findall(f".//{{{BPMNDI}}}BPMNEdge")
    # every node has a shape and every edge a line, or the modeler shows an empty canvas
    assert {shape.get("bpmnElement") for shape in shapes} == {node.id for node in graph.nodes}
    assert len(edges) == len(graph.edges)
    approvals = [node.id for node in graph.nodes if isinstance(node, ApprovalNode)]
    user_tasks = {element.get("id") for element in process.findall(f"{{{BPMN}}}userTask")}
    assert set(approvals) <= user_tasks


def test_branch_conditions_and_the_default_are_bpmn_gateway_semantics() -> None:
    graph = _flow(DEMO_DIR / "supplier-onboarding.flow.json")
    root = ET.fromstring(to_bpmn(graph))
    gateway = root.find(f".//{{{BPMN}}}exclusiveGateway[@id='risk_check']")
    assert gateway is not None
    default_flow = root.find(f".//{{{BPMN}}}sequenceFlow[@id='{gateway.get('default')}']")
    assert default_flow is not None and default_flow.get("targetRef") == "admitted_notice"
    conditions = [element.text for element in root.iter(f"{{{BPMN}}}conditionExpression")]
    assert conditions == ['form.risk_level == "high"']


MODELER_FILE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="Definitions_1" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="Process_leave" name="请假" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1" name="提交"><bpmn:outgoing>Flow_1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="Activity_head" name="部门负责人审批" />
    <bpmn:exclusiveGateway id="Gateway_days" name="天数" default="Flow_3" />
    <bpmn:parallelGateway id="Gateway_split" />
    <bpmn:sendTask id="Activity_hr" name="通知人事" />
    <bpmn:userTask id="Activity_deputy" name="代理人确认" />
    <bpmn:parallelGateway id="Gateway_join" />
    <bpmn:exclusiveGateway id="Gateway_merge" />
    <bpmn:endEvent id="EndEvent_1" name="完成" />
    <bpmn:textAnnotation id="Note_1"><bpmn:text>drawn elsewhere</bpmn:text></bpmn:textAnnotation>
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Activity_head" />
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Activity_head" targetRef="Gateway_days" />
    <bpmn:sequenceFlow id="Flow_long" sourceRef="Gateway_days" targetRef="Gateway_split">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">form.days &gt; 3</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="Flow_3" sourceRef="Gateway_days" targetRef="Gateway_merge" />
    <bpmn:sequenceFlow id="Flow_4" sourceRef="Gateway_split" targetRef="Activity_hr" />
    <bpmn:sequenceFlow id="Flow_5" sourceRef="Gateway_split" targetRef="Activity_deputy" />
    <bpmn:sequenceFlow id="Flow_6" sourceRef="Activity_hr" targetRef="Gateway_join" />
    <bpmn:sequenceFlow id="Flow_7" sourceRef="Activity_deputy" targetRef="Gateway_join" />
    <bpmn:sequenceFlow id="Flow_8" sourceRef="Gateway_join" targetRef="Gateway_merge" />
    <bpmn:sequenceFlow id="Flow_9" sourceRef="Gateway_merge" targetRef="EndEvent_1" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_a_plain_modeler_file_imports_with_defaults_and_says_which() -> None:
    imported = from_bpmn(MODELER_FILE, key="leave")
    graph = imported.graph
    kinds = {node.id: type(node) for node in graph.nodes}
    assert kinds["Activity_head"] is ApprovalNode
    assert kinds["Activity_hr"] is CcNode
    assert kinds["Gateway_days"] is BranchNode
    assert (kinds["Gateway_split"], kinds["Gateway_join"]) == (ParallelNode, JoinNode)
    assert {warning.id for warning in imported.warnings} == {
        "Activity_head",
        "Activity_deputy",
        "Activity_hr",
    }
    defaults = {(edge.source, edge.target) for edge in graph.edges if edge.is_default}
    assert defaults == {("Gateway_days", "Gateway_merge"), ("Gateway_merge", "EndEvent_1")}
    assert validate_graph(graph, {"days"}) == []


def test_unsupported_elements_are_refused_one_problem_each() -> None:
    document = MODELER_FILE.replace(
        '<bpmn:sendTask id="Activity_hr" name="通知人事" />',
        '<bpmn:scriptTask id="Activity_hr" name="通知人事" />'
        '<bpmn:boundaryEvent id="Timer_1" attachedToRef="Activity_head"><bpmn:timerEventDefinition />'
        "</bpmn:boundaryEvent>",
    ).replace('<bpmn:exclusiveGateway id="Gateway_merge" />', '<bpmn:inclusiveGateway id="Gateway_merge" />')
    with pytest.raises(BpmnImportError) as refused:
        from_bpmn(document)
    problems = {(problem.element, problem.id): problem.message for problem in refused.value.problems}
    assert set(problems) == {
        ("scriptTask", "Activity_hr"),
        ("boundaryEvent", "Timer_1"),
        ("inclusiveGateway", "Gateway_merge"),
    }
    assert "plugin" in problems[("scriptTask", "Activity_hr")]
    assert "scriptTask 'Activity_hr'" in str(refused.value)


def test_a_condition_in_another_expression_language_is_refused() -> None:
    document = MODELER_FILE.replace("form.days &gt; 3", "${days &gt; 3}")
    with pytest.raises(BpmnImportError) as refused:
        from_bpmn(document)
    assert [(problem.element, problem.id) for problem in refused.value.problems] == [
        ("sequenceFlow", "Flow_long")
    ]
    assert "not CEL" in refused.value.problems[0].message


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ("not xml at all", "not well-formed XML"),
        ("<definitions/>", "not a BPMN 2.0 document"),
        (
            '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
            '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&a;</bpmn:definitions>',
            "document type declarations",
        ),
        ('<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"/>', "no process"),
        (
            '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">'
            '<bpmn:process id="a"/><bpmn:process id="b"/></bpmn:definitions>',
            "2 processes",
        ),
    ],
)
def test_files_that_are_not_one_bpmn_process_are_refused(document: str, reason: str) -> None:
    with pytest.raises(BpmnImportError) as refused:
        from_bpmn(document)
    assert reason in str(refused.value)


def test_broken_formflow_settings_name_the_element() -> None:
    graph = _flow(DEMO_DIR / "supplier-onboarding.flow.json")
    document = to_bpmn(graph).replace('"kind":"role"', '"kind":"nobody"', 1)
    with pytest.raises(BpmnImportError) as refused:
        from_bpmn(document)
    assert [(problem.element, problem.id) for problem in refused.value.problems] == [("userTask", "finance")]
