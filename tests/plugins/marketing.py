"""The marketing-activity flow with the finance-co-review step, its form, and the built-ins.

`marketing-activity.flow.json` beside this file is the demo flow with its budget branch and
finance approval replaced by the plugin step (the version builder/demo switches to).
"""

from __future__ import annotations

from pathlib import Path

from forms import load_schema
from plugins import discover
from runtime.flow import decode_graph
from tests.runtime.org import DEMO_DIR

FLOW = decode_graph((Path(__file__).parent / "marketing-activity.flow.json").read_bytes())
FORM = load_schema(DEMO_DIR / "marketing-activity.form.json")
REGISTRY = discover(found=[])  # the built-in steps only, whatever else is installed
PLUGINS = REGISTRY.engine_plugins()
