"""No request with bad input gets a 500: each JSON endpoint and query parameter answers a 4xx that
says what is wrong, and nothing is written."""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import urlencode

import pytest

from storage.tables import ALL_TABLES, Department, Person
from tests.web.session import Client, csrf_from, sign_in

MEGABYTE = "x" * 1_000_000
ON_POSTGRES = os.environ.get("FORMFLOW_TEST_DATABASE_URL", "").startswith("postgres")

VALID_TOKEN_REQUEST = {"username": "e1001", "password": "formflow"}
VALID_PERSON = {"employee_no": "e9001", "name": "新人", "department": "MKT", "position": "staff"}
VALID_DEPARTMENT = {"code": "LAB", "name_zh": "实验室", "parent": "HQ"}

# endpoint name -> (method, path, a valid body)
ENDPOINTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "token": ("POST", "/api/v1/auth/token", VALID_TOKEN_REQUEST),
    "new person": ("POST", "/api/v1/people", VALID_PERSON),
    "edit person": ("PATCH", "/api/v1/people/e1001", {**VALID_PERSON, "employee_no": "e1001"}),
    "department": ("POST", "/api/v1/departments", VALID_DEPARTMENT),
}

# case -> (a function from the valid body to the raw request body, the key the error must name or None)
BAD_BODIES: dict[str, tuple[Any, str | None]] = {
    "malformed JSON": (lambda body: json.dumps(body)[:-3].encode(), None),
    "not an object": (lambda body: b'["a", "b"]', None),
    "null": (lambda body: b"null", None),
    "missing body": (lambda body: b"", None),
    "a number for a string": (lambda body: _json({**body, _first_key(body): 12345}), "$first"),
    "an object for a string": (lambda body: _json({**body, _first_key(body): {"a": 1}}), "$first"),
    "a required key missing": (lambda body: _json(_without_first(body)), "$first"),
    "an unknown key": (lambda body: _json({**body, "is_superuser": True}), "is_superuser"),
    "a 1 MB string": (lambda body: _json({**body, _first_key(body): MEGABYTE}), "$first"),
}


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def _first_key(body: dict[str, Any]) -> str:
    return next(iter(body))


def _without_first(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != _first_key(body)}


async def row_counts() -> dict[str, int]:
    return {table._meta.tablename: await table.count() for table in ALL_TABLES}


@pytest.fixture()
async def admin_headers(client: Client) -> dict[str, str]:
    """The admin's bearer token (no cookie, so no CSRF in play)."""
    response = await client.post("/api/v1/auth/token", json={"username": "admin", "password": "formflow"})
    assert response.status_code == 201
    client.cookies.clear()
    return {"authorization": f"Bearer {response.json()['token']}", "content-type": "application/json"}


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("case", list(BAD_BODIES))
async def test_bad_json_bodies_get_a_4xx_and_write_nothing(
    client: Client, admin_headers: dict[str, str], endpoint: str, case: str
) -> None:
    method, path, valid = ENDPOINTS[endpoint]
    make_body, key = BAD_BODIES[case]
    before = await row_counts()
    response = await client.request(method, path, content=make_body(valid), headers=admin_headers)
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["status_code"] == 400 and problem["detail"]
    if key is not None:
        key = _first_key(valid) if key == "$first" else key
        assert key in json.dumps(problem["extra"]), problem
    assert await row_counts() == before


