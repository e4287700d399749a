"""The flow designer: a template draft's flow as a vertical list of steps, edited over htmx.

Every action posts the draft's `row_version` and one small edit (`builder.flow_edits`); the
draft store (`builder.drafts`) saves it as an undoable revision and the designer re-renders,
problems and all, with the step just touched open in the side panel. A refused edit answers
4xx with a message `app.js` swaps in place (the `X-Formflow-Message` header), a stale page 409.
Only process admins reach these routes.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Mapping
from typing import Any

from litestar import get, post
from litestar.datastructures import FormMultiDict
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from builder import drafts
from builder.bundle import BundleProblem
from builder.flow_edits import (
    ACCESS,
    STEP_KINDS,
    EditError,
    add_arm,
    insert_step,
    remove_step,
    set_condition,
    set_field_access,
    update_step,
)
from builder.flow_layout import layout
from plugins.registry import PluginInfo, default_registry
from plugins.validation import validate_plugin_nodes
from runtime.flow.graph import Action, ApprovalMode, EmptyPolicy, OverdueAction, TaskPurpose
from storage.access import Permission, Role
from storage.tables import Person
from web.auth.guards import needs
from web.context import AnyRequest, actor_of
from web.errors import refusal
from web.i18n import _, current_locale

FLOW_CHECKS = (validate_plugin_nodes,)
RULE_KINDS = (
    "department_head",
    "head_above",
    "department_head_of",
    "supervising_leader",
    "role",
    "people",
    "person_field",
    "department_field_head",
    "initiator_choice",
    "initiator",
)
OPERATORS = ("==", "!=", ">", ">=", "<", "<=")
FieldInfo = tuple[str, str, str]
"""(key, label, type) of a form field or "table.column"."""


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# -- pages ----------------------------------------------------------------------------------


@get("/designer/{key:str}/flow", opt=needs(Permission.TEMPLATE_MANAGE))
async def flow_designer(request: AnyRequest, key: FromPath[str], step: FromQuery[str] = "") -> Template:
    """The designer (a fragment for htmx, the whole page otherwise)."""
    draft = await _open(key)
    return await _render(request, draft, step or None)


@get("/designer/{key:str}/flow/graph", opt=needs(Permission.TEMPLATE_MANAGE))
async def flow_graph(key: FromPath[str]) -> Template:
    """The same flow as a read-only picture (SVG)."""
    draft = await _open(key)
    return Template("designer/flow_graph.html", context={"key": key, "picture": picture(draft.flow or {})})


# -- actions --------------------------------------------------------------------------------


@post("/designer/{key:str}/flow/insert", opt=needs(Permission.TEMPLATE_MANAGE), status_code=200)
async def flow_insert(request: AnyRequest, key: FromPath[str]) -> Template:
    form = await request.form()
    kind = form.get("kind", "")

    def edit(flow: dict[str, Any]) -> tuple[dict[str, Any], str]:
        on_edge, before = form.get("on_edge"), form.get("before")
        if on_edge not in (None, ""):
            return insert_step(flow, kind, on_edge=_int(on_edge, "on_edge"))
        return insert_step(flow, kind, before=before or None)

    return await _apply(request, key, form, edit, _("Added a step"))


@post(
    "/designer/{key:str}/flow/steps/{node_id:str}/remove",
    opt=needs(Permission.TEMPLATE_MANAGE),
    status_code=200,
)
async def flow_remove(request: AnyRequest, key: FromPath[str], node_id: FromPath[str]) -> Template:
    form = await request.form()
    return await _apply(
        request, key, form, lambda flow: (remove_step(flow, node_id), ""), _("Removed a step")
    )


@post("/designer/{key:str}/flow/steps/{node_id:str}", opt=needs(Permission.TEMPLATE_MANAGE), status_code=200)
async def flow_update(request: AnyRequest, key: FromPath[str], node_id: FromPath[str]) -> Template:
    form = await request.form()
    try:
        people = await _people_ids(form)
    except Refused as refused:
        return refusal(refused.status, refused.message, target="#flow-message")

    def edit(flow: dict[str, Any]) -> tuple[dict[str, Any], str]:
        node = next((n for n in flow.get("nodes", []) if n.get("id") == node_id), None)
        if node is None:
            raise EditError(f"no step {node_id!r}")
        return update_step(flow, node_id, step_settings(node, form, people)), node_id

    return await _apply(request, key, form, edit, _("Changed a step"))


@post(
    "/designer/{key:str}/flow/steps/{node_id:str}/permissions",
    opt=needs(Permission.TEMPLATE_MANAGE),
    status_code=200,
)
async def flow_permissions(request: AnyRequest, key: FromPath[str], node_id: FromPath[str]) -> Template:
    form = await request.form()
    access = {
        name.removeprefix("access."): value for name, value in form.items() if name.startswith("access.")
    }
    # read-only is the default: only the others are stored
    stored = {field: value for field, value in access.items() if value != "read_only"}
    return await _apply(
        request,
        key,
        form,
        lambda flow: (set_field_access(flow, node_id, stored), node_id),
        _("Changed field access"),
    )


@post(
    "/designer/{key:str}/flow/steps/{node_id:str}/arms",
    opt=needs(Permission.TEMPLATE_MANAGE),
    status_code=200,
)
async def flow_add_arm(request: AnyRequest, key: FromPath[str], node_id: FromPath[str]) -> Template:
    form = await request.form()
    return await _apply(request, key, form, lambda flow: (add_arm(flow, node_id), node_id), _("Added an arm"))


@post("/designer/{key:str}/flow/edges/{index:int}", opt=needs(Permission.TEMPLATE_MANAGE), status_code=200)
async def flow_condition(request: AnyRequest, key: FromPath[str], index: FromPath[int]) -> Template:
    form = await request.form()

    def edit(flow: dict[str, Any]) -> tuple[dict[str, Any], str]:
        source = flow["edges"][index]["from"] if 0 <= index < len(flow.get("edges", [])) else ""
        if form.get("default"):
            return set_condition(flow, index, None, default=True), source
        return set_condition(flow, index, condition_from(form)), source

    return await _apply(request, key, form, edit, _("Changed a condition"))


@post("/designer/{key:str}/flow/undo", opt=needs(Permission.TEMPLATE_MANAGE), status_code=200)
async def flow_undo(request: AnyRequest, key: FromPath[str]) -> Template:
    return await _history(request, key, drafts.undo)


@post("/designer/{key:str}/flow/redo", opt=needs(Permission.TEMPLATE_MANAGE), status_code=200)
async def flow_redo(request: AnyRequest, key: FromPath[str]) -> Template:
    return await _history(request, key, drafts.redo)


# -- applying an edit -----------------------------------------------------------------------


async def _apply(request: AnyRequest, key: str, form: FormMultiDict, edit: Any, label: str) -> Template:
    try:
        row_version = _int(form.get("row_version"), "row_version")
        draft = await _open(key)
        if draft.row_version != row_version:
            raise drafts.DraftConflict("stale")
        flow, selected = edit(draft.flow or {})
        saved = await drafts.save_draft(
            key,
            drafts.DraftEdit(form=draft.form, flow=flow, label=label),
            row_version=row_version,
            actor=actor_of(request),
            now=dt.datetime.now(dt.UTC),
            flow_checks=FLOW_CHECKS,
        )
    except Refused as refused:
        return refusal(refused.status, refused.message, target="#flow-message")
    except drafts.DraftConflict:
        return refusal(
            409,
            _("Someone else changed this draft. Reload the designer to see their change."),
            target="#flow-message",
        )
    except drafts.DraftNotFound:
        return refusal(404, _("This template has no draft."), target="#flow-message")
    except EditError as exc:
        return refusal(422, str(exc), target="#flow-message")
    return await _render(request, saved, selected or None, saved_label=label)


async def _history(request: AnyRequest, key: str, move: Any) -> Template:
    form = await request.form()
    try:
        saved = await move(
            key,
            row_version=_int(form.get("row_version"), "row_version"),
            actor=actor_of(request),
            now=dt.datetime.now(dt.UTC),
            flow_checks=FLOW_CHECKS,
        )
    except Refused as refused:
        return refusal(refused.status, refused.message, target="#flow-message")
    except drafts.DraftConflict:
        return refusal(
            409,
            _("Someone else changed this draft. Reload the designer to see their change."),
            target="#flow-message",
        )
    except drafts.NothingToUndo:
        return refusal(409, _("Nothing more to undo or redo."), target="#flow-message")
    return await _render(request, saved, None)


async def _open(key: str) -> drafts.Draft:
    try:
        return await drafts.open_draft(
            key, dt.datetime.now(dt.UTC), flow_checks=FLOW_CHECKS, locale=current_locale()
        )
    except drafts.DraftNotFound as exc:
        raise NotFoundException(str(exc)) from exc


async def _people_numbers(node: Mapping[str, Any] | None) -> dict[str, str]:
    """Employee numbers of the named people in the open step's rules, for the people pickers."""
    found: dict[str, str] = {}
    for prefix in ("assignees", "owner", "recipients"):
        rule = (node or {}).get(prefix)
        if isinstance(rule, dict) and rule.get("kind") == "people" and rule.get("ids"):
            ids = [int(i) for i in rule["ids"] if isinstance(i, int)]
            rows = (
                await Person.select(Person.id, Person.employee_no).where(Person.id.is_in(ids)) if ids else []
            )
            numbers = {row["id"]: row["employee_no"] for row in rows}
            found[prefix] = ", ".join(numbers.get(i, str(i)) for i in ids)
    return found


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Refused(422, _("{name}: a whole number is needed").format(name=name)) from None


