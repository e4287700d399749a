"""Form schemas compiled into fast server-side validators (pure: no I/O, no clock).

    schema = load_schema(path_or_bytes)
    problems = check_schema(schema)                    # design time
    form = compile_form(schema)                        # cached by (key, version)
    result = form.validate(body, ValidationContext(today=..., user=..., locale="zh-CN"))
    result.errors  # [FieldError(path="budget_lines[2].amount", message="...")]
    result.data    # cleaned values; computed fields and totals recomputed

Reading and editing go through `forms.permissions` (per-node field access) and
`forms.sensitive` (encryption at rest, masking).
"""

from forms.check import SchemaProblem, check_schema
from forms.compiler import CompiledForm, compile_form
from forms.context import CurrentUser, ValidationContext
from forms.errors import FormsError, SchemaDecodeError, SchemaError
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
]
