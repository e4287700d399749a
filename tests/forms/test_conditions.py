"""Top-level conditions, defaults, computed fields, rules, draft mode and the context."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from forms import CurrentUser, ValidationContext, compile_form
from tests.forms.conftest import TODAY, USER, context, errors, field, form, options, schema, text

END_AFTER_START = {
    "check": "end >= start",
    "path": "end",
    "message": text("结束日期不能早于开始日期", "End before start"),
}


def test_visible_when_clears_hidden_value_and_skips_its_checks() -> None:
    compiled = form(
        field("switch", "urgent"),
        field(
            "textarea", "reason", visible_when="urgent", required_when="urgent", validation={"min_length": 5}
        ),
    )
    hidden = compiled.validate({"urgent": False, "reason": "abc"}, context())
    assert hidden.ok and hidden.data["reason"] is None and hidden.hidden == ["reason"]
    assert errors(compiled, {"urgent": True}) == [("reason", "This field is required.")]
    assert errors(compiled, {"urgent": True, "reason": "abc"}) == [("reason", "At least 5 characters.")]


def test_hidden_invalid_value_is_not_an_error() -> None:
    compiled = form(field("switch", "urgent"), field("number", "hours", visible_when="urgent"))
    assert errors(compiled, {"urgent": False, "hours": "many"}) == []
    assert errors(compiled, {"urgent": True, "hours": "many"}) == [("hours", "Expected a number.")]


def test_keep_policy_keeps_hidden_value() -> None:
    compiled = form(
        field("switch", "on"), field("text", "memo", visible_when="on", hidden_value_policy="keep")
    )
    result = compiled.validate({"on": False, "memo": "kept"}, context())
    assert result.data["memo"] == "kept" and result.hidden == ["memo"]


def test_hidden_field_reads_as_null_downstream() -> None:
    compiled = form(
        field("select", "kind", options=options("a", "b")),
        field("money", "amount", visible_when='kind == "a"'),
        field("text", "approval", required_when="amount > 1000.0"),
    )
    assert errors(compiled, {"kind": "a", "amount": 5000}) == [("approval", "This field is required.")]
    assert errors(compiled, {"kind": "b", "amount": 5000}) == []


def test_required_when_on_money_threshold() -> None:
    compiled = form(
        field("money", "budget"), field("textarea", "finance_note", required_when="budget > 50000")
    )
    assert errors(compiled, {"budget": "50000.00"}) == []
    assert errors(compiled, {"budget": "50000.01"}) == [("finance_note", "This field is required.")]
    assert errors(compiled, {"budget": "50000.01"}, mode="draft") == []


def test_defaults_from_context_and_literals() -> None:
    compiled = form(
        field("person", "applicant", required=True, default="$current_user"),
        field("department", "department", required=True, default="$current_department"),
        field("text", "applicant_name", default="$current_user"),
        field("date", "day", default="$today"),
        field("money", "deposit", default="100"),
        field("multi_select", "tags", options=options("a", "b"), default=["a"]),
        field("switch", "urgent", default=False),
    )
    result = compiled.validate(b"{}", context())
    assert result.ok, result.errors
    assert result.data == {
        "applicant": "u-1001",
        "department": "dept-marketing",
        "applicant_name": "张伟",
        "day": TODAY,
        "deposit": Decimal("100.00"),
        "tags": ["a"],
        "urgent": False,
    }
    anonymous = compiled.validate(b"{}", ValidationContext(today=TODAY, locale="en"))
    assert [(e.path, e.message) for e in anonymous.errors] == [
        ("applicant", "This field is required."),
        ("department", "This field is required."),
    ]


def test_submitted_value_wins_over_default() -> None:
    compiled = form(field("person", "applicant", default="$current_user"))
    assert compiled.validate({"applicant": "u-2"}, context()).data["applicant"] == "u-2"


def test_computed_fields_chain_in_dependency_order() -> None:
    compiled = form(
        field("computed", "with_tax", formula="net + tax", result_type="money"),
        field("money", "net"),
        field("computed", "tax", formula="net * 0.06", result_type="money"),
        field("computed", "label", formula='"合计 " + string(with_tax)', result_type="text"),
        field("date", "start"),
        field("date", "end"),
        field("computed", "days", formula="(end - start).getHours() / 24 + 1"),
    )
    result = compiled.validate({"net": "1000.00", "start": "2024-07-01", "end": "2024-07-03"}, context())
    assert result.data["tax"] == Decimal("60.00")
    assert result.data["with_tax"] == Decimal("1060.00")
    assert result.data["label"] == "合计 1060"
    assert result.data["days"] == 3


def test_computed_money_rounds_half_up_to_cents() -> None:
    compiled = form(
        field("money", "price"), field("computed", "half", formula="price / 2.0", result_type="money")
    )
    assert compiled.validate({"price": "0.05"}, context()).data["half"] == Decimal("0.03")
    assert compiled.validate({"price": "5.35"}, context()).data["half"] == Decimal("2.68")


def test_computed_without_inputs_is_empty() -> None:
    compiled = form(
        field("money", "net"), field("computed", "tax", formula="net * 0.06", result_type="money")
    )
    assert compiled.validate(b"{}", context()).data["tax"] is None


def test_form_rule_with_today_and_user() -> None:
    compiled = form(
        field("date", "start"),
        field("date", "end"),
        field("person", "approver"),
        rules=[
            END_AFTER_START,
            {
                "check": "start >= today",
                "path": "start",
                "message": text("开始日期不能早于今天", "Start in the past"),
            },
            {
                "when": "approver != null",
                "check": "approver != user.id",
                "path": "approver",
                "message": text("不能指定自己为审批人", "You cannot approve your own request"),
            },
        ],
    )
    assert errors(compiled, {"start": "2024-06-20", "end": "2024-06-21", "approver": "u-2"}) == []
    assert errors(compiled, {"start": "2024-06-19", "end": "2024-06-18", "approver": USER.id}) == [
        ("start", "Start in the past"),
        ("end", "End before start"),
        ("approver", "You cannot approve your own request"),
    ]
    assert errors(compiled, {"start": "2024-06-19", "end": "2024-06-18"}, "zh-CN")[1] == (
        "end",
        "结束日期不能早于开始日期",
    )
    assert errors(compiled, {"start": "2024-06-19", "end": "2024-06-18"}, mode="draft") == []


def test_rules_are_skipped_over_invalid_or_missing_values() -> None:
    compiled = form(field("date", "start"), field("date", "end"), rules=[END_AFTER_START])
    assert errors(compiled, {"start": "2024-07-01"}) == []
    assert errors(compiled, {"start": "2024-07-01", "end": "yesterday"}) == [
        ("end", "Expected a date as YYYY-MM-DD.")
    ]


def test_context_is_what_today_means() -> None:
    compiled = form(field("date", "day", default="$today"))
    later = ValidationContext(today=dt.date(2030, 1, 1), user=CurrentUser(id="u-9"))
    assert compiled.validate(b"{}", later).data["day"] == dt.date(2030, 1, 1)


def test_compile_is_cached_by_key_and_version() -> None:
    first = compile_form(schema(field("text", "a")))
    assert compile_form(schema(field("text", "a"))) is first
    # Same key and version but other content (a draft being edited): compiled anew.
    other = compile_form(schema(field("text", "b")))
    assert other is not first and other.schema.fields[0].key == "b"


def test_custom_translator_in_context() -> None:
    compiled = form(field("text", "f", required=True))
    ctx = ValidationContext(
        today=TODAY,
        locale="fr",
        gettext=lambda msgid: {"This field is required.": "Obligatoire."}.get(msgid, msgid),
    )
    assert [e.message for e in compiled.validate(b"{}", ctx).errors] == ["Obligatoire."]


def test_kept_hidden_value_is_still_cleaned_but_never_an_error() -> None:
    compiled = form(
        field("switch", "on"),
        field("money", "deposit", visible_when="on", hidden_value_policy="keep", required=True),
    )
    kept = compiled.validate({"on": False, "deposit": 1.5}, context())
    assert kept.ok and kept.data["deposit"] == Decimal("1.50") and kept.hidden == ["deposit"]
    dropped = compiled.validate({"on": False, "deposit": "lots"}, context())
    assert dropped.ok and dropped.data["deposit"] is None
    assert errors(compiled, {"on": False}) == []
    assert errors(compiled, {"on": True}) == [("deposit", "This field is required.")]
