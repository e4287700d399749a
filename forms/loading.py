"""Reading stored form schemas, upgrading old stored shapes, and the format's own JSON Schema.

Stored schemas carry `schema_version` (the version of the format, see `forms.model`). A
schema written by an older release is upgraded by the pure functions in `MIGRATIONS`, one
version step each, before it is decoded; a schema newer than this code is refused.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Any

import msgspec

from forms.errors import SchemaDecodeError
from forms.model import FORMAT_VERSION, FormSchema

Migration = Callable[[dict[str, Any]], dict[str, Any]]
MIGRATIONS: dict[int, Migration] = {}
"""`MIGRATIONS[n]` turns a stored schema of format version n into version n + 1.

Format 1 is the first released format, so there is nothing to upgrade yet.
"""

META_SCHEMA_ID = "urn:formflow:form-schema"


def load_schema(source: str | PathLike[str] | bytes) -> FormSchema:
    """Decode a stored form schema from a file path or JSON bytes, upgrading old formats.

    Raises `SchemaDecodeError` when the JSON is malformed or does not match the format
    (the message names the offending path), or when the format is newer than this code.
    """
    raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        document = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise SchemaDecodeError(f"malformed form schema JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise SchemaDecodeError("a form schema must be a JSON object")
    document = upgrade(document)
    try:
        return msgspec.convert(document, FormSchema)
    except msgspec.ValidationError as exc:
        raise SchemaDecodeError(f"invalid form schema: {exc}") from exc


def upgrade(document: dict[str, Any]) -> dict[str, Any]:
    """A stored schema document brought to `FORMAT_VERSION` (unchanged if already there)."""
    version = document.get("schema_version", 1)
    if not isinstance(version, int) or version < 1:
        raise SchemaDecodeError(f"invalid schema_version {version!r}")
    if version > FORMAT_VERSION:
        raise SchemaDecodeError(f"schema_version {version} is newer than this release ({FORMAT_VERSION})")
    while version < FORMAT_VERSION:
        document = {**MIGRATIONS[version](document), "schema_version": version + 1}
        version += 1
    return document


def dump_schema(schema: FormSchema) -> bytes:
    """The stored JSON of a schema, every setting written out (defaults included), indented."""
    return msgspec.json.format(msgspec.json.encode(schema), indent=2)


@functools.cache
def _meta_schema() -> bytes:
    document = msgspec.json.schema(FormSchema)
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": META_SCHEMA_ID,
        "title": "Formflow form schema",
        "description": f"The stored format of a form (schema_version {FORMAT_VERSION}).",
        **document,
    }
    return msgspec.json.encode(document)


def meta_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of the form-schema format itself ("the schema of the schema").

    Any JSON Schema tool can check a stored form file with it. Design-time rules that JSON
    Schema cannot state (unknown CEL names, cycles, ...) are `forms.check_schema`'s job.
    """
    document: dict[str, Any] = msgspec.json.decode(_meta_schema())
    return document
