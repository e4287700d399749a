"""The form-schema format: what the designer produces and what is stored as JSON.

A `FormSchema` is a versioned list of fields. Each field is a tagged union member chosen by
its `"type"` (`"text"`, `"money"`, `"detail_table"`, ...). Every shape here is a frozen,
keyword-only msgspec Struct that refuses unknown keys, so a typo in a stored schema is an
error, not a silently ignored setting.

Three families of fields:

- input fields carry a value the user enters (text ... related_instance, detail_table);
- `computed` carries a value the server derives from a CEL formula;
- layout fields (`section`, `description`) carry no value.

Conditions (`visible_when`, `required_when`), formulas and rules are CEL expressions over
the field keys, plus `today`, `user` (`user.id`, `user.name`, `user.department_id`), `totals`
(`totals.<table>.<column>`) and, inside a detail-table row, `row` (`row.<column>`).
Dates reach CEL as timestamps (midnight UTC), money as a double: use CEL for conditions
and estimates, and `totals_must_equal` for exact money equality.

`schema_version` is the version of this *format*; `forms.loading` upgrades older stored
shapes. `version` is the version of one form (template) and changes on every publish.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

FORMAT_VERSION = 1
"""The `schema_version` this code writes; `forms.loading` upgrades older ones to it."""

KEY_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
FORM_KEY_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"
MIB = 1024 * 1024

TEXT_MAX_LENGTH = 2_000
"""Length cap of a `text` value when the schema sets none (characters)."""
TEXTAREA_MAX_LENGTH = 20_000
"""Length cap of a `textarea` value when the schema sets none (characters)."""
LENGTH_LIMIT = 200_000
"""Largest `max_length` a schema may set on any text (characters)."""
MAX_ROWS_DEFAULT = 500
MAX_ROWS_LIMIT = 5_000
ID_MAX_LENGTH = 64
"""Length cap of ids stored by person, department and related-instance fields."""

Key = Annotated[str, Meta(pattern=KEY_PATTERN, description="Stable field key, used in data and CEL.")]
Expression = Annotated[str, Meta(min_length=1, max_length=4_000, description="A CEL expression.")]
DefaultValue = str | int | float | bool | list[str] | dict[str, str] | None
DEFAULT_FILE_TYPES = ("pdf", "doc", "docx", "xls", "xlsx", "jpg", "png")
DEFAULT_TOKENS = ("$current_user", "$current_department", "$today")
"""Default values resolved per submission from the validation context."""


class Shape(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every stored shape: immutable, unknown keys refused.

    msgspec inherits `frozen` and `forbid_unknown_fields`, but applies `kw_only` per class;
    subclasses repeat `frozen=True, kw_only=True` so that type checkers see the same.
    """


class LocalizedText(Shape, frozen=True, kw_only=True):
    """A text in both product languages."""

    zh: str
    en: str

    def get(self, locale: str) -> str:
        """The text for `locale`: Chinese for any "zh*" tag, English otherwise."""
        return self.zh if locale.replace("_", "-").lower().startswith("zh") else self.en


class Option(Shape, frozen=True, kw_only=True):
    """One choice of a select, radio, multi-select or checkbox field."""

    value: Annotated[str, Meta(min_length=1, max_length=64)]
    label: LocalizedText


class Validation(Shape, frozen=True, kw_only=True):
    """Declarative limits. Which apply depends on the field type (see `forms.check`).

    `min`/`max` bound numbers and money (inclusive); `min_length`/`max_length` bound text in
    characters and multi-choice fields in number of choices; `pattern` is a regular
    expression searched in text (anchor it with ^...$ to match the whole value).
    """

    min: int | float | None = None
    max: int | float | None = None
    min_length: Annotated[int, Meta(ge=0)] | None = None
    max_length: Annotated[int, Meta(ge=1)] | None = None
    pattern: Annotated[str, Meta(min_length=1, max_length=1_000)] | None = None
    pattern_message: LocalizedText | None = None


class Rule(Shape, frozen=True, kw_only=True):
    """A cross-field assertion: when `when` holds (or is absent), `check` must be true.

    On a form, `path` is a field key; on a detail table (`row_rules`), a column key and the
    expressions may use `row`. A rule whose expression cannot be evaluated (a value is
    missing or of another type) is skipped: required checks report missing values.
    """

    check: Expression
    when: Expression | None = None
    path: Key
    message: LocalizedText


