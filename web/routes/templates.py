"""Templates: the process center, the rendered form with live conditions, and the template API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath, QueryParameter
from litestar.response import Template

from forms import meta_schema
from forms.json_schema import to_json_schema
from storage.access import Permission
from storage.templates import PublishedVersion, TemplateSummary, list_templates
from web.auth.guards import needs
from web.context import AnyRequest, principal_of
from web.form_pages import (
    compiled,
    directory,
    evaluation_scope,
    posted_data,
    published_version,
    shown_values,
    validation_context,
    visibility,
)
from web.i18n import current_locale

TemplateKey = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]
Search = Annotated[str, QueryParameter(max_length=100)]
MAX_FORM_BYTES = 2 * 1024 * 1024
CHANGED_HEADER = "X-Formflow-Changed"


class TemplateOut(msgspec.Struct, kw_only=True):
    key: str
    category: str
    name: str
    description: str
    version: int | None


class TemplateDetail(msgspec.Struct, kw_only=True):
    key: str
    version: int
    form: dict[str, Any]
    flow: dict[str, Any] | None
    change_note: str
    effective_from: datetime


class FieldErrorOut(msgspec.Struct, kw_only=True):
    path: str
    message: str


class ValidationOut(msgspec.Struct, kw_only=True):
    errors: list[FieldErrorOut]
    warnings: list[FieldErrorOut] = []


def _summary(t: TemplateSummary) -> TemplateOut:
    zh = current_locale() == "zh-CN"
    return TemplateOut(
        key=t.key,
        category=t.category,
        name=t.name_zh if zh else t.name_en,
        description=t.description_zh if zh else t.description_en,
        version=t.version,
    )


async def _published(key: str) -> PublishedVersion:
    return await published_version(key, datetime.now(UTC))


# ---------------------------------------------------------------------------------------- API


@get("/api/v1/templates", opt=needs(Permission.SIGNED_IN))
async def api_list_templates(q: Search = "") -> list[TemplateOut]:
    """Templates with a version in effect, by category."""
    return [_summary(t) for t in await list_templates(datetime.now(UTC), q.strip())]


@get("/api/v1/templates/{key:str}", opt=needs(Permission.SIGNED_IN))
async def api_get_template(key: FromPath[str]) -> TemplateDetail:
    """The version in effect: its form schema and flow graph as JSON."""
    v = await _published(key)
    return TemplateDetail(
        key=v.key,
        version=v.version,
        form=v.form,
        flow=v.flow,
        change_note=v.change_note,
        effective_from=v.effective_from,
    )


@get("/api/v1/templates/{key:str}/json-schema", opt=needs(Permission.SIGNED_IN))
async def api_template_json_schema(key: FromPath[str]) -> Response[Any]:
    """The submitted data of the version in effect, as a JSON Schema 2020-12 document."""
    schema, _ = compiled(await _published(key))
    return Response(to_json_schema(schema), media_type="application/schema+json")


@post("/api/v1/templates/{key:str}/validate", opt=needs(Permission.PROCESS_START), status_code=200)
async def api_validate(request: AnyRequest, key: FromPath[str]) -> ValidationOut:
    """Validate form data (the body) against the version in effect; every error at once."""
    _, form = compiled(await _published(key))
    body = await request.body()
    result = form.validate(body, validation_context(principal_of(request)))
    return ValidationOut(
        errors=[FieldErrorOut(path=e.path, message=e.message) for e in result.errors],
        warnings=[FieldErrorOut(path=e.path, message=e.message) for e in result.warnings],
    )


@get("/api/v1/form-schema", opt=needs(Permission.PUBLIC), media_type="application/schema+json")
async def api_meta_schema() -> dict[str, Any]:
    """The JSON Schema of the form-schema format itself, for checking schema files with any tool."""
    return meta_schema()


# -------------------------------------------------------------------------------------- pages


@get("/process-center", opt=needs(Permission.PROCESS_START))
async def process_center(request: AnyRequest, q: Search = "") -> Template:
    templates = [_summary(t) for t in await list_templates(datetime.now(UTC), q.strip())]
    groups: dict[str, list[TemplateOut]] = {}
    for t in templates:
        groups.setdefault(t.category, []).append(t)
    name = "templates/_list.html" if request.headers.get("hx-request") else "templates/center.html"
    return Template(name, context={"section": "process-center", "groups": groups, "q": q})


async def _form_page(request: AnyRequest, key: str, posted: dict[str, Any] | None, check: bool) -> Template:
    return await form_template(request, await _published(key), posted, check=check)


async def form_template(
    request: AnyRequest,
    version: PublishedVersion,
    posted: dict[str, Any] | None,
    *,
    check: bool = False,
    errors: dict[str, list[str]] | None = None,
    extra: dict[str, Any] | None = None,
    status_code: int | None = None,
) -> Template:
    """The form of `version` filled with `posted` (or its defaults), errors beside the fields.

    `errors` replaces the page's own validation errors (those a service command reported);
    `extra` adds to the context (the request being edited, a message at the top)."""
    schema, form = compiled(version)
    ctx = validation_context(principal_of(request))
    result = form.validate(posted or {}, ctx, mode="submit" if check else "draft")
    values = shown_values(schema, posted, result) if posted is not None else result.data
    if errors is None:
        errors = result.error_dict() if (check or posted is not None) else {}
    if status_code is None:
        status_code = 422 if check and not result.ok else 200
    return Template(
        "templates/form.html",
        context={
            "section": "process-center",
            "version": version,
            "schema": schema,
            "values": values,
            "errors": errors,
            "warnings": result.warnings if check else [],
            "checked": check and result.ok,
            "state": visibility(result),
            "access": {},
            "readonly": False,
            "directory": await directory(),
            "instance": None,
            **(extra or {}),
        },
        status_code=status_code,
    )


@get("/process-center/{key:str}", opt=needs(Permission.PROCESS_START))
async def form_page(request: AnyRequest, key: FromPath[str]) -> Template:
    """A new request's form, with defaults filled in."""
    return await _form_page(request, key, None, check=False)


async def _posted(request: Request[Any, Any, Any], key: str) -> tuple[PublishedVersion, dict[str, Any]]:
    version = await _published(key)
    return version, await posted_data(request, version)


@post("/process-center/{key:str}/check", opt=needs(Permission.PROCESS_START), status_code=200)
async def check_form(request: AnyRequest, key: FromPath[str]) -> Template:
    """Full validation: the form again, with every error beside its field."""
    _, posted = await _posted(request, key)
    return await _form_page(request, key, posted, check=True)


@post("/process-center/{key:str}/evaluate", opt=needs(Permission.PROCESS_START), status_code=200)
async def evaluate_form(request: AnyRequest, key: FromPath[str]) -> Template:
    """After a change: recomputed values, totals, amounts in words and which fields show.

    The page names the input that changed (`X-Formflow-Changed`); the answer then holds only
    what that change can alter, so one cell of a long detail table answers a few elements."""
    version, posted = await _posted(request, key)
    schema, form = compiled(version)
    result = form.validate(posted, validation_context(principal_of(request)), mode="draft")
    scope = evaluation_scope(schema, request.headers.get(CHANGED_HEADER, "")[:200])
    return Template(
        "templates/_evaluate.html",
        context={
            "schema": schema,
            "values": shown_values(schema, posted, result),
            "hidden": set(result.hidden),
            "words": scope.words,
            "rows": scope.rows,
        },
    )


ROUTES = [
    api_list_templates,
    api_get_template,
    api_template_json_schema,
    api_validate,
    api_meta_schema,
    process_center,
    form_page,
    check_form,
    evaluate_form,
]
