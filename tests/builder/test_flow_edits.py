"""The flow designer's edits and layout, on the demo flows: each edit leaves a flow that validates."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from builder.demo_templates import DEMO_DIR
from builder.drafts import starter_flow
from builder.flow_edits import (
    EditError,
    add_arm,
    insert_step,
    merge_point,
    remove_step,
    set_condition,
    set_field_access,
    update_step,
)
from builder.flow_layout import Split, Step, layout
from runtime.flow import decode_graph, validate_graph

MARKETING_FIELDS = {
    field["key"]
    for field in msgspec.json.decode((DEMO_DIR / "marketing-activity.form.json").read_bytes())["fields"]
} | {"budget_lines.amount"}


def _demo(key: str) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.json.decode((DEMO_DIR / f"{key}.flow.json").read_bytes())
    return data


def _problems(flow: dict[str, Any], fields: set[str] | None = None) -> list[str]:
    return [problem.message for problem in validate_graph(decode_graph(msgspec.json.encode(flow)), fields)]


def _ids(blocks: list[Step | Split]) -> list[str]:
    return [block.node["id"] for block in blocks]


def test_the_starter_flow_builds_into_the_marketing_shape_step_by_step() -> None:
    flow = starter_flow("demo", "演示")
    head_in = next(i for i, e in enumerate(flow["edges"]) if e["to"] == "end")
    flow, leader = insert_step(flow, "approval", on_edge=head_in)
    flow = update_step(flow, leader, {"title": "分管领导审批", "assignees": {"kind": "supervising_leader"}})
    into_end = next(i for i, e in enumerate(flow["edges"]) if e["to"] == "end")
    flow, branch = insert_step(flow, "branch", on_edge=into_end)
    arm = next(i for i, e in enumerate(flow["edges"]) if e["from"] == branch and not e.get("is_default"))
    flow = set_condition(flow, arm, "form.budget > 50000")
    flow, finance = insert_step(flow, "approval", on_edge=arm)
    flow = update_step(
        flow, finance, {"title": "财务联审", "assignees": {"kind": "role", "role": "finance_specialist"}}
    )
    flow, stage = insert_step(flow, "task", before="end")
    assert _problems(flow, {"budget"}) == []
    shape = layout(flow)
    assert _ids(shape.blocks) == ["start", "head", leader, branch, stage, "end"]
    split = shape.blocks[3]
    assert isinstance(split, Split) and split.merge == stage
    assert [(_ids(a.blocks), a.condition, a.is_default) for a in split.arms] == [
        ([finance], "form.budget > 50000", False),
        ([], None, True),
    ]
    assert shape.unreachable == []


@pytest.mark.parametrize(
    "key", [path.name.removesuffix(".flow.json") for path in sorted(DEMO_DIR.glob("*.flow.json"))]
)
def test_every_demo_flow_lays_out_with_every_node_drawn_once(key: str) -> None:
    shape = layout(_demo(key))
    seen: list[str] = []

    def walk(blocks: list[Step | Split]) -> None:
        for block in blocks:
            seen.append(block.node["id"])
            if isinstance(block, Split):
                for arm in block.arms:
                    walk(arm.blocks)

    walk(shape.blocks)
    assert sorted(seen) == sorted(node["id"] for node in _demo(key)["nodes"])
    assert shape.unreachable == []


def test_a_parallel_split_comes_with_its_join_and_goes_with_it() -> None:
    flow = _demo("marketing-activity")
    flow, split = insert_step(flow, "parallel", before="venue")
    assert _problems(flow, MARKETING_FIELDS) == []
    join = merge_point(flow, split)
    assert join is not None and join.startswith("join_")
    flow = add_arm(flow, split)
    assert sum(1 for e in flow["edges"] if e["from"] == split) == 3
    restored = remove_step(flow, split)
    assert {n["id"] for n in restored["nodes"]} == {n["id"] for n in _demo("marketing-activity")["nodes"]}
    assert _problems(restored, MARKETING_FIELDS) == []


def test_removing_a_branch_removes_its_arms_and_reconnects() -> None:
    flow = _demo("supplier-onboarding")
    flow = remove_step(flow, "risk_check")
    assert "leader" not in {n["id"] for n in flow["nodes"]}
    assert {"from": "finance", "to": "admitted_notice"} in flow["edges"]
    assert _problems(flow) == []


def test_removing_a_step_joins_its_neighbours() -> None:
    original = _demo("marketing-activity")
    after_leader = next(e["to"] for e in original["edges"] if e["from"] == "leader")
    flow = remove_step(original, "leader")
    assert {"from": "dept_head", "to": after_leader} in flow["edges"]
    assert _problems(flow, MARKETING_FIELDS) == []


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: remove_step(f, "start"), "cannot be removed"),
        (lambda f: remove_step(f, "nope"), "no step"),
        (lambda f: insert_step(f, "approval", on_edge=999), "no longer exists"),
        (lambda f: insert_step(f, "gateway", on_edge=0), "unknown step kind"),
        (lambda f: insert_step(f, "cc", before="start"), "before the start"),
        (lambda f: update_step(f, "leader", {"assignees": {"kind": "nobody"}}), "leader"),
        (lambda f: set_condition(f, 0, "form.budget > 1"), "only the arms of a branch"),
        (lambda f: set_field_access(f, "leader", {"budget": "secret"}), "unknown access"),
    ],
)
def test_edits_that_do_not_apply_are_refused_and_change_nothing(edit: Any, message: str) -> None:
    flow = _demo("marketing-activity")
    before = msgspec.json.encode(flow)
    with pytest.raises(EditError, match=message):
        edit(flow)
    assert msgspec.json.encode(flow) == before


def test_the_default_arm_moves_and_an_empty_condition_is_refused() -> None:
    flow = _demo("supplier-onboarding")
    arms = [i for i, e in enumerate(flow["edges"]) if e["from"] == "risk_check"]
    with pytest.raises(EditError, match="write a condition"):
        set_condition(flow, arms[0], "  ")
    flow = set_condition(flow, arms[0], None, default=True)
    flow = set_condition(flow, arms[1], 'form.risk_level == "low"')
    defaults = [e for e in flow["edges"] if e["from"] == "risk_check" and e.get("is_default")]
    assert len(defaults) == 1 and defaults[0]["to"] == "leader"


def test_field_permissions_are_set_per_step() -> None:
    flow = set_field_access(
        _demo("marketing-activity"), "leader", {"budget": "read_only", "supplier": "hidden"}
    )
    leader = next(n for n in flow["nodes"] if n["id"] == "leader")
    assert leader["field_permissions"] == {"budget": "read_only", "supplier": "hidden"}
    assert _problems(flow, MARKETING_FIELDS) == []
