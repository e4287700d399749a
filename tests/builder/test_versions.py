"""The difference between two template versions, and the changes that would hurt drafts."""

from __future__ import annotations

from typing import Any

import msgspec

from builder.demo_templates import DEMO_DIR
from builder.versions import BreakingChange, Change, breaking_changes, diff_versions
from forms import load_schema
from forms import model as m
from runtime.flow import decode_graph

FORM: dict[str, Any] = msgspec.json.decode((DEMO_DIR / "marketing-activity.form.json").read_bytes())
FLOW = decode_graph((DEMO_DIR / "marketing-activity.flow.json").read_bytes())


def _form(data: dict[str, Any]) -> m.FormSchema:
    return load_schema(msgspec.json.encode(data))


def _without(key: str) -> dict[str, Any]:
    return {**FORM, "fields": [field for field in FORM["fields"] if field["key"] != key]}


def test_the_same_version_has_no_difference() -> None:
    assert diff_versions(_form(FORM), FLOW, _form(FORM), FLOW).empty


def test_fields_added_removed_and_changed_are_named_with_what_changed() -> None:
    fields = [dict(field) for field in FORM["fields"]]
    budget = next(field for field in fields if field["key"] == "budget")
    budget["required"] = not budget.get("required", False)
    budget["label"] = {"zh": "预算总额", "en": "Total budget"}
    fields.append(
        {"type": "text", "key": "venue_contact", "label": {"zh": "场地联系人", "en": "Venue contact"}}
    )
    fields = [field for field in fields if field["key"] != "goal"]
    new = _form({**FORM, "fields": fields})
    diff = diff_versions(_form(FORM), FLOW, new, FLOW)
    by_key = {change.key: change for change in diff.fields}
    assert by_key["venue_contact"].change is Change.ADDED
    assert by_key["venue_contact"].label == "场地联系人"
    assert by_key["goal"].change is Change.REMOVED
    assert by_key["budget"].change is Change.CHANGED
    assert by_key["budget"].properties == ("label", "required")
    assert set(by_key) == {"venue_contact", "goal", "budget"}
    assert diff.steps == () and diff.routes == ()


def test_table_columns_are_compared_one_by_one() -> None:
    fields = [dict(field) for field in FORM["fields"]]
    table = next(field for field in fields if field["type"] == "detail_table")
    table["columns"] = [
        *table["columns"],
        {"type": "text", "key": "remark", "label": {"zh": "说明", "en": "Remark"}},
    ]
    diff = diff_versions(_form(FORM), FLOW, _form({**FORM, "fields": fields}), FLOW)
    assert [(change.key, change.change) for change in diff.fields] == [
        (f"{table['key']}.remark", Change.ADDED)
    ]


def test_steps_and_routes_that_change_are_listed() -> None:
    data: dict[str, Any] = msgspec.json.decode((DEMO_DIR / "marketing-activity.flow.json").read_bytes())
    nodes = [dict(node) for node in data["nodes"]]
    leader = next(node for node in nodes if node["id"] == "leader")
    leader["mode"] = "all"
    nodes.append({"type": "cc", "id": "hr_copy", "title": "抄送人事", "recipients": {"kind": "initiator"}})
    edges = [dict(edge) for edge in data["edges"]]
    into_leader = next(edge for edge in edges if edge["to"] == "leader")
    edges.append({"from": into_leader["from"], "to": "hr_copy"})
    edges.append({"from": "hr_copy", "to": "leader"})
    edges.remove(into_leader)
    new_flow = decode_graph(msgspec.json.encode({**data, "nodes": nodes, "edges": edges}))
    diff = diff_versions(_form(FORM), FLOW, _form(FORM), new_flow)
    assert {(step.node_id, step.change, step.properties) for step in diff.steps} == {
        ("leader", Change.CHANGED, ("mode",)),
        ("hr_copy", Change.ADDED, ()),
    }
    assert [(route.source, route.target, route.change) for route in diff.routes] == [
        (into_leader["from"], "leader", Change.REMOVED),
        (into_leader["from"], "hr_copy", Change.ADDED),
        ("hr_copy", "leader", Change.ADDED),
    ]


def test_removing_a_field_drafts_hold_is_breaking_and_one_nobody_filled_is_not() -> None:
    drafts = {"goal": {"提升品牌": 2}, "remarks": {}}
    found = breaking_changes(_form(FORM), _form(_without("goal")), drafts)
    assert found == [BreakingChange(key="goal", kind="removed_field", drafts=2)]
    assert breaking_changes(_form(FORM), _form(_without("goal")), {}) == []


def test_a_removed_option_breaks_only_the_drafts_that_chose_it() -> None:
    def with_kinds(*values: str) -> m.FormSchema:
        kind = {
            "type": "select",
            "key": "activity_kind",
            "label": {"zh": "活动类型", "en": "Kind"},
            "options": [{"value": value, "label": {"zh": value, "en": value}} for value in values],
        }
        return _form({**FORM, "fields": [*FORM["fields"], kind]})

    held = {"activity_kind": {"launch": 5, "exhibition": 3}}
    assert breaking_changes(with_kinds("launch", "exhibition"), with_kinds("launch", "salon"), held) == [
        BreakingChange(key="activity_kind", kind="removed_option", drafts=3)
    ]
    assert (
        breaking_changes(
            with_kinds("launch", "exhibition"), with_kinds("launch", "exhibition", "salon"), held
        )
        == []
    )


def test_a_type_change_under_existing_values_is_breaking() -> None:
    fields = [dict(field) for field in FORM["fields"]]
    fields = [
        {"type": "number", "key": field["key"], "label": field["label"]} if field["key"] == "goal" else field
        for field in fields
    ]
    found = breaking_changes(_form(FORM), _form({**FORM, "fields": fields}), {"goal": {"x": 1}})
    assert found == [BreakingChange(key="goal", kind="type_changed", drafts=1)]
