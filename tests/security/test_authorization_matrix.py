"""The authorization matrix: every route and method x seven personas x {own, another's} object.

The expected outcome of each cell is computed, not written down: from the permission the route
declares (`opt=needs(...)`) and the persona's roles and reach (`storage.access`):

- anonymous: 401 under /api, a redirect to /login (or 401) for pages; public routes: no 5xx;
- a persona lacking the permission: 403;
- a persona holding it: anything but 401/403 for an object in its scope, 403 or 404 for one out of
  its scope (or, for an unsafe request, the answer a missing object gets: the body may be checked
  first as long as nothing is revealed); never a 5xx.
- an object the persona may see but not act on (a department head and a request of their
  department, under `process.start`): refused, 400/403/404/409/422, never a success. Where the
  domain widens a scope (a process admin may mark any request urgent) `DOMAIN_RULES` says so.

The fixture objects are a marketing request by e1001 ("A", with a file and an open task for
e2001) and a product request by e1002 ("B", task for e2002), plus a notification, an API token
and a passkey of every persona. A persona's "own" object is A (B for e1002); owners act last, so
every other persona meets the requests still in flight.

Routes come from the app's route table, so a route added tomorrow is in the matrix tomorrow. A
path parameter the matrix cannot fill fails the test with "add a filler for {param}".

Unsafe methods are sent with a valid CSRF token and a minimal body (`{}` for the API, only the
token for pages): a 4xx for the body is fine, a 5xx never.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from storage.access import Permission, Principal, Role, Scope
from storage.org import load_principal
from storage.tables import Department, Notification, PasskeyCredential, Person, Position
from tests.service.api_client import api_user, ok
from tests.service.support import Clock, marketing_data
from tests.web.session import Client, sign_in
from tests.web.test_attachments import pdf
from tests.web.test_permissions import all_handlers, is_litestar_auto_options
from web.app import create_app
from web.auth.guards import declared_permission
from web.auth.passwords import hash_password

BASE_URL = "http://testserver.local"
HTML = {"accept": "text/html"}
ANONYMOUS = "anonymous"
# persona -> employee number; `p5001` is a pure process admin created for the matrix.
PERSONAS = {
    ANONYMOUS: "",
    "employee": "e1001",
    "other dept": "e1002",
    "dept head": "e2001",
    "finance": "e4001",
    "process admin": "p5001",
    "system admin": "admin",
}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
OWN, OTHERS, NONE = "own", "another's", "-"
# Kinds of objects that belong to one person whatever their role's scope.
PERSONAL = {"notification", "token", "passkey"}


@dataclass(frozen=True)
class Obj:
    """An object a path parameter names: who owns it and the department it counts in."""

    kind: str
    value: str
    owner: int
    department: int | None


@dataclass
class World:
    """The fixture objects: a marketing request by e1001 (with a file, open task for e2001) and a
    product request by e1002 (open task for e2002), plus personal objects of every persona."""

    people: dict[str, Principal]
    instances: dict[str, Obj]  # "A" (e1001's), "B" (e1002's)
    tasks: dict[str, Obj]
    files: dict[str, Obj]
    personal: dict[str, dict[str, Obj]] = field(default_factory=dict)  # kind -> employee_no -> obj
    names: dict[str, str] = field(default_factory=dict)  # "A"/"B" -> activity name


# -- fillers: one per path parameter name ---------------------------------------------------------

Filler = Callable[[World, str, str], tuple[str, Obj | None]]


def _shared(kind: str) -> Filler:
    """The request, task or file of the persona's side (A, or B for the product employee)."""

    def fill(world: World, employee_no: str, relation: str) -> tuple[str, Obj | None]:
        mine = "B" if employee_no == "e1002" else "A"
        key = mine if relation == OWN else ("A" if mine == "B" else "B")
        obj = getattr(world, kind)[key]
        return obj.value, obj

    return fill


def _personal(kind: str) -> Filler:
    def fill(world: World, employee_no: str, relation: str) -> tuple[str, Obj | None]:
        owners = world.personal[kind]
        other = "e1002" if employee_no == "e1001" else "e1001"
        obj = owners.get(employee_no if relation == OWN else other) or owners[other]
        return obj.value, obj

    return fill


