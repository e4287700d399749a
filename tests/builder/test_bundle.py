"""Template bundles: every demo template goes out and comes back; a broken bundle names each problem."""

from __future__ import annotations

from typing import Any

import jsonschema
import msgspec
import pytest

from builder.bundle import (
    BundleDescription,
    BundleError,
    BundleText,
    TemplateBundle,
    bundle_json_schema,
    decode_bundle,
    encode_bundle,
)
from builder.demo_templates import DEMO_DIR, DEMO_TEMPLATES
from plugins.validation import validate_plugin_nodes


def _bundle(key: str) -> TemplateBundle:
    flow_path = DEMO_DIR / f"{key}.flow.json"
    return TemplateBundle(
        key=key,
        name=BundleText(zh=key, en=key),
        description=BundleDescription(zh="示例", en="demo"),
        form=msgspec.json.decode((DEMO_DIR / f"{key}.form.json").read_bytes()),
        flow=msgspec.json.decode(flow_path.read_bytes()) if flow_path.exists() else None,
    )


@pytest.mark.parametrize("key", [template.key for template in DEMO_TEMPLATES])
def test_every_demo_template_round_trips_and_matches_the_published_format_schema(key: str) -> None:
    bundle = _bundle(key)
    data = encode_bundle(bundle)
    jsonschema.validate(msgspec.json.decode(data), bundle_json_schema())
    checked = decode_bundle(data, flow_checks=[lambda flow, form: validate_plugin_nodes(flow, form)])
    assert checked.bundle == bundle
    assert checked.form.key == key
    assert (checked.flow is None) == (bundle.flow is None)


def _broken(**changes: Any) -> bytes:
    data: dict[str, Any] = msgspec.to_builtins(_bundle("supplier-onboarding"))
    data.update(changes)
    return msgspec.json.encode(data)


def test_a_flow_naming_a_field_the_form_lacks_is_refused_at_its_node() -> None:
    data: dict[str, Any] = msgspec.to_builtins(_bundle("supplier-onboarding"))
    data["form"]["fields"] = [f for f in data["form"]["fields"] if f["key"] != "risk_level"]
    with pytest.raises(BundleError) as refused:
        decode_bundle(msgspec.json.encode(data))
    assert any(
        problem.path == "flow:risk_check" and "risk_level" in problem.message
        for problem in refused.value.problems
    )


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b"{not json", "not a JSON template bundle"),
        (_broken(format="something-else"), "format"),
        (_broken(key="Bad Key!"), "key"),
        (
            _broken(form={"key": "x", "version": 1, "title": {"zh": "x"}, "fields": [{"type": "nope"}]}),
            "form",
        ),
        (_broken(flow={"key": "x", "nodes": [], "edges": []}), "flow"),
    ],
)
def test_broken_bundles_are_refused_with_where_and_why(data: bytes, where: str) -> None:
    with pytest.raises(BundleError) as refused:
        decode_bundle(data)
    assert where in str(refused.value)
