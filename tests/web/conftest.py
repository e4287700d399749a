"""An app and HTTP clients signed in as demo people."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.web.session import Client, sign_in
from web.app import create_app
from web.settings import load_settings


@pytest.fixture()
async def app(db: None) -> Litestar:
    return create_app(load_settings())


@pytest.fixture()
async def client(app: Litestar) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as c:
        yield c


@pytest.fixture()
def login(client: Client) -> Callable[[str], Awaitable[str]]:
    async def _login(username: str, password: str = "formflow") -> str:
        return await sign_in(client, username, password)

    return _login


@pytest.fixture()
async def other_client(app: Litestar) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as c:
        yield c