def _person(world: World, employee_no: str, relation: str) -> tuple[str, Obj | None]:
    other = "e1002" if employee_no == "e1001" else "e1001"
    who = world.people[employee_no if relation == OWN and employee_no else other]
    return str(who.id), Obj("person", str(who.id), who.id, who.department_id)


def _fixed(value: str) -> Filler:
    return lambda _world, _who, _relation: (value, None)


FILLERS: dict[str, Filler] = {
    "instance_id": _shared("instances"),
    "task_id": _shared("tasks"),
    "uid": _shared("files"),
    "notification_id": _personal("notification"),
    "token_id": _personal("token"),
    "passkey_id": _personal("passkey"),
    "person_id": _person,
    "employee_no": _fixed("e1002"),
    "key": _fixed("marketing-activity"),
    "kind": _fixed("requests"),
    "name": _fixed("corp"),
    "call_id": _fixed("no-such-call"),
    "index": _fixed("0"),
    "node_id": _fixed("head"),
    "suggestion_id": _fixed("1"),
    "review_id": _fixed("1"),
    "item_id": _fixed("1"),
    "file_path": _fixed("app.css"),
    "path": _fixed("swagger"),
}


def params_of(path: str) -> list[str]:
    return PARAM.findall(path)


def missing_fillers(paths: list[str]) -> list[str]:
    return sorted(
        {f"add a filler for {p} (in {path})" for path in paths for p in params_of(path) if p not in FILLERS}
    )


def fill(
    path: str, world: World, employee_no: str, relation: str, *, missing: bool = False
) -> tuple[str, Obj | None]:
    """The path with its parameters filled; `missing`: the object named is one that does not exist."""
    target: Obj | None = None

    def one(match: re.Match[str]) -> str:
        nonlocal target
        value, obj = FILLERS[match.group(1)](world, employee_no, relation)
        target = target or obj
        if missing and obj is not None:
            return "999999" if value.isdigit() else "no-such-object"
        return value

    return PARAM.sub(one, path), target


# -- expected outcomes -----------------------------------------------------------------------------


def reaches(principal: Principal, permission: Permission, obj: Obj) -> bool:
    if obj.kind in PERSONAL:
        return obj.owner == principal.id
    scope = principal.scope(permission)
    if scope is Scope.ALL:
        return True
    if obj.owner == principal.id:
        return True
    return scope is Scope.DEPARTMENT and obj.department in principal.reach


# Where the domain widens a route's declared scope: (path suffix, who may besides the scope).
DOMAIN_RULES: dict[str, Callable[[Principal], bool]] = {
    # the engine lets a process admin mark any request urgent (runtime.flow.engine._mark_urgent)
    "/mark-urgent": lambda principal: Role.PROCESS_ADMIN in principal.roles,
}
VIEWABLE = {"instance", "task", "file"}
REFUSED = (400, 403, 404, 409, 422)


@dataclass(frozen=True)
class Expected:
    """What one cell expects: a label for the table and a check of the response.

    `same_as_missing`: an out-of-scope object the persona cannot see may also be refused for its
    body first, as long as the answer is the one a missing object gets (nothing is revealed)."""

    label: str
    holds: Callable[[httpx.Response], bool]
    same_as_missing: bool = False


def expectation(
    method: str, path: str, permission: Permission, principal: Principal | None, obj: Obj | None
) -> Expected:
    """The expected outcome of one cell, from the declared permission and the persona's roles."""
    if permission is Permission.PUBLIC:
        return Expected("no 5xx", lambda r: r.status_code < 500)
    if principal is None:
        if path.startswith("/api/"):
            return Expected("401", lambda r: r.status_code == 401)
        return Expected(
            "login",
            lambda r: (
                r.status_code == 401
                or (r.status_code in (302, 303) and r.headers.get("location", "").startswith("/login"))
            ),
        )
    if not principal.can(permission):
        return Expected("403", lambda r: r.status_code == 403)
    widened = any(path.endswith(suffix) and rule(principal) for suffix, rule in DOMAIN_RULES.items())
    if obj is None or widened or reaches(principal, permission, obj):
        return Expected("allowed", lambda r: r.status_code not in (401, 403) and r.status_code < 500)
    if obj.kind in VIEWABLE and reaches(principal, Permission.PROCESS_VIEW, obj):
        # Seen but not theirs to act on: refused, for its state or its body or as not theirs.
        if method in UNSAFE:
            return Expected("refused", lambda r: r.status_code in REFUSED)
        return Expected("refused", lambda r: r.status_code in REFUSED or r.status_code in (302, 303))
    return Expected("403/404", lambda r: r.status_code in (403, 404), same_as_missing=True)


