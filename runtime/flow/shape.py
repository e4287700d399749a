"""The base class of every stored flow shape."""

from __future__ import annotations

import msgspec


class Shape(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Immutable, keyword-only, unknown keys refused when decoded.

    `forbid_unknown_fields` is inherited. msgspec applies `kw_only` per class, and type
    checkers read `frozen` per class, so every subclass repeats `frozen=True, kw_only=True`.
    """
