"""Bad input gets errors, never an exception and never a hang."""

from __future__ import annotations

import json
import time
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.forms.conftest import context, errors, marketing_submission

LIMIT_SECONDS = 2.0  # generous: each case takes milliseconds; this only catches a hang


def timed_errors(form: Any, raw: bytes | str | dict[str, Any]) -> list[tuple[str, str]]:
    started = time.perf_counter()
    found = errors(form, raw)
    assert time.perf_counter() - started < LIMIT_SECONDS
    return found


def test_malformed_json(marketing: Any) -> None:
    for raw in [b"", b"{", b'{"budget": 1,}', b"\xff\xfe", b"NaN", b'{"a": Infinity}']:
        assert timed_errors(marketing, raw) == [("", "The submission is not valid JSON.")], raw
    assert errors(marketing, b"{", "zh-CN") == [("", "提交的内容不是有效的 JSON。")]


def test_not_an_object(marketing: Any) -> None:
    for raw in [b"[]", b"1", b'"x"', b"null"]:
        assert timed_errors(marketing, raw) == [
            ("", "The submission must be a JSON object of field values.")
        ], raw


def test_deep_nesting(marketing: Any) -> None:
    raw = b'{"goal": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert timed_errors(marketing, raw) == [("", "The submission is not valid JSON.")]


def test_wrong_types_everywhere(marketing: Any) -> None:
    data = marketing_submission(3)
    data.update(
        activity_name=1,
        start_date=True,
        budget={"amount": 1},
        urgent="yes",
        budget_lines={"0": {}},
        attachments=[{"id": 1, "name": None, "size": -1}],
    )
    assert timed_errors(marketing, data) == [
        ("activity_name", "Expected text."),
        ("start_date", "Expected a date as YYYY-MM-DD."),
        ("budget", "Expected an amount, e.g. 1234.50."),
        ("urgent", "Expected true or false."),
        ("budget_lines", "Expected a list."),
        ("attachments[0].id", "Expected a file id of 1 to 200 characters."),
        ("attachments[0].name", "This field is required."),
        ("attachments[0].size", "Expected a file size in bytes."),
    ]


def test_unknown_keys(marketing: Any) -> None:
    data = marketing_submission(2)
    data["__proto__"] = {}
    data["budget_lines"][1]["discount"] = 5
    assert timed_errors(marketing, data) == [
        ("budget_lines[1].discount", "Unknown field."),
        ("__proto__", "Unknown field."),
    ]


def test_ten_megabyte_string(marketing: Any) -> None:
    data = marketing_submission(2)
    data["activity_name"] = "长" * (10 * 1024 * 1024)
    assert timed_errors(marketing, data) == [("activity_name", "At most 100 characters.")]
    data = marketing_submission(2)
    data["budget_lines"][0]["note"] = "x" * (10 * 1024 * 1024)
    assert timed_errors(marketing, data) == [("budget_lines[0].note", "At most 200 characters.")]


def test_ten_thousand_rows(marketing: Any) -> None:
    data = marketing_submission(2)
    data["budget_lines"] = [{"item": "x", "category": "other", "amount": "nope", "bogus": 1}] * 10_000
    started = time.perf_counter()
    assert errors(marketing, data) == [("budget_lines", "At most 200 rows.")]
    assert time.perf_counter() - started < 0.5


def test_huge_numbers(marketing: Any) -> None:
    data = marketing_submission(2)
    raw = json.dumps(data).replace('"200000.00"', "1" + "0" * 400).encode()
    assert timed_errors(marketing, raw) == [("budget", "The amount is out of range.")]
    # Past Python's limit on integer digits the decoder itself refuses the document.
    raw = json.dumps(data).replace('"200000.00"', "1" + "0" * 5000).encode()
    assert timed_errors(marketing, raw) == [("", "The submission is not valid JSON.")]
    raw = json.dumps(data).replace('"200000.00"', "1e999999").encode()
    assert timed_errors(marketing, raw) == [("budget", "The amount is out of range.")]


def test_unserializable_mapping(marketing: Any) -> None:
    assert errors(marketing, b"{}") != []
    result = marketing.validate({"goal": object()}, context("en"))
    assert [(e.path, e.message) for e in result.errors] == [
        ("", "The submission must be a JSON object of field values.")
    ]


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
KEYS = [
    "activity_name",
    "budget",
    "start_date",
    "end_date",
    "urgent",
    "urgent_reason",
    "budget_lines",
    "attachments",
    "department",
    "duration_days",
    "totals",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(KEYS), JSON, max_size=6), st.sampled_from(["draft", "submit"]))
def test_any_json_gets_errors_not_exceptions(marketing: Any, patch: dict[str, Any], mode: str) -> None:
    data = {**marketing_submission(3), **patch}
    result = marketing.validate(msgspec.json.encode(data), context("en"), mode=mode)
    assert all(error.message for error in result.errors)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.dictionaries(st.sampled_from(["item", "category", "amount", "note", "x"]), JSON, max_size=5),
        max_size=6,
    )
)
def test_any_rows_get_errors_not_exceptions(marketing: Any, rows: list[dict[str, Any]]) -> None:
    data = {**marketing_submission(3), "budget_lines": rows}
    result = marketing.validate(msgspec.json.encode(data), context("zh-CN"))
    assert all(error.path.startswith("budget_lines") for error in result.errors)