# -- the fixture world -----------------------------------------------------------------------------


async def pure_process_admin() -> None:
    now = datetime.now(UTC)
    await Position.insert(
        Position(code="process-admin", name_zh="流程管理员", name_en="Process admin", roles=["process_admin"])
    )
    position = await Position.select(Position.id).where(Position.code == "process-admin").first()
    hq = await Department.select(Department.id).where(Department.code == "HQ").first()
    assert position is not None and hq is not None
    await Person.insert(
        Person(
            employee_no="p5001",
            name="流程管理员",
            department=hq["id"],
            position=position["id"],
            password_hash=hash_password("formflow"),
            created_at=now,
        )
    )


async def build_world(app: Litestar) -> World:
    app.state.clock = Clock()
    await pure_process_admin()
    people: dict[str, Principal] = {}
    for no in PERSONAS.values():
        if no:
            found = await Person.select(Person.id).where(Person.employee_no == no).first()
            assert found is not None, no
            principal = await load_principal(found["id"])
            assert principal is not None, no
            people[no] = principal
    instances, tasks, files, names = {}, {}, {}, {}
    personal: dict[str, dict[str, Obj]] = {"notification": {}, "token": {}, "passkey": {}}
    async with AsyncTestClient(app=app, base_url=BASE_URL) as client:
        for key, applicant_no, head_no in (("A", "e1001", "e2001"), ("B", "e1002", "e2002")):
            applicant, head = await api_user(client, applicant_no), await api_user(client, head_no)
            content = pdf()
            upload = await client.post(
                "/api/v1/attachments",
                files={"file": (f"{key}.pdf", content, "application/pdf")},
                headers=applicant.headers,
            )
            uid = ok(upload, 201)["id"]
            attached = [
                {"id": uid, "name": f"{key}.pdf", "size": len(content), "content_type": "application/pdf"}
            ]
            names[key] = f"矩阵活动{key}"
            data = marketing_data(activity_name=names[key], attachments=attached)
            created = ok(
                await applicant.post(
                    "/api/v1/instances", {"template": "marketing-activity", "data": data, "submit": True}
                ),
                201,
            )
            department = people.get(applicant_no)
            dept = department.department_id if department else None
            instances[key] = Obj("instance", str(created["id"]), applicant.id, dept)
            files[key] = Obj("file", uid, applicant.id, dept)
            task = await head.my_task(created["id"])
            tasks[key] = Obj("task", str(task["id"]), head.id, dept)
        for no, principal in people.items():
            response = await client.post("/api/v1/auth/token", json={"username": no, "password": "formflow"})
            token_id = ok(response, 201)["id"]
            personal["token"][no] = Obj("token", str(token_id), principal.id, principal.department_id)
    now = datetime.now(UTC)
    for no, principal in people.items():
        await Notification.insert(
            Notification(
                key=f"matrix-{no}", person=principal.id, kind="test", title="矩阵", link="/", created_at=now
            )
        )
        await PasskeyCredential.insert(
            PasskeyCredential(
                person=principal.id, credential_id=f"matrix-{no}", public_key="", name="key", created_at=now
            )
        )
    for row in await Notification.select(Notification.id, Notification.person).where(
        Notification.key.like("matrix-%")
    ):
        no = next(n for n, p in people.items() if p.id == row["person"])
        personal["notification"][no] = Obj("notification", str(row["id"]), row["person"], None)
    for row in await PasskeyCredential.select(PasskeyCredential.id, PasskeyCredential.person).where(
        PasskeyCredential.credential_id.like("matrix-%")
    ):
        no = next(n for n, p in people.items() if p.id == row["person"])
        personal["passkey"][no] = Obj("passkey", str(row["id"]), row["person"], None)
    return World(people=people, instances=instances, tasks=tasks, files=files, personal=personal, names=names)


@dataclass
class Browser:
    client: Client
    csrf: str


