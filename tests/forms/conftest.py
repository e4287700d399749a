"""Fixtures and builders for the forms tests: contexts in both languages, small schemas."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import msgspec
import pytest

from forms import CompiledForm, CurrentUser, FormSchema, ValidationContext, compile_form, load_schema

DEMO = Path(__file__).resolve().parents[2] / "builder" / "demo"
TODAY = dt.date(2024, 6, 20)
USER = CurrentUser(id="u-1001", name="张伟", department_id="dept-marketing")


def context(locale: str = "zh-CN") -> ValidationContext:
    return ValidationContext(today=TODAY, user=USER, locale=locale)


def text(zh: str, en: str | None = None) -> dict[str, str]:
    return {"zh": zh, "en": en or zh}


def field(type_: str, key: str, **settings: Any) -> dict[str, Any]:
    """A field as it appears in a schema file; label defaults to the key."""
    return {"type": type_, "key": key, "label": text(key), **settings}


def options(*values: str) -> list[dict[str, Any]]:
    return [{"value": value, "label": text(value)} for value in values]


def schema(
    *fields: dict[str, Any], rules: list[dict[str, Any]] | None = None, key: str = "test"
) -> FormSchema:
    """A schema decoded from its JSON form, so msgspec applies every constraint."""
    document = {
        "key": key,
        "version": 1,
        "title": text("测试", "Test"),
        "fields": list(fields),
        "rules": rules or [],
    }
    return msgspec.json.decode(msgspec.json.encode(document), type=FormSchema)


def form(*fields: dict[str, Any], rules: list[dict[str, Any]] | None = None) -> CompiledForm:
    return compile_form(schema(*fields, rules=rules))


def errors(form: CompiledForm, data: Any, locale: str = "en", mode: str = "submit") -> list[tuple[str, str]]:
    """(path, message) of every error validating `data` (a dict, or raw JSON bytes/str)."""
    raw = data if isinstance(data, bytes | str) else msgspec.json.encode(data)
    result = form.validate(raw, context(locale), mode=mode)  # type: ignore[arg-type]
    return [(error.path, error.message) for error in result.errors]


def demo(name: str) -> FormSchema:
    return load_schema(DEMO / f"{name}.form.json")


CATEGORIES = ["venue", "materials", "publicity", "other"]


def marketing_submission(lines: int = 20) -> dict[str, Any]:
    """A valid marketing-activity submission whose budget lines add up to the budget."""
    budget = 200_000 * 100
    cents = [budget // lines] * (lines - 1)
    cents.append(budget - sum(cents))
    return {
        "activity_name": "2024年Q3新品推广会",
        "department": "dept-marketing",
        "applicant": "u-1001",
        "contact_phone": "+8613800138000",
        "start_date": "2024-07-01",
        "end_date": "2024-07-03",
        "budget": "200000.00",
        "urgent": False,
        "goal": "新品认知度提升30%",
        "audience": "18-35 岁城市白领",
        "execution_plan": "确定场地与供应商，完成物料设计与印刷，活动当天执行签到、互动与直播。",
        "venue": "上海国际会展中心",
        "materials": "易拉宝 20 个，宣传册 2000 份",
        "budget_lines": [
            {
                "item": f"预算项 {index + 1}",
                "category": CATEGORIES[index % 4],
                "amount": amount / 100,
                "note": "场地押金另计" if CATEGORIES[index % 4] == "other" else "",
            }
            for index, amount in enumerate(cents)
        ],
        "supplier": "上海某某会展服务有限公司",
        "attachments": [
            {"id": "obj-1", "name": "2024Q3新品推广会策划案_市场部_20240701.pdf", "size": 2_345_678},
            {
                "id": "obj-2",
                "name": "场地合同_市场部_20240625.jpg",
                "size": 1_048_576,
                "content_type": "image/jpeg",
            },
            {"id": "obj-3", "name": "供应商报价_采购部_20240620.xlsx", "size": 48_213},
        ],
    }


@pytest.fixture
def marketing() -> CompiledForm:
    return compile_form(demo("marketing-activity"))
