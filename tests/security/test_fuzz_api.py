"""Schemathesis fuzzes the REST API from its own OpenAPI schema, in-process, as two roles.

Every operation under /api/ gets a bounded number of generated requests (valid and invalid
ones), sent with a bearer token of an employee and of the system administrator. Two checks hold
for every answer: no 5xx, and the response matches what the schema promises for its status code.
`FORMFLOW_TEST_FUZZ_EXAMPLES=<n>` runs a longer search, with schemathesis' coverage phase (boundary
values, unexpected methods) as well.

The database is restored once for the module, not per example: the fuzzer writes freely and the
checks do not depend on what it wrote before. Not stateful: the schema declares no links between
operations, so there is no sequence for schemathesis to follow.

Left out, with the reason (pages are HTML for people, walked by the authorization matrix):
- `DELETE /api/v1/auth/tokens/{token_id}`: revoking the fuzzer's own token would leave every later
  request unauthenticated (401s that test nothing); token revocation is in the matrix and in
  tests/web/test_api_tokens.py.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests import conftest as base
from web.app import create_app
from web.settings import load_settings

EXAMPLES = int(os.environ.get("FORMFLOW_TEST_FUZZ_EXAMPLES", "20"))
# The coverage phase (boundary values of every parameter, unexpected methods) sends dozens of
# requests per operation whatever `EXAMPLES` says: on for a long run, off in `make test`.
COVERAGE = "FORMFLOW_TEST_FUZZ_EXAMPLES" in os.environ
EXCLUDED = {("DELETE", "/api/v1/auth/tokens/{token_id}")}
CHECKS = [not_a_server_error, response_schema_conformance]


def _restore_database() -> None:
    """The same reset the `db` fixture does, once for the whole module."""
    asyncio.run(base.reset_database())


# The schema is the app's own, generated without serving a request; calls go to the same app.
APP = create_app(load_settings())
schema = (
    schemathesis.openapi.from_dict(
        APP.openapi_schema.to_schema(),
        config=schemathesis.Config.from_dict({"phases": {"coverage": {"enabled": COVERAGE}}}),
    )
    .include(path_regex="^/api/")
    .exclude(func=lambda ctx: (ctx.operation.method.upper(), ctx.operation.path) in EXCLUDED)
)
schema.app = APP


@pytest.fixture(scope="module")
def bearer(_schema: None) -> Iterator[dict[str, dict[str, str]]]:
    """A fresh demo database, and a bearer token for each role, issued by the API itself; the
    app schemathesis started is shut down after the module."""
    _restore_database()
    issue = schema["/api/v1/auth/token"]["POST"]
    headers = {}
    for who in ("e1001", "admin"):
        response = issue.Case(body={"username": who, "password": "formflow", "name": "fuzz"}).call()
        assert response.status_code == 201, response.text
        headers[who] = {"authorization": f"Bearer {response.json()['token']}"}
    yield headers
    asgi.shutdown_lifespans()


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@schema.parametrize()
@FUZZ_SETTINGS
def test_api_as_an_employee(case: Any, bearer: dict[str, dict[str, str]]) -> None:
    case.call_and_validate(headers=bearer["e1001"], checks=CHECKS)


@schema.parametrize()
@FUZZ_SETTINGS
def test_api_as_the_system_admin(case: Any, bearer: dict[str, dict[str, str]]) -> None:
    case.call_and_validate(headers=bearer["admin"], checks=CHECKS)