class _FieldBase(Shape, tag_field="type", frozen=True, kw_only=True):
    """Settings shared by every field that carries a value."""

    key: Key
    label: LocalizedText
    help: LocalizedText | None = None
    visible_when: Expression | None = None
    hidden_value_policy: Literal["clear", "keep"] = "clear"
    sensitive: bool = False
    sensitive_roles: list[str] = []


class _InputBase(_FieldBase, frozen=True, kw_only=True):
    """Settings shared by every field the user fills in."""

    placeholder: LocalizedText | None = None
    required: bool = False
    required_when: Expression | None = None
    default: DefaultValue = None
    validation: Validation | None = None


class TextField(_InputBase, tag="text", frozen=True, kw_only=True):
    """One line of text (at most `TEXT_MAX_LENGTH` characters unless `validation.max_length`)."""


class TextareaField(_InputBase, tag="textarea", frozen=True, kw_only=True):
    """Multi-line text (at most `TEXTAREA_MAX_LENGTH` characters unless set)."""


class NumberField(_InputBase, tag="number", frozen=True, kw_only=True):
    """A JSON number; `integer` refuses fractions. Magnitude is capped at 10^15."""

    integer: bool = False


class MoneyField(_InputBase, tag="money", frozen=True, kw_only=True):
    """An exact amount (Decimal, at most 2 decimal places), sent as a JSON number or string."""

    currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}$")] = "CNY"
    show_in_words: bool = True


class DateField(_InputBase, tag="date", frozen=True, kw_only=True):
    """A calendar date, "YYYY-MM-DD"."""


class DateTimeField(_InputBase, tag="datetime", frozen=True, kw_only=True):
    """An instant with its UTC offset (RFC 3339), e.g. "2024-07-01T09:30:00+08:00"."""


class DateRangeField(_InputBase, tag="date_range", frozen=True, kw_only=True):
    """Two dates `{"start": ..., "end": ...}`; the end may not precede the start."""


class SelectField(_InputBase, tag="select", frozen=True, kw_only=True):
    """One value out of `options` (a drop-down)."""

    options: Annotated[list[Option], Meta(min_length=1)]


class RadioField(_InputBase, tag="radio", frozen=True, kw_only=True):
    """One value out of `options` (radio buttons)."""

    options: Annotated[list[Option], Meta(min_length=1)]


class MultiSelectField(_InputBase, tag="multi_select", frozen=True, kw_only=True):
    """Several distinct values out of `options` (a multi-select drop-down)."""

    options: Annotated[list[Option], Meta(min_length=1)]


class CheckboxField(_InputBase, tag="checkbox", frozen=True, kw_only=True):
    """Several distinct values out of `options` (a group of check boxes)."""

    options: Annotated[list[Option], Meta(min_length=1)]


class SwitchField(_InputBase, tag="switch", frozen=True, kw_only=True):
    """true or false."""


class PersonField(_InputBase, tag="person", frozen=True, kw_only=True):
    """A user id (or a list of ids when `multiple`)."""

    multiple: bool = False


class DepartmentField(_InputBase, tag="department", frozen=True, kw_only=True):
    """A department id (or a list of ids when `multiple`)."""

    multiple: bool = False


class RelatedInstanceField(_InputBase, tag="related_instance", frozen=True, kw_only=True):
    """A link to another approved instance (关联审批单), optionally of the given templates."""

    template_keys: list[str] = []
    multiple: bool = False


class AttachmentField(_InputBase, tag="attachment", frozen=True, kw_only=True):
    """Uploaded files, stored as `[{"id", "name", "size", "content_type"}]`.

    `max_size` is per file, in bytes; `allowed_types` are file-name extensions, lower case.
    A file name that does not match `name_pattern` is a warning (policy "warn") or an
    error ("refuse").
    """

    max_size: Annotated[int, Meta(ge=1, le=2 * 1024 * MIB)] = 10 * MIB
    allowed_types: list[Annotated[str, Meta(pattern=r"^[a-z0-9]{1,10}$")]] = msgspec.field(
        default_factory=lambda: list(DEFAULT_FILE_TYPES)
    )
    max_count: Annotated[int, Meta(ge=1, le=100)] = 10
    name_pattern: Annotated[str, Meta(min_length=1, max_length=1_000)] | None = None
    name_pattern_policy: Literal["warn", "refuse"] = "warn"
    name_pattern_message: LocalizedText | None = None


