"""validate_graph: every problem at once, each with its node id and exact message."""

from __future__ import annotations

import json

import msgspec
import pytest

from runtime.flow import GraphProblem, advance, decode_graph, new_instance, validate_graph
from runtime.flow.errors import DefinitionError, GraphDecodeError
from runtime.flow.events import Submit
from runtime.flow.graph import (
    BranchNode,
    CcNode,
    Edge,
    EndNode,
    JoinNode,
    ParallelNode,
    StartNode,
    TaskNode,
    WaitNode,
)
from runtime.flow.rules import DepartmentFieldHeadRule, InitiatorRule, PersonFieldRule
from tests.runtime.graphs import approval, chain, graph
from tests.runtime.org import DEMO_DIR, MONDAY, STAFF, env

S, E = StartNode(id="start"), EndNode(id="end")
A, B, C = approval("a", 1), approval("b", 2), approval("c", 3)
KEYS = {"budget", "end_date", "reviewer", "department", "lines", "lines.amount"}


def problem(node_id: str | None, message: str) -> GraphProblem:
    return GraphProblem(node_id=node_id, message=message)


CASES = [
    ("valid chain", chain(A, B), []),
    (
        "no start, no end",
        graph([A], []),
        [
            problem(None, "the flow has no start node"),
            problem(None, "the flow has no end node"),
            problem("a", "dead end: no outgoing edge and not an end node"),
        ],
    ),
    (
        "two starts",
        graph([S, StartNode(id="s2"), E], [("start", "end"), ("s2", "end")]),
        [
            problem("s2", "a flow has exactly one start node"),
            problem("s2", "unreachable from the start node"),
        ],
    ),
    (
        "duplicate id",
        graph([S, A, approval("a", 9), E], [("start", "a"), ("a", "end")]),
        [problem("a", "duplicate node id 'a'")],
    ),
    (
        "unknown edge endpoint",
        graph([S, A, E], [("start", "a"), ("a", "end"), ("a", "ghost")]),
        [problem("a", "edge a -> ghost: unknown node 'ghost'")],
    ),
    (
        "unreachable node and dead end",
        graph([S, A, B, E], [("start", "a"), ("a", "end")]),
        [
            problem("b", "dead end: no outgoing edge and not an end node"),
            problem("b", "unreachable from the start node"),
        ],
    ),
    (
        "fork from a plain node",
        graph([S, A, B, E], [("start", "a"), ("a", "b"), ("a", "end"), ("b", "end")]),
        [problem("a", "only branch and parallel nodes may have several outgoing edges")],
    ),
    (
        "branch without default",
        graph(
            [S, BranchNode(id="x"), A, E],
            [("start", "x"), Edge(source="x", target="a", condition="form.budget > 1"), ("a", "end")],
        ),
        [problem("x", "a branch needs a default edge")],
    ),
    (
        "branch edge without condition, two defaults",
        graph(
            [S, BranchNode(id="x"), A, B, E],
            [
                ("start", "x"),
                ("x", "a"),
                Edge(source="x", target="b", is_default=True),
                Edge(source="x", target="end", is_default=True),
                ("a", "end"),
                ("b", "end"),
            ],
        ),
        [
            problem("x", "a branch has exactly one default edge"),
            problem("x", "edge x -> a: a condition or is_default is required"),
        ],
    ),
    (
        "condition that does not parse, condition off a branch",
        graph(
            [S, BranchNode(id="x"), A, E],
            [
                Edge(source="start", target="x", condition="form.budget > 1"),
                Edge(source="x", target="a", condition="form.budget >"),
                Edge(source="x", target="end", is_default=True),
                ("a", "end"),
            ],
        ),
        "skip-message-check",
    ),
    (
        "join without a split",
        graph([S, A, JoinNode(id="j"), E], [("start", "a"), ("a", "j"), ("j", "end")]),
        [problem("j", "join without a matching parallel split")],
    ),
    (
        "parallel arm reaching an end, arms meeting early",
        graph(
            [S, ParallelNode(id="p"), A, B, C, JoinNode(id="j"), E],
            [("start", "p"), ("p", "a"), ("p", "b"), ("a", "c"), ("b", "c"), ("c", "j"), ("j", "end")],
        ),
        [problem("p", "arms of this split meet at 'c' before join 'j'")],
    ),
    (
        "arm escaping to the end",
        graph(
            [S, ParallelNode(id="p"), A, B, JoinNode(id="j"), E],
            [("start", "p"), ("p", "a"), ("p", "b"), ("a", "end"), ("b", "j"), ("j", "end")],
        ),
        [problem("p", "an arm of this split reaches end 'end' without passing join 'j'")],
    ),
    (
        "loop with no exit",
        graph([S, A, B, E], [("start", "a"), ("a", "b"), ("b", "a")]),
        [problem("end", "unreachable from the start node"), problem("a", "loop with no exit: a -> b")],
    ),
    (
        "loop through branches only",
        graph(
            [S, BranchNode(id="x"), CcNode(id="c", recipients=InitiatorRule()), E],
            [
                ("start", "x"),
                Edge(source="x", target="end", condition="form.budget > 1"),
                Edge(source="x", target="c", is_default=True),
                ("c", "x"),
            ],
        ),
        [problem("x", "loop without a waiting step would spin: x -> c")],
    ),
    (
        "loop with an exit and a waiting step is fine",
        graph(
            [S, A, BranchNode(id="x"), E],
            [
                ("start", "a"),
                ("a", "x"),
                Edge(source="x", target="a", condition="form.budget > 1"),
                Edge(source="x", target="end", is_default=True),
            ],
        ),
        [],
    ),
]


