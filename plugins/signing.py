"""HMAC-SHA256 signatures of webhook bodies and callbacks.

The signature is "sha256=" + the hex HMAC-SHA256 of the exact body bytes, keyed with the
shared secret, sent in the `X-Formflow-Signature` header. A receiver recomputes it over the
raw body it got and compares in constant time (`verify_signature`); so does
`accept_callback` for the answers of outside systems.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Formflow-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
CALL_HEADER = "X-Formflow-Call"
PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    """The signature of `body`: "sha256=<64 hex digits>"."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, signature: str) -> bool:
    """Whether `signature` is the signature of `body` under `secret` (constant-time)."""
    return hmac.compare_digest(sign(secret, body).encode(), signature.strip().encode())