# Bodies Litestar's JSON decoder fails on with an exception other than msgspec.DecodeError.
UNDECODABLE_BODIES = {
    "not UTF-8": b'{"code": "\xff\xfe"}',
    "nested 100 000 deep": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("case", list(UNDECODABLE_BODIES))
async def test_an_undecodable_json_body_gets_400(
    client: Client, admin_headers: dict[str, str], endpoint: str, case: str
) -> None:
    method, path, _valid = ENDPOINTS[endpoint]
    before = await row_counts()
    response = await client.request(method, path, content=UNDECODABLE_BODIES[case], headers=admin_headers)
    assert response.status_code == 400, response.text
    assert await row_counts() == before


async def test_a_body_over_the_size_limit_gets_413(client: Client) -> None:
    before = await row_counts()
    response = await client.post(
        "/api/v1/auth/token",
        content=_json({"username": "e1001", "password": "x" * 11_000_000}),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert await row_counts() == before


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"username": "", "password": "formflow"}, "username"),
        ({"username": "e1001", "password": ""}, "password"),
        ({**VALID_TOKEN_REQUEST, "days": 0}, "days"),
        ({**VALID_TOKEN_REQUEST, "days": 10_000}, "days"),
        ({**VALID_TOKEN_REQUEST, "days": 1.5}, "days"),
    ],
)
async def test_token_request_field_limits(client: Client, body: dict[str, Any], key: str) -> None:
    before = await row_counts()
    response = await client.post("/api/v1/auth/token", json=body)
    assert response.status_code == 400
    assert key in json.dumps(response.json()["extra"])
    assert await row_counts() == before


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({**VALID_PERSON, "employee_no": "has space"}, "employee_no"),
        ({**VALID_PERSON, "employee_no": "x" * 33}, "employee_no"),
        ({**VALID_PERSON, "name": ""}, "name"),
        ({**VALID_PERSON, "email": "a" * 250 + "@x.cn"}, "email"),
        ({**VALID_PERSON, "phone": "1" * 33}, "phone"),
        ({**VALID_PERSON, "password": "short"}, "password"),
        ({**VALID_PERSON, "active": "yes"}, "active"),
        ({**VALID_PERSON, "department": "MKT; DROP TABLE person"}, "department"),
    ],
)
async def test_person_field_limits(
    client: Client, admin_headers: dict[str, str], body: dict[str, Any], key: str
) -> None:
    before = await row_counts()
    response = await client.post("/api/v1/people", content=_json(body), headers=admin_headers)
    assert response.status_code == 400
    assert key in json.dumps(response.json()["extra"])
    assert await row_counts() == before


# --- query parameters ------------------------------------------------------------------------------

BAD_QUERIES = [
    ("/api/v1/people", {"page": "0"}, "page"),
    ("/api/v1/people", {"page": "-1"}, "page"),
    ("/api/v1/people", {"page": "abc"}, "page"),
    ("/api/v1/people", {"page": "1" * 30}, "page"),
    ("/api/v1/people", {"q": "x" * 10_000}, "q"),
    ("/api/v1/audit", {"page": "0"}, "page"),
    ("/api/v1/audit", {"page": "abc"}, "page"),
    ("/api/v1/audit", {"action": "x" * 10_000}, "action"),
]


@pytest.mark.parametrize(("path", "params", "key"), BAD_QUERIES)
async def test_bad_query_parameters_get_400(
    client: Client, admin_headers: dict[str, str], path: str, params: dict[str, str], key: str
) -> None:
    response = await client.get(path, params=params, headers=admin_headers)
    assert response.status_code == 400
    assert key in json.dumps(response.json()["extra"])


@pytest.mark.parametrize(
    ("person_id", "status"),
    [
        ("abc", 404),  # not an integer: no such route
        ("1.5", 404),
        ("999999", 404),  # a valid id that names nobody
        ("0", 400),  # ids start at 1
        ("-1", 400),
        (str(2**31), 400),  # beyond the 32-bit id column
        (str(2**63), 400),
        ("9" * 23, 400),
    ],
)
async def test_a_person_id_that_names_nobody_is_a_clear_4xx(
    client: Client, admin_headers: dict[str, str], person_id: str, status: int
) -> None:
    response = await client.get(f"/api/v1/people/{person_id}", headers=admin_headers)
    assert response.status_code == status, response.text


