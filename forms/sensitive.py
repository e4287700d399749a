"""Sensitive fields: encrypted at rest with AES-256-GCM, masked for people without the right.

A field (or detail-table column) with `sensitive: true` is stored sealed:

    {"$sealed": "aes-256-gcm", "kid": "2024-07", "nonce": "<base64>", "ct": "<base64>"}

`kid` names the key in the `Keyring`, so keys can rotate: values are sealed with the
current key and opened with whichever key they name; `reseal_sensitive` moves old values
to the current key. The plaintext is the value's JSON; the associated data binds it to the
form and the field ("marketing-activity/budget", "expense-reimbursement/lines.amount"), so a
sealed value copied to another field does not open. Opened values come back in their JSON
form (amounts and dates as strings), like any value read from storage.

`mask_sensitive` replaces sensitive values with "****" for viewers who hold none of the
field's `sensitive_roles`. Totals of sensitive columns are sealed and masked alike.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from forms import model as m
from forms.errors import DecryptionError, KeyringError, UnknownKeyError

MASK = "****"
ALGORITHM = "aes-256-gcm"
_KEY_BYTES = 32
_NONCE_BYTES = 12


class Keyring(msgspec.Struct, frozen=True, kw_only=True):
    """Data keys by id (32 bytes each) and the id of the key that seals new values."""

    keys: dict[str, bytes]
    current: str

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise KeyringError(f"the current key id {self.current!r} is not in the keyring")
        for kid, key in self.keys.items():
            if len(key) != _KEY_BYTES:
                raise KeyringError(f"key {kid!r} must be {_KEY_BYTES} bytes, not {len(key)}")

    @classmethod
    def from_base64(cls, keys: Mapping[str, str], current: str) -> Keyring:
        """A keyring from settings: key ids mapped to base64-encoded 32-byte keys."""
        try:
            decoded = {kid: base64.b64decode(key, validate=True) for kid, key in keys.items()}
        except (binascii.Error, ValueError) as exc:
            raise KeyringError(f"a key is not valid base64: {exc}") from exc
        return cls(keys=decoded, current=current)


class Sealed(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="$sealed", tag=ALGORITHM
):
    """An encrypted value as stored: key id, nonce and ciphertext (with tag), base64."""

    kid: str
    nonce: str
    ct: str


def is_sealed(value: Any) -> bool:
    """True for a stored sealed value (a dict tagged with "$sealed")."""
    return isinstance(value, dict) and value.get("$sealed") == ALGORITHM


def seal(
    value: Any, keyring: Keyring, aad: str, random_bytes: Callable[[int], bytes] = os.urandom
) -> dict[str, str]:
    """`value` (anything msgspec can encode) sealed with the current key, as a stored dict."""
    nonce = random_bytes(_NONCE_BYTES)
    ciphertext = AESGCM(keyring.keys[keyring.current]).encrypt(
        nonce, msgspec.json.encode(value), aad.encode()
    )
    sealed = Sealed(kid=keyring.current, nonce=_b64(nonce), ct=_b64(ciphertext))
    stored: dict[str, str] = msgspec.to_builtins(sealed)
    return stored


def unseal(stored: Any, keyring: Keyring, aad: str) -> Any:
    """The JSON value inside a stored sealed dict; raises if the key is unknown or it was altered."""
    try:
        sealed = msgspec.convert(stored, Sealed)
        nonce, ciphertext = base64.b64decode(sealed.nonce), base64.b64decode(sealed.ct)
    except (msgspec.ValidationError, binascii.Error, ValueError) as exc:
        raise DecryptionError(f"not a sealed value: {exc}") from exc
    key = keyring.keys.get(sealed.kid)
    if key is None:
        raise UnknownKeyError(f"no key {sealed.kid!r} in the keyring")
    try:
        plaintext = AESGCM(key).decrypt(nonce, ciphertext, aad.encode())
    except (InvalidTag, ValueError) as exc:
        raise DecryptionError(f"the sealed value for {aad!r} does not open with key {sealed.kid!r}") from exc
    return msgspec.json.decode(plaintext)


def encrypt_sensitive(
    data: dict[str, Any],
    schema: m.FormSchema,
    keyring: Keyring,
    *,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> dict[str, Any]:
    """A copy of `data` with every sensitive value sealed (None and sealed values stay as they are)."""

    def seal_one(value: Any, aad: str) -> Any:
        return value if value is None or is_sealed(value) else seal(value, keyring, aad, random_bytes)

    return _map_sensitive(data, schema, seal_one)


def decrypt_sensitive(data: dict[str, Any], schema: m.FormSchema, keyring: Keyring) -> dict[str, Any]:
    """A copy of `data` with every sealed sensitive value opened (in its JSON form)."""
    return _map_sensitive(
        data, schema, lambda value, aad: unseal(value, keyring, aad) if is_sealed(value) else value
    )


def reseal_sensitive(
    data: dict[str, Any],
    schema: m.FormSchema,
    keyring: Keyring,
    *,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> dict[str, Any]:
    """A copy of `data` whose values sealed with an older key are sealed again with the current one."""

    def reseal(value: Any, aad: str) -> Any:
        if not is_sealed(value) or value.get("kid") == keyring.current:
            return value
        return seal(unseal(value, keyring, aad), keyring, aad, random_bytes)

    return _map_sensitive(data, schema, reseal)


def mask_sensitive(data: dict[str, Any], schema: m.FormSchema, viewer_roles: Iterable[str]) -> dict[str, Any]:
    """A copy of `data` with "****" for sensitive values the viewer may not see.

    A viewer may see a sensitive field when they hold one of its `sensitive_roles`; a
    field without roles is masked for everyone. Empty values stay None.
    """
    roles = frozenset(viewer_roles)

    def masked(field: m.ValueField | m.ColumnField) -> bool:
        return not roles.intersection(field.sensitive_roles)

    return _map_sensitive(data, schema, lambda value, aad: value if value is None else MASK, masked)


def _map_sensitive(
    data: dict[str, Any],
    schema: m.FormSchema,
    change: Callable[[Any, str], Any],
    applies: Callable[[m.ValueField | m.ColumnField], bool] = lambda field: True,
) -> dict[str, Any]:
    """A copy of `data` with `change(value, aad)` applied to the sensitive values `applies` to."""
    result = dict(data)
    prefix = schema.key
    for field in m.value_fields(schema):
        key = field.key
        if field.sensitive and applies(field) and key in result:
            result[key] = change(result[key], f"{prefix}/{key}")
        if isinstance(field, m.DetailTableField):
            columns = [c for c in field.columns if c.sensitive and applies(c)]
            if columns and isinstance(result.get(key), list):
                result[key] = [_map_row(row, columns, f"{prefix}/{key}", change) for row in result[key]]
            if columns:
                _map_totals(result, key, columns, f"{prefix}/totals.{key}", change)
    return result


def _map_row(row: Any, columns: list[m.ColumnField], aad: str, change: Callable[[Any, str], Any]) -> Any:
    if not isinstance(row, dict):
        return row
    changed = dict(row)
    for column in columns:
        if column.key in changed:
            changed[column.key] = change(changed[column.key], f"{aad}.{column.key}")
    return changed


def _map_totals(
    result: dict[str, Any],
    table: str,
    columns: list[m.ColumnField],
    aad: str,
    change: Callable[[Any, str], Any],
) -> None:
    totals = result.get("totals")
    if not isinstance(totals, dict) or not isinstance(totals.get(table), dict):
        return
    sums = dict(totals[table])
    for column in columns:
        if column.key in sums:
            sums[column.key] = change(sums[column.key], f"{aad}.{column.key}")
    result["totals"] = {**totals, table: sums}


def sensitive_paths(schema: m.FormSchema) -> Iterator[str]:
    """The keys of sensitive fields and the "table.column" keys of sensitive columns."""
    for field in m.value_fields(schema):
        if field.sensitive:
            yield field.key
        if isinstance(field, m.DetailTableField):
            yield from (f"{field.key}.{column.key}" for column in field.columns if column.sensitive)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
