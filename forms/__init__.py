"""Form schemas compiled into fast server-side validators (pure: no I/O, no clock).

    schema = load_schema(path_or_bytes)                # a stored form version
    problems = check_schema(schema)                    # design time: [] when it compiles
    form = compile_form(schema)                        # cached by (key, version)
    ctx = ValidationContext(today=..., user=CurrentUser(...), locale="zh-CN")
    result = form.validate(body, ctx, mode="submit")  # or mode="draft"; never raises
    result.errors  # [FieldError(path="budget_lines[2].amount", message="最多 2 位小数。")]
    result.data    # cleaned values; computed fields and totals recomputed

Also here: `to_json_schema(schema)` (JSON Schema 2020-12 of submitted data),
`meta_schema()` (JSON Schema of the form-schema format), `amount_in_words(amount)` (大写).
Every read and write path goes through `forms.permissions` (per-node field access:
`PermissionMask`, `mask_for_read`, `accept_edits`) and `forms.sensitive` (encryption at
rest and masking: `Keyring`, `encrypt_sensitive`, `decrypt_sensitive`, `mask_sensitive`).
Messages: `forms.i18n.translator(locale)`. Errors: `forms.errors`.
"""

from forms.check import SchemaProblem, check_schema
from forms.compiler import CompiledForm, compile_form
from forms.context import CurrentUser, ValidationContext
from forms.errors import FormsError, SchemaDecodeError, SchemaError
from forms.json_schema import to_json_schema
from forms.loading import load_schema, meta_schema
from forms.model import FormSchema
from forms.money import amount_in_words
from forms.result import FieldError, ValidationResult

__all__ = [
    "CompiledForm",
    "CurrentUser",
    "FieldError",
    "FormSchema",
    "FormsError",
    "SchemaDecodeError",
    "SchemaError",
    "SchemaProblem",
    "ValidationContext",
    "ValidationResult",
    "amount_in_words",
    "check_schema",
    "compile_form",
    "load_schema",
    "meta_schema",
    "to_json_schema",
]
