"""Per-node field permissions: reading through the mask, accepting edits under it."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from forms.permissions import FieldAccess, PermissionMask, accept_edits, mask_for_read, same_value
from tests.forms.conftest import context, demo

STORED = {
    "activity_name": "新品推广会",
    "budget": "200000.00",
    "finance_note": "ok",
    "budget_lines": [
        {"item": "场地", "amount": "80000.00", "note": "押金", "finance_code": "F-1"},
        {"item": "物料", "amount": "120000.00", "note": "", "finance_code": "F-2"},
    ],
    "totals": {"budget_lines": {"amount": "200000.00", "finance_code": 0}},
    "duration_days": 3,
}
# The department head may edit the notes of budget lines and nothing else; finance codes are hidden.
HEAD = PermissionMask(
    fields={
        "budget_lines": FieldAccess.EDITABLE,
        "budget_lines.item": FieldAccess.READ_ONLY,
        "budget_lines.amount": FieldAccess.READ_ONLY,
        "budget_lines.finance_code": FieldAccess.HIDDEN,
        "finance_note": FieldAccess.HIDDEN,
    }
)


def test_mask_decodes_from_json() -> None:
    mask = msgspec.json.decode(
        b'{"fields": {"budget": "editable", "lines.x": "hidden"}}', type=PermissionMask
    )
    assert mask.access("budget") is FieldAccess.EDITABLE
    assert mask.access("lines.x") is FieldAccess.HIDDEN
    assert mask.access("other") is FieldAccess.READ_ONLY


def test_access_rules() -> None:
    assert HEAD.access("activity_name") is FieldAccess.READ_ONLY  # not listed
    assert HEAD.access("budget_lines.note") is FieldAccess.EDITABLE  # from its table
    assert HEAD.access("budget_lines.amount") is FieldAccess.READ_ONLY
    hidden_table = PermissionMask(fields={"t": FieldAccess.HIDDEN, "t.c": FieldAccess.EDITABLE})
    assert hidden_table.access("t.c") is FieldAccess.HIDDEN
    open_by_default = PermissionMask(default=FieldAccess.EDITABLE)
    assert open_by_default.access("anything") is FieldAccess.EDITABLE


def test_mask_for_read_drops_hidden_fields_columns_and_totals() -> None:
    shown = mask_for_read(STORED, HEAD)
    assert "finance_note" not in shown
    assert shown["budget_lines"] == [
        {"item": "场地", "amount": "80000.00", "note": "押金"},
        {"item": "物料", "amount": "120000.00", "note": ""},
    ]
    assert shown["totals"] == {"budget_lines": {"amount": "200000.00"}}
    nothing = mask_for_read(STORED, PermissionMask(default=FieldAccess.HIDDEN))
    assert nothing == {"totals": {}}


def test_accept_edits_takes_editable_and_keeps_the_rest() -> None:
    submitted = {
        "activity_name": "新品推广会",
        "budget": 200000,  # same amount, other spelling: not a change
        "budget_lines": [
            {"item": "场地", "amount": "80000", "note": "押金已付"},
            {"item": "物料", "amount": "120000.00", "note": "含税"},
        ],
    }
    merged, errors = accept_edits(STORED, submitted, HEAD, schema=demo("marketing-activity"))
    assert errors == []
    assert merged["budget"] == "200000.00"
    assert merged["finance_note"] == "ok"
    assert [row["note"] for row in merged["budget_lines"]] == ["押金已付", "含税"]
    assert [row["finance_code"] for row in merged["budget_lines"]] == ["F-1", "F-2"]
    assert "totals" not in merged  # derived: taken from the new data only


@pytest.mark.parametrize(
    ("locale", "messages"),
    [
        ("en", ["This field is read-only at this step.", "This field cannot be changed at this step."]),
        ("zh-CN", ["此环节不能修改该字段。", "此环节不能更改该字段。"]),
    ],
)
def test_accept_edits_refuses_changes_to_locked_values(locale: str, messages: list[str]) -> None:
    submitted = {
        "budget": "250000.00",
        "finance_note": "changed",
        "budget_lines": [
            {"item": "场地", "amount": "90000.00", "note": "x", "finance_code": "F-9"},
            {"item": "物料", "amount": "120000.00", "note": ""},
        ],
    }
    merged, errors = accept_edits(STORED, submitted, HEAD, ctx=context(locale))
    read_only, hidden = messages
    assert sorted((e.path, e.message) for e in errors) == sorted(
        [
            ("budget", read_only),
            ("finance_note", hidden),
            ("budget_lines[0].amount", read_only),
            ("budget_lines[0].finance_code", hidden),
        ]
    )
    assert merged["budget"] == "200000.00"
    assert merged["budget_lines"][0]["amount"] == "80000.00"
    assert merged["budget_lines"][0]["finance_code"] == "F-1"
    assert merged["budget_lines"][0]["note"] == "x"


def test_rows_can_be_appended_but_not_removed_when_columns_are_locked() -> None:
    appended = [*STORED["budget_lines"], {"note": "新增", "amount": "1.00"}]  # type: ignore[misc]
    merged, errors = accept_edits(STORED, {"budget_lines": appended}, HEAD, ctx=context("en"))
    assert [(e.path, e.message) for e in errors] == [
        ("budget_lines[2].amount", "This field is read-only at this step.")
    ]
    assert merged["budget_lines"][2] == {"note": "新增"}
    merged, errors = accept_edits(
        STORED, {"budget_lines": STORED["budget_lines"][:1]}, HEAD, ctx=context("en")
    )  # type: ignore[index]
    assert [(e.path, e.message) for e in errors] == [("budget_lines", "Rows cannot be removed at this step.")]
    assert merged["budget_lines"] == STORED["budget_lines"]


def test_fully_editable_table_takes_rows_as_sent() -> None:
    mask = PermissionMask(fields={"budget_lines": FieldAccess.EDITABLE})
    merged, errors = accept_edits(STORED, {"budget_lines": []}, mask)
    assert errors == [] and merged["budget_lines"] == []


def test_same_value() -> None:
    assert same_value(Decimal("1.50"), "1.5")
    assert same_value(1.5, "1.50")
    assert same_value([{"a": 1}], [{"a": 1.0}])
    assert same_value("0123", 123)  # lenient: it only decides whether to report; the stored value is kept
    assert not same_value(True, 1)
    assert not same_value("a", "b")


def test_a_computed_field_reading_a_hidden_field_is_hidden_too() -> None:
    from forms.permissions import hide_derived

    schema = demo("marketing-activity")
    hidden_end = PermissionMask(fields={"end_date": FieldAccess.HIDDEN})
    widened = hide_derived(schema, hidden_end)
    assert widened.access("duration_days") is FieldAccess.HIDDEN, "the duration would give the end date away"
    assert widened.access("start_date") is FieldAccess.READ_ONLY
    data = {"start_date": "2027-03-01", "end_date": "2027-03-03", "duration_days": 3, "budget": "1"}
    assert mask_for_read(data, widened) == {"start_date": "2027-03-01", "budget": "1"}
    # nothing hidden, nothing widened; an unrelated hidden field leaves the duration shown
    assert hide_derived(schema, PermissionMask()) == PermissionMask()
    other = hide_derived(schema, PermissionMask(fields={"supplier": FieldAccess.HIDDEN}))
    assert other.access("duration_days") is FieldAccess.READ_ONLY


def test_derived_hiding_follows_chains_and_totals() -> None:
    from forms import load_schema
    from forms.permissions import hide_derived

    schema = load_schema(
        msgspec.json.encode(
            {
                "key": "chain",
                "version": 1,
                "title": {"zh": "链", "en": "链"},
                "fields": [
                    {"type": "number", "key": "a", "label": {"zh": "a", "en": "a"}},
                    {"type": "computed", "key": "b", "label": {"zh": "b", "en": "b"}, "formula": "a * 2"},
                    {"type": "computed", "key": "c", "label": {"zh": "c", "en": "c"}, "formula": "b + 1"},
                    {
                        "type": "detail_table",
                        "key": "lines",
                        "label": {"zh": "明细", "en": "明细"},
                        "columns": [{"type": "number", "key": "x", "label": {"zh": "x", "en": "x"}}],
                        "totals": ["x"],
                    },
                    {
                        "type": "computed",
                        "key": "d",
                        "label": {"zh": "d", "en": "d"},
                        "formula": "totals.lines.x * 2",
                    },
                ],
            }
        )
    )
    widened = hide_derived(
        schema, PermissionMask(fields={"a": FieldAccess.HIDDEN, "lines": FieldAccess.HIDDEN})
    )
    assert [widened.access(key) for key in ("b", "c", "d")] == [FieldAccess.HIDDEN] * 3
