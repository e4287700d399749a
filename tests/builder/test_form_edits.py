"""The form designer's edits: each makes a form that still checks, or refuses with the field and reason."""

from __future__ import annotations

from typing import Any

import pytest

from builder.bundle import BundleError, check_design
from builder.form_edits import (
    FIELD_TYPES,
    EditError,
    add_field,
    find_field,
    fresh_key,
    move_field,
    options_text,
    parse_options,
    remove_field,
    update_property,
)


def _form(*fields: dict[str, Any]) -> dict[str, Any]:
    return {"key": "demo", "version": 1, "title": {"zh": "演示", "en": "Demo"}, "fields": list(fields)}


def _keys(form: dict[str, Any], table: str | None = None) -> list[str]:
    if table is None:
        return [f["key"] for f in form["fields"]]
    return [c["key"] for c in find_field(form, table)["columns"]]


def _problems(form: dict[str, Any]) -> list[str]:
    try:
        check_design("demo", form, None)
    except BundleError as exc:
        return [f"{p.path}: {p.message}" for p in exc.problems]
    return []


def _table() -> dict[str, Any]:
    form = add_field(_form(), "detail_table", 0, key="lines")
    form = add_field(form, "money", 1, key="amount", table="lines")
    return update_property(form, "lines.amount", "total", "true")


@pytest.mark.parametrize("kind", FIELD_TYPES)
def test_every_palette_type_adds_a_field_that_checks(kind: str) -> None:
    form = add_field(_form(), kind, 0, key=fresh_key(_form(), kind))
    assert _keys(form) == [f"{kind}_1"]
    assert _problems(form) == []


def test_add_places_the_field_at_the_index_and_leaves_the_argument_alone() -> None:
    start = _form()
    form = add_field(start, "text", 0, key="a")
    form = add_field(form, "text", 0, key="b")
    form = add_field(form, "text", 1, key="c")
    form = add_field(form, "text", 99, key="d")
    assert _keys(form) == ["b", "c", "a", "d"]
    assert start["fields"] == []


def test_fresh_keys_do_not_repeat_and_columns_count() -> None:
    form = _table()
    assert fresh_key(form, "money") == "money_1"
    form = add_field(form, "money", 0, key=fresh_key(form, "money"))
    assert fresh_key(form, "money") == "money_2"
    assert fresh_key(form, "text") == "text_1"


def test_columns_go_into_the_table_with_a_total() -> None:
    form = _table()
    assert _keys(form, "lines") == ["lines_item", "amount"]
    assert find_field(form, "lines")["totals"] == ["amount"]
    assert _problems(form) == []


@pytest.mark.parametrize(
    ("edit", "ref", "reason"),
    [
        (lambda f: add_field(f, "text", 0, key="lines"), "lines", "duplicate_key"),
        (lambda f: add_field(f, "text", 0, key="Bad-Key"), "Bad-Key", "bad_key"),
        (lambda f: add_field(f, "chart", 0, key="x"), "", "unknown_type"),
        (lambda f: add_field(f, "section", 0, key="s", table="lines"), "lines", "not_a_column"),
        (lambda f: add_field(f, "detail_table", 0, key="t", table="lines"), "lines", "not_a_column"),
        (lambda f: add_field(f, "text", 0, key="x", table="nope"), "nope", "not_found"),
        (lambda f: move_field(f, "ghost", 0), "ghost", "not_found"),
        (lambda f: remove_field(f, "lines.ghost"), "lines.ghost", "not_found"),
        (lambda f: update_property(f, "lines", "currency", "CNY"), "lines", "bad_property"),
        (lambda f: update_property(f, "lines.amount", "currency", "rmb"), "lines.amount", "bad_value"),
        (lambda f: update_property(f, "lines.amount", "validation.min", "abc"), "lines.amount", "bad_value"),
        (lambda f: update_property(f, "lines.amount", "key", "lines_item"), "lines.amount", "duplicate_key"),
        (lambda f: update_property(f, "lines", "max_rows", "0"), "lines", "bad_value"),
        (lambda f: update_property(f, "lines", "max_rows", "1.5"), "lines", "bad_value"),
    ],
)
def test_refused_edits_name_the_field_and_the_reason(edit: Any, ref: str, reason: str) -> None:
    with pytest.raises(EditError) as caught:
        edit(_table())
    assert (caught.value.ref, caught.value.reason) == (ref, reason)