class ComputedField(_FieldBase, tag="computed", frozen=True, kw_only=True):
    """A value derived on the server from a CEL `formula`; submitted values are ignored.

    A "money" result is rounded half-up to cents; a result of another type than
    `result_type` (or a formula that cannot be evaluated) leaves the value empty.
    """

    formula: Expression
    result_type: Literal["number", "money", "text"] = "number"


ColumnField = (
    TextField
    | TextareaField
    | NumberField
    | MoneyField
    | DateField
    | DateTimeField
    | DateRangeField
    | SelectField
    | RadioField
    | MultiSelectField
    | CheckboxField
    | SwitchField
    | PersonField
    | DepartmentField
    | RelatedInstanceField
    | AttachmentField
    | ComputedField
)
"""The field types allowed as detail-table columns (no nested tables, no layout)."""


class DetailTableField(_InputBase, tag="detail_table", frozen=True, kw_only=True):
    """Repeating rows (明细) of `columns`.

    `totals` names number or money columns summed on the server (exactly, for money) into
    `data["totals"][<table key>][<column>]`. `totals_must_equal` maps a totalled column to
    a top-level field that its total must equal, e.g. `{"amount": "budget"}`. `max_rows`
    is checked before any row is looked at.
    """

    columns: Annotated[list[ColumnField], Meta(min_length=1, max_length=100)]
    min_rows: Annotated[int, Meta(ge=0)] = 0
    max_rows: Annotated[int, Meta(ge=1, le=MAX_ROWS_LIMIT)] = MAX_ROWS_DEFAULT
    totals: list[Key] = []
    totals_must_equal: dict[str, str] = {}
    row_rules: list[Rule] = []


class SectionField(Shape, tag_field="type", tag="section", frozen=True, kw_only=True):
    """A heading that groups the fields after it; carries no value."""

    key: Key
    label: LocalizedText


class DescriptionField(Shape, tag_field="type", tag="description", frozen=True, kw_only=True):
    """A paragraph of explanatory text; carries no value."""

    key: Key
    text: LocalizedText


Field = (
    TextField
    | TextareaField
    | NumberField
    | MoneyField
    | DateField
    | DateTimeField
    | DateRangeField
    | SelectField
    | RadioField
    | MultiSelectField
    | CheckboxField
    | SwitchField
    | PersonField
    | DepartmentField
    | RelatedInstanceField
    | AttachmentField
    | DetailTableField
    | ComputedField
    | SectionField
    | DescriptionField
)

InputField = (
    TextField
    | TextareaField
    | NumberField
    | MoneyField
    | DateField
    | DateTimeField
    | DateRangeField
    | SelectField
    | RadioField
    | MultiSelectField
    | CheckboxField
    | SwitchField
    | PersonField
    | DepartmentField
    | RelatedInstanceField
    | AttachmentField
    | DetailTableField
)
ValueField = InputField | ComputedField
LayoutField = SectionField | DescriptionField
ChoiceField = SelectField | RadioField | MultiSelectField | CheckboxField


class FormSchema(Shape, frozen=True, kw_only=True):
    """One version of a form: its fields in display order and its cross-field rules."""

    key: Annotated[str, Meta(pattern=FORM_KEY_PATTERN)]
    version: Annotated[int, Meta(ge=1)]
    title: LocalizedText
    fields: Annotated[list[Field], Meta(max_length=2_000)]
    rules: list[Rule] = []
    description: LocalizedText | None = None
    schema_version: Annotated[int, Meta(ge=1)] = FORMAT_VERSION


def is_layout(field: Field) -> bool:
    """True for fields that carry no value (section, description)."""
    return isinstance(field, SectionField | DescriptionField)


def value_fields(schema: FormSchema) -> list[ValueField]:
    """The fields of `schema` that carry a value, in display order."""
    return [field for field in schema.fields if not isinstance(field, SectionField | DescriptionField)]


def field_type(field: Field | ColumnField) -> str:
    """The `"type"` tag of a field, e.g. "money"."""
    return str(field.__struct_config__.tag)
