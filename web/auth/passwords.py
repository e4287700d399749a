"""Password hashing with argon2id (argon2-cffi's defaults, RFC 9106 low-memory profile)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()
# A real hash of a random password, verified against when the account does not exist, so a
# wrong employee number takes as long as a wrong password (no account enumeration by timing).
_DUMMY_HASH = _HASHER.hash("no such account: formflow timing equaliser")

MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash or _DUMMY_HASH, password) and bool(stored_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _HASHER.check_needs_rehash(stored_hash)


def burn_time(password: str) -> None:
    """Spend one verification on nothing: used when the account is unknown."""
    verify_password("", password)