@pytest.mark.parametrize(
    ("path", "params"),
    [("/admin", {"page": "0"}), ("/admin", {"page": "abc"}), ("/admin", {"q": "x" * 10_000})],
)
async def test_bad_query_parameters_on_a_page_get_a_400_page(
    client: Client, path: str, params: dict[str, str]
) -> None:
    await sign_in(client, "admin")
    response = await client.get(path, params=params, headers={"accept": "text/html"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")


# --- the login form ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "form",
    [
        urlencode({"username": "x" * 10_000, "password": "formflow"}),
        urlencode({"username": "e1001", "password": "x" * 10_000}),
        urlencode({"username": "e1001", "password": "formflow", "next": "/" + "x" * 10_000}),
        "username=%ff%fe&password=formflow",  # percent-escapes that are not UTF-8
    ],
)
async def test_an_oversize_or_odd_login_form_gets_a_4xx_and_no_session(client: Client, form: str) -> None:
    page = await client.get("/login", headers={"accept": "text/html"})
    response = await client.post(
        "/login",
        content=f"{form}&_csrf_token={csrf_from(page.text)}".encode(),
        headers={"accept": "text/html", "content-type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert response.status_code in (400, 401), response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "formflow_session" not in client.cookies


# A NUL character is valid JSON and form data, but PostgreSQL text cannot hold it.


async def test_a_nul_character_in_the_login_form_is_no_500(client: Client) -> None:
    page = await client.get("/login", headers={"accept": "text/html"})
    response = await client.post(
        "/login",
        data={"username": "e1001\x00", "password": "formflow", "_csrf_token": csrf_from(page.text)},
        headers={"accept": "text/html"},
        follow_redirects=False,
    )
    assert response.status_code in (400, 401)
    assert "formflow_session" not in client.cookies


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"),
    [
        ("POST", "/api/v1/auth/token", {"username": "e1001\x00", "password": "formflow"}, (400, 401)),
        ("POST", "/api/v1/people", {**VALID_PERSON, "name": "新\x00人"}, (201, 400, 422)),
        ("GET", "/api/v1/people?q=%00", None, (200, 400)),
    ],
)
async def test_a_nul_character_in_the_api_is_no_500(
    client: Client,
    admin_headers: dict[str, str],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    allowed: tuple[int, ...],
) -> None:
    content = _json(body) if body is not None else None
    response = await client.request(method, path, content=content, headers=admin_headers)
    assert response.status_code in allowed, response.text


# --- organisation semantics ------------------------------------------------------------------------


async def parent_code(code: str) -> str | None:
    row = await Department.select(Department.parent.code).where(Department.code == code).first()
    return row["parent.code"]


@pytest.mark.parametrize(
    ("path", "body", "named"),
    [
        ("/api/v1/people", {**VALID_PERSON, "department": "NOPE"}, "NOPE"),
        ("/api/v1/people", {**VALID_PERSON, "position": "ceo"}, "ceo"),
        ("/api/v1/people", {**VALID_PERSON, "manager": "e0000"}, "e0000"),
        ("/api/v1/departments", {**VALID_DEPARTMENT, "parent": "NOPE"}, "NOPE"),
        ("/api/v1/departments", {**VALID_DEPARTMENT, "head": "e0000"}, "e0000"),
        ("/api/v1/departments", {**VALID_DEPARTMENT, "leader": "e0000"}, "e0000"),
        ("/api/v1/departments", {**VALID_DEPARTMENT, "parent": "LAB"}, "LAB"),  # its own parent, new
    ],
)
async def test_unknown_references_get_422_naming_them(
    client: Client, admin_headers: dict[str, str], path: str, body: dict[str, Any], named: str
) -> None:
    before = await row_counts()
    response = await client.post(path, content=_json(body), headers=admin_headers)
    assert response.status_code == 422
    assert f"'{named}'" in response.json()["detail"]
    assert await row_counts() == before


@pytest.mark.parametrize(
    ("code", "new_parent"),
    [
        ("HQ", "MKT"),  # the root under one of its children
        ("MKT", "MKT"),  # an existing department under itself
    ],
)
async def test_a_department_cannot_become_its_own_ancestor(
    client: Client, admin_headers: dict[str, str], code: str, new_parent: str
) -> None:
    old_parent = await parent_code(code)
    body = {"code": code, "name_zh": "改名", "parent": new_parent}
    before = await row_counts()
    response = await client.post("/api/v1/departments", content=_json(body), headers=admin_headers)
    assert response.status_code == 422
    assert "cycle" in response.json()["detail"] and code in response.json()["detail"]
    assert await parent_code(code) == old_parent
    assert await Department.exists().where(Department.name_zh == "改名") is False
    assert await row_counts() == before


async def names_by_number() -> dict[str, str]:
    return {r["employee_no"]: r["name"] for r in await Person.select(Person.employee_no, Person.name)}


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/v1/people/e1001", {**VALID_PERSON, "employee_no": "e1002"}, 422),  # body and path differ
        ("/api/v1/people/e9999", {**VALID_PERSON, "employee_no": "e9999"}, 404),
    ],
)
async def test_patch_semantic_errors(
    client: Client, admin_headers: dict[str, str], path: str, body: dict[str, Any], status: int
) -> None:
    before = await names_by_number()
    response = await client.patch(path, content=_json(body), headers=admin_headers)
    assert response.status_code == status
    assert await names_by_number() == before
