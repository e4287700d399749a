"""Deny by default: every route declares a permission, each role gets exactly its pages and APIs,
and data scopes (own / department / all) are applied in the SQL query."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, get
from litestar.handlers.http_handlers import HTTPRouteHandler
from litestar.testing import AsyncTestClient

from storage.tables import Department, Person
from tests.web.session import Client, sign_in
from web.app import create_app
from web.auth.guards import declared_permission, permission_guard

HTML = {"accept": "text/html"}
ANONYMOUS = "anonymous"


# --- every route declares a permission ----------------------------------------------------------


def all_handlers(app: Litestar) -> list[tuple[str, str, HTTPRouteHandler]]:
    """(path, method, handler) for every handler registered on the app, framework ones included."""
    found = []
    for route in app.routes:
        for method, handler in route.route_handler_map.items():  # type: ignore[union-attr]
            found.append((route.path, method, handler[0] if isinstance(handler, tuple) else handler))
    return found


def is_litestar_auto_options(method: str, handler: HTTPRouteHandler) -> bool:
    """The OPTIONS handler Litestar adds to every path on its own (not written by us)."""
    fn = handler.fn
    return (
        method == "OPTIONS" and fn.__name__ == "options_handler" and fn.__module__ == "litestar.routes.http"
    )


def test_the_route_walk_covers_the_schema_static_and_api_routes() -> None:
    paths = {path for path, _method, _handler in all_handlers(create_app())}
    for expected in ("/schema", "/schema/openapi.json", "/static/{file_path:path}", "/metrics", "/api/v1/me"):
        assert expected in paths


def test_every_handler_we_register_declares_a_permission() -> None:
    undeclared = [
        f"{method} {path} ({handler.handler_name})"
        for path, method, handler in all_handlers(create_app())
        if declared_permission(handler) is None and not is_litestar_auto_options(method, handler)
    ]
    assert undeclared == []


def test_every_handler_including_automatic_options_declares_a_permission() -> None:
    undeclared = [
        f"{method} {path}"
        for path, method, handler in all_handlers(create_app())
        if declared_permission(handler) is None
    ]
    assert undeclared == []


async def test_a_handler_that_declares_nothing_is_closed_even_to_anonymous_callers() -> None:
    @get("/undeclared", sync_to_thread=False)
    def undeclared() -> str:
        return "open"

    async with AsyncTestClient(app=Litestar([undeclared], guards=[permission_guard])) as client:
        response = await client.get("/undeclared")
    assert response.status_code == 403
    assert "declares no permission" in response.json()["detail"]


# --- the authorization matrix --------------------------------------------------------------------

PAGES = ["/admin", "/admin/audit", "/insight", "/inbox", "/"]
PAGE_STATUS = {
    # who:        /admin /admin/audit /insight /inbox  /
    "e1001": [403, 403, 403, 200, 200],
    "e2001": [403, 403, 200, 200, 200],
    "admin": [200, 200, 200, 200, 200],
}


@pytest.mark.parametrize(
    ("who", "path", "status"),
    [
        (who, path, status)
        for who, row in PAGE_STATUS.items()
        for path, status in zip(PAGES, row, strict=True)
    ],
)
async def test_page_access(client: Client, who: str, path: str, status: int) -> None:
    await sign_in(client, who)
    response = await client.get(path, headers=HTML, follow_redirects=False)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    if status == 403:
        assert "您没有权限打开此页面" in response.text


@pytest.mark.parametrize("path", PAGES)
async def test_anonymous_page_goes_to_login_and_comes_back(client: Client, path: str) -> None:
    response = await client.get(path, headers=HTML, follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == f"/login?next={path}"


NEW_DEPARTMENT = {"code": "LAB", "name_zh": "实验室", "parent": "HQ"}
NEW_PERSON = {"employee_no": "e9001", "name": "新人", "department": "MKT", "position": "staff"}

# method, path, JSON body
APIS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/v1/audit", None),
    ("GET", "/api/v1/people", None),
    ("POST", "/api/v1/people", NEW_PERSON),
    ("POST", "/api/v1/departments", NEW_DEPARTMENT),
    ("GET", "/api/v1/me", None),
]
API_STATUS = {
    # who:       audit people +person +dept  me
    ANONYMOUS: [401, 401, 401, 401, 401],
    "e1001": [403, 200, 403, 403, 200],
    "e2001": [403, 200, 403, 403, 200],
    "admin": [200, 200, 201, 201, 200],
}


async def csrf_token_for(client: Client, who: str) -> str:
    if who == ANONYMOUS:
        page = await client.get("/login", headers=HTML)
        return page.cookies.get("csrftoken") or client.cookies["csrftoken"]
    return await sign_in(client, who)


@pytest.mark.parametrize(
    ("who", "method", "path", "body", "status"),
    [
        (who, method, path, body, status)
        for who, row in API_STATUS.items()
        for (method, path, body), status in zip(APIS, row, strict=True)
    ],
)
async def test_api_access(
    client: Client, who: str, method: str, path: str, body: dict[str, Any] | None, status: int
) -> None:
    token = await csrf_token_for(client, who)
    response = await client.request(method, path, json=body, headers={"x-csrftoken": token})
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    if status >= 400:
        assert response.json()["status_code"] == status
    created = await Department.exists().where(Department.code == "LAB") or await Person.exists().where(
        Person.employee_no == "e9001"
    )
    assert created == (status == 201), "only an allowed call may write"


# --- data scopes -----------------------------------------------------------------------------------

EVERYONE = sorted(
    ["admin", "e3001", "e2001", "e1001", "e2002", "e1002", "e4002", "e4001", "e2003", "e2004", "e2005"]
)


@pytest.mark.parametrize(
    ("who", "visible"),
    [
        ("e1001", ["e1001"]),  # an employee: only themselves
        ("e2001", ["e1001", "e2001"]),  # head of 市场部: the whole of 市场部
        ("e3001", ["e1001", "e1002", "e2001", "e2002", "e3001"]),  # leader of 市场部 and 产品部
        ("admin", EVERYONE),
    ],
)
async def test_people_list_is_scoped(client: Client, who: str, visible: list[str]) -> None:
    await sign_in(client, who)
    page = (await client.get("/api/v1/people")).json()
    assert [p["employee_no"] for p in page["items"]] == visible
    assert page["total"] == len(visible)


async def test_a_search_does_not_widen_the_scope(client: Client) -> None:
    await sign_in(client, "e1001")
    page = (await client.get("/api/v1/people", params={"q": "e"})).json()
    assert [p["employee_no"] for p in page["items"]] == ["e1001"]


async def person_id(employee_no: str) -> int:
    row = await Person.select(Person.id).where(Person.employee_no == employee_no).first()
    return int(row["id"])


@pytest.mark.parametrize(
    ("who", "target", "status"),
    [
        ("e1001", "e1001", 200),
        ("e1001", "e2001", 404),  # their own head is outside an employee's reach
        ("e2001", "e1001", 200),
        ("e2001", "e1002", 404),  # 产品部 is outside the reach of 市场部's head
        ("e2001", "admin", 404),
        ("admin", "e1002", 200),
    ],
)
async def test_one_person_outside_the_reach_is_not_found(
    client: Client, who: str, target: str, status: int
) -> None:
    await sign_in(client, who)
    response = await client.get(f"/api/v1/people/{await person_id(target)}")
    assert response.status_code == status
    if status == 200:
        assert response.json()["employee_no"] == target
    else:
        assert "outside your reach" in response.json()["detail"]


async def test_the_old_monitoring_address_leads_to_insight(client: Client) -> None:
    await sign_in(client, "e2001")
    response = await client.get("/monitor", headers=HTML, follow_redirects=False)
    assert response.status_code == 301 and response.headers["location"] == "/insight"
