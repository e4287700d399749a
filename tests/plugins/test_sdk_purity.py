"""The SDK, its test kit and the built-in steps load no database, broker or web code, and the
engine loads no plugin code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("storage", "piccolo", "dramatiq", "litestar", "web", "minio")


def loaded(modules: str, prefixes: tuple[str, ...]) -> list[str]:
    code = (
        f"import sys, {modules};"
        f"print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in {prefixes!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return [m for m in result.stdout.strip().split(",") if m]


def test_writing_and_testing_a_plugin_needs_no_database_broker_or_web() -> None:
    modules = (
        "plugins, plugins.testing, plugins.builtin.finance_co_review, plugins.builtin.webhook, "
        "plugins.builtin.notify, plugins.builtin.auto_decide"
    )
    assert loaded(modules, HEAVY) == []


def test_the_engine_loads_no_plugin_code() -> None:
    assert loaded("runtime.flow", ("plugins",)) == []