# -- rendering ------------------------------------------------------------------------------


async def _render(
    request: AnyRequest, draft: drafts.Draft, selected: str | None, saved_label: str = ""
) -> Template:
    flow = draft.flow or {"nodes": [], "edges": []}
    nodes = {node.get("id"): node for node in flow.get("nodes", [])}
    problems = _problems_by_node(draft.problems)
    fields = form_fields(draft.form)
    plugins = plugin_choices()
    context = {
        "key": draft.key,
        "draft": draft,
        "shape": layout(flow),
        "nodes": nodes,
        "edges": flow.get("edges", []),
        "problems": problems,
        "flow_problems": problems.get("", []),
        "selected": nodes.get(selected) if selected else None,
        "kinds": STEP_KINDS,
        "kind_labels": kind_labels(),
        "rule_labels": rule_labels(),
        "fields": fields,
        "choosable": {key: label for key, label, _type in fields},
        "roles": role_labels(),
        "modes": [mode.value for mode in ApprovalMode],
        "empty_policies": [policy.value for policy in EmptyPolicy],
        "overdue_actions": [action.value for action in OverdueAction],
        "actions": [action.value for action in Action],
        "purposes": [purpose.value for purpose in TaskPurpose],
        "access_levels": ACCESS,
        "operators": OPERATORS,
        "plugins": plugins,
        "saved_label": saved_label,
        "summary": functools.partial(node_summary, plugin_titles={p["name"]: p["title"] for p in plugins}),
        "people_numbers": await _people_numbers(nodes.get(selected) if selected else None),
    }
    fragment = request.headers.get("hx-request") == "true" and request.headers.get("hx-boosted") != "true"
    return Template("designer/flow_canvas.html" if fragment else "designer/flow.html", context=context)


