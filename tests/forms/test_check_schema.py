"""The design-time check: every problem with its path in the schema and a message."""

from __future__ import annotations

from typing import Any

import pytest

from forms import SchemaError, check_schema, compile_form
from forms.model import FormSchema, LocalizedText, TextField
from tests.forms.conftest import DEMO, demo, field, options, schema, text

TABLE = field(
    "detail_table",
    "lines",
    columns=[
        field("text", "item"),
        field("money", "amount"),
        field("select", "kind", options=options("a", "b")),
    ],
)
RULE = {"check": "true", "path": "a", "message": text("x")}


def problems(
    *fields: dict[str, Any], rules: list[dict[str, Any]] | None = None, locale: str = "en"
) -> list[tuple[str, str, str]]:
    return [(p.path, p.code, p.message) for p in check_schema(schema(*fields, rules=rules), locale)]


CASES = [
    (
        "duplicate key",
        [field("text", "a"), field("number", "a")],
        [("fields[1].key", "duplicate_key", 'Duplicate key "a": already used at fields[0].')],
    ),
    (
        "duplicate column",
        [field("detail_table", "t", columns=[field("text", "c"), field("text", "c")])],
        [
            (
                "fields[0].columns[1].key",
                "duplicate_key",
                'Duplicate key "c": already used at fields[0].columns[0].',
            )
        ],
    ),
    (
        "reserved key",
        [field("text", "today")],
        [("fields[0].key", "reserved_key", 'The key "today" is reserved.')],
    ),
    (
        "CEL keyword key",
        [field("text", "in")],
        [("fields[0].key", "reserved_key", 'The key "in" is reserved.')],
    ),
    (
        "syntax",
        [field("text", "a", visible_when="a ==")],
        [
            (
                "fields[0].visible_when",
                "expression_syntax",
                "The expression does not parse: 1:5: Syntax error: mismatched input '<EOF>'",
            )
        ],
    ),
    (
        "unknown name",
        [field("text", "a"), field("text", "b", required_when='c == "x"')],
        [("fields[1].required_when", "unknown_name", 'Unknown name "c".')],
    ),
    (
        "section is not a value",
        [{"type": "section", "key": "s", "label": text("s")}, field("text", "b", visible_when="s")],
        [("fields[1].visible_when", "unknown_name", 'Unknown name "s".')],
    ),
    (
        "row outside a table",
        [field("text", "b", visible_when='row.kind == "a"')],
        [("fields[0].visible_when", "row_outside_table", '"row" can only be used inside a detail table.')],
    ),
    (
        "unknown column",
        [
            field(
                "detail_table",
                "t",
                columns=[field("text", "c", visible_when='row.kind == "a"')],
            )
        ],
        [("fields[0].columns[0].visible_when", "unknown_column", 'Unknown column "kind".')],
    ),
    (
        "unknown function",
        [field("number", "a"), field("computed", "b", formula="fancy(a)")],
        [("fields[1].formula", "unknown_function", 'Unknown function "fancy".')],
    ),
    (
        "unknown totals table",
        [TABLE, field("text", "b", visible_when="totals.lines.amount > 5.0")],
        [("fields[1].visible_when", "unknown_total", '"lines" is not a detail table with totals.')],
    ),
    (
        "cycle of computed fields",
        [field("computed", "a", formula="b + 1"), field("computed", "b", formula="a + 1")],
        [("fields[0]", "cycle", "Dependency cycle: a -> b -> a.")],
    ),
    (
        "field depends on itself",
        [field("switch", "a", visible_when="a")],
        [("fields[0]", "cycle", "Dependency cycle: a -> a.")],
    ),
    (
        "cycle of columns",
        [
            field(
                "detail_table",
                "t",
                columns=[
                    field("text", "x", visible_when='row.y == ""'),
                    field("text", "y", required_when='row.x == ""'),
                ],
            )
        ],
        [("fields[0].columns", "cycle", "Dependency cycle: x -> y -> x.")],
    ),
    (
        "totals of text",
        [{**TABLE, "totals": ["item", "nope"]}],
        [
            (
                "fields[0].totals[0]",
                "total_not_numeric",
                'Only number and money columns can be totalled; "item" is text.',
            ),
            ("fields[0].totals[1]", "unknown_column", 'Unknown column "nope".'),
        ],
    ),
    (
        "total must equal a text field",
        [
            field("text", "budget"),
            {**TABLE, "totals": ["amount"], "totals_must_equal": {"amount": "budget", "item": "budget"}},
        ],
        [
            (
                "fields[1].totals_must_equal.amount",
                "total_target",
                '"budget" is not a number or money field of the form.',
            ),
            ("fields[1].totals_must_equal.item", "not_totalled", 'Column "item" has no total.'),
            (
                "fields[1].totals_must_equal.item",
                "total_target",
                '"budget" is not a number or money field of the form.',
            ),
        ],
    ),
    (
        "duplicate option",
        [field("select", "a", options=options("x", "x"))],
        [("fields[0].options[1].value", "duplicate_option", 'Duplicate option value "x".')],
    ),
    (
        "default not an option",
        [field("select", "a", options=options("x"), default="y")],
        [("fields[0].default", "bad_default", "Invalid default: Not one of the allowed options.")],
    ),
    (
        "default token on the wrong type",
        [field("number", "a", default="$today")],
        [
            (
                "fields[0].default",
                "bad_default",
                "Invalid default: This default does not suit a field of this type.",
            )
        ],
    ),
    (
        "default amount",
        [field("money", "a", default="1.234")],
        [("fields[0].default", "bad_default", "Invalid default: Expected an amount, e.g. 1234.50.")],
    ),
    (
        "validation that does not apply",
        [field("number", "a", validation={"pattern": "x", "min": 5, "max": 1})],
        [
            ("fields[0].validation.min", "min_above_max", '"min" is greater than "max".'),
            ("fields[0].validation.pattern", "not_applicable", '"pattern" does not apply to a number field.'),
        ],
    ),
    (
        "bad regex",
        [field("text", "a", validation={"pattern": "(unclosed"})],
        [
            (
                "fields[0].validation.pattern",
                "bad_pattern",
                "Not a valid regular expression: missing ), unterminated subpattern at position 0",
            )
        ],
    ),
    (
        "rule on an unknown field",
        [field("text", "a")],
        [("rules[0].path", "unknown_field", 'Unknown field "b".')],
        [{**RULE, "path": "b"}],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_problem(case: tuple[Any, ...]) -> None:
    fields, expected = case[1], case[2]
    rules = case[3] if len(case) > 3 else None
    assert problems(*fields, rules=rules) == expected


def test_problem_in_chinese() -> None:
    found = problems(field("text", "a"), field("text", "b", required_when='c == "x"'), locale="zh-CN")
    assert found == [("fields[1].required_when", "unknown_name", "未知的名称“c”。")]


def test_macro_variables_and_stdlib_are_known() -> None:
    assert (
        problems(
            TABLE,
            field("switch", "big", visible_when="lines.exists(l, l.amount > 100.0) && math.abs(-1) == 1"),
            field("number", "n", visible_when='size(lines) > 0 && "lines" != ""'),
        )
        == []
    )


def test_schema_built_in_python_is_checked_for_shape() -> None:
    bad = FormSchema(
        key="x",
        version=1,
        title=LocalizedText(zh="x", en="x"),
        fields=[TextField(key="Bad Key", label=LocalizedText(zh="x", en="x"))],
    )
    [problem] = check_schema(bad)
    assert problem.path == "fields[0].key" and problem.code == "bad_shape"


def test_compile_refuses_a_schema_with_problems() -> None:
    with pytest.raises(SchemaError) as raised:
        compile_form(schema(field("computed", "a", formula="a + 1")))
    assert [p.code for p in raised.value.problems] == ["cycle"]
    assert "fields[0]: Dependency cycle: a -> a." in str(raised.value)


@pytest.mark.parametrize("path", sorted(DEMO.glob("*.form.json")), ids=lambda p: p.name)
def test_demo_forms_have_no_problems(path: Any) -> None:
    assert check_schema(demo(path.name.removesuffix(".form.json"))) == []
