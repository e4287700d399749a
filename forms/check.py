"""Design-time check of a form schema: everything that would make it fail or mislead at run time.

`check_schema(schema)` returns every problem with its path in the schema document
(`fields[3].visible_when`, `fields[9].columns[2].key`, `rules[0].path`) and a message in the
requested language. The compiler refuses a schema with problems; the designer shows them.
"""

from __future__ import annotations

import keyword
import re

import msgspec

from forms import model as m
from forms._analysis import Analysis, Finding
from forms._values import default_of, text_max_length
from forms.expressions import CEL_RESERVED, CONTEXT_NAMES, NAMESPACES
from forms.i18n import DEFAULT_LOCALE, N_, translator

DUPLICATE_KEY = N_('Duplicate key "{key}": already used at {other}.')
RESERVED_KEY = N_('The key "{key}" is reserved.')
DUPLICATE_OPTION = N_('Duplicate option value "{value}".')
BAD_DEFAULT = N_("Invalid default: {reason}")
NOT_APPLICABLE = N_('"{setting}" does not apply to a {type} field.')
MIN_ABOVE_MAX = N_('"{low}" is greater than "{high}".')
LENGTH_LIMIT = N_("max_length may be at most {max}.")
BAD_PATTERN = N_("Not a valid regular expression: {detail}")
TOTAL_UNKNOWN_COLUMN = N_('Unknown column "{column}".')
TOTAL_NOT_NUMERIC = N_('Only number and money columns can be totalled; "{column}" is {type}.')
TOTAL_NOT_TOTALLED = N_('Column "{column}" has no total.')
TOTAL_TARGET = N_('"{key}" is not a number or money field of the form.')
UNKNOWN_FIELD = N_('Unknown field "{key}".')

_NUMERIC = (m.NumberField, m.MoneyField)
_RESERVED = CONTEXT_NAMES | NAMESPACES | CEL_RESERVED | frozenset(keyword.kwlist)
_APPLICABLE = {
    "min": (m.NumberField, m.MoneyField),
    "max": (m.NumberField, m.MoneyField),
    "min_length": (m.TextField, m.TextareaField, m.MultiSelectField, m.CheckboxField),
    "max_length": (m.TextField, m.TextareaField, m.MultiSelectField, m.CheckboxField),
    "pattern": (m.TextField, m.TextareaField),
    "pattern_message": (m.TextField, m.TextareaField),
}


class SchemaProblem(msgspec.Struct, frozen=True, kw_only=True):
    """One problem of a schema: `path` into the schema document, a stable `code`, a message."""

    path: str
    code: str
    message: str


def check_schema(schema: m.FormSchema, locale: str = DEFAULT_LOCALE) -> list[SchemaProblem]:
    """Every problem of `schema`, in document order; empty when it can be compiled."""
    return schema_findings(schema, locale)[0]


def schema_findings(schema: m.FormSchema, locale: str) -> tuple[list[SchemaProblem], Analysis | None]:
    """The problems of `schema` and, when its shape is sound, the analysis of its expressions.

    A schema built in Python skips the constraints msgspec applies when decoding (key
    patterns, at least one option, ...), so the shape is re-checked through a round trip
    first; only a schema of sound shape is analysed further.
    """
    try:
        msgspec.convert(msgspec.to_builtins(schema), m.FormSchema)
    except msgspec.ValidationError as exc:
        return [SchemaProblem(path=_msgspec_path(str(exc)), code="bad_shape", message=str(exc))], None
    analysis = Analysis(schema)
    return render_findings(find_problems(schema, analysis), locale), analysis


def _msgspec_path(message: str) -> str:
    """The path of a msgspec error ("... - at `$.fields[0].key`") without the leading "$."."""
    match = re.search(r"at `\$\.?([^`]*)`", message)
    return match.group(1) if match else ""


def render_findings(findings: list[Finding], locale: str) -> list[SchemaProblem]:
    """Findings as problems with messages in `locale`, sorted by path."""
    translate = translator(locale)
    problems = [
        SchemaProblem(
            path=f.path, code=f.code, message=translate.format(f.msgid, **_localize(f.params, translate))
        )
        for f in findings
    ]
    return sorted(problems, key=lambda problem: _path_key(problem.path))


def find_problems(schema: m.FormSchema, analysis: Analysis) -> list[Finding]:
    """All findings: the analysis' (expressions, cycles) and the static ones below."""
    findings = list(analysis.findings)
    findings += _key_findings(schema)
    for index, field in enumerate(schema.fields):
        if m.is_layout(field):
            continue
        base = f"fields[{index}]"
        findings += _field_findings(base, field)  # type: ignore[arg-type]
        if isinstance(field, m.DetailTableField):
            for column_index, column in enumerate(field.columns):
                findings += _field_findings(f"{base}.columns[{column_index}]", column)
            findings += _table_findings(base, field, analysis)
            columns = {column.key for column in field.columns}
            for rule_index, rule in enumerate(field.row_rules):
                if rule.path not in columns:
                    findings.append(
                        Finding(
                            f"{base}.row_rules[{rule_index}].path",
                            "unknown_field",
                            UNKNOWN_FIELD,
                            {"key": rule.path},
                        )
                    )
    for rule_index, rule in enumerate(schema.rules):
        if rule.path not in analysis.value_keys:
            findings.append(
                Finding(f"rules[{rule_index}].path", "unknown_field", UNKNOWN_FIELD, {"key": rule.path})
            )
    return findings


def _key_findings(schema: m.FormSchema) -> list[Finding]:
    findings: list[Finding] = []
    seen: dict[str, str] = {}
    for index, field in enumerate(schema.fields):
        path = f"fields[{index}].key"
        findings += _one_key(path, field.key, seen)
        if isinstance(field, m.DetailTableField):
            seen_columns: dict[str, str] = {}
            for column_index, column in enumerate(field.columns):
                findings += _one_key(f"fields[{index}].columns[{column_index}].key", column.key, seen_columns)
    return findings