async def browser_for(stack: contextlib.AsyncExitStack, app: Litestar, employee_no: str) -> Browser:
    client = await stack.enter_async_context(AsyncTestClient(app=app, base_url=BASE_URL))
    if not employee_no:
        await client.get("/login", headers=HTML)
        return Browser(client, client.cookies["csrftoken"])
    return Browser(client, await sign_in(client, employee_no))


async def send(browser: Browser, method: str, path: str) -> httpx.Response:
    headers = {**HTML, "x-csrftoken": browser.csrf}
    if method not in UNSAFE:
        return await browser.client.request(method, path, headers=headers, follow_redirects=False)
    if path.startswith("/api/"):
        return await browser.client.request(method, path, json={}, headers=headers, follow_redirects=False)
    return await browser.client.request(
        method, path, data={"_csrf_token": browser.csrf}, headers=headers, follow_redirects=False
    )


# -- the tests -------------------------------------------------------------------------------------


def routes(app: Litestar) -> list[tuple[str, str, Permission]]:
    found = []
    for path, method, handler in all_handlers(app):
        if method == "OPTIONS" and is_litestar_auto_options(method, handler):
            continue
        permission = declared_permission(handler)
        assert permission is not None, f"{method} {path} declares no permission"
        found.append((path, method, permission))
    # Withdrawing ends the fixture requests' flow and signing out ends the session the rest of the
    # row needs: they go last.
    return sorted(found, key=lambda r: (r[0] == "/logout", r[0].endswith("/withdraw"), r[0], r[1]))


def test_every_path_parameter_has_a_filler() -> None:
    assert missing_fillers([path for path, _method, _permission in routes(create_app())]) == []


def test_an_unknown_parameter_is_named_not_skipped() -> None:
    assert missing_fillers(["/widgets/{widget_id:int}"]) == [
        "add a filler for widget_id (in /widgets/{widget_id:int})"
    ]


@pytest.fixture()
async def world(app: Litestar) -> World:
    return await build_world(app)


@pytest.fixture()
async def browsers(app: Litestar, world: World) -> AsyncIterator[dict[str, Browser]]:
    async with contextlib.AsyncExitStack() as stack:
        yield {persona: await browser_for(stack, app, no) for persona, no in PERSONAS.items()}


async def test_the_authorization_matrix(app: Litestar, world: World, browsers: dict[str, Browser]) -> None:
    table = routes(app)
    assert missing_fillers([path for path, _m, _p in table]) == []
    rows: list[tuple[str, list[str]]] = []
    failures: list[str] = []
    cells = 0
    for path, method, permission in table:
        # Owners act last (another's objects first, personas from the admins down), so that every
        # other persona meets the fixture requests still in flight.
        relations = (
            [OTHERS, OWN] if any(FILLERS[p](world, "e1001", OWN)[1] for p in params_of(path)) else [NONE]
        )
        for relation in relations:
            cells_of: dict[str, str] = {}
            for persona, no in reversed(PERSONAS.items()):
                principal = world.people.get(no)
                url, obj = fill(path, world, no, relation)
                expected = expectation(method, path, permission, principal, obj)
                response = await send(browsers[persona], method, url)
                cells += 1
                if path == "/logout" and no:
                    browsers[persona].csrf = await sign_in(browsers[persona].client, no)
                good = expected.holds(response)
                if not good and expected.same_as_missing and response.status_code in REFUSED:
                    missing_url, _ = fill(path, world, no, relation, missing=True)
                    good = (
                        await send(browsers[persona], method, missing_url)
                    ).status_code == response.status_code
                cells_of[persona] = f"{response.status_code}" + ("" if good else "!")
                if not good:
                    failures.append(
                        f"{method} {url} [{relation}] as {persona}: expected {expected.label}, got "
                        f"{response.status_code} {response.text[:160]!r}"
                    )
            line = [cells_of[persona] for persona in PERSONAS]
            rows.append((f"{method} {path} {relation if relation != NONE else ''}".rstrip(), line))
    width = max(len(label) for label, _ in rows)
    print(f"\n{'route':<{width}} | " + " | ".join(f"{p[:9]:>9}" for p in PERSONAS))
    for label, line in rows:
        print(f"{label:<{width}} | " + " | ".join(f"{c:>9}" for c in line))
    print(f"{cells} cells, {len(failures)} wrong")
    assert failures == [], "\n".join(failures)


