"""Sensitive fields: sealed at rest with AES-GCM, keys that rotate, masked for other roles."""

from __future__ import annotations

import base64
import os
from typing import Any

import msgspec
import pytest

from forms.errors import DecryptionError, KeyringError, UnknownKeyError
from forms.sensitive import (
    MASK,
    Keyring,
    decrypt_sensitive,
    encrypt_sensitive,
    is_sealed,
    mask_sensitive,
    reseal_sensitive,
    sensitive_paths,
)
from tests.forms.conftest import context, demo, field, form, schema

KEY_2023, KEY_2024 = os.urandom(32), os.urandom(32)
OLD = Keyring(keys={"2023": KEY_2023}, current="2023")
ROTATED = Keyring(keys={"2023": KEY_2023, "2024": KEY_2024}, current="2024")

SCHEMA = schema(
    field("text", "name"),
    field("text", "id_number", sensitive=True, sensitive_roles=["hr"]),
    field("money", "salary", sensitive=True, sensitive_roles=["hr", "finance"]),
    field("text", "secret", sensitive=True),
    field(
        "detail_table",
        "bonuses",
        columns=[
            field("text", "reason"),
            field("money", "amount", sensitive=True, sensitive_roles=["finance"]),
        ],
        totals=["amount"],
    ),
)
SUBMISSION = {
    "name": "李雷",
    "id_number": "11010519491231002X",
    "salary": "23000.00",
    "secret": None,
    "bonuses": [{"reason": "Q2", "amount": "5000.00"}, {"reason": "Q3", "amount": "3000.00"}],
}


def cleaned() -> dict[str, Any]:
    result = form(*[msgspec.to_builtins(f) for f in SCHEMA.fields]).validate(SUBMISSION, context())
    assert result.ok, result.errors
    return result.data


def stored(data: dict[str, Any]) -> dict[str, Any]:
    """What a database round trip gives back: JSON builtins."""
    return msgspec.json.decode(msgspec.json.encode(data))


def test_round_trip() -> None:
    data = cleaned()
    sealed = stored(encrypt_sensitive(data, SCHEMA, OLD))
    assert is_sealed(sealed["id_number"]) and is_sealed(sealed["salary"])
    assert sealed["secret"] is None
    assert sealed["name"] == "李雷"
    assert all(is_sealed(row["amount"]) and not is_sealed(row["reason"]) for row in sealed["bonuses"])
    assert is_sealed(sealed["totals"]["bonuses"]["amount"])
    assert sealed["id_number"]["kid"] == "2023" and set(sealed["id_number"]) == {
        "$sealed",
        "kid",
        "nonce",
        "ct",
    }
    assert "11010519491231002X" not in msgspec.json.encode(sealed).decode()
    assert decrypt_sensitive(sealed, SCHEMA, OLD) == stored(data)


def test_sealing_is_idempotent_and_nonces_differ() -> None:
    data = cleaned()
    once = encrypt_sensitive(data, SCHEMA, OLD)
    assert encrypt_sensitive(once, SCHEMA, OLD) == once
    again = encrypt_sensitive(data, SCHEMA, OLD)
    assert once["id_number"]["nonce"] != again["id_number"]["nonce"]


def test_key_rotation() -> None:
    sealed_old = stored(encrypt_sensitive(cleaned(), SCHEMA, OLD))
    assert decrypt_sensitive(sealed_old, SCHEMA, ROTATED) == stored(cleaned())
    mixed = {**sealed_old, **stored(encrypt_sensitive({"salary": "1.00"}, SCHEMA, ROTATED))}
    assert mixed["salary"]["kid"] == "2024" and mixed["id_number"]["kid"] == "2023"
    resealed = reseal_sensitive(mixed, SCHEMA, ROTATED)
    assert {resealed["id_number"]["kid"], resealed["salary"]["kid"]} == {"2024"}
    assert resealed["salary"] is mixed["salary"]  # already current: untouched
    assert decrypt_sensitive(resealed, SCHEMA, ROTATED)["id_number"] == "11010519491231002X"
    with pytest.raises(UnknownKeyError):
        decrypt_sensitive(resealed, SCHEMA, OLD)


def test_tampered_or_moved_value_does_not_open() -> None:
    sealed = stored(encrypt_sensitive(cleaned(), SCHEMA, OLD))
    ciphertext = bytearray(base64.b64decode(sealed["id_number"]["ct"]))
    ciphertext[0] ^= 1
    tampered = {**sealed, "id_number": {**sealed["id_number"], "ct": base64.b64encode(ciphertext).decode()}}
    with pytest.raises(DecryptionError):
        decrypt_sensitive(tampered, SCHEMA, OLD)
    moved = {**sealed, "salary": sealed["id_number"]}  # sealed for another field
    with pytest.raises(DecryptionError):
        decrypt_sensitive(moved, SCHEMA, OLD)


def test_keyring_is_checked() -> None:
    with pytest.raises(KeyringError):
        Keyring(keys={"a": b"short"}, current="a")
    with pytest.raises(KeyringError):
        Keyring(keys={"a": KEY_2023}, current="b")
    ring = Keyring.from_base64({"a": base64.b64encode(KEY_2023).decode()}, current="a")
    assert ring.keys["a"] == KEY_2023
    with pytest.raises(KeyringError):
        Keyring.from_base64({"a": "not base64!"}, current="a")


@pytest.mark.parametrize(
    ("roles", "visible"),
    [
        ([], {"name"}),
        (["hr"], {"name", "id_number", "salary"}),
        (["finance"], {"name", "salary", "bonuses.amount"}),
        (["hr", "finance"], {"name", "id_number", "salary", "bonuses.amount"}),
    ],
)
def test_mask_by_role(roles: list[str], visible: set[str]) -> None:
    data = cleaned()
    shown = mask_sensitive(data, SCHEMA, roles)
    for key in ("name", "id_number", "salary"):
        assert (shown[key] == data[key]) == (key in visible), key
    assert shown["secret"] is None  # empty stays empty; no roles at all would mask it
    amounts_shown = "bonuses.amount" in visible
    assert all((row["amount"] != MASK) == amounts_shown for row in shown["bonuses"])
    assert (shown["totals"]["bonuses"]["amount"] != MASK) == amounts_shown
    assert data["id_number"] == "11010519491231002X"  # the input is not changed


def test_masking_works_on_sealed_data_too() -> None:
    sealed = encrypt_sensitive(cleaned(), SCHEMA, OLD)
    assert mask_sensitive(sealed, SCHEMA, [])["id_number"] == MASK


def test_demo_forms_declare_sensitive_fields() -> None:
    assert list(sensitive_paths(demo("new-employee-onboarding"))) == ["id_number", "monthly_salary"]
    assert list(sensitive_paths(demo("supplier-onboarding"))) == ["bank_account"]
