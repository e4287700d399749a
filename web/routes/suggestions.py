"""Optimization suggestions (流程优化建议): the register, filing one, admins' decisions, the monthly stars.

Pages and a JSON API over `storage.suggestions`. Anyone signed in files and reads suggestions;
process admins accept, reject (with a reason) and mark them done with the implementing version.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import Response, get, post
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import JSONBody, QueryParameter
from litestar.response import Redirect, Template

from storage import suggestions
from storage.access import Permission
from storage.suggestions import Decision, SuggestionError, SuggestionIn, SuggestionNotFound
from storage.tables import ProcessTemplate, TemplateVersion
from web.auth.guards import needs
from web.context import AnyRequest, RowId, actor_of, principal_of
from web.errors import refusal
from web.i18n import _

PageNo = Annotated[int, QueryParameter(ge=1, le=100_000)]
Filter = Annotated[str, QueryParameter(max_length=64)]
Month = Annotated[str | None, QueryParameter(pattern=r"^\d{4}-\d{2}$", required=False)]


def _status_labels() -> dict[str, str]:
    return {"open": _("Open"), "accepted": _("Accepted"), "rejected": _("Rejected"), "done": _("Implemented")}


async def _templates() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await ProcessTemplate.select(
        ProcessTemplate.key, ProcessTemplate.name_zh, ProcessTemplate.name_en
    ).order_by(ProcessTemplate.key)
    return rows


async def _steps(key: str) -> list[tuple[str, str]]:
    row = await (
        TemplateVersion.select(TemplateVersion.flow)
        .where(TemplateVersion.template.key == key)
        .order_by(TemplateVersion.version, ascending=False)
        .first()
        .output(load_json=True)
    )
    nodes = ((row or {}).get("flow") or {}).get("nodes", [])
    return [
        (n["id"], n.get("title") or n["id"]) for n in nodes if n.get("type") not in ("start", "end", "join")
    ]


def _month(value: str | None) -> tuple[int, int]:
    if value:
        year, month = (int(part) for part in value.split("-"))
        if 1 <= month <= 12:
            return year, month
        raise ValidationException(detail="month: use YYYY-MM with a month from 01 to 12")
    today = dt.datetime.now(dt.UTC)
    return today.year, today.month


@get("/suggestions", opt=needs(Permission.SIGNED_IN))
async def suggestions_page(
    request: AnyRequest, status: Filter = "", template: Filter = "", page: PageNo = 1, month: Month = None
) -> Template:
    if status and status not in suggestions.STATUSES:
        raise ValidationException(detail=f"status: one of {', '.join(suggestions.STATUSES)}")
    items, total = await suggestions.list_suggestions(status=status, template=template, page=page)
    year, number = _month(month)
    return Template(
        "suggestions/index.html",
        context={
            "section": "suggestions",
            "suggestion_items": items,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // suggestions.PAGE_SIZE)),
            "status": status,
            "template": template,
            "templates": await _templates(),
            "labels": _status_labels(),
            "stars": await suggestions.monthly_ranking(year, number),
            "month": f"{year:04d}-{number:02d}",
            "can_decide": principal_of(request).can(Permission.TEMPLATE_MANAGE),
            "moves": suggestions.MOVES,
        },
    )


@get("/suggestions/steps", opt=needs(Permission.SIGNED_IN))
async def suggestion_steps(template: Filter = "") -> Template:
    """The steps of a template, as options for the form's step picker."""
    return Template("suggestions/_steps.html", context={"steps": await _steps(template) if template else []})


@post("/suggestions", opt=needs(Permission.SIGNED_IN), status_code=200)
async def file_from_page(request: AnyRequest) -> Template | Response[Any]:
    form = await request.form()
    try:
        data = msgspec.convert({k: str(v) for k, v in form.items() if k != "_csrf_token"}, SuggestionIn)
        await suggestions.file_suggestion(
            data, principal_of(request).id, actor_of(request), dt.datetime.now(dt.UTC)
        )
    except msgspec.ValidationError as exc:
        return refusal(422, _("Fill in the problem and the suggestion ({detail}).").format(detail=str(exc)))
    except SuggestionError as exc:
        return refusal(422, str(exc))
    return _go(request, "/suggestions?done=filed")


@post("/suggestions/{suggestion_id:int}/decision", opt=needs(Permission.TEMPLATE_MANAGE), status_code=200)
async def decide_from_page(request: AnyRequest, suggestion_id: RowId) -> Template | Response[Any]:
    form = await request.form()
    raw: dict[str, Any] = {"status": form.get("status", ""), "note": form.get("note", "")}
    if form.get("version"):
        raw["version"] = form.get("version")
    try:
        decision = msgspec.convert(raw, Decision, strict=False)
        await suggestions.decide(suggestion_id, decision, actor_of(request), dt.datetime.now(dt.UTC))
    except msgspec.ValidationError as exc:
        return refusal(422, str(exc))
    except SuggestionNotFound as exc:
        raise NotFoundException(str(exc)) from exc
    except SuggestionError as exc:
        return refusal(422 if exc.field != "status" else 409, str(exc))
    return _go(request, request.headers.get("referer") or "/suggestions")


@get("/api/v1/suggestions", opt=needs(Permission.SIGNED_IN))
async def api_list(status: Filter = "", template: Filter = "", page: PageNo = 1) -> dict[str, Any]:
    items, total = await suggestions.list_suggestions(status=status, template=template, page=page)
    return {
        "items": msgspec.to_builtins(items),
        "total": total,
        "page": page,
        "page_size": suggestions.PAGE_SIZE,
    }


@post("/api/v1/suggestions", opt=needs(Permission.SIGNED_IN))
async def api_file(request: AnyRequest, data: JSONBody[SuggestionIn]) -> dict[str, int]:
    try:
        suggestion_id = await suggestions.file_suggestion(
            data, principal_of(request).id, actor_of(request), dt.datetime.now(dt.UTC)
        )
    except SuggestionError as exc:
        raise ValidationException(
            detail=str(exc), extra=[{"key": exc.field, "message": exc.message}]
        ) from exc
    return {"id": suggestion_id}


@post(
    "/api/v1/suggestions/{suggestion_id:int}/decision", opt=needs(Permission.TEMPLATE_MANAGE), status_code=200
)
async def api_decide(
    request: AnyRequest, suggestion_id: RowId, data: JSONBody[Decision]
) -> Response[dict[str, Any]]:
    try:
        await suggestions.decide(suggestion_id, data, actor_of(request), dt.datetime.now(dt.UTC))
    except SuggestionNotFound as exc:
        raise NotFoundException(str(exc)) from exc
    except SuggestionError as exc:
        if exc.field == "status":
            return Response({"detail": str(exc), "status_code": 409}, status_code=409)
        raise ValidationException(
            detail=str(exc), extra=[{"key": exc.field, "message": exc.message}]
        ) from exc
    return Response({"status": data.status})


def _go(request: AnyRequest, url: str) -> Response[Any]:
    """To `url`: through htmx when it asked, else a plain redirect (forms work without script)."""
    if request.headers.get("hx-request") == "true":
        return Response(content="", status_code=200, headers={"HX-Redirect": url})
    return Redirect(url, status_code=303)


ROUTES = [
    suggestions_page,
    suggestion_steps,
    file_from_page,
    decide_from_page,
    api_list,
    api_file,
    api_decide,
]
