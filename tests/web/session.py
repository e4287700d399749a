"""Signing demo people in through the real login page."""

from __future__ import annotations

import re

from litestar import Litestar
from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Litestar]


def csrf_from(html: str) -> str:
    match = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert match, "the page carries no CSRF token"
    return match.group(1)


async def sign_in(client: Client, username: str, password: str = "formflow") -> str:
    """Sign in through the login page; returns the CSRF token for later posts."""
    page = await client.get("/login", headers={"accept": "text/html"})
    token = csrf_from(page.text)
    response = await client.post(
        "/login",
        data={"username": username, "password": password, "_csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return token
