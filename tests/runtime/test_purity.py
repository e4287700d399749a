"""The pure core imports no web, ORM, broker or storage code, and reads no clock or randomness."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE = [ROOT / "runtime" / "flow", ROOT / "runtime" / "calendar"]
FORBIDDEN = (
    "litestar",
    "piccolo",
    "dramatiq",
    "minio",
    "storage",
    "web",
    "runtime.broker",
    "runtime.scheduler",
)


def test_importing_the_core_loads_nothing_forbidden() -> None:
    code = (
        "import sys, runtime.flow, runtime.calendar;"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r} or m in {FORBIDDEN!r}];"
        "print(','.join(sorted(bad)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


SOURCES = sorted(path for folder in PURE for path in folder.rglob("*.py"))
IMPURE = re.compile(
    r"\b(import random|import uuid|from random|from uuid|\.now\(|\.today\(|time\.time\(|utcnow)"
)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_clock_and_no_randomness(path: Path) -> None:
    assert not IMPURE.findall(path.read_text(encoding="utf-8"))
