"""The template bundle: one JSON file with a template's form, flow and metadata, to move it between systems.

    data = encode_bundle(bundle)          # bytes, pretty-printed JSON
    bundle = decode_bundle(data)          # TemplateBundle; BundleError lists every problem
    bundle_json_schema()                  # the JSON Schema of the format, for other tools

A bundle is checked the way publishing checks a template: the form with `check_schema`, the
flow with `validate_graph` against the form's fields, so an imported bundle that decodes is
ready to become a draft. Pure: bytes in, shapes out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta

from forms import check_schema, load_schema
from forms import model as m
from forms.errors import SchemaError
from runtime.flow import FlowGraph, GraphProblem, decode_graph, validate_graph
from runtime.flow.errors import GraphDecodeError

BUNDLE_FORMAT: Final = "formflow-template"
BUNDLE_VERSION: Final = 1
MAX_BYTES = 5_000_000


class BundleText(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    zh: Annotated[str, Meta(min_length=1, max_length=100)]
    en: Annotated[str, Meta(max_length=100)] = ""


class BundleDescription(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    zh: Annotated[str, Meta(max_length=2_000)] = ""
    en: Annotated[str, Meta(max_length=2_000)] = ""


class TemplateBundle(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A template as a file: `form` is a form schema, `flow` a flow graph (or none)."""

    format: Literal["formflow-template"] = BUNDLE_FORMAT
    format_version: Literal[1] = BUNDLE_VERSION
    key: Annotated[str, Meta(pattern=m.FORM_KEY_PATTERN)]
    category: Annotated[str, Meta(min_length=1, max_length=64)] = "general"
    name: BundleText
    description: BundleDescription = BundleDescription()
    version: Annotated[int, Meta(ge=1)] = 1
    change_note: Annotated[str, Meta(max_length=2_000)] = ""
    form: dict[str, Any]
    flow: dict[str, Any] | None = None


class BundleProblem(msgspec.Struct, frozen=True, kw_only=True):
    """`path` is where in the bundle ("form.fields[3].label", "flow:leader"), `message` why."""

    path: str
    message: str


class BundleError(ValueError):
    def __init__(self, problems: list[BundleProblem]) -> None:
        self.problems = problems
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{first.path}: {first.message}{more}")


class CheckedBundle(msgspec.Struct, frozen=True, kw_only=True):
    bundle: TemplateBundle
    form: m.FormSchema
    flow: FlowGraph | None


def encode_bundle(bundle: TemplateBundle) -> bytes:
    return msgspec.json.format(msgspec.json.encode(bundle), indent=2)


FlowCheck = Callable[[FlowGraph, m.FormSchema], list[GraphProblem]]


def decode_bundle(
    data: bytes | str, locale: str = "zh-CN", *, flow_checks: Sequence[FlowCheck] = ()
) -> CheckedBundle:
    """A bundle that decodes and whose form and flow check cleanly, or `BundleError`.

    `flow_checks` add checks of the caller's (the web layer passes the plugin steps' check).
    """
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_BYTES:
        raise BundleError([BundleProblem(path="", message="the file is larger than 5 MB")])
    try:
        bundle = msgspec.json.decode(raw, type=TemplateBundle)
    except msgspec.ValidationError as exc:
        raise BundleError([BundleProblem(path=_where(str(exc)), message=str(exc))]) from exc
    except msgspec.DecodeError as exc:
        raise BundleError([BundleProblem(path="", message=f"not a JSON template bundle: {exc}")]) from exc
    form, flow = check_design(bundle.key, bundle.form, bundle.flow, locale, flow_checks=flow_checks)
    return CheckedBundle(bundle=bundle, form=form, flow=flow)


def check_design(
    key: str,
    form_data: dict[str, Any],
    flow_data: dict[str, Any] | None,
    locale: str = "zh-CN",
    *,
    flow_checks: Sequence[FlowCheck] = (),
) -> tuple[m.FormSchema, FlowGraph | None]:
    """The form and flow of a design, checked as publishing checks them, or `BundleError`."""
    problems: list[BundleProblem] = []
    form: m.FormSchema | None = None
    try:
        form = load_schema(msgspec.json.encode({**form_data, "key": key}))
    except SchemaError as exc:
        problems.append(BundleProblem(path="form", message=str(exc)))
    if form is not None:
        problems.extend(
            BundleProblem(path=f"form.{problem.path}" if problem.path else "form", message=problem.message)
            for problem in check_schema(form, locale)
        )
    flow: FlowGraph | None = None
    if flow_data is not None:
        try:
            flow = decode_graph(msgspec.json.encode(flow_data))
        except GraphDecodeError as exc:
            problems.append(BundleProblem(path="flow", message=str(exc)))
    if flow is not None and form is not None:
        problems.extend(_graph_problem(problem) for problem in validate_graph(flow, _field_keys(form)))
        for check in flow_checks:
            problems.extend(_graph_problem(problem) for problem in check(flow, form))
    if problems or form is None:
        raise BundleError(problems or [BundleProblem(path="form", message="no form")])
    return form, flow


def bundle_json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of the bundle format; `form` and `flow` are described by their own."""
    schema: dict[str, Any] = msgspec.json.schema(TemplateBundle)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Formflow template bundle"
    return schema


def _field_keys(form: m.FormSchema) -> frozenset[str]:
    keys: set[str] = set()
    for field in m.value_fields(form):
        keys.add(field.key)
        if isinstance(field, m.DetailTableField):
            keys.update(f"{field.key}.{column.key}" for column in field.columns)
    return frozenset(keys)


def _graph_problem(problem: GraphProblem) -> BundleProblem:
    return BundleProblem(
        path=f"flow:{problem.node_id}" if problem.node_id else "flow", message=problem.message
    )


def _where(message: str) -> str:
    """msgspec's "... - at `$.form.key`" as "form.key"."""
    _, _, at = message.rpartition(" - at `$")
    return at.rstrip("`").lstrip(".") if at else ""