async def exported_names(browser: Browser, fmt: str = "csv") -> str:
    response = await browser.client.get(f"/insight/exports/requests?format={fmt}")
    assert response.status_code == 200, response.text[:300]
    return response.text


async def test_exports_hold_only_the_rows_in_the_callers_scope(
    world: World, browsers: dict[str, Browser]
) -> None:
    head = await exported_names(browsers["dept head"])
    assert world.names["A"] in head and world.names["B"] not in head
    rows = list(csv.reader(io.StringIO(head)))
    assert len(rows) >= 2, "the head's export has a header and their department's request"
    for persona in ("process admin", "system admin"):
        everything = await exported_names(browsers[persona])
        assert world.names["A"] in everything and world.names["B"] in everything
    for persona in ("employee", "other dept", "finance"):
        response = await browsers[persona].client.get("/insight/exports/requests")
        assert response.status_code == 403


# -- IDOR with well-formed bodies: refused as not theirs, nothing written ------------------------

# who, method, path (A/B: the requests, TA/TB: their open tasks, FA: A's file), body
IDOR: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("e1001", "POST", "/api/v1/tasks/{TA}/actions", {"action": "approve", "comment": "自己批"}),
    ("e1002", "POST", "/api/v1/tasks/{TA}/actions", {"action": "approve"}),
    ("e4001", "POST", "/api/v1/tasks/{TA}/actions", {"action": "reject", "comment": "x"}),
    ("admin", "POST", "/api/v1/tasks/{TA}/actions", {"action": "approve"}),
    ("p5001", "POST", "/api/v1/tasks/{TA}/actions", {"action": "return", "note": "x"}),
    ("e2001", "POST", "/api/v1/tasks/{TB}/actions", {"action": "approve"}),
    ("e1002", "POST", "/api/v1/instances/{A}/comment", {"text": "看看"}),
    ("e1002", "PUT", "/api/v1/instances/{A}/data", {"data": {"activity_name": "改"}}),
    ("e2001", "PUT", "/api/v1/instances/{A}/data", {"data": {"activity_name": "改"}}),
    ("e2001", "POST", "/api/v1/instances/{A}/withdraw", {"note": "x"}),
    ("admin", "POST", "/api/v1/instances/{B}/withdraw", {"note": "x"}),
    ("e2001", "POST", "/api/v1/instances/{A}/urge", {"note": "x"}),
    ("e1001", "POST", "/api/v1/instances/{B}/mark-urgent", None),
    ("e2001", "POST", "/api/v1/instances/{A}/change-requests", {"changes": {"venue": "x"}, "reason": "x"}),
    ("e1002", "GET", "/api/v1/attachments/{FA}", None),
    ("e4001", "GET", "/api/v1/attachments/{FA}", None),
    ("e1002", "DELETE", "/api/v1/attachments/{FA}", None),
    ("e2001", "DELETE", "/api/v1/attachments/{FA}", None),
    ("e4001", "GET", "/instances/{A}/print", None),
    ("e1002", "GET", "/api/v1/instances/{A}", None),
]


async def written() -> dict[str, Any]:
    from storage.tables import Attachment, Instance, InstanceEvent, Task

    return {
        "events": await InstanceEvent.count(),
        "tasks": await Task.select(Task.id, Task.status, Task.assignee).order_by(Task.id),
        "instances": await Instance.select(Instance.id, Instance.status, Instance.urgent).order_by(
            Instance.id
        ),
        "attachments": await Attachment.count(),
    }


async def test_acting_on_another_s_object_is_refused_and_writes_nothing(app: Litestar, world: World) -> None:
    objects = {
        "A": world.instances["A"].value,
        "B": world.instances["B"].value,
        "TA": world.tasks["A"].value,
        "TB": world.tasks["B"].value,
        "FA": world.files["A"].value,
    }
    failures = []
    async with AsyncTestClient(app=app, base_url=BASE_URL) as client:
        users = {who: await api_user(client, who) for who in {case[0] for case in IDOR}}
        for who, method, path, body in IDOR:
            url = path.format(**objects)
            before = await written()
            response = await client.request(method, url, json=body, headers=users[who].headers)
            if response.status_code not in (403, 404):
                failures.append(f"{who} {method} {url}: {response.status_code} {response.text[:200]}")
            elif await written() != before:
                failures.append(f"{who} {method} {url}: refused but wrote")
    assert failures == [], "\n".join(failures)
