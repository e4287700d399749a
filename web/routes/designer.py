"""The template designer: the form designer, preview, versions, import and export, and its JSON API.

The draft lives on the server (`builder.drafts`). Every designer action (add a field from the
palette, move it, remove it, change one property, undo, redo) is a small htmx POST carrying the
draft's `row_version`; the pure edits of `builder.form_edits` make the next form, `save_draft`
stores it (its label is the undo list's entry), and the answer holds only what changed: the
property panel, and out of band the canvas cards that look different (`canvas_changes` compares
each card's field, problems, mark and place before and after), the problems, the toolbar and
the row version. Choosing a field saves nothing and redraws only the two cards whose mark
moved. SortableJS (in `designer.js`) only reports where something was dropped; the buttons
beside each field do the same for keyboard users.

A refused action answers its status (409 for a draft someone else saved meanwhile, 422 for a
refused edit) with a message that `app.js` swaps into the workspace's message area. The JSON
API under /api/v1/designer does the same work for other tools: 4xx bodies carry `errors` with
the path and the reason. Every route needs `Permission.TEMPLATE_MANAGE`; every change is
audited by `builder.drafts`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, NamedTuple
from zoneinfo import ZoneInfo

import msgspec
from litestar import Request, Response, Router, get, post, put
from litestar.datastructures import UploadFile
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import Redirect, Template
from markupsafe import Markup

from builder import drafts
from builder.bpmn import BpmnImportError, BpmnProblem, from_bpmn, to_bpmn
from builder.bundle import (
    BundleDescription,
    BundleError,
    BundleProblem,
    BundleText,
    TemplateBundle,
    bundle_json_schema,
    check_design,
    decode_bundle,
    encode_bundle,
)
from builder.form_edits import (
    CHOICE_TYPES,
    FIELD_TYPES,
    EditError,
    add_field,
    find_field,
    fresh_key,
    move_field,
    options_text,
    properties_of,
    remove_field,
    update_property,
)
from builder.versions import VersionDiff
from forms import compile_form, load_schema
from forms import model as m
from forms.errors import SchemaError
from forms.permissions import FieldAccess
from plugins.validation import validate_plugin_nodes
from runtime.flow import Environment, FlowGraph, graph_from_dict, preview_route
from runtime.flow.errors import GraphDecodeError
from runtime.service import reasons
from runtime.service.caller import Caller
from runtime.service.form_data import as_stored, engine_form
from runtime.service.org_directory import load_org_directory
from runtime.service.pipeline import CALENDAR, step_plugins
from storage.access import Permission
from storage.org import load_principal
from storage.tables import ProcessTemplate, TemplateDraft, TemplateVersion
from web.auth.guards import needs
from web.context import AnyRequest, actor_of
from web.errors import MESSAGE_HEADER, http_exception_handler, is_api, request_now
from web.form_input import decode_form
from web.form_pages import directory, shown_values
from web.i18n import _, current_locale

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")
FLOW_CHECKS = (validate_plugin_nodes,)
TABS = ("form", "flow", "preview", "versions", "transfer")
MAX_UPLOAD = 5_000_000

TextQuery = Annotated[str, QueryParameter(max_length=200)]
VersionNumber = Annotated[int, QueryParameter(ge=1, le=1_000_000)]


def _key_param(key: str) -> str:
    if not re.fullmatch(m.FORM_KEY_PATTERN, key):
        raise NotFoundException(f"no template {key!r}")
    return key


# -- errors -------------------------------------------------------------------------------------


def _reason_text(reason: str, fallback: str) -> str:
    """A refused edit in the reader's language (the English detail stays in the API body)."""
    texts = {
        "duplicate_key": _("This key is used by another field."),
        "bad_key": _("A key starts with a-z and holds only a-z, 0-9 and _ (at most 64 characters)."),
        "unknown_type": _("Unknown field type."),
        "not_a_column": _("This kind of field cannot be a detail-table column."),
        "not_a_table": _("The target is not a detail table."),
        "not_found": _("This field no longer exists; reload the designer."),
        "last_column": _("A detail table keeps at least one column."),
        "too_many": _("A detail table has at most 100 columns."),
        "bad_property": _("This field has no such setting."),
        "required": _("A computed field needs a formula."),
    }
    if reason == "bad_value":
        return _("This value is not valid: {detail}").format(detail=fallback)
    return texts.get(reason, fallback)


def _design_status(exc: Exception) -> int:
    if isinstance(exc, drafts.DraftNotFound):
        return 404
    if isinstance(exc, drafts.DraftConflict | drafts.TemplateExists | drafts.NothingToUndo):
        return 409
    return 422


def _problem_list(exc: Exception) -> list[dict[str, str]]:
    if isinstance(exc, EditError):
        return [{"path": exc.ref, "message": str(exc), "reason": exc.reason}]
    if isinstance(exc, drafts.PublishRefused):
        return [{"path": p.path, "message": p.message} for p in exc.problems] + [
            {"path": f"form.{b.key}", "message": f"{b.kind}: {b.drafts} draft(s)"} for b in exc.breaking
        ]
    if isinstance(exc, BundleError):
        return [{"path": _shape_path(p.path, p.message), "message": p.message} for p in exc.problems]
    if isinstance(exc, BpmnImportError):
        return [{"path": _bpmn_where(p), "message": p.message} for p in exc.problems]
    return []


def _human(exc: Exception) -> str:
    if isinstance(exc, drafts.DraftConflict):
        return _("This draft was changed by someone else; please reload.")
    if isinstance(exc, drafts.DraftNotFound):
        return _("This template does not exist.")
    if isinstance(exc, drafts.TemplateExists):
        return _("A template with this key exists already.")
    if isinstance(exc, drafts.NothingToUndo):
        return _("Nothing to undo or redo.")
    if isinstance(exc, drafts.PublishRefused):
        return _("Publishing was refused: fix the problems or accept the breaking changes.")
    if isinstance(exc, EditError):
        return _reason_text(exc.reason, str(exc))
    return str(exc)