def test_move_reorders_and_moves_in_and_out_of_a_table() -> None:
    form = add_field(_table(), "text", 1, key="note")
    form = add_field(form, "section", 0, key="basics")
    assert _keys(form) == ["basics", "lines", "note"]
    form = move_field(form, "note", 1)
    assert _keys(form) == ["basics", "note", "lines"]
    form = move_field(form, "note", 0, table="lines")
    assert _keys(form) == ["basics", "lines"] and _keys(form, "lines") == ["note", "lines_item", "amount"]
    form = move_field(form, "lines.amount", 1)
    assert _keys(form) == ["basics", "amount", "lines"]
    assert "totals" not in find_field(form, "lines")
    assert _problems(form) == []


def test_a_table_keeps_its_last_column() -> None:
    form = add_field(_form(), "detail_table", 0, key="lines")
    with pytest.raises(EditError, match="at least one column"):
        remove_field(form, "lines.lines_item")
    with pytest.raises(EditError, match="at least one column"):
        move_field(form, "lines.lines_item", 0)


def test_remove_drops_the_field_and_its_total() -> None:
    form = remove_field(_table(), "lines.amount")
    assert _keys(form, "lines") == ["lines_item"]
    assert "totals" not in find_field(form, "lines")
    assert _keys(remove_field(form, "lines")) == []


def test_properties_set_labels_required_validation_conditions_and_limits() -> None:
    form = add_field(_form(), "money", 0, key="budget")
    form = add_field(form, "attachment", 1, key="files")
    form = add_field(form, "text", 2, key="reason")
    form = update_property(form, "budget", "label.zh", " 预算金额 ")
    form = update_property(form, "budget", "label.en", "Budget")
    form = update_property(form, "budget", "required", "true")
    form = update_property(form, "budget", "validation.min", "0")
    form = update_property(form, "budget", "validation.max", "1000000.5")
    form = update_property(form, "budget", "sensitive", "on")
    form = update_property(form, "reason", "visible_when", "budget > 50000")
    form = update_property(form, "files", "max_size_mb", "20")
    form = update_property(form, "files", "allowed_types", "pdf, .DOCX jpg")
    form = update_property(form, "files", "max_count", "5")
    budget, files, reason = form["fields"]
    assert budget["label"] == {"zh": "预算金额", "en": "Budget"}
    assert budget["required"] is True and budget["sensitive"] is True
    assert budget["validation"] == {"min": 0, "max": 1000000.5}
    assert reason["visible_when"] == "budget > 50000"
    assert files["max_size"] == 20 * 1024 * 1024 and files["allowed_types"] == ["pdf", "docx", "jpg"]
    assert files["max_count"] == 5
    assert _problems(form) == []
    cleared = update_property(form, "budget", "required", None)
    cleared = update_property(cleared, "budget", "validation.min", "")
    cleared = update_property(cleared, "budget", "validation.max", "")
    cleared = update_property(cleared, "reason", "visible_when", " ")
    assert cleared["fields"][0]["required"] is False and "validation" not in cleared["fields"][0]
    assert "visible_when" not in cleared["fields"][2]


def test_a_condition_naming_a_missing_field_is_a_problem_of_the_draft_not_a_refusal() -> None:
    form = update_property(add_field(_form(), "text", 0, key="reason"), "reason", "visible_when", "ghost > 1")
    assert any(p.startswith("form.fields[0].visible_when") for p in _problems(form))


def test_renaming_a_totalled_column_keeps_its_total() -> None:
    form = update_property(_table(), "lines.amount", "key", "cost")
    assert _keys(form, "lines") == ["lines_item", "cost"] and find_field(form, "lines")["totals"] == ["cost"]


def test_options_read_back_what_they_write() -> None:
    options = parse_options("kind", "venue=场地|Venue\n\nmaterials=物料\n宣传")
    assert [o["value"] for o in options] == ["venue", "materials", "option_3"]
    field = {"options": options}
    assert parse_options("kind", options_text(field)) == options
    with pytest.raises(EditError, match="used twice"):
        parse_options("kind", "a=甲\na=乙")
    with pytest.raises(EditError, match="at least one option"):
        parse_options("kind", "  \n")