@pytest.mark.parametrize(("name", "flow", "expected"), CASES, ids=[c[0] for c in CASES])
def test_structural_problems(name: str, flow, expected) -> None:  # type: ignore[no-untyped-def]
    problems = validate_graph(flow, KEYS)
    if expected == "skip-message-check":
        messages = [p.message for p in problems]
        assert any("condition does not parse" in m for m in messages)
        assert "edge start -> x: only edges leaving a branch have conditions" in messages
        return
    assert problems == expected


def test_unknown_fields_everywhere() -> None:
    flow = graph(
        [
            S,
            BranchNode(id="x"),
            approval("a", rule=PersonFieldRule(field="approver"), field_permissions={"secret": "hidden"}),
            approval(
                "b",
                rule=DepartmentFieldHeadRule(field="department"),
                field_permissions={"lines.amount": "hidden"},
            ),
            TaskNode(id="t", owner=InitiatorRule(), due_from_field="finish"),
            WaitNode(id="w", field="ends"),
            E,
        ],
        [
            ("start", "x"),
            Edge(source="x", target="a", condition='form.budjet > 1 && initiator.rank == "x" && bogus'),
            Edge(source="x", target="b", is_default=True),
            ("a", "t"),
            ("b", "t"),
            ("t", "w"),
            ("w", "end"),
        ],
    )
    assert validate_graph(flow, KEYS) == [
        problem("x", "condition on x -> a: unknown name 'bogus'"),
        problem("x", "condition on x -> a: unknown field 'budjet'"),
        problem("x", "condition on x -> a: unknown initiator attribute 'rank'"),
        problem("a", "assignee rule: unknown field 'approver'"),
        problem("a", "field permission: unknown field 'secret'"),
        problem("t", "due_from_field: unknown field 'finish'"),
        problem("w", "wait field: unknown field 'ends'"),
    ]
    assert validate_graph(flow, None) == []  # structure only


@pytest.mark.parametrize("path", sorted(DEMO_DIR.glob("*.flow.json")), ids=lambda p: p.name)
def test_demo_flows_are_valid_against_their_forms(path) -> None:  # type: ignore[no-untyped-def]
    flow = decode_graph(path.read_bytes())
    form = json.loads(path.with_name(path.name.replace(".flow.", ".form.")).read_text())

    def keys(fields: list[dict], prefix: str = "") -> set[str]:  # type: ignore[type-arg]
        found = set()
        for field in fields:
            if "key" in field and field["type"] not in ("section", "description"):
                found.add(prefix + field["key"])
            if field.get("type") == "detail_table":
                found |= keys(field["columns"], field["key"] + ".")
        return found

    assert flow.key == form["key"]
    assert validate_graph(flow, keys(form["fields"])) == []


def test_the_engine_refuses_a_graph_with_structural_problems() -> None:
    broken = graph([S, A, E], [("start", "a")], key="broken")
    with pytest.raises(DefinitionError) as caught:
        advance(broken, new_instance("x"), Submit(actor=STAFF), MONDAY, env())
    assert caught.value.problems == [
        problem("a", "dead end: no outgoing edge and not an end node"),
        problem("end", "unreachable from the start node"),
    ]


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        (b"{", "truncated"),
        (b'{"key": "k", "nodes": [], "edges": [], "surprise": 1}', "unknown field"),
        (
            b'{"key": "k", "nodes": [{"type": "teleport", "id": "x"}], "edges": []}',
            "Invalid value 'teleport'",
        ),
        (b'{"key": "k", "nodes": [{"type": "start", "id": "1bad"}], "edges": []}', "$.nodes[0].id"),
    ],
)
def test_decode_errors(document: bytes, fragment: str) -> None:
    with pytest.raises(GraphDecodeError, match="does not decode") as caught:
        decode_graph(document)
    assert fragment.lower() in str(caught.value).lower()


def test_edges_use_from_and_to_in_json() -> None:
    encoded = msgspec.json.decode(msgspec.json.encode(Edge(source="a", target="b")))
    assert encoded == {"from": "a", "to": "b", "condition": None, "is_default": False}