def _one_key(path: str, key: str, seen: dict[str, str]) -> list[Finding]:
    if key in _RESERVED:
        return [Finding(path, "reserved_key", RESERVED_KEY, {"key": key})]
    if key in seen:
        return [Finding(path, "duplicate_key", DUPLICATE_KEY, {"key": key, "other": seen[key]})]
    seen[key] = path.removesuffix(".key")
    return []


def _field_findings(base: str, field: m.ValueField | m.ColumnField) -> list[Finding]:
    findings: list[Finding] = []
    kind = m.field_type(field)
    if isinstance(field, m.SelectField | m.RadioField | m.MultiSelectField | m.CheckboxField):
        values: set[str] = set()
        for option_index, option in enumerate(field.options):
            if option.value in values:
                findings.append(
                    Finding(
                        f"{base}.options[{option_index}].value",
                        "duplicate_option",
                        DUPLICATE_OPTION,
                        {"value": option.value},
                    )
                )
            values.add(option.value)
    if isinstance(field, m.AttachmentField) and field.name_pattern is not None:
        findings += _pattern_findings(f"{base}.name_pattern", field.name_pattern)
    if isinstance(field, m.ComputedField):
        return findings
    rules = field.validation
    if rules is not None:
        findings += _validation_findings(f"{base}.validation", field, rules, kind)
    if not findings:
        try:
            default_of(field)
        except ValueError as exc:
            findings.append(
                Finding(f"{base}.default", "bad_default", BAD_DEFAULT, {"reason": _Msgid(str(exc))})
            )
    return findings


def _validation_findings(
    base: str, field: m.ValueField | m.ColumnField, rules: m.Validation, kind: str
) -> list[Finding]:
    findings: list[Finding] = []
    for setting, types in _APPLICABLE.items():
        if getattr(rules, setting) is not None and not isinstance(field, types):
            findings.append(
                Finding(
                    f"{base}.{setting}", "not_applicable", NOT_APPLICABLE, {"setting": setting, "type": kind}
                )
            )
    if rules.min is not None and rules.max is not None and rules.min > rules.max:
        findings.append(Finding(f"{base}.min", "min_above_max", MIN_ABOVE_MAX, {"low": "min", "high": "max"}))
    if rules.min_length is not None and rules.max_length is not None and rules.min_length > rules.max_length:
        findings.append(
            Finding(
                f"{base}.min_length",
                "min_above_max",
                MIN_ABOVE_MAX,
                {"low": "min_length", "high": "max_length"},
            )
        )
    if rules.max_length is not None and rules.max_length > m.LENGTH_LIMIT:
        findings.append(Finding(f"{base}.max_length", "length_limit", LENGTH_LIMIT, {"max": m.LENGTH_LIMIT}))
    if (
        isinstance(field, m.TextField | m.TextareaField)
        and rules.min_length is not None
        and rules.max_length is None
        and rules.min_length > text_max_length(field)
    ):
        findings.append(
            Finding(
                f"{base}.min_length",
                "min_above_max",
                MIN_ABOVE_MAX,
                {"low": "min_length", "high": "max_length"},
            )
        )
    if rules.pattern is not None:
        findings += _pattern_findings(f"{base}.pattern", rules.pattern)
    return findings


def _pattern_findings(path: str, pattern: str) -> list[Finding]:
    try:
        re.compile(pattern)
    except re.error as exc:
        return [Finding(path, "bad_pattern", BAD_PATTERN, {"detail": str(exc)})]
    return []


def _table_findings(base: str, table: m.DetailTableField, analysis: Analysis) -> list[Finding]:
    findings: list[Finding] = []
    columns = {column.key: column for column in table.columns}
    if table.min_rows > table.max_rows:
        findings.append(
            Finding(
                f"{base}.min_rows", "min_above_max", MIN_ABOVE_MAX, {"low": "min_rows", "high": "max_rows"}
            )
        )
    for total_index, key in enumerate(table.totals):
        column = columns.get(key)
        path = f"{base}.totals[{total_index}]"
        if column is None:
            findings.append(Finding(path, "unknown_column", TOTAL_UNKNOWN_COLUMN, {"column": key}))
        elif not _is_numeric(column):
            findings.append(
                Finding(
                    path,
                    "total_not_numeric",
                    TOTAL_NOT_NUMERIC,
                    {"column": key, "type": m.field_type(column)},
                )
            )
    for column_key, target in table.totals_must_equal.items():
        path = f"{base}.totals_must_equal.{column_key}"
        if column_key not in table.totals:
            findings.append(Finding(path, "not_totalled", TOTAL_NOT_TOTALLED, {"column": column_key}))
        field = analysis.value_keys.get(target)
        if field is None or not _is_numeric(field):
            findings.append(Finding(path, "total_target", TOTAL_TARGET, {"key": target}))
    return findings


def _is_numeric(field: m.ValueField | m.ColumnField) -> bool:
    if isinstance(field, m.ComputedField):
        return field.result_type in ("number", "money")
    return isinstance(field, _NUMERIC)


class _Msgid(str):
    """A parameter that is itself a msgid, translated before it is filled in."""

    __slots__ = ()


def _localize(params: dict[str, object], translate: object) -> dict[str, object]:
    return {key: translate(value) if isinstance(value, _Msgid) else value for key, value in params.items()}  # type: ignore[operator]


_PATH_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def _path_key(path: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key for schema paths: indexes compared as numbers."""
    return tuple((0, int(index)) if index else (1, name) for index, name in _PATH_PART.findall(path))