def design_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Refused design commands: a JSON problem for the API, a message in place for htmx."""
    status = _design_status(exc)
    if is_api(request):
        body: dict[str, Any] = {"status_code": status, "detail": str(exc), "code": _code(exc)}
        errors = _problem_list(exc)
        if errors:
            body["errors"] = errors
        return Response(body, status_code=status)
    if request.headers.get("hx-request"):
        return _message(_human(exc), status, field=exc.ref if isinstance(exc, EditError) else "")
    return http_exception_handler(request, HTTPException(status_code=status, detail=_human(exc)))


def _message(text: str, status: int, *, field: str = "") -> Response[Any]:
    reload = status == 409
    return Template(
        "designer/_message.html",
        context={"text": text, "reload": reload, "field": field},
        status_code=status,
        headers={MESSAGE_HEADER: "1", "HX-Retarget": "#designer-message", "HX-Reswap": "innerHTML"},
    )


def _code(exc: Exception) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


# -- reading drafts -----------------------------------------------------------------------------


async def _draft(key: str, request: AnyRequest) -> drafts.Draft:
    return await drafts.open_draft(
        key, request_now(request), flow_checks=FLOW_CHECKS, locale=current_locale()
    )


_SHAPE_AT = re.compile(r"at `\$\.?([^`]*)`")
_FIELD_PATH = re.compile(r"^fields\[(\d+)\](?:\.columns\[(\d+)\])?(?:\.(.*))?$")


def problem_ref(form: Mapping[str, Any], path: str, message: str) -> tuple[str, str]:
    """The field ref a problem concerns ("" for the form or the flow), and the setting within it."""
    inner = path.removeprefix("form").lstrip(".")
    if path == "form":
        shape = _SHAPE_AT.search(message)
        inner = shape.group(1) if shape else ""
    match = _FIELD_PATH.match(inner)
    if not match:
        return "", inner
    fields = form.get("fields") or []
    index = int(match.group(1))
    if index >= len(fields) or not isinstance(fields[index], dict):
        return "", inner
    field = fields[index]
    ref = str(field.get("key", ""))
    if match.group(2) is not None:
        columns = field.get("columns") or []
        column = int(match.group(2))
        if column < len(columns) and isinstance(columns[column], dict):
            ref = f"{ref}.{columns[column].get('key', '')}"
    return ref, match.group(3) or ""


def _problems_by_field(
    form: Mapping[str, Any], problems: Sequence[BundleProblem]
) -> tuple[dict[str, list[str]], list[dict[str, str]]]:
    by_field: dict[str, list[str]] = {}
    listed: list[dict[str, str]] = []
    for problem in problems:
        ref, setting = ("", "")
        if problem.path.startswith("form"):
            ref, setting = problem_ref(form, problem.path, problem.message)
        text = _clean(problem.message)
        if ref:
            by_field.setdefault(ref, []).append(f"{setting}: {text}" if setting else text)
        listed.append({"ref": ref, "path": problem.path, "message": text})
    return by_field, listed


def _shape_path(path: str, message: str) -> str:
    """A problem of the schema's shape says where in its message ("... - at `$.fields[3]`")."""
    shape = _SHAPE_AT.search(message) if path in ("form", "") else None
    if shape is None:
        return path
    return f"{path}.{shape.group(1)}" if path else shape.group(1)


def _clean(message: str) -> str:
    return _SHAPE_AT.sub("", message).replace("invalid form schema: ", "").strip(" -")


def _label(field: Mapping[str, Any]) -> str:
    label = field.get("label") or field.get("text") or {}
    if not isinstance(label, dict):
        return str(field.get("key", ""))
    text = label.get("zh") if current_locale() == "zh-CN" else (label.get("en") or label.get("zh"))
    return str(text or field.get("key", ""))


def _type_names() -> dict[str, str]:
    return {
        "text": _("Text"),
        "textarea": _("Paragraph"),
        "number": _("Numeric"),
        "money": _("Amount"),
        "date": _("Date"),
        "datetime": _("Date and time"),
        "date_range": _("Date range"),
        "select": _("Drop-down"),
        "radio": _("Single choice"),
        "multi_select": _("Multiple choice"),
        "checkbox": _("Check boxes"),
        "switch": _("Switch"),
        "person": _("Person"),
        "department": _("Department"),
        "related_instance": _("Related request"),
        "attachment": _("Attachments"),
        "detail_table": _("Detail table"),
        "computed": _("Computed"),
        "section": _("Section"),
        "description": _("Explanation"),
    }


