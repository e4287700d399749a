"""The demo forms seeded by `make run`: they load, pass the check, and validate as expected."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from forms import CompiledForm, compile_form
from tests.forms.conftest import DEMO, context, demo, errors, marketing_submission

KEYS = {
    "marketing-activity": [
        "activity_name",
        "department",
        "applicant",
        "contact_phone",
        "start_date",
        "end_date",
        "duration_days",
        "budget",
        "urgent",
        "urgent_reason",
        "goal",
        "audience",
        "execution_plan",
        "venue",
        "materials",
        "budget_lines",
        "supplier",
        "attachments",
    ],
    "optimization-suggestion": [
        "process",
        "stage",
        "problem",
        "suggestion",
        "expected_effect",
        "proposer",
        "date",
    ],
}
DEMOS = [
    "marketing-activity",
    "expense-reimbursement",
    "new-employee-onboarding",
    "fixed-asset-request",
    "supplier-onboarding",
    "cross-department-project",
    "optimization-suggestion",
]


def test_the_seven_demo_forms_are_there() -> None:
    assert sorted(path.name.removesuffix(".form.json") for path in DEMO.glob("*.form.json")) == sorted(DEMOS)


@pytest.mark.parametrize("name", DEMOS)
def test_demo_form_loads_and_compiles(name: str) -> None:
    schema = demo(name)
    assert schema.key == name and schema.version == 1
    assert schema.title.zh and schema.title.en
    for field in schema.fields:
        label = getattr(field, "label", None) or field.text  # type: ignore[union-attr]
        assert label.zh and label.en, field.key
    compile_form(schema)


@pytest.mark.parametrize("name", KEYS)
def test_fixed_keys(name: str) -> None:
    keys = [
        field.key
        for field in demo(name).fields
        if field.__struct_config__.tag not in ("section", "description")
    ]
    assert keys == KEYS[name]


def test_marketing_budget_line_columns() -> None:
    table = next(field for field in demo("marketing-activity").fields if field.key == "budget_lines")
    assert [column.key for column in table.columns] == ["item", "category", "amount", "note"]  # type: ignore[union-attr]
    assert [option.value for option in table.columns[1].options] == [
        "venue",
        "materials",
        "publicity",
        "other",
    ]  # type: ignore[union-attr]


def test_valid_marketing_submission(marketing: CompiledForm) -> None:
    result = marketing.validate(msgspec.json.encode(marketing_submission(20)), context())
    assert result.errors == [] and result.warnings == []
    assert result.data["totals"] == {"budget_lines": {"amount": Decimal("200000.00")}}
    assert result.data["duration_days"] == 3
    assert result.data["urgent_reason"] is None and result.hidden == ["urgent_reason"]


def test_broken_marketing_submission(marketing: CompiledForm) -> None:
    data = marketing_submission(4)
    data.update(contact_phone="12345", end_date="2024-06-30", urgent=True)
    del data["goal"]
    data["budget_lines"][1]["amount"] = "49999.995"
    data["budget_lines"][3]["note"] = ""
    data["budget_lines"][2]["category"] = "fireworks"
    data["attachments"][1] = {"id": "obj-2", "name": "合同.exe", "size": 20 * 1024 * 1024}
    data["attachments"][2]["name"] = "报价.xlsx"
    assert errors(marketing, data) == [
        ("contact_phone", "Enter a valid mobile phone number"),
        ("end_date", "The end date must not be before the start date"),
        ("urgent_reason", "This field is required."),
        ("goal", "This field is required."),
        ("budget_lines[1].amount", "Expected an amount, e.g. 1234.50."),
        ("budget_lines[2].category", "Not one of the allowed options."),
        ("budget_lines[3].note", "This field is required."),
        (
            "attachments[1].name",
            "This file type is not allowed; allowed types: pdf, doc, docx, xls, xlsx, jpg.",
        ),
        ("attachments[1].size", "The file is too large: at most 10 MB."),
    ]
    assert errors(marketing, data, "zh-CN")[:4] == [
        ("contact_phone", "请输入有效的手机号码"),
        ("end_date", "结束日期不能早于开始日期"),
        ("urgent_reason", "此项为必填项。"),
        ("goal", "此项为必填项。"),
    ]
    result = marketing.validate(data, context("en"))
    assert [(w.path, w.message) for w in result.warnings] == [
        ("attachments[2].name", "File names should read name_department_YYYYMMDD.ext")
    ]


def test_marketing_total_must_equal_budget(marketing: CompiledForm) -> None:
    data = marketing_submission(4)
    data["budget"] = "210000.00"
    assert errors(marketing, data, "zh-CN") == [
        ("budget_lines", "金额合计（¥200,000.00）必须等于预算金额（¥210,000.00）。"),
    ]


def test_marketing_draft_saves_incomplete_data(marketing: CompiledForm) -> None:
    result = marketing.validate(b'{"activity_name": "Q3", "budget": "1.5"}', context(), mode="draft")
    assert result.ok
    assert result.data["applicant"] == "u-1001" and result.data["department"] == "dept-marketing"
    assert result.data["budget"] == Decimal("1.50")
    assert errors(marketing, b'{"budget": "1.555"}', mode="draft") == [
        ("budget", "Expected an amount, e.g. 1234.50.")
    ]


def test_other_demo_forms_validate_a_submission() -> None:
    expense = compile_form(demo("expense-reimbursement"))
    data = {
        "expense_lines": [
            {"date": "2024-06-18", "category": "meals", "amount": 680, "invoice_no": "12345678"},
            {"date": "2024-06-18", "category": "travel", "amount": "1200.50", "invoice_no": "1234"},
        ],
        "bank_account": "6222020200112233",
        "invoices": [{"id": "o", "name": "fapiao.pdf", "size": 10}],
    }
    assert errors(expense, data) == [
        ("expense_lines[0].amount", "A single meal may not exceed 500 yuan"),
        ("expense_lines[1].invoice_no", "An invoice number has 8 to 20 digits"),
    ]
    data["expense_lines"][0]["amount"] = 480
    data["expense_lines"][1]["invoice_no"] = "87654321"
    result = expense.validate(data, context())
    assert result.ok, result.errors
    assert result.data["total_amount"] == Decimal("1680.50")
    assert result.data["claim_date"] == context().today and result.data["payment_method"] == "bank_transfer"
    corporate = expense.validate({**data, "payment_method": "corporate_card"}, context())
    assert corporate.ok and corporate.data["bank_account"] is None
