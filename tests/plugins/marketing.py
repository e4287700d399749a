"""The demo marketing-activity flow (its finance co-review is the finance-co-review step),
its form, and the built-in steps the engine needs to run it."""

from __future__ import annotations

from forms import load_schema
from plugins import discover
from tests.runtime.org import DEMO_DIR, demo_flow

FLOW = demo_flow("marketing-activity")
FORM = load_schema(DEMO_DIR / "marketing-activity.form.json")
REGISTRY = discover(found=[])  # the built-in steps only, whatever else is installed
PLUGINS = REGISTRY.engine_plugins()
