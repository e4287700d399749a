"""Detail tables: row-scoped conditions, column checks, exact totals, row rules, row limits."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from tests.forms.conftest import context, errors, field, form, options, text

LINES = field(
    "detail_table",
    "lines",
    min_rows=1,
    max_rows=5,
    columns=[
        field("select", "category", required=True, options=options("venue", "meals", "other")),
        field("money", "amount", required=True, validation={"min": 0.01}),
        field("text", "note", required_when='row.category == "other"'),
        field("text", "contract_no", visible_when='row.category == "venue"'),
        field("text", "approver_note", visible_when="urgent", hidden_value_policy="keep"),
    ],
    totals=["amount"],
    totals_must_equal={"amount": "budget"},
    row_rules=[
        {
            "check": 'row.category != "meals" || row.amount <= 500.0',
            "path": "amount",
            "message": text("单笔餐费不超过500元", "A meal may cost at most 500"),
        }
    ],
)
FORM = (field("money", "budget", required=True), field("switch", "urgent", default=False), LINES)


def submission(*rows: dict[str, Any], budget: str = "300.00", **top: Any) -> dict[str, Any]:
    return {"budget": budget, "lines": list(rows), **top}


def test_condition_inside_rows_uses_that_row() -> None:
    compiled = form(*FORM)
    data = submission(
        {"category": "venue", "amount": 100},
        {"category": "other", "amount": 100},
        {"category": "other", "amount": 100, "note": "押金"},
    )
    assert errors(compiled, data) == [("lines[1].note", "This field is required.")]
    assert errors(compiled, data, "zh-CN") == [("lines[1].note", "此项为必填项。")]
    assert errors(compiled, data, mode="draft") == []


def test_hidden_column_is_cleared_per_row_and_its_errors_dropped() -> None:
    compiled = form(*FORM)
    data = submission(
        {"category": "venue", "amount": 150, "contract_no": "HT-1"},
        {"category": "meals", "amount": 150, "contract_no": 42},
    )
    result = compiled.validate(data, context("en"))
    assert result.ok, result.errors
    assert [row["contract_no"] for row in result.data["lines"]] == ["HT-1", None]
    assert "lines[1].contract_no" in result.hidden


def test_condition_in_rows_reads_top_level_fields_and_keep_policy() -> None:
    compiled = form(*FORM)
    data = submission({"category": "venue", "amount": 300, "approver_note": "ok"}, urgent=False)
    result = compiled.validate(data, context())
    assert result.data["lines"][0]["approver_note"] == "ok"  # hidden, but kept by policy
    assert result.hidden == ["lines[0].approver_note"]
    shown = compiled.validate(submission({"category": "venue", "amount": 300}, urgent=True), context())
    assert shown.hidden == []


def test_totals_are_exact_and_recomputed() -> None:
    compiled = form(*FORM)
    amounts = ["0.10", "0.20", 0.3, "99.40", 200]
    data = submission(*({"category": "venue", "amount": a} for a in amounts), totals={"lines": {"amount": 1}})
    result = compiled.validate(data, context())
    assert result.ok, result.errors
    assert result.data["totals"] == {"lines": {"amount": Decimal("300.00")}}


def test_total_must_equal_budget() -> None:
    compiled = form(*FORM)
    data = submission({"category": "venue", "amount": "100.10"}, {"category": "venue", "amount": "99.90"})
    assert errors(compiled, data) == [
        ("lines", "The total of amount (CN¥200.00) must equal budget (CN¥300.00).")
    ]
    assert errors(compiled, data, "zh-CN") == [("lines", "amount合计（¥200.00）必须等于budget（¥300.00）。")]
    assert errors(compiled, data, mode="draft") == []


def test_total_mismatch_is_not_reported_over_a_bad_amount() -> None:
    compiled = form(*FORM)
    data = submission({"category": "venue", "amount": 1.001}, {"category": "venue", "amount": "1"})
    assert errors(compiled, data) == [("lines[0].amount", "At most 2 decimal places.")]


def test_row_rule() -> None:
    compiled = form(*FORM)
    data = submission({"category": "meals", "amount": 600}, budget="600")
    assert errors(compiled, data) == [("lines[0].amount", "A meal may cost at most 500")]
    assert errors(compiled, data, "zh-CN") == [("lines[0].amount", "单笔餐费不超过500元")]


def test_all_row_errors_are_reported_in_row_order() -> None:
    compiled = form(*FORM)
    data = submission(
        {"category": "venue", "amount": 0},
        {"category": "party", "amount": 100, "extra": 1},
        {"amount": "1e3"},
    )
    assert errors(compiled, data) == [
        ("lines[0].amount", "Must be at least 0.01."),
        ("lines[1].category", "Not one of the allowed options."),
        ("lines[1].extra", "Unknown field."),
        ("lines[2].category", "This field is required."),
        ("lines[2].amount", "Expected an amount, e.g. 1234.50."),
    ]


def test_row_limits() -> None:
    compiled = form(*FORM)
    rows = [{"category": "venue", "amount": 50}] * 6
    assert errors(compiled, submission(*rows)) == [("lines", "At most 5 rows.")]
    assert errors(compiled, submission()) == [("lines", "This field is required.")]
    assert errors(compiled, {"budget": 1}) == [("lines", "This field is required.")]
    three = form(field("detail_table", "t", min_rows=3, columns=[field("text", "c")]))
    assert errors(three, {"t": [{}, {}]}) == [("t", "At least 3 rows.")]
    assert errors(three, {"t": [{}, {}]}, "zh-CN") == [("t", "至少 3 行。")]
    assert errors(three, {"t": [{}, {}]}, mode="draft") == []


def test_computed_column_and_its_total() -> None:
    compiled = form(
        field(
            "detail_table",
            "assets",
            columns=[
                field("number", "quantity", integer=True, required=True),
                field("money", "unit_price", required=True),
                field(
                    "computed",
                    "subtotal",
                    formula="double(row.quantity) * row.unit_price",
                    result_type="money",
                ),
            ],
            totals=["quantity", "subtotal"],
        )
    )
    data = {
        "assets": [{"quantity": 3, "unit_price": "19.99", "subtotal": 1}, {"quantity": 2, "unit_price": 0.1}]
    }
    result = compiled.validate(data, context())
    assert result.ok, result.errors
    assert [row["subtotal"] for row in result.data["assets"]] == [Decimal("59.97"), Decimal("0.20")]
    assert result.data["totals"] == {"assets": {"quantity": 5, "subtotal": Decimal("60.17")}}


def test_column_defaults() -> None:
    compiled = form(
        field(
            "detail_table",
            "equipment",
            columns=[
                field("text", "kind", required=True),
                field("number", "quantity", default=1),
                field("date", "needed", default="$today"),
            ],
        )
    )
    result = compiled.validate({"equipment": [{"kind": "laptop"}]}, context())
    assert result.data["equipment"] == [{"kind": "laptop", "quantity": 1, "needed": context().today}]


def test_money_column_cells_of_every_kind() -> None:
    compiled = form(field("detail_table", "t", columns=[field("money", "a")], totals=["a"]))
    cases = [
        ([1.25, 2.5], ["1.25", "2.50"]),  # JSON numbers with 2 and 1 decimals
        ([7, 1.5, "2.25"], ["7.00", "1.50", "2.25"]),  # int, number, string
        ([1e3, None], ["1000.00", None]),  # exponent form, empty cell
    ]
    for cells, cleaned in cases:
        result = compiled.validate(msgspec.json.encode({"t": [{"a": a} for a in cells]}), context())
        assert result.ok, result.errors
        assert [None if row["a"] is None else str(row["a"]) for row in result.data["t"]] == cleaned
    assert errors(compiled, {"t": [{"a": True}, {"a": 1}, {"a": 1.001}, {"a": -1e13}]}) == [
        ("t[0].a", "Expected an amount, e.g. 1234.50."),
        ("t[2].a", "At most 2 decimal places."),
        ("t[3].a", "The amount is out of range."),
    ]
