"""The web fixtures (`app`, `client`, `other_client`, `login`) for the security tests."""

from tests.web.conftest import app, client, login, other_client

__all__ = ["app", "client", "login", "other_client"]
