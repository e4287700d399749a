"""Loading stored schemas, their format version, and the JSON Schema of the format itself."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from forms import SchemaDecodeError, load_schema, meta_schema
from forms.loading import dump_schema, upgrade
from tests.forms.conftest import DEMO, demo


@pytest.mark.parametrize("path", sorted(DEMO.glob("*.form.json")), ids=lambda p: p.name)
def test_demo_files_match_the_meta_schema(path: Path) -> None:
    validator = jsonschema.Draft202012Validator(meta_schema())
    assert list(validator.iter_errors(json.loads(path.read_bytes()))) == []


def test_meta_schema_is_a_2020_12_schema() -> None:
    document = meta_schema()
    jsonschema.Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    validator = jsonschema.Draft202012Validator(document)
    assert not validator.is_valid(
        {"key": "x", "version": 1, "title": {"zh": "x", "en": "x"}, "fields": [{"type": "rocket"}]}
    )


def test_load_from_bytes_and_round_trip() -> None:
    schema = demo("marketing-activity")
    assert load_schema(dump_schema(schema)) == schema


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{", "malformed form schema JSON"),
        (b"[]", "a form schema must be a JSON object"),
        (b'{"key": "x"}', "Object missing required field `version`"),
        (
            json.dumps(
                {
                    "key": "x",
                    "version": 1,
                    "title": {"zh": "x", "en": "x"},
                    "fields": [{"type": "text", "key": "a", "label": {"zh": "a", "en": "a"}, "colour": 1}],
                }
            ).encode(),
            "Object contains unknown field `colour` - at `$.fields[0]`",
        ),
        (b'{"schema_version": 9}', "schema_version 9 is newer than this release (1)"),
    ],
)
def test_bad_schema_files(raw: bytes, message: str) -> None:
    with pytest.raises(SchemaDecodeError, match=re.escape(message)):
        load_schema(raw)


def test_current_format_needs_no_upgrade() -> None:
    document = {"key": "x", "schema_version": 1}
    assert upgrade(document) == document
    assert upgrade({"key": "x"}) == {"key": "x"}
