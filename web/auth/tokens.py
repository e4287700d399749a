"""Random secrets for session cookies and API tokens; only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets

API_TOKEN_PREFIX = "ffp_"


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def new_api_token() -> str:
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
