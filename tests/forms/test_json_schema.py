"""The JSON Schema export, and the property that `jsonschema` and our validator agree.

Agreement is checked on everything JSON Schema can express. Left out of the generated
submissions, because JSON Schema cannot state them: money numbers with 3+ decimals, money
strings outside the bounds, a whole-number field sent as 1.0, conditions, rules, and the
order of a date range. The same property checks that the slow, error-collecting path
returns exactly what the fast path returns.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
from typing import Any

import jsonschema
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forms import CompiledForm, compile_form
from forms.json_schema import to_json_schema
from tests.forms.conftest import context, demo, field, marketing_submission, options, schema

FORMAT_CHECKER = jsonschema.Draft202012Validator.FORMAT_CHECKER
MIB = 1024 * 1024

AGREEMENT = schema(
    field("text", "t", validation={"min_length": 2, "max_length": 10, "pattern": "^[a-z]+$"}),
    field("text", "t_req", required=True, validation={"max_length": 5}),
    field("textarea", "ta", validation={"max_length": 30}),
    field("number", "n", validation={"min": -5, "max": 5.5}),
    field("number", "i", required=True, integer=True, validation={"min": 0, "max": 100}),
    field("money", "m", validation={"min": 0, "max": 1000}),
    field("money", "m_any", required=True),
    field("date", "d"),
    field("datetime", "dt"),
    field("date_range", "dr"),
    field("select", "s", required=True, options=options("a", "b", "c")),
    field("radio", "r", options=options("a", "b")),
    field("multi_select", "ms", options=options("a", "b", "c"), validation={"min_length": 2}),
    field("checkbox", "cb", required=True, options=options("a", "b")),
    field("switch", "sw"),
    field("person", "p"),
    field("person", "pm", multiple=True),
    field("department", "dep", required=True),
    field("related_instance", "rel"),
    field(
        "attachment",
        "att",
        max_count=2,
        max_size=1000,
        allowed_types=["pdf", "jpg"],
        name_pattern="^[a-z]+_",
        name_pattern_policy="refuse",
    ),
    field(
        "detail_table",
        "tbl",
        min_rows=1,
        max_rows=3,
        columns=[
            field("text", "c_text", required=True, validation={"max_length": 5}),
            field("money", "c_money"),
            field("select", "c_select", options=options("x", "y")),
        ],
        totals=["c_money"],
    ),
    field("computed", "comp", formula="i * 2"),
    key="agreement",
)

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
ANY_SCALAR = st.none() | st.booleans() | st.integers(-3, 3) | TEXT
TWO_PLACES = st.decimals(min_value=-20, max_value=1100, places=2).map(float)
MONEY_TEXT = st.decimals(min_value=0, max_value=1000, places=2).map(str) | st.sampled_from(
    ["1,000", "1.234", "01", "1e3", " 5", "abc", ""]
)
DATE = st.dates().map(dt.date.isoformat) | st.sampled_from(["2024-02-30", "2024-1-1", "20240101", ""])
DATETIME = st.datetimes(timezones=st.just(dt.UTC)).map(dt.datetime.isoformat)
FILE_NAMES = st.sampled_from(
    ["ab_x.pdf", "AB_x.PDF", "ab_x.Jpg", "ab_x.exe", "x.pdf", ".pdf", "ab_", "ab_x.pdf.zip"]
)
FILE = st.fixed_dictionaries(
    {"id": st.text("ab1", max_size=3), "name": FILE_NAMES, "size": st.integers(-1, 1100)},
    optional={"content_type": st.none() | st.just("application/pdf") | st.integers(), "url": st.just("x")},
)
ROW = st.fixed_dictionaries(
    {},
    optional={
        "c_text": st.text("ab", max_size=6) | st.integers(),
        "c_money": TWO_PLACES | MONEY_TEXT,
        "c_select": st.sampled_from(["x", "y", "z"]),
        "zz": st.integers(),
    },
)


@st.composite
def date_ranges(draw: st.DrawFn) -> Any:
    first, second = sorted([draw(st.dates()), draw(st.dates())])
    whole = {"start": first.isoformat(), "end": second.isoformat()}
    return draw(
        st.sampled_from(
            [
                whole,
                {"start": whole["start"]},
                {**whole, "days": 1},
                {"start": 1, "end": whole["end"]},
                whole["start"],
            ]
        )
    )


VALUES: dict[str, st.SearchStrategy[Any]] = {
    "t": st.from_regex(r"\A[a-z]{0,11}\Z") | ANY_SCALAR,
    "t_req": st.text("abc", max_size=6) | ANY_SCALAR,
    "ta": st.text(max_size=32) | ANY_SCALAR,
    "n": st.integers(-7, 7) | st.floats(-7, 7) | ANY_SCALAR,
    "i": st.integers(-5, 105) | ANY_SCALAR,
    "m": TWO_PLACES | MONEY_TEXT | st.booleans(),
    "m_any": TWO_PLACES | st.from_regex(r"\A-?(0|[1-9][0-9]{0,12})(\.[0-9]{1,2})?\Z") | st.just("x"),
    "d": DATE | st.integers(),
    "dt": DATETIME | st.integers(),
    "dr": date_ranges(),
    "s": st.sampled_from(["a", "b", "c", "d"]) | ANY_SCALAR,
    "r": st.sampled_from(["a", "b", "c"]),
    "ms": st.lists(st.sampled_from(["a", "b", "c", "x"]), max_size=4) | ANY_SCALAR,
    "cb": st.lists(st.sampled_from(["a", "b"]), max_size=3),
    "sw": st.booleans() | ANY_SCALAR,
    "p": st.text(max_size=70) | ANY_SCALAR,
    "pm": st.lists(st.text("u1", max_size=3), max_size=3) | ANY_SCALAR,
    "dep": st.text("d1", max_size=3) | ANY_SCALAR,
    "rel": st.text(max_size=5),
    "att": st.lists(FILE, max_size=3) | ANY_SCALAR,
    "tbl": st.lists(ROW, max_size=4) | ANY_SCALAR,
    "comp": ANY_SCALAR,
    "totals": st.just({"tbl": {"c_money": 1}}),
    "zz": st.integers(),
}
VALID_FILE = st.fixed_dictionaries(
    {
        "id": st.text("ab1", min_size=1, max_size=3),
        "name": st.sampled_from(["ab_x.pdf", "AB_x.PDF"]),
        "size": st.integers(0, 1000),
    }
)
VALID_ROW = st.fixed_dictionaries(
    {"c_text": st.text("ab", min_size=1, max_size=5)},
    optional={"c_money": TWO_PLACES | st.none(), "c_select": st.sampled_from(["x", "y"])},
)
VALID: dict[str, st.SearchStrategy[Any]] = {
    "t": st.from_regex(r"\A[a-z]{2,10}\Z") | st.just(""),
    "t_req": st.text("abc", min_size=1, max_size=5),
    "ta": st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
    "n": st.integers(-5, 5) | st.floats(-5, 5.5),
    "i": st.integers(0, 100),
    "m": st.decimals(min_value=0, max_value=1000, places=2).map(lambda d: float(d) if d % 2 else str(d)),
    "m_any": TWO_PLACES,
    "d": st.dates().map(dt.date.isoformat),
    "dt": DATETIME,
    "dr": st.lists(st.dates(), min_size=2, max_size=2).map(
        lambda days: {"start": min(days).isoformat(), "end": max(days).isoformat()}
    ),
    "s": st.sampled_from(["a", "b", "c"]),
    "r": st.sampled_from(["a", "b"]),
    "ms": st.just([]) | st.lists(st.sampled_from(["a", "b", "c"]), min_size=2, max_size=3, unique=True),
    "cb": st.lists(st.sampled_from(["a", "b"]), min_size=1, max_size=2, unique=True),
    "sw": st.booleans(),
    "p": st.text("u1-", max_size=64),
    "pm": st.lists(st.text("u1", max_size=3), max_size=3),
    "dep": st.text("d1", min_size=1, max_size=64),
    "rel": st.text("i1", max_size=5),
    "att": st.lists(VALID_FILE, max_size=2),
    "tbl": st.lists(VALID_ROW, min_size=1, max_size=3),
}
REQUIRED = {"t_req", "i", "m_any", "s", "cb", "dep", "tbl"}
MISSING = object()


@st.composite
def submissions(draw: st.DrawFn) -> dict[str, Any]:
    """A valid submission with up to three values replaced by arbitrary ones (or removed)."""
    document: dict[str, Any] = {}
    for key, values in VALID.items():
        if key in REQUIRED or draw(st.booleans()):
            document[key] = draw(values)
    for key in draw(st.lists(st.sampled_from(sorted(VALUES)), max_size=3, unique=True)):
        value = draw(st.just(MISSING) | st.none() | VALUES[key])
        if value is MISSING:
            document.pop(key, None)
        else:
            document[key] = value
    return document


class _AlwaysFails:
    """Stands in for the fast decoder, so every submission takes the slow path."""

    def decode(self, data: Any) -> Any:
        raise msgspec.ValidationError("forced slow path")


def slow_path(compiled: CompiledForm) -> CompiledForm:
    clone = copy.copy(compiled)
    clone._decoder = lambda submit: _AlwaysFails()  # type: ignore[method-assign,assignment,return-value]
    return clone


@pytest.fixture(scope="module")
def agreement() -> tuple[CompiledForm, CompiledForm, jsonschema.Draft202012Validator]:
    compiled = compile_form(AGREEMENT)
    document = to_json_schema(AGREEMENT)
    jsonschema.Draft202012Validator.check_schema(document)
    return (
        compiled,
        slow_path(compiled),
        jsonschema.Draft202012Validator(document, format_checker=FORMAT_CHECKER),
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(submissions())
def test_jsonschema_and_our_validator_agree(
    agreement: tuple[CompiledForm, CompiledForm, jsonschema.Draft202012Validator], document: dict[str, Any]
) -> None:
    compiled, slow, validator = agreement
    raw = json.dumps(document).encode()
    ours = compiled.validate(raw, context("en"))
    theirs = sorted(error.message for error in validator.iter_errors(json.loads(raw)))
    assert ours.ok == (not theirs), (ours.errors, theirs)
    assert slow.validate(raw, context("en")) == ours


def test_generated_submissions_reach_both_outcomes(
    agreement: tuple[CompiledForm, CompiledForm, jsonschema.Draft202012Validator],
) -> None:
    compiled, _, validator = agreement
    valid = {
        "t_req": "ab",
        "i": 3,
        "m_any": "0.01",
        "s": "a",
        "cb": ["b"],
        "dep": "d1",
        "tbl": [{"c_text": "x", "c_money": 0.1}],
        "att": [{"id": "1", "name": "ab_x.PDF", "size": 1000}],
        "ms": [],
        "t": "",
        "dr": {"start": "2024-01-01", "end": "2024-01-01"},
    }
    assert compiled.validate(valid, context()).ok
    assert validator.is_valid(valid)


def test_money_export_accepts_every_two_decimal_amount() -> None:
    rng = random.Random(42)
    amounts = [round(rng.uniform(0, 100_000), 2) for _ in range(2_000)]
    money = field("money", "amount", validation={"min": 0})
    document = to_json_schema(schema(money))
    validator = jsonschema.Draft202012Validator(document)
    compiled = compile_form(schema(money))
    for amount in amounts:
        assert validator.is_valid({"amount": amount})
        assert validator.is_valid({"amount": f"{amount:.2f}"})
        assert compiled.validate(json.dumps({"amount": amount}), context()).ok
    assert "multipleOf" not in json.dumps(document)


def test_slow_path_returns_what_the_fast_path_returns(marketing: CompiledForm) -> None:
    raw = json.dumps(marketing_submission(20)).encode()
    fast = marketing.validate(raw, context())
    assert fast.ok
    assert slow_path(marketing).validate(raw, context()) == fast
    draft = marketing.validate(b"{}", context(), mode="draft")
    assert slow_path(marketing).validate(b"{}", context(), mode="draft") == draft


def test_demo_forms_export_valid_json_schemas() -> None:
    for name in [
        "marketing-activity",
        "expense-reimbursement",
        "new-employee-onboarding",
        "supplier-onboarding",
    ]:
        document = to_json_schema(demo(name))
        jsonschema.Draft202012Validator.check_schema(document)
        assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    marketing = to_json_schema(demo("marketing-activity"))
    validator = jsonschema.Draft202012Validator(marketing, format_checker=FORMAT_CHECKER)
    assert validator.is_valid(marketing_submission(20))
    assert marketing["properties"]["budget"]["type"] == ["string", "number"]
    assert "duration_days" not in marketing["required"]
    assert marketing["properties"]["budget_lines"]["minItems"] == 1
    broken = marketing_submission(2)
    broken["attachments"][0]["size"] = 11 * MIB
    assert not validator.is_valid(broken)