def _problems_by_node(problems: list[BundleProblem]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for problem in problems:
        if problem.path.startswith("flow:"):
            grouped.setdefault(problem.path.removeprefix("flow:"), []).append(problem.message)
        elif problem.path.startswith("flow"):
            grouped.setdefault("", []).append(problem.message)
    return grouped


def form_fields(form: Mapping[str, Any]) -> list[FieldInfo]:
    """The draft form's value fields and table columns, for pickers and the permission matrix."""
    locale = current_locale()
    found: list[FieldInfo] = []
    for field in form.get("fields", []) or []:
        if not isinstance(field, dict) or field.get("type") in ("section", "description"):
            continue
        label = _text(field.get("label"), locale) or str(field.get("key"))
        found.append((str(field.get("key")), label, str(field.get("type"))))
        if field.get("type") == "detail_table":
            for column in field.get("columns", []) or []:
                column_label = _text(column.get("label"), locale) or str(column.get("key"))
                found.append(
                    (
                        f"{field.get('key')}.{column.get('key')}",
                        f"{label} / {column_label}",
                        str(column.get("type")),
                    )
                )
    return found


def _text(value: Any, locale: str) -> str:
    if not isinstance(value, dict):
        return str(value or "")
    first = value.get("en") if locale == "en" else value.get("zh")
    return str(first or value.get("zh") or value.get("en") or "")


def kind_labels() -> dict[str, str]:
    return {
        "start": _("Start"),
        "end": _("End"),
        "approval": _("Approval"),
        "cc": _("CC"),
        "branch": _("Condition branch"),
        "parallel": _("Parallel branches"),
        "join": _("Join"),
        "task": _("Work stage"),
        "wait": _("Wait"),
        "plugin": _("Plugin step"),
    }


def role_labels() -> dict[str, str]:
    labels = {
        Role.EMPLOYEE: _("Employee"),
        Role.DEPARTMENT_HEAD: _("Department head"),
        Role.SUPERVISING_LEADER: _("Supervising leader"),
        Role.FINANCE_SPECIALIST: _("Finance specialist"),
        Role.PROCESS_ADMIN: _("Process admin"),
        Role.SYSTEM_ADMIN: _("System admin"),
    }
    return {role.value: labels.get(role, role.value) for role in Role}


def rule_labels() -> dict[str, str]:
    return {
        "department_head": _("Head of the applicant's department"),
        "head_above": _("Head of a department above"),
        "department_head_of": _("Head of a named department"),
        "supervising_leader": _("Supervising leader"),
        "role": _("Everyone with a role"),
        "people": _("Named people"),
        "person_field": _("Person chosen in a form field"),
        "department_field_head": _("Head of the department chosen in a form field"),
        "initiator_choice": _("Chosen by the applicant"),
        "initiator": _("The applicant"),
    }


def node_summary(node: Mapping[str, Any], plugin_titles: Mapping[str, str] | None = None) -> str:
    """One line under a step's title: who it goes to, or what it does."""
    labels = rule_labels()
    kind = node.get("type")
    rule = node.get("assignees") or node.get("owner") or node.get("recipients")
    if isinstance(rule, dict):
        text = labels.get(str(rule.get("kind")), str(rule.get("kind")))
        detail = rule.get("role") or rule.get("department") or rule.get("field") or rule.get("levels")
        if kind == "approval":
            mode = {"any": _("any one approves"), "all": _("all approve"), "sequential": _("in order")}
            return f"{text}{f' ({detail})' if detail else ''} · {mode.get(str(node.get('mode', 'any')), '')}"
        return f"{text}{f' ({detail})' if detail else ''}"
    if kind == "plugin":
        return (plugin_titles or {}).get(str(node.get("plugin")), str(node.get("plugin")))
    if kind == "wait":
        return _("until {field} + {days} working days").format(
            field=node.get("field"), days=node.get("working_days", 0)
        )
    return ""


def plugin_choices() -> list[dict[str, Any]]:
    locale = current_locale()
    choices = []
    for info in default_registry().infos():
        choices.append(
            {
                "name": info.name,
                "title": info.title.en if locale == "en" and info.title.en else info.title.zh,
                "fields": config_fields(info),
            }
        )
    return choices


def config_fields(info: PluginInfo) -> list[dict[str, Any]]:
    """A plugin's config form, from the JSON Schema of its config type: one input per property."""
    schema = info.config_schema
    definitions = schema.get("$defs", {})
    root = schema
    if "$ref" in schema:
        root = definitions.get(schema["$ref"].rsplit("/", 1)[-1], {})
    required = set(root.get("required", []))
    fields = []
    for name, spec in root.get("properties", {}).items():
        if "$ref" in spec:
            spec = {
                **definitions.get(spec["$ref"].rsplit("/", 1)[-1], {}),
                **{k: v for k, v in spec.items() if k != "$ref"},
            }
        kind = spec.get("type")
        if "enum" in spec:
            widget = "select"
        elif kind == "boolean":
            widget = "checkbox"
        elif kind in ("integer", "number"):
            widget = "number"
        elif kind == "string":
            widget = "text"
        else:
            widget = "json"
        fields.append(
            {
                "name": name,
                "widget": widget,
                "options": spec.get("enum", []),
                "required": name in required,
                "description": spec.get("description", ""),
                "default": spec.get("default"),
            }
        )
    return fields


# -- reading the panel's form ---------------------------------------------------------------


async def _people_ids(form: FormMultiDict) -> dict[str, list[int]]:
    """Employee numbers typed into people pickers -> person ids, per rule prefix."""
    found: dict[str, list[int]] = {}
    for prefix in ("assignees", "owner", "recipients"):
        raw = str(form.get(f"{prefix}.people", "") or "")
        numbers = [part.strip() for part in raw.replace("，", ",").split(",") if part.strip()]
        if not numbers:
            continue
        rows = await Person.select(Person.id, Person.employee_no).where(Person.employee_no.is_in(numbers))
        by_number = {row["employee_no"]: row["id"] for row in rows}
        missing = [number for number in numbers if number not in by_number]
        if missing:
            raise Refused(422, _("Unknown employee numbers: {numbers}").format(numbers=", ".join(missing)))
        found[prefix] = [by_number[number] for number in numbers]
    return found


def step_settings(
    node: Mapping[str, Any], form: FormMultiDict, people: Mapping[str, list[int]]
) -> dict[str, Any]:
    """A step's settings from its panel's form (everything the panel shows; the rest is kept)."""
    kind = node.get("type")
    settings = {k: v for k, v in node.items() if k not in ("type", "id")}
    settings["title"] = str(form.get("title", settings.get("title", "")) or "")[:200]
    if kind == "approval":
        settings["assignees"] = _rule(form, "assignees", people)
        settings["mode"] = form.get("mode", "any")
        settings["empty_policy"] = form.get("empty_policy", "to_process_admin")
        settings["skip_if_initiator"] = bool(form.get("skip_if_initiator"))
        settings["skip_if_approved_previous"] = bool(form.get("skip_if_approved_previous"))
        settings["sla"] = {
            "working_hours": _number(form, "sla.working_hours", 16),
            "urgent_hours": _number(form, "sla.urgent_hours", 24),
            "remind_before_hours": _number(form, "sla.remind_before_hours", None),
            "overdue_action": form.get("sla.overdue_action", "remind"),
            "overdue_after_hours": _number(form, "sla.overdue_after_hours", 0),
        }
        settings["actions"] = [action for action in form.getall("actions", []) if action] or [
            "approve",
            "reject",
        ]
    elif kind == "task":
        settings["owner"] = _rule(form, "owner", people)
        settings["planned_days"] = int(_number(form, "planned_days", 1) or 0)
        settings["purpose"] = form.get("purpose", "stage")
        settings["due_from_field"] = form.get("due_from_field") or None
        settings["empty_policy"] = form.get("empty_policy", "to_process_admin")
    elif kind == "cc":
        settings["recipients"] = _rule(form, "recipients", people)
    elif kind == "wait":
        settings["field"] = form.get("field", "")
        settings["working_days"] = int(_number(form, "working_days", 0) or 0)
    elif kind == "plugin":
        settings["plugin"] = form.get("plugin", settings.get("plugin", ""))
        if settings["plugin"] == node.get("plugin"):
            settings["config"] = _plugin_config(str(settings["plugin"]), form, dict(node.get("config") or {}))
        else:
            settings["config"] = {}
    return settings


def _rule(form: FormMultiDict, prefix: str, people: Mapping[str, list[int]]) -> dict[str, Any]:
    kind = form.get(f"{prefix}.kind", "department_head")
    rule: dict[str, Any] = {"kind": kind}
    if kind == "role":
        rule["role"] = form.get(f"{prefix}.role", "")
    elif kind == "people":
        rule["ids"] = list(people.get(prefix, []))
    elif kind == "head_above":
        rule["levels"] = int(_number(form, f"{prefix}.levels", 1) or 1)
    elif kind == "department_head_of":
        rule["department"] = form.get(f"{prefix}.department", "")
    elif kind in ("person_field", "department_field_head"):
        rule["field"] = form.get(f"{prefix}.field", "")
    return rule


def _plugin_config(name: str, form: FormMultiDict, config: dict[str, Any]) -> dict[str, Any]:
    info = next((p for p in default_registry().infos() if p.name == name), None)
    if info is None:
        return config
    for spec in config_fields(info):
        field = f"config.{spec['name']}"
        if spec["widget"] == "checkbox":
            config[spec["name"]] = bool(form.get(field))
            continue
        raw = form.get(field)
        if raw is None:
            continue
        raw = str(raw).strip()
        if raw == "":
            config.pop(spec["name"], None)
        elif spec["widget"] == "number":
            config[spec["name"]] = _parse_number(raw, spec["name"])
        elif spec["widget"] == "json":
            try:
                config[spec["name"]] = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise EditError(
                    _("{name}: not valid JSON ({reason})").format(name=spec["name"], reason=exc.msg)
                ) from exc
        else:
            config[spec["name"]] = raw
    return config


def _number(form: FormMultiDict, name: str, default: float | None) -> float | None:
    raw = str(form.get(name, "") or "").strip()
    if raw == "":
        return default
    return _parse_number(raw, name)


def _parse_number(raw: str, name: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise EditError(_("{name}: {value!r} is not a number").format(name=name, value=raw)) from None
    return int(value) if value.is_integer() else value


def condition_from(form: FormMultiDict) -> str:
    """The CEL of the visual condition builder (field, operator, value), or the typed CEL."""
    typed = str(form.get("cel", "") or "").strip()
    field = str(form.get("field", "") or "").strip()
    if not field:
        return typed
    operator = form.get("operator", "==")
    if operator not in OPERATORS:
        raise EditError(_("Unknown operator {operator}").format(operator=operator))
    value = str(form.get("value", "") or "").strip()
    if value == "":
        raise EditError(_("Give the value to compare {field} with").format(field=field))
    try:
        literal = str(_parse_number(value, "value"))
    except EditError:
        literal = value if value in ("true", "false") else json.dumps(value, ensure_ascii=False)
    return f"form.{field} {operator} {literal}"


# -- the read-only picture ------------------------------------------------------------------


def picture(flow: Mapping[str, Any]) -> dict[str, Any]:
    """Boxes and lines of the flow, laid out top to bottom by distance from the start."""
    nodes = [node for node in flow.get("nodes", []) if isinstance(node, dict)]
    edges = [edge for edge in flow.get("edges", []) if isinstance(edge, dict)]
    depth: dict[str, int] = {}
    start = next((n["id"] for n in nodes if n.get("type") == "start"), None)
    frontier = [start] if start else []
    if start:
        depth[start] = 0
    while frontier:
        following = []
        for current in frontier:
            for edge in edges:
                target = edge.get("to")
                if edge.get("from") == current and target not in depth:
                    depth[target] = depth[current] + 1
                    following.append(target)
        frontier = following
    rows: dict[int, int] = {}
    boxes = {}
    width, height, gap_x, gap_y = 160, 44, 24, 36
    for node in nodes:
        level = depth.get(node["id"], max(depth.values(), default=0) + 1)
        column = rows.get(level, 0)
        rows[level] = column + 1
        boxes[node["id"]] = {
            "x": 16 + column * (width + gap_x),
            "y": 16 + level * (height + gap_y),
            "w": width,
            "h": height,
            "title": node.get("title") or node["id"],
            "type": node.get("type"),
        }
    lines = []
    for edge in edges:
        source, target = boxes.get(edge.get("from")), boxes.get(edge.get("to"))
        if source and target:
            lines.append(
                {
                    "x1": source["x"] + width // 2,
                    "y1": source["y"] + height,
                    "x2": target["x"] + width // 2,
                    "y2": target["y"],
                    "label": edge.get("condition") or (_("otherwise") if edge.get("is_default") else ""),
                }
            )
    total_w = 32 + max(rows.values(), default=1) * (width + gap_x)
    total_h = 32 + (max(rows, default=0) + 1) * (height + gap_y)
    return {"boxes": list(boxes.values()), "lines": lines, "width": total_w, "height": total_h}


ROUTES = [
    flow_designer,
    flow_graph,
    flow_insert,
    flow_remove,
    flow_update,
    flow_permissions,
    flow_add_arm,
    flow_condition,
    flow_undo,
    flow_redo,
]
