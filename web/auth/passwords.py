"""Password hashing with argon2id.

The cost comes from settings (`FORMFLOW_PASSWORD_HASH_TIME_COST`, `..._MEMORY_KIB`; the
defaults are argon2-cffi's, RFC 9106's low-memory profile). Hashes made with other costs
still verify and are upgraded at the next sign-in.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from web.settings import load_settings

MIN_PASSWORD_LENGTH = 8


@cache
def _hasher() -> PasswordHasher:
    settings = load_settings()
    return PasswordHasher(
        time_cost=settings.password_hash_time_cost, memory_cost=settings.password_hash_memory_kib
    )


@cache
def _dummy_hash() -> str:
    # A real hash, verified against when the account does not exist, so a wrong employee
    # number takes as long as a wrong password (no account enumeration by timing).
    return _hasher().hash("no such account: formflow timing equaliser")


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(stored_hash or _dummy_hash(), password) and bool(stored_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher().check_needs_rehash(stored_hash)


def burn_time(password: str) -> None:
    """Spend one verification on nothing: used when the account is unknown."""
    verify_password("", password)