def _condition_fields(form: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Fields a condition may name, with their type and options (for the condition builder)."""
    found = []
    for field in form.get("fields") or []:
        kind = field.get("type")
        if kind in ("section", "description", "detail_table", "attachment") or not field.get("key"):
            continue
        found.append(
            {
                "key": field["key"],
                "label": _label(field),
                "type": kind,
                "options": [o.get("value") for o in field.get("options") or []],
            }
        )
    return found


def _condition_options(form: Mapping[str, Any], own_key: Any) -> Markup:
    """The condition builder's field choices as <option>s, made once for both of its builders
    (a form of 200 fields would otherwise spend most of each answer on them)."""
    return Markup("").join(
        Markup('<option value="{0}" data-type="{1}">{2}</option>').format(f["key"], f["type"], f["label"])
        for f in _condition_fields(form)
        if f["key"] != own_key
    )


def _chosen(form: Mapping[str, Any], selected: str | None) -> tuple[str | None, dict[str, Any] | None]:
    """The chosen field's ref and the field itself (none when it no longer exists)."""
    if not selected:
        return None, None
    try:
        return selected, find_field(dict(form), selected)
    except EditError:
        return None, None


def _workspace_context(
    draft: drafts.Draft,
    selected: str | None,
    *,
    notice: str = "",
    by_field: dict[str, list[str]] | None = None,
    listed: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    if by_field is None or listed is None:
        by_field, listed = _problems_by_field(draft.form, draft.problems)
    fields = draft.form.get("fields") or []
    selected, field = _chosen(draft.form, selected)
    column = bool(selected and "." in selected)
    tables = [f for f in fields if f.get("type") == "detail_table"]
    sections = [(i, f) for i, f in enumerate(fields) if f.get("type") == "section"]
    return {
        "draft": draft,
        "key": draft.key,
        "fields": fields,
        "field_types": FIELD_TYPES,
        "type_names": _type_names(),
        "label_of": _label,
        "field_problems": by_field,
        "problems": listed,
        "selected": selected,
        "field": field,
        "column": column,
        "properties": set(properties_of(field.get("type", ""), column=column)) if field else set(),
        "options_text": options_text(field) if field and field.get("type") in CHOICE_TYPES else "",
        "tables": tables,
        "sections": sections,
        "condition_options": _condition_options(draft.form, field.get("key")) if field else "",
        "notice": notice,
        "mib": m.MIB,
    }


class CanvasState(NamedTuple):
    """What the canvas showed or shows: the form, each field's problems, the chosen field."""

    form: Mapping[str, Any]
    problems: Mapping[str, list[str]]
    selected: str | None


_CARD_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _canvas_of(draft: drafts.Draft, selected: str | None) -> CanvasState:
    by_field, _listed = _problems_by_field(draft.form, draft.problems)
    return CanvasState(draft.form, by_field, _chosen(draft.form, selected)[0])


def _card_look(canvas: CanvasState, index: int, fields: Sequence[Mapping[str, Any]], rich: Any) -> bytes:
    """Everything a top-level card shows, as bytes to compare: its field (columns included), its
    problems, whether it is chosen, and where it stands (the "Move into…" menu of a chosen card
    lists the tables and sections around it; other cards only know whether they come first or last)."""
    field = fields[index]
    key = str(field.get("key", ""))
    refs = [key] + [f"{key}.{c.get('key', '')}" for c in field.get("columns") or [] if isinstance(c, dict)]
    chosen = canvas.selected if canvas.selected in refs else None
    place = [index, rich] if chosen else [index == 0, index + 1 == len(fields)]
    return msgspec.json.encode([field, chosen, [canvas.problems.get(ref) for ref in refs], place])


def _menu_context(fields: Sequence[Mapping[str, Any]]) -> Any:
    """What a chosen card's "Move into…" menu names: the tables and the sections with their places."""
    return [
        [i, f.get("key"), f.get("type"), f.get("label")]
        for i, f in enumerate(fields)
        if f.get("type") in ("detail_table", "section")
    ]


def _column_refs(fields: Sequence[Mapping[str, Any]]) -> set[str]:
    return {
        f"{f.get('key', '')}.{c.get('key', '')}"
        for f in fields
        for c in f.get("columns") or []
        if isinstance(c, dict)
    }


def canvas_changes(
    before: CanvasState, after: CanvasState, renamed: tuple[str, str] | None = None
) -> list[dict[str, Any]] | None:
    """The top-level cards to delete, insert or draw again to turn `before`'s canvas into
    `after`'s, in order; None when the whole canvas is drawn again (an empty form, keys an element
    id cannot hold, or more than one card moved, as an undo may do)."""
    old_fields = [f for f in before.form.get("fields") or [] if isinstance(f, dict)]
    new_fields = [f for f in after.form.get("fields") or [] if isinstance(f, dict)]
    old_keys = [str(f.get("key", "")) for f in old_fields]
    new_keys = [str(f.get("key", "")) for f in new_fields]
    if not old_keys or not new_keys or len(old_keys) != len(before.form.get("fields") or []):
        return None
    if len(new_keys) != len(after.form.get("fields") or []):
        return None
    for keys in (old_keys, new_keys):
        if len(set(keys)) != len(keys) or not all(_CARD_KEY.fullmatch(k) for k in keys):
            return None
    was = {k: k for k in old_keys}
    if renamed and renamed[0] in was and renamed[1] not in was:
        was = {renamed[1] if k == renamed[0] else k: k for k in old_keys}
    old_at = {k: i for i, k in enumerate(was)}
    new_set = set(new_keys)
    kept_old = [k for k in was if k in new_set]
    kept_new = [k for k in new_keys if k in was]
    moved: list[str] = []
    if kept_old != kept_new:
        first = next(i for i, (a, b) in enumerate(zip(kept_old, kept_new, strict=True)) if a != b)
        for candidate in (kept_old[first], kept_new[first]):
            if [k for k in kept_old if k != candidate] == [k for k in kept_new if k != candidate]:
                moved = [candidate]
                break
        else:
            return None
    placed = {k for k in new_keys if k not in was} | set(moved)
    # A column dragged out of its table sits where it was dropped until its old card goes.
    changes: list[dict[str, Any]] = [
        {"op": "delete", "ref": ref} for ref in sorted(_column_refs(old_fields) - _column_refs(new_fields))
    ]
    changes += [{"op": "delete", "ref": was[k]} for k in was if k not in new_set]
    changes += [{"op": "delete", "ref": was[k]} for k in moved]
    old_rich, new_rich = _menu_context(old_fields), _menu_context(new_fields)
    for index, key in enumerate(new_keys):
        if key in placed:
            changes.append(
                {"op": "insert", "ref": key, "index": index, "after": new_keys[index - 1] if index else ""}
            )
        elif _card_look(before, old_at[key], old_fields, old_rich) != _card_look(
            after, index, new_fields, new_rich
        ):
            changes.append({"op": "redraw", "ref": key, "index": index, "was": was[key]})
    return changes


def _changes(
    before: CanvasState,
    draft: drafts.Draft,
    selected: str | None,
    *,
    notice: str = "",
    renamed: tuple[str, str] | None = None,
) -> Template:
    """The answer to an action: the property panel, and out of band what else changed."""
    by_field, listed = _problems_by_field(draft.form, draft.problems)
    _remember_problems(draft, by_field)
    context = _workspace_context(draft, selected, notice=notice, by_field=by_field, listed=listed)
    after = CanvasState(draft.form, by_field, context["selected"])
    context["changes"] = canvas_changes(before, after, renamed)
    return Template("designer/_changes.html", context=context)


_last_problems: OrderedDict[tuple[str, str], tuple[bytes, dict[str, list[str]]]] = OrderedDict()
"""(template key, locale) -> the design last answered (form and flow as JSON) and its problems."""
_REMEMBERED = 64


def _remember_problems(draft: drafts.Draft, by_field: dict[str, list[str]]) -> None:
    entry = (draft.key, current_locale())
    _last_problems[entry] = (msgspec.json.encode([draft.form, draft.flow]), by_field)
    _last_problems.move_to_end(entry)
    while len(_last_problems) > _REMEMBERED:
        _last_problems.popitem(last=False)


def _was(posted: Mapping[str, Any]) -> str | None:
    """The field chosen when the action was sent (its card is drawn again without the mark)."""
    value = posted.get("was") or ""
    return str(value[-1] if isinstance(value, list) else value) or None


# -- pages: the list and creating a template --------------------------------------------------


async def _template_rows(q: str) -> list[dict[str, Any]]:
    templates = (
        await ProcessTemplate.select().order_by(ProcessTemplate.category).order_by(ProcessTemplate.key)
    )
    draft_rows = await TemplateDraft.select(
        TemplateDraft.key,
        TemplateDraft.name_zh,
        TemplateDraft.name_en,
        TemplateDraft.category,
        TemplateDraft.form,
        TemplateDraft.flow,
    ).output(load_json=True)
    versions = await TemplateVersion.select(
        TemplateVersion.template.key.as_alias("key"),
        TemplateVersion.version,
        TemplateVersion.form,
        TemplateVersion.flow,
    ).output(load_json=True)
    latest: dict[str, dict[str, Any]] = {}
    for row in versions:
        if row["key"] not in latest or latest[row["key"]]["version"] < row["version"]:
            latest[row["key"]] = row
    by_key: dict[str, dict[str, Any]] = {}
    for t in templates:
        by_key[t["key"]] = {
            "key": t["key"],
            "name_zh": t["name_zh"],
            "name_en": t["name_en"],
            "category": t["category"],
        }
    for d in draft_rows:
        by_key.setdefault(
            d["key"],
            {"key": d["key"], "name_zh": d["name_zh"], "name_en": d["name_en"], "category": d["category"]},
        )
    rows = []
    needle = q.strip().lower()
    drafts_by_key = {d["key"]: d for d in draft_rows}
    for key, row in sorted(by_key.items(), key=lambda item: (item[1]["category"], item[0])):
        if needle and not any(needle in str(row[k]).lower() for k in ("key", "name_zh", "name_en")):
            continue
        published = latest.get(key)
        draft = drafts_by_key.get(key)
        pending = draft is not None and (
            published is None or draft["form"] != published["form"] or draft["flow"] != published["flow"]
        )
        rows.append(
            {
                **row,
                "name": row["name_zh"] if current_locale() == "zh-CN" else (row["name_en"] or row["name_zh"]),
                "version": published["version"] if published else None,
                "pending": pending,
            }
        )
    return rows


@get("/designer", opt=needs(Permission.TEMPLATE_MANAGE))
async def designer_list(request: AnyRequest, q: TextQuery = "") -> Template:
    """Every template with its status: published vN, changes in the draft not yet published."""
    return Template(
        "designer/list.html",
        context={"section": "designer", "rows": await _template_rows(q), "q": q, "errors": {}, "values": {}},
    )


class NewTemplate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    key: Annotated[str, msgspec.Meta(pattern=m.FORM_KEY_PATTERN)]
    name_zh: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    name_en: Annotated[str, msgspec.Meta(max_length=100)] = ""
    category: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "general"
    description_zh: Annotated[str, msgspec.Meta(max_length=2_000)] = ""
    description_en: Annotated[str, msgspec.Meta(max_length=2_000)] = ""


def _new_template_errors(values: Mapping[str, str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not re.fullmatch(m.FORM_KEY_PATTERN, values.get("key", "")):
        errors["key"] = _("Use a-z, 0-9, - and _, starting with a letter (at most 64 characters).")
    if not values.get("name_zh", "").strip():
        errors["name_zh"] = _("Give the template a Chinese name.")
    elif len(values["name_zh"]) > 100:
        errors["name_zh"] = _("At most 100 characters.")
    if len(values.get("name_en", "")) > 100:
        errors["name_en"] = _("At most 100 characters.")
    if not re.fullmatch(r"[\w\-]{1,64}", values.get("category", "") or "general"):
        errors["category"] = _("A category is 1 to 64 letters, digits, - or _.")
    return errors


async def _create(template: NewTemplate, request: AnyRequest) -> None:
    meta = drafts.DraftMeta(
        category=template.category,
        name_zh=template.name_zh.strip(),
        name_en=template.name_en.strip(),
        description_zh=template.description_zh,
        description_en=template.description_en,
    )
    await drafts.create_template(template.key, meta, actor=actor_of(request), now=request_now(request))


@post("/designer", opt=needs(Permission.TEMPLATE_MANAGE), status_code=303)
async def designer_create(request: AnyRequest) -> Response[Any]:
    """新建模板: a key, names and a category; the designer opens on its empty form."""
    posted = await request.form()
    values = {name: str(posted.get(name, "")).strip() for name in ("key", "name_zh", "name_en", "category")}
    errors = _new_template_errors(values)
    if not errors:
        try:
            await _create(NewTemplate(**{**values, "category": values["category"] or "general"}), request)
        except drafts.TemplateExists:
            errors["key"] = _("A template with this key exists already.")
    if errors:
        return Template(
            "designer/list.html",
            context={
                "section": "designer",
                "rows": await _template_rows(""),
                "q": "",
                "errors": errors,
                "values": values,
                "creating": True,
            },
            status_code=422,
        )
    return Redirect(f"/designer/{values['key']}", status_code=303)


# -- pages: the designer shell and the form tab ----------------------------------------------


@get("/designer/{key:str}", opt=needs(Permission.TEMPLATE_MANAGE))
async def designer_page(
    request: AnyRequest, key: FromPath[str], tab: FromQuery[str] = "form", field: FromQuery[str] = ""
) -> Template:
    """The designer with its tabs 表单 / 流程 / 预览 / 版本 / 导入导出."""
    key = _key_param(key)
    if tab not in TABS:
        tab = "form"
    draft = await _draft(key, request)
    context: dict[str, Any] = {"section": "designer", "tab": tab, "draft": draft, "key": key}
    if tab == "form":
        context.update(_workspace_context(draft, field or None))
    elif tab == "preview":
        context.update(await _preview_context(request, draft))
    elif tab == "versions":
        context.update(await _versions_context(request, draft))
    return Template("designer/designer.html", context=context)


async def _posted(request: AnyRequest) -> dict[str, Any]:
    form = await request.form()
    return {name: form.getall(name) if len(form.getall(name)) > 1 else form.get(name) for name in form}


def _row_version(posted: Mapping[str, Any]) -> int:
    value = posted.get("row_version", "")
    try:
        return int(str(value[-1] if isinstance(value, list) else value))
    except ValueError:
        raise HTTPException(status_code=400, detail="row_version: a whole number is needed") from None


def _index(posted: Mapping[str, Any]) -> int:
    try:
        return max(0, int(str(posted.get("index", "0")) or 0))
    except ValueError:
        raise HTTPException(status_code=400, detail="index: a whole number is needed") from None


class _Editing(NamedTuple):
    key: str
    form: dict[str, Any]
    flow: dict[str, Any] | None


async def _editing(key: str) -> _Editing:
    """The draft's form and flow as stored, for an edit (problems are checked once, after saving)."""
    row = (
        await TemplateDraft.select(TemplateDraft.form, TemplateDraft.flow)
        .where(TemplateDraft.key == key)
        .output(load_json=True)
        .first()
    )
    if row is None:
        raise drafts.DraftNotFound(f"no draft of {key!r}")
    return _Editing(key=key, form=row["form"], flow=row["flow"])


def _before(draft: _Editing, posted: Mapping[str, Any]) -> CanvasState:
    """The canvas as the designer saw it before the action. Its problems are those of the last
    answer when the design is the same (checking a large form again costs more than comparing)."""
    design = msgspec.json.encode([draft.form, draft.flow])
    memo = _last_problems.get((draft.key, current_locale()))
    if memo is not None and memo[0] == design:
        by_field = memo[1]
    else:
        problems: list[BundleProblem] = []
        try:
            check_design(draft.key, draft.form, draft.flow, current_locale(), flow_checks=FLOW_CHECKS)
        except BundleError as exc:
            problems = exc.problems
        by_field, _listed = _problems_by_field(draft.form, problems)
    return CanvasState(draft.form, by_field, _chosen(draft.form, _was(posted))[0])


async def _save(
    request: AnyRequest, draft: _Editing, form: dict[str, Any], row_version: int, label: str
) -> drafts.Draft:
    """Store `form` as the draft's next revision (the flow as it was); `label` names the change."""
    return await drafts.save_draft(
        draft.key,
        drafts.DraftEdit(form=form, flow=draft.flow, label=label),
        row_version=row_version,
        actor=actor_of(request),
        now=request_now(request),
        flow_checks=FLOW_CHECKS,
        locale=current_locale(),
    )


@post("/designer/{key:str}/fields", opt=needs(Permission.TEMPLATE_MANAGE), status_code=200)
async def field_add(request: AnyRequest, key: FromPath[str]) -> Template:
    """A field of type `kind` from the palette, at `index` of the form or of `table`'s columns."""
    key = _key_param(key)
    posted = await _posted(request)
    draft = await _editing(key)
    kind = str(posted.get("kind", ""))
    table = str(posted.get("table") or "") or None
    new_key = fresh_key(draft.form, kind)
    form = add_field(draft.form, kind, _index(posted), key=new_key, table=table)
    saved = await _save(request, draft, form, _row_version(posted), f"added {new_key}")
    return _changes(_before(draft, posted), saved, f"{table}.{new_key}" if table else new_key)


@post("/designer/{key:str}/fields/move", opt=needs(Permission.TEMPLATE_MANAGE), status_code=200)
async def field_move(request: AnyRequest, key: FromPath[str]) -> Template:
    """Field `ref` to `index` of the form, or of `table` (moving in and out of detail tables)."""
    key = _key_param(key)
    posted = await _posted(request)
    draft = await _editing(key)
    ref = str(posted.get("ref", ""))
    table = str(posted.get("table") or "") or None
    form = move_field(draft.form, ref, _index(posted), table=table)
    saved = await _save(request, draft, form, _row_version(posted), f"moved {ref}")
    moved = ref.rpartition(".")[2]
    return _changes(_before(draft, posted), saved, f"{table}.{moved}" if table else moved)


@post("/designer/{key:str}/fields/remove", opt=needs(Permission.TEMPLATE_MANAGE), status_code=200)
async def field_remove(request: AnyRequest, key: FromPath[str]) -> Template:
    key = _key_param(key)
    posted = await _posted(request)
    draft = await _editing(key)
    ref = str(posted.get("ref", ""))
    form = remove_field(draft.form, ref)
    saved = await _save(request, draft, form, _row_version(posted), f"removed {ref}")
    return _changes(_before(draft, posted), saved, None)


@post("/designer/{key:str}/fields/property", opt=needs(Permission.TEMPLATE_MANAGE), status_code=200)
async def field_property(request: AnyRequest, key: FromPath[str]) -> Template:
    """One property of field `ref`: `property` names it (else the input that changed), its value follows."""
    key = _key_param(key)
    posted = await _posted(request)
    name = str(posted.get("property") or request.headers.get("hx-trigger-name") or "")
    ref = str(posted.get("ref", ""))
    draft = await _editing(key)
    value = posted.get(name)
    form = update_property(
        draft.form, ref, name, value if isinstance(value, list) else (None if value is None else str(value))
    )
    saved = await _save(request, draft, form, _row_version(posted), f"{ref}: {name}")
    renamed = None
    if name == "key":
        new = str(value or "").strip()
        renamed = (ref, new)
        ref = f"{ref.rpartition('.')[0]}.{new}" if "." in ref else new
    return _changes(_before(draft, posted), saved, ref, renamed=renamed)


@post("/designer/{key:str}/meta", opt=needs(Permission.TEMPLATE_MANAGE), status_code=200)
async def template_meta(request: AnyRequest, key: FromPath[str]) -> Template:
    """The template's names, category and description (also the form's title)."""
    key = _key_param(key)
    posted = await _posted(request)
    draft = await _draft(key, request)
    values = {
        name: str(posted.get(name, getattr(draft.meta, name))).strip()
        for name in ("name_zh", "name_en", "category", "description_zh")
    }
    errors = _new_template_errors({**values, "key": key})
    if errors:
        raise EditError("", "bad_value", next(iter(errors.values())))
    meta = drafts.DraftMeta(
        category=values["category"] or "general",
        name_zh=values["name_zh"],
        name_en=values["name_en"],
        description_zh=values["description_zh"],
        description_en=draft.meta.description_en,
    )
    form = {**draft.form, "title": {"zh": meta.name_zh, "en": meta.name_en}}
    saved = await drafts.save_draft(
        key,
        drafts.DraftEdit(form=form, flow=draft.flow, meta=meta, label="template names"),
        row_version=_row_version(posted),
        actor=actor_of(request),
        now=request_now(request),
        flow_checks=FLOW_CHECKS,
        locale=current_locale(),
    )
    return _changes(_canvas_of(draft, _was(posted)), saved, None)


@get("/designer/{key:str}/fields/select", opt=needs(Permission.TEMPLATE_MANAGE))
async def field_select(
    request: AnyRequest, key: FromPath[str], ref: TextQuery = "", was: TextQuery = ""
) -> Template:
    """`ref` chosen: its settings in the property panel, and the mark moved from card `was` to its card."""
    draft = await _draft(_key_param(key), request)
    return _changes(_canvas_of(draft, was or None), draft, ref or None)


@post("/designer/{key:str}/undo", opt=needs(Permission.TEMPLATE_MANAGE), status_code=200)
async def draft_undo(request: AnyRequest, key: FromPath[str]) -> Template:
    key = _key_param(key)
    posted = await _posted(request)
    before = _before(await _editing(key), posted)
    draft = await drafts.undo(
        key,
        row_version=_row_version(posted),
        actor=actor_of(request),
        now=request_now(request),
        flow_checks=FLOW_CHECKS,
    )
    return _changes(before, draft, str(posted.get("selected") or "") or None)


@post("/designer/{key:str}/redo", opt=needs(Permission.TEMPLATE_MANAGE), status_code=200)
async def draft_redo(request: AnyRequest, key: FromPath[str]) -> Template:
    key = _key_param(key)
    posted = await _posted(request)
    before = _before(await _editing(key), posted)
    draft = await drafts.redo(
        key,
        row_version=_row_version(posted),
        actor=actor_of(request),
        now=request_now(request),
        flow_checks=FLOW_CHECKS,
    )
    return _changes(before, draft, str(posted.get("selected") or "") or None)


# -- preview and simulation -------------------------------------------------------------------


def _draft_schema(draft: drafts.Draft) -> m.FormSchema | None:
    try:
        return load_schema(msgspec.json.encode({**draft.form, "key": draft.key}))
    except SchemaError:
        return None


def _draft_graph(draft: drafts.Draft) -> FlowGraph | None:
    if not draft.flow:
        return None
    try:
        return graph_from_dict(draft.flow)
    except (GraphDecodeError, msgspec.ValidationError, ValueError):
        return None


async def _preview_context(
    request: AnyRequest, draft: drafts.Draft, person: int | None = None, items: Sequence[tuple[str, str]] = ()
) -> dict[str, Any]:
    """The draft's form filled with `items` as `person` would see it, and the route it would take."""
    schema = _draft_schema(draft)
    people = (await directory())["people"]
    context: dict[str, Any] = {
        "schema": schema,
        "people": people,
        "as_person": str(person or ""),
        "values": {},
        "errors": {},
        "state": {},
        "access": {},
        "readonly": False,
        "directory": await directory(),
        "route": None,
        "route_problem": "",
    }
    if schema is None:
        return context
    now = request_now(request)
    principal = await load_principal(person) if person else None
    if principal is None:
        principal = request.scope["user"]
    caller = Caller(principal=principal, locale=current_locale())
    posted = decode_form(schema, items)
    result = compile_form(schema).validate(posted, caller.validation_context(now), mode="draft")
    context["values"] = shown_values(schema, posted, result) if items else dict(result.data)
    context["errors"] = result.error_dict() if items else {}
    context["state"] = {path: {"visible": False} for path in result.hidden}
    context["as_person"] = str(principal.id)
    graph = _draft_graph(draft)
    if graph is None:
        context["route_problem"] = _("The flow has problems; fix them to see the route.")
        return context
    if not items:
        return context
    org = await load_org_directory()
    env = Environment(
        org=org,
        calendar=CALENDAR,
        initiator=principal.id,
        form=engine_form(schema, as_stored(result.data)),
        urgent=result.data.get("urgent") is True,
        plugins=step_plugins(),
    )
    names = {p.id: p.name for p in org.people.values()}
    nodes = {node.id: node for node in graph.nodes}
    steps = []
    try:
        planned = preview_route(graph, env, now)
    except Exception as exc:  # the draft's flow may be half made: say why, do not fail the page
        context["route_problem"] = str(exc)
        return context
    for step in planned:
        steps.append(
            {
                "title": step.title,
                "kind": step.kind,
                "assignees": [names.get(p, str(p)) for p in step.assignees],
                "why": [reasons.why(dict(r), names, current_locale()) for r in step.reasons],
                "due_at": step.due_at.astimezone(BUSINESS_TZ).strftime("%Y-%m-%d %H:%M")
                if step.due_at
                else "",
                "due_is_estimate": step.due_is_estimate,
                "skipped": step.skipped,
                "problem": step.problem,
                "sees": _what_they_see(schema, getattr(nodes.get(step.node_id), "field_permissions", None)),
            }
        )
    context["route"] = steps
    return context


def _what_they_see(
    schema: m.FormSchema, permissions: Mapping[str, FieldAccess] | None
) -> dict[str, list[str]]:
    """Field labels by access at a step: editable, read-only, hidden (unlisted fields are read-only)."""
    seen: dict[str, list[str]] = {"editable": [], "read_only": [], "hidden": []}
    for field in m.value_fields(schema):
        access = (permissions or {}).get(field.key, FieldAccess.READ_ONLY)
        seen[str(access)].append(field.label.get(current_locale()))
    return seen


@post("/designer/{key:str}/preview", opt=needs(Permission.TEMPLATE_MANAGE), status_code=200)
async def preview_fill(request: AnyRequest, key: FromPath[str]) -> Template:
    """The filled preview form as the chosen person: who would approve, in which order, by when."""
    key = _key_param(key)
    draft = await _draft(key, request)
    form = await request.form()
    items = [
        (name, str(value))
        for name, value in form.multi_items()
        if name not in ("as_person", "_csrf_token", "preview_width")
    ]
    try:
        person = int(str(form.get("as_person") or 0)) or None
    except ValueError:
        person = None
    context = await _preview_context(request, draft, person, items or [("", "")])
    width = "phone" if form.get("preview_width") == "phone" else "desktop"
    return Template("designer/_preview.html", context={"key": key, "preview_width": width, **context})


# -- versions -----------------------------------------------------------------------------------


async def _versions_context(request: AnyRequest, draft: drafts.Draft) -> dict[str, Any]:
    now = request_now(request)
    try:
        versions = await drafts.list_versions(draft.key, now)
    except drafts.DraftNotFound:
        versions = []
    pending = await drafts.diff_draft(draft.key, now)
    return {
        "versions": versions,
        "pending": pending,
        "draft": draft,
        "key": draft.key,
        "breaking": [],
        "publish_errors": [],
        "diff": None,
        "old": versions[1].version if len(versions) > 1 else None,
        "new": versions[0].version if versions else None,
        "change_names": _change_names(),
        "breaking_names": _breaking_names(),
        "publish_values": {},
        "local_time": _local_time,
    }


def _local_time(moment: dt.datetime) -> str:
    return moment.astimezone(BUSINESS_TZ).strftime("%Y-%m-%d %H:%M")


def _change_names() -> dict[str, str]:
    return {"added": _("Added"), "removed": _("Removed"), "changed": _("Changed")}


def _breaking_names() -> dict[str, str]:
    return {
        "removed_field": _("field removed while drafts hold values for it"),
        "type_changed": _("type changed while drafts hold values"),
        "removed_option": _("option removed that drafts chose"),
    }


@get("/designer/{key:str}/diff", opt=needs(Permission.TEMPLATE_MANAGE))
async def versions_diff(
    request: AnyRequest,
    key: FromPath[str],
    old: VersionNumber,
    new: VersionNumber,
) -> Template:
    """What changed from version `old` to `new`: fields and steps added, removed, changed."""
    key = _key_param(key)
    diff = await drafts.diff_published(key, old, new)
    return Template(
        "designer/_diff.html",
        context={"diff": diff, "old": old, "new": new, "change_names": _change_names()},
    )


def _effective(posted: Mapping[str, Any], now: dt.datetime) -> dt.datetime:
    if posted.get("effective") != "later":
        return now
    text = str(posted.get("effective_from") or "")
    try:
        local = dt.datetime.fromisoformat(text)
    except ValueError:
        raise EditError("", "bad_value", _("Choose the date and time the version takes effect.")) from None
    if local.tzinfo is None:
        local = local.replace(tzinfo=BUSINESS_TZ)
    return max(local.astimezone(dt.UTC), now)


@post("/designer/{key:str}/publish", opt=needs(Permission.TEMPLATE_MANAGE), status_code=200)
async def versions_publish(request: AnyRequest, key: FromPath[str]) -> Response[Any]:
    """Publish the draft with a change note, in effect now or from a date; breaking changes need consent."""
    key = _key_param(key)
    posted = await _posted(request)
    draft = await _draft(key, request)
    note = str(posted.get("change_note") or "").strip()
    context = await _versions_context(request, draft)
    context["publish_values"] = posted
    if not note or len(note) > 2_000:
        context["publish_errors"] = [_("Write a change note (at most 2000 characters).")]
        return _versions_fragment(context, 422)
    now = request_now(request)
    try:
        effective = _effective(posted, now)
    except EditError as exc:
        context["publish_errors"] = [str(exc)]
        return _versions_fragment(context, 422)
    try:
        number = await drafts.publish(
            key,
            drafts.PublishRequest(
                change_note=note,
                effective_from=effective,
                accept_breaking=bool(posted.get("accept_breaking")),
            ),
            row_version=_row_version(posted),
            actor=actor_of(request),
            now=now,
            flow_checks=FLOW_CHECKS,
            locale=current_locale(),
        )
    except drafts.PublishRefused as exc:
        context["publish_errors"] = [f"{p.path}: {_clean(p.message)}" for p in exc.problems]
        context["breaking"] = exc.breaking
        return _versions_fragment(context, 422)
    context = await _versions_context(request, await _draft(key, request))
    context["notice"] = _("Published as V{n}.").format(n=number)
    return _versions_fragment(context, 200)


def _versions_fragment(context: dict[str, Any], status: int) -> Response[Any]:
    headers = {MESSAGE_HEADER: "1"} if status >= 400 else {}
    return Template(
        "designer/_versions.html", context={**context, "fragment": True}, status_code=status, headers=headers
    )


@post("/designer/{key:str}/rollback", opt=needs(Permission.TEMPLATE_MANAGE), status_code=200)
async def versions_rollback(request: AnyRequest, key: FromPath[str]) -> Response[Any]:
    """Publish an earlier version again, in effect now (the draft becomes that version too)."""
    key = _key_param(key)
    posted = await _posted(request)
    try:
        version = int(str(posted.get("version", "")))
    except ValueError:
        raise HTTPException(status_code=400, detail="version: a whole number is needed") from None
    number = await drafts.rollback(key, version, actor=actor_of(request), now=request_now(request))
    context = await _versions_context(request, await _draft(key, request))
    context["notice"] = _("V{old} published again as V{n}.").format(old=version, n=number)
    return _versions_fragment(context, 200)


# -- import and export --------------------------------------------------------------------------


def _bundle_of(draft: drafts.Draft, version: int | None) -> TemplateBundle:
    meta = draft.meta
    return TemplateBundle(
        key=draft.key,
        category=meta.category or "general",
        name=BundleText(zh=meta.name_zh or draft.key, en=meta.name_en),
        description=BundleDescription(zh=meta.description_zh, en=meta.description_en),
        version=version or 1,
        form={**draft.form, "key": draft.key},
        flow=draft.flow,
    )


def _download(body: bytes | str, media_type: str, filename: str) -> Response[Any]:
    return Response(
        body, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


async def _bundle_download(request: AnyRequest, key: str) -> Response[Any]:
    draft = await _draft(_key_param(key), request)
    return _download(
        encode_bundle(_bundle_of(draft, draft.published_version)), "application/json", f"{key}.json"
    )


async def _bpmn_download(request: AnyRequest, key: str) -> Response[Any]:
    draft = await _draft(_key_param(key), request)
    graph = _draft_graph(draft)
    if graph is None:
        raise EditError("", "bad_value", _("The flow has problems; fix them before exporting BPMN."))
    return _download(to_bpmn(graph), "application/xml", f"{key}.bpmn")


@get("/designer/{key:str}/export.json", opt=needs(Permission.TEMPLATE_MANAGE))
async def export_bundle(request: AnyRequest, key: FromPath[str]) -> Response[Any]:
    """The draft as a template bundle (JSON; its format is /designer/bundle-schema.json)."""
    return await _bundle_download(request, key)


@get("/designer/{key:str}/export.bpmn", opt=needs(Permission.TEMPLATE_MANAGE))
async def export_bpmn(request: AnyRequest, key: FromPath[str]) -> Response[Any]:
    """The draft's flow as BPMN 2.0 XML."""
    return await _bpmn_download(request, key)


@get("/designer/bundle-schema.json", opt=needs(Permission.TEMPLATE_MANAGE))
async def bundle_schema_page() -> Response[Any]:
    return Response(bundle_json_schema(), media_type="application/schema+json")


def _bpmn_where(problem: BpmnProblem) -> str:
    return f"{problem.element}#{problem.id}" if problem.id else problem.element


async def import_design(request: AnyRequest, key: str, data: bytes, filename: str) -> str:
    """A bundle or a BPMN file becomes the draft of `key` (a BPMN file replaces the flow only)."""
    now = request_now(request)
    text = data.lstrip()
    if filename.lower().endswith((".bpmn", ".xml")) or text.startswith(b"<"):
        imported = from_bpmn(data, key=key)
        draft = await _draft(key, request)
        flow = msgspec.to_builtins(imported.graph)
        flow["key"] = key
        await drafts.replace_draft(
            key,
            draft.meta,
            draft.form,
            flow,
            actor=actor_of(request),
            now=now,
            label=f"imported BPMN {filename}"[:200],
        )
        return _("The flow was imported from {name}.").format(name=filename)
    checked = decode_bundle(data, current_locale(), flow_checks=FLOW_CHECKS)
    bundle = checked.bundle
    meta = drafts.DraftMeta(
        category=bundle.category,
        name_zh=bundle.name.zh,
        name_en=bundle.name.en,
        description_zh=bundle.description.zh,
        description_en=bundle.description.en,
    )
    flow = {**bundle.flow, "key": key} if bundle.flow else None
    await drafts.replace_draft(
        key,
        meta,
        {**bundle.form, "key": key},
        flow,
        actor=actor_of(request),
        now=now,
        label=f"imported {filename}"[:200],
    )
    return _("The template was imported from {name}.").format(name=filename)


@post("/designer/{key:str}/import", opt=needs(Permission.TEMPLATE_MANAGE), status_code=200)
async def import_page(request: AnyRequest, key: FromPath[str]) -> Template:
    """Upload a bundle (.json) or a BPMN file: it becomes the draft, or every problem is listed."""
    key = _key_param(key)
    form = await request.form()
    upload = form.get("file")
    errors: list[dict[str, str]] = []
    notice = ""
    status = 200
    if not isinstance(upload, UploadFile) or not upload.filename:
        errors = [{"path": "file", "message": _("Choose a .json bundle or a .bpmn file.")}]
    else:
        data = await upload.read()
        if len(data) > MAX_UPLOAD:
            errors = [{"path": "file", "message": _("The file is larger than 5 MB.")}]
        else:
            try:
                notice = await import_design(request, key, data, upload.filename)
            except (BundleError, BpmnImportError) as exc:
                errors = _problem_list(exc)
    if errors:
        status = 422
    draft = await _draft(key, request)
    return Template(
        "designer/designer.html",
        context={
            "section": "designer",
            "tab": "transfer",
            "draft": draft,
            "key": key,
            "import_errors": errors,
            "notice": notice,
        },
        status_code=status,
    )


# -- the JSON API -------------------------------------------------------------------------------


class MetaIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name_zh: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    name_en: Annotated[str, msgspec.Meta(max_length=100)] = ""
    category: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "general"
    description_zh: Annotated[str, msgspec.Meta(max_length=2_000)] = ""
    description_en: Annotated[str, msgspec.Meta(max_length=2_000)] = ""


class DraftIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The whole design; `row_version` is the one read with it (409 when someone saved since)."""

    form: dict[str, Any]
    flow: dict[str, Any] | None = None
    meta: MetaIn | None = None
    label: Annotated[str, msgspec.Meta(max_length=200)] = ""
    row_version: int


class PublishIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    change_note: Annotated[str, msgspec.Meta(min_length=1, max_length=2_000)]
    effective_from: dt.datetime | None = None
    """In effect from (with a UTC offset); now when absent or past."""
    accept_breaking: bool = False
    row_version: int


class RowVersionIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    row_version: int


class RollbackIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    version: Annotated[int, msgspec.Meta(ge=1)]
    change_note: Annotated[str, msgspec.Meta(max_length=2_000)] = ""


class TemplateRowOut(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    name: str
    category: str
    version: int | None
    pending: bool


class PublishedOut(msgspec.Struct, frozen=True, kw_only=True):
    version: int


class ImportOut(msgspec.Struct, frozen=True, kw_only=True):
    draft: drafts.Draft
    message: str


@get("/api/v1/designer/templates", opt=needs(Permission.TEMPLATE_MANAGE))
async def api_templates(q: TextQuery = "") -> list[TemplateRowOut]:
    """Templates with their published version and whether the draft holds unpublished changes."""
    return [
        TemplateRowOut(
            key=r["key"], name=r["name"], category=r["category"], version=r["version"], pending=r["pending"]
        )
        for r in await _template_rows(q)
    ]


@post("/api/v1/designer/templates", opt=needs(Permission.TEMPLATE_MANAGE), status_code=201)
async def api_create(request: AnyRequest, data: JSONBody[NewTemplate]) -> drafts.Draft:
    await _create(data, request)
    return await _draft(data.key, request)


@get("/api/v1/designer/templates/{key:str}/draft", opt=needs(Permission.TEMPLATE_MANAGE))
async def api_draft(request: AnyRequest, key: FromPath[str]) -> drafts.Draft:
    """The draft with its problems (path and reason each) and `row_version`."""
    return await _draft(_key_param(key), request)


@put("/api/v1/designer/templates/{key:str}/draft", opt=needs(Permission.TEMPLATE_MANAGE))
async def api_save_draft(request: AnyRequest, key: FromPath[str], data: JSONBody[DraftIn]) -> drafts.Draft:
    """Replace the design (one undoable change); 409 when `row_version` is stale."""
    key = _key_param(key)
    meta = drafts.DraftMeta(**msgspec.to_builtins(data.meta)) if data.meta else None
    return await drafts.save_draft(
        key,
        drafts.DraftEdit(
            form=data.form, flow=data.flow, meta=meta, label=data.label or "saved through the API"
        ),
        row_version=data.row_version,
        actor=actor_of(request),
        now=request_now(request),
        flow_checks=FLOW_CHECKS,
        locale=current_locale(),
    )


@post("/api/v1/designer/templates/{key:str}/undo", opt=needs(Permission.TEMPLATE_MANAGE), status_code=200)
async def api_undo(request: AnyRequest, key: FromPath[str], data: JSONBody[RowVersionIn]) -> drafts.Draft:
    return await drafts.undo(
        _key_param(key),
        row_version=data.row_version,
        actor=actor_of(request),
        now=request_now(request),
        flow_checks=FLOW_CHECKS,
    )


@post("/api/v1/designer/templates/{key:str}/redo", opt=needs(Permission.TEMPLATE_MANAGE), status_code=200)
async def api_redo(request: AnyRequest, key: FromPath[str], data: JSONBody[RowVersionIn]) -> drafts.Draft:
    return await drafts.redo(
        _key_param(key),
        row_version=data.row_version,
        actor=actor_of(request),
        now=request_now(request),
        flow_checks=FLOW_CHECKS,
    )


@post("/api/v1/designer/templates/{key:str}/publish", opt=needs(Permission.TEMPLATE_MANAGE), status_code=201)
async def api_publish(request: AnyRequest, key: FromPath[str], data: JSONBody[PublishIn]) -> PublishedOut:
    """Publish the draft; 422 lists its problems, or the breaking changes not accepted."""
    now = request_now(request)
    effective = data.effective_from or now
    if effective.tzinfo is None:
        raise HTTPException(status_code=400, detail="effective_from: give a UTC offset")
    number = await drafts.publish(
        _key_param(key),
        drafts.PublishRequest(
            change_note=data.change_note,
            effective_from=max(effective, now),
            accept_breaking=data.accept_breaking,
        ),
        row_version=data.row_version,
        actor=actor_of(request),
        now=now,
        flow_checks=FLOW_CHECKS,
        locale=current_locale(),
    )
    return PublishedOut(version=number)


@post("/api/v1/designer/templates/{key:str}/rollback", opt=needs(Permission.TEMPLATE_MANAGE), status_code=201)
async def api_rollback(request: AnyRequest, key: FromPath[str], data: JSONBody[RollbackIn]) -> PublishedOut:
    number = await drafts.rollback(
        _key_param(key),
        data.version,
        actor=actor_of(request),
        now=request_now(request),
        change_note=data.change_note,
    )
    return PublishedOut(version=number)


@get("/api/v1/designer/templates/{key:str}/versions", opt=needs(Permission.TEMPLATE_MANAGE))
async def api_versions(request: AnyRequest, key: FromPath[str]) -> list[drafts.VersionInfo]:
    return await drafts.list_versions(_key_param(key), request_now(request))


@get("/api/v1/designer/templates/{key:str}/diff", opt=needs(Permission.TEMPLATE_MANAGE))
async def api_diff(
    key: FromPath[str],
    old: VersionNumber,
    new: VersionNumber,
) -> VersionDiff:
    return await drafts.diff_published(_key_param(key), old, new)


@get("/api/v1/designer/templates/{key:str}/export", opt=needs(Permission.TEMPLATE_MANAGE))
async def api_export(
    request: AnyRequest, key: FromPath[str], format: FromQuery[str] = "bundle"
) -> Response[Any]:
    """The draft as a bundle (`format=bundle`, JSON) or its flow as BPMN 2.0 (`format=bpmn`)."""
    if format == "bpmn":
        return await _bpmn_download(request, key)
    if format != "bundle":
        raise HTTPException(status_code=400, detail="format: bundle or bpmn")
    return await _bundle_download(request, key)


@post("/api/v1/designer/templates/{key:str}/import", opt=needs(Permission.TEMPLATE_MANAGE), status_code=200)
async def api_import(request: AnyRequest, key: FromPath[str]) -> ImportOut:
    """The body (a bundle as JSON, or BPMN XML) becomes the draft; 422 names every element at fault."""
    key = _key_param(key)
    data = await request.body()
    if len(data) > MAX_UPLOAD:
        raise HTTPException(status_code=413, detail="the body is larger than 5 MB")
    xml = "xml" in request.headers.get("content-type", "")
    message = await import_design(request, key, data, f"{key}.bpmn" if xml else f"{key}.json")
    return ImportOut(draft=await _draft(key, request), message=message)


@get("/api/v1/designer/bundle-schema", opt=needs(Permission.TEMPLATE_MANAGE))
async def api_bundle_schema() -> Response[Any]:
    """The JSON Schema (2020-12) of the template bundle format."""
    return Response(bundle_json_schema(), media_type="application/schema+json")


_HANDLERS = [
    designer_list,
    designer_create,
    bundle_schema_page,
    designer_page,
    field_add,
    field_move,
    field_remove,
    field_property,
    template_meta,
    field_select,
    draft_undo,
    draft_redo,
    preview_fill,
    versions_diff,
    versions_publish,
    versions_rollback,
    export_bundle,
    export_bpmn,
    import_page,
    api_templates,
    api_create,
    api_draft,
    api_save_draft,
    api_undo,
    api_redo,
    api_publish,
    api_rollback,
    api_versions,
    api_diff,
    api_export,
    api_import,
    api_bundle_schema,
]

ROUTES = [
    Router(
        path="/",
        route_handlers=_HANDLERS,
        exception_handlers={
            drafts.DesignError: design_error_handler,
            EditError: design_error_handler,
            BundleError: design_error_handler,
            BpmnImportError: design_error_handler,
        },
    )
]
